"""A retrieval study: trials of a search space scored on tune questions, the best one chosen there, then
scored once on held-out test questions against the baseline policy.

- **Split** (``split``): tune and test questions, disjoint, from a recorded seed.
- **Trials** (``space``): every setting of the space, each scored on the tune questions by the eval
  runner's own per-query scoring (``EvalRunner.evaluate_query``: the same depth rules and metrics as
  ``ragdeck eval``) over a ``CandidateCache`` (``cache``): each question's lists are fetched once at the
  deepest depth and reused, so a trial that changes only fusion or cut-offs makes no engine call. The
  questions are embedded once, in batches.
- **Latency**: measured, not estimated. For each engine configuration (mode, candidates, ef, rerank;
  trials differing only in fusion share one) every tune question is searched once more through the real
  store as the RAG API serves it (``Retriever.search``, no cache), and its time is added to that question's
  own embedding time (each tune question embedded alone once, as a served query is); the trial's latency is
  the P95 over the tune questions. A trial over the P95 budget cannot be chosen.
- **Choice**: the best mean objective on tune questions (ties: the faster, then the earlier trial).
- **Test**: the chosen trial and the baseline policy on the test questions, once: their means, the paired
  difference (chosen − baseline) with a 95 % bootstrap interval and a sign-flip permutation p-value, and the
  optimism: the gain on tune questions minus the gain on test questions (how much of the tuned gain was
  fitted to the tune questions).

A study is saved (``save``) after every trial, so a run that stops (cancel, crash) resumes from its trials.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evaluation.batching import embed_questions
from ragdeck.console.evaluation.metric_names import DEFAULT_KS, DOC_PREFIX, parse_metric_name
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.ports import EvalRunStore
from ragdeck.console.evaluation.prepare import prepare_set
from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner
from ragdeck.console.interfaces import Embedder, VectorSearch
from ragdeck.console.jobs import Job, JobRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.retrieval.ports import Reranker
from ragdeck.console.tuning.cache import CandidateCache, RerankCache
from ragdeck.console.tuning.record import Study, StudyPlan, compare_on_test, decide, mean_of
from ragdeck.console.tuning.space import SearchSpace, Trial, trial_label
from ragdeck.console.tuning.split import split_questions
from ragdeck.errors import InputError

Progress = Callable[[int, int], None]  # (trials done, trials in the study)
ENGINE_KNOBS = ("retrieval", "top_k", "top_n", "hnsw_ef", "rerank")  # what latency depends on


def objective_name(metric: str, level: str = "document") -> str:
    """The stored metric name a study optimises: ``ndcg@10`` at document level → ``doc_ndcg@10``; a name
    that already says ``doc_`` keeps it. ``level``: "document" or "gold" (the level the gold names)."""
    if level not in {"document", "gold"}:
        raise InputError(f"level must be document or gold, got {level!r}")
    parsed = parse_metric_name(metric)
    if parsed.k is None:
        raise InputError(f"give the objective a cut-off, e.g. '{metric}@10': a study scores k results")
    document = parsed.document or level == "document"
    return f"{DOC_PREFIX if document else ''}{parsed.metric}@{parsed.k}"


@dataclass
class StudyDeps:
    """What a study searches with: the store, the embedder, and the reranker when one is configured."""

    store: VectorSearch
    embedder: Embedder
    reranker: Reranker | None = None


def plan_study(
    evalset: EvalSet,
    baseline: Policy,
    collection: str,
    *,
    objective: str,
    space: SearchSpace | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    budget_p95_ms: float | None = None,
    missing_gold: str = "skip",
    set_path: str | None = None,
) -> StudyPlan:
    """A study's plan: the split of ``evalset``'s questions from ``seed``, the baseline searching
    ``collection``, the space (default ``SearchSpace()``) and the objective (a stored metric name)."""
    if budget_p95_ms is not None and not budget_p95_ms > 0:
        raise InputError(f"the P95 latency budget must be > 0 ms, got {budget_p95_ms}")
    split = split_questions([r.id for r in evalset.records], seed=seed, test_fraction=test_fraction)
    return StudyPlan(
        set_name=evalset.name,
        set_hash=evalset.content_hash(),
        collection=collection,
        baseline=Policy.from_mapping(baseline.name, {"alias": collection}, baseline),
        space=space or SearchSpace(),
        objective=objective,
        split=split,
        budget_p95_ms=budget_p95_ms,
        missing_gold=missing_gold,
        set_path=set_path,
    )


class StudyRunner:
    """Runs a study plan over an eval set (see the module docstring)."""

    def __init__(self, deps: StudyDeps, plan: StudyPlan, evalset: EvalSet) -> None:
        if evalset.content_hash() != plan.set_hash:
            raise InputError(
                f"the study was planned on eval set version sha256:{plan.set_hash[:12]}…, not on the one "
                f"given (sha256:{evalset.content_hash()[:12]}…): resume it with the same version"
            )
        self.deps, self.plan = deps, plan
        collection = deps.store.resolve(plan.collection)
        prepared, notes, _ = prepare_set(evalset, deps.store, collection, plan.missing_gold)
        self.collection, self.notes = collection, notes
        by_id = {r.id: r for r in prepared.records}
        self.tune = [by_id[i] for i in plan.split.tune_ids if i in by_id]
        self.test = [by_id[i] for i in plan.split.test_ids if i in by_id]
        if not self.tune or not self.test:
            raise InputError(
                "after the gold the collection lacks was left out, a side of the split has no question: "
                "use a larger set or a collection that holds its gold"
            )
        self.trials = plan.space.trials(reranker=deps.reranker is not None, top_n=plan.baseline.top_n)
        ks = tuple(sorted({*DEFAULT_KS, parse_metric_name(plan.objective).k or 10}))
        self.ks = ks
        # Lists are fetched at twice the deepest candidate depth (and 4 × k), so that the deeper searches
        # a document cut-off may ask for (``depth.retrieve_to_depth``) are served from them too.
        deepest = max(2 * max([*plan.space.top_ks, plan.baseline.top_k]), 4 * max(ks))
        self.cache = CandidateCache(deps.store, depth=deepest)
        self.rerank_cache = RerankCache(deps.reranker) if deps.reranker is not None else None
        cached = Retriever(self.cache, deps.embedder, self.rerank_cache)
        self._scorer = EvalRunner(EvalDeps(cached, runs=cast(EvalRunStore, None)))
        self._live = Retriever(deps.store, deps.embedder, deps.reranker)
        self._vectors: dict[str, list[float] | None] = {}
        self._embed_ms: dict[str, float] = {}
        self._latency: dict[tuple[Any, ...], float] = {}

    # -------------------------------------------------------------- scoring

    def _embed(self, records: Sequence[EvalRecord]) -> None:
        todo = [r for r in records if r.id not in self._vectors]
        if not todo:
            return
        vectors = embed_questions(self.deps.embedder, [r.question for r in todo])
        for record, (vector, _) in zip(todo, vectors, strict=True):
            self._vectors[record.id] = vector

    def policy(self, params: Trial) -> Policy:
        """The baseline with a trial's knobs."""
        return Policy.from_mapping(self.plan.baseline.name, params, self.plan.baseline)

    def scores(self, policy: Policy, records: Sequence[EvalRecord]) -> list[float]:
        """The objective of each record under ``policy``, as ``ragdeck eval`` scores it (NaN: the query
        failed or its gold has no judgement at that level)."""
        self._embed(records)
        plan = EvalPlan(policy, self.ks, answers=False, concurrency=1)
        out = []
        for record in records:
            vector = self._vectors[record.id]
            result = self._scorer.evaluate_query(plan, record, self.collection, vector=vector)
            if result["error"]:
                raise StudyQueryError(f"question {record.id}: {result['error']}")
            metrics = result["metrics"]
            if self.plan.objective not in metrics:
                names = ", ".join(sorted(n for n in metrics if "@" in n))
                raise InputError(
                    f"the eval runner scores no {self.plan.objective!r} on question {record.id}: use one of "
                    f"{names} (chunk-level names need gold that names chunks)"
                )
            out.append(float(metrics[self.plan.objective]))
        return out

    def p95_ms(self, policy: Policy) -> float:
        """The P95 over the tune questions of serving ``policy`` (see the module docstring), measured once
        per engine configuration."""
        key = tuple(getattr(policy, k) for k in ENGINE_KNOBS)
        if key not in self._latency:
            embeds = policy.retrieval != "lexical"
            if embeds:
                for record in self.tune:
                    if record.id not in self._embed_ms:
                        t0 = time.perf_counter()
                        self.deps.embedder.embed_query(record.question)
                        self._embed_ms[record.id] = (time.perf_counter() - t0) * 1000
            params = dataclasses.replace(policy.retrieval_params(), list_ranks=False)  # as the API asks
            took = []
            for record in self.tune:
                vector = self._vectors[record.id] if embeds else None
                result = self._live.search(record.question, self.collection, params, vector=vector)
                took.append(result.timings_ms["total"] + (self._embed_ms[record.id] if embeds else 0.0))
            self._latency[key] = float(np.percentile(took, 95))
        return self._latency[key]

    # -------------------------------------------------------------- the study

    def run(
        self,
        study: Study,
        *,
        save: Callable[[Study], None] = lambda _: None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> Study:
        """Run the trials ``study`` has not finished, then choose and test; saves after every trial.
        Returns the study (status done, or cancelled when ``cancel`` was set between trials)."""
        study.status, study.error = "running", None
        study.notes = list(self.notes)
        started = time.perf_counter()
        done = {trial_label(t["params"]): t for t in study.trials}
        total = len(self.trials)
        if progress:
            progress(len(done), total)
        try:
            t0 = time.perf_counter()
            self._embed([*self.tune, *self.test])  # once, in batches, before any trial
            embed_seconds = time.perf_counter() - t0
            for params in self.trials:
                label = trial_label(params)
                if label in done:
                    continue
                if cancel is not None and cancel.is_set():
                    study.status = "cancelled"
                    break
                study.trials.append(self._trial(params))
                done[label] = study.trials[-1]
                save(study)
                if progress:
                    progress(len(done), total)
            if study.status != "cancelled":
                self._decide(study)
                study.status = "done"
        except Exception as exc:
            study.status, study.error = "failed", f"{type(exc).__name__}: {exc}"
            save(study)
            raise
        finally:
            seconds = time.perf_counter() - started
            ran = sum(1 for t in study.trials if t.get("seconds") is not None)
            trial_seconds = sum(t.get("seconds") or 0.0 for t in study.trials)
            study.timing = {
                "seconds": round(seconds + float(study.timing.get("seconds", 0.0)), 3),
                "embed_seconds": round(locals().get("embed_seconds", 0.0), 3),
                "trials": ran,
                "trials_per_s": round(ran / trial_seconds, 2) if trial_seconds > 0 else None,
                "engine_calls": dict(self.cache.calls),
                "reranker_calls": self.rerank_cache.calls if self.rerank_cache else 0,
            }
        save(study)
        return study

    def _trial(self, params: Trial) -> dict[str, Any]:
        t0 = time.perf_counter()
        policy = self.policy(params)
        error = None
        try:
            values = self.scores(policy, self.tune)
            score = mean_of(values)
        except StudyQueryError as exc:
            score, error = math.nan, str(exc)
        seconds = time.perf_counter() - t0  # the scoring only: the trial's cost with the cache
        p95 = self.p95_ms(policy) if error is None else None
        budget = self.plan.budget_p95_ms
        return {
            "label": trial_label(params),
            "params": params,
            "tune_score": None if math.isnan(score) else score,
            "p95_ms": p95,
            "within_budget": None if p95 is None else (budget is None or p95 <= budget),
            "seconds": round(seconds, 4),
            "error": error,
        }

    def _decide(self, study: Study) -> None:
        ok = [
            (i, t)
            for i, t in enumerate(study.trials)
            if t["tune_score"] is not None and t["within_budget"] and t["label"] in self._labels()
        ]
        baseline = self.plan.baseline
        base_tune = self.scores(baseline, self.tune)
        study.baseline = {
            "tune_score": mean_of(base_tune),
            "p95_ms": self.p95_ms(baseline),
            "knobs": baseline.knobs(),
        }
        if not ok:
            budget = self.plan.budget_p95_ms
            study.chosen, study.test = None, None
            study.decision = (
                f"keep the baseline: no trial met the P95 budget of {budget:g} ms"
                if budget is not None
                else "keep the baseline: every trial failed (see the trials' errors)"
            )
            return
        index, best = max(ok, key=lambda it: (it[1]["tune_score"], -(it[1]["p95_ms"] or 0.0), -it[0]))
        study.chosen = {**best, "index": index}
        chosen = self.policy(best["params"])
        base_test, chosen_test = self.scores(baseline, self.test), self.scores(chosen, self.test)
        tune_gain = best["tune_score"] - mean_of(base_tune)
        ids = [r.id for r in self.test]
        study.test = compare_on_test(base_test, chosen_test, tune_gain=tune_gain, ids=ids)
        study.decision = decide(study.test, same=chosen.knobs() == baseline.knobs())

    def _labels(self) -> set[str]:
        return {trial_label(t) for t in self.trials}


class StudyQueryError(Exception):
    """A question failed under a trial (the trial is recorded with the error and never chosen)."""


STUDY_JOB_KIND = "study"


def start_study_job(
    jobs: JobRunner, runner: StudyRunner, study: Study, save: Callable[[dict[str, Any]], object]
) -> Job:
    """Run the study in a thread of ``jobs`` (key ``study:<id>``): progress is "trials done/total", the
    job's cancel switch stops it between trials, ``save`` keeps it (as JSON) after every trial; the
    job's result is the study."""

    def work(job: Job) -> Study:
        return runner.run(
            study,
            save=lambda s: save(s.to_json()),
            progress=lambda done, total: job.report("trials", done, total),
            cancel=job.cancel,
        )

    return jobs.start(f"study:{study.study_id}", work, kind=STUDY_JOB_KIND, label=f"Study {study.study_id}")
