"""The demo's first eval runs: the shipped demo gold set over the demo collection, once with dense retrieval
and once with hybrid, so the Evaluate, Compare and SLO pages open on real runs after a first start.

The runs are ordinary eval runs (retrieval only), marked ``created_by`` "ragdeck demo" in their config and
run under the policies "demo-dense" and "demo-hybrid". Idempotent: a mode that already has a finished run of
this version of the set on the collection is not run again; an unfinished demo run (a start that was killed
mid-way) is resumed rather than started afresh. The set is read from the package (``DEMO_EVAL_SETS``), so
this works from any working directory.

The questions are embedded in one batch before the runs (``BatchedQueries``): per query, as the runner does
(each query is searched once or more, each search embedding it again), the two runs took 26 s and 18 s on a
loaded 2-core machine, against 0.2-0.5 s each after a batch of under 3 s. Each run's notes say so: its
per-query embed times are lookups of that batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ragdeck.console.evalsets.files import DEMO_EVAL_SETS
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.runner import EvalRunner
from ragdeck.console.interfaces import Embedder
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy, default_policy
from ragdeck.console.settings import Settings
from ragdeck.errors import RagdeckError
from ragdeck.services.types import ComponentHealth, RunRow

DEMO_SET = DEMO_EVAL_SETS / "demo_gold.jsonl"
DEMO_CREATOR = "ragdeck demo"
DEMO_MODES = ("dense", "hybrid")  # run in this order: Compare then offers dense as A, hybrid as B

Progress = Callable[[str, int, int], None]  # (mode, queries finished, queries in the run)


@dataclass(frozen=True)
class DemoRun:
    """What happened to one mode: ``made`` (run now, in ``seconds``), ``found`` (an earlier finished run),
    or ``skipped`` (``reason`` says why; the console starts anyway)."""

    mode: str
    outcome: str
    run: RunRow | None = None
    seconds: float = 0.0
    reason: str = ""


class BatchedQueries:
    """An embedder whose vectors for ``questions`` were made in one batch up front (``seconds`` it took,
    after ``load_seconds`` to get the model ready):
    ``embed_query`` of one of them is a lookup, of anything else the ``inner`` embedder's. Both adapters
    embed a query as a one-text batch of ``embed_documents``, so the vectors are the ones a query gets."""

    def __init__(self, inner: Embedder, questions: Sequence[str]) -> None:
        self.inner = inner
        self.mode, self.model_name, self.path = inner.mode, inner.model_name, inner.path
        unique = list(dict.fromkeys(questions))
        started = time.perf_counter()
        _ = inner.dimension  # an in-process model loads here: timed apart from the batch
        self.load_seconds = time.perf_counter() - started
        vectors = inner.embed_documents(unique)
        self.seconds = time.perf_counter() - started - self.load_seconds
        self._vectors = {q: np.asarray(v, dtype=np.float32) for q, v in zip(unique, vectors, strict=True)}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        found = self._vectors.get(text)
        return found if found is not None else self.inner.embed_query(text)

    def health(self) -> ComponentHealth:
        return self.inner.health()

    def note(self) -> str:
        """What a run's report says about its embed times."""
        return (
            f"{len(self._vectors)} questions embedded in one batch before the run in {self.seconds:.1f} s "
            f"(the model ready in {self.load_seconds:.1f} s); the embed time of each query is a lookup of "
            "that batch"
        )


def batched(runner: EvalRunner, evalset: EvalSet) -> tuple[EvalRunner, BatchedQueries]:
    """``runner`` with the set's questions embedded up front (``BatchedQueries``)."""
    retriever = runner.deps.retriever
    queries = BatchedQueries(retriever.embedder, [r.question for r in evalset.records])
    deps = replace(runner.deps, retriever=Retriever(retriever.store, queries, retriever.reranker))
    return EvalRunner(deps), queries


def demo_policy(settings: Settings, mode: str) -> Policy:
    """The settings' default retrieval knobs on the serving alias, in ``mode``, named ``demo-<mode>``."""
    return replace(default_policy(f"demo-{mode}", settings), retrieval=mode)


def is_demo_run(run: RunRow) -> bool:
    """Whether ``run`` was made by the demo's first start."""
    return run.config.get("created_by") == DEMO_CREATOR


def run_mode(run: RunRow) -> str | None:
    """The retrieval mode a run used (None for a run without a policy)."""
    return (run.config.get("policy") or {}).get("retrieval")


def _existing(runs: list[RunRow], evalset: EvalSet, collection: str, mode: str) -> tuple[RunRow | None, ...]:
    """(a finished run of this set version in ``mode`` on ``collection``, an unfinished demo one)."""
    digest = evalset.content_hash()
    same = [r for r in runs if r.set_hash == digest and r.collection == collection and run_mode(r) == mode]
    done = next((r for r in same if r.status == "done"), None)
    unfinished = next((r for r in same if r.status != "done" and is_demo_run(r)), None)
    return done, unfinished


def ensure_demo_runs(
    runner: EvalRunner,
    settings: Settings,
    built_by: Callable[[str], str | None],
    *,
    progress: Progress | None = None,
) -> list[DemoRun]:
    """Run the demo gold set over ``settings.alias`` in each of ``DEMO_MODES`` that has no finished run yet
    (see the module docstring), when the collection behind it is the demo's (``built_by(collection)``, the
    index registry's record, says "ragdeck demo"): the set is labelled on the demo corpus. A mode that cannot
    run (e.g. hybrid on a collection built without a lexical index) is skipped with its reason (any
    ``RagdeckError``); a run that fails otherwise is marked failed, and the next start resumes it."""
    evalset = read_any(DEMO_SET)
    try:
        collection = runner.deps.retriever.store.resolve(settings.alias)
    except RagdeckError as exc:
        return [DemoRun(mode, "skipped", reason=str(exc)) for mode in DEMO_MODES]
    maker = built_by(collection)
    if maker != DEMO_CREATOR:
        reason = (
            f"{settings.alias} -> {collection} was not built by `ragdeck demo` (built by: "
            f"{maker or 'unknown'}), and {evalset.name} is labelled on the demo corpus; if it holds that "
            f"corpus, run `ragdeck eval --set eval_sets/{DEMO_SET.name}`"
        )
        return [DemoRun(mode, "skipped", reason=reason) for mode in DEMO_MODES]
    runs = runner.deps.runs.list_runs(limit=1000, set_name=evalset.name)
    outcomes = []
    queries: BatchedQueries | None = None
    for mode in DEMO_MODES:
        done, unfinished = _existing(runs, evalset, collection, mode)
        if done is not None:
            outcomes.append(DemoRun(mode, "found", done))
            continue
        started = time.perf_counter()
        try:
            if queries is None:  # once, and only when something runs (the model loads here)
                runner, queries = batched(runner, evalset)
            if unfinished is not None:
                run, prepared = unfinished, runner.resume_set(unfinished, evalset)
            else:
                plan = EvalPlan(demo_policy(settings, mode))
                run, prepared = runner.start(
                    evalset, plan, source=str(DEMO_SET), created_by=DEMO_CREATOR, notes=[queries.note()]
                )
            report = None if progress is None else (lambda d, t, m=mode: progress(m, d, t))
            run = runner.execute(run, prepared, progress=report)
        except RagdeckError as exc:
            outcomes.append(DemoRun(mode, "skipped", reason=str(exc)))
            continue
        outcomes.append(DemoRun(mode, "made", run, time.perf_counter() - started))
    return outcomes
