"""The eval runner: one policy over one eval set version, query by query, into the state store.

For each question: retrieve with the policy's knobs, deep enough for k chunks and k documents (``depth``:
the query's depth and the scored search's latency are recorded), score the ranking against the gold
(``metric@k`` over k chunks when the gold names chunks; ``doc_<metric>@k`` over k documents always), and
when answers are asked for, generate an answer with the policy's model, score
it against the reference (exact match, token F1) and let the judge score it (faithfulness, answer relevancy,
context recall, with verdicts per claim). Questions are embedded in batches ahead of their queries;
finished queries are committed a few at a time (``saving``), so a run that dies is resumed from what was
committed without redoing it. Queries run on a bounded thread pool; a cancel event stops new queries from
starting.

What a run evaluates is its ``plan.EvalPlan``; the set is made ready for the collection by ``prepare`` and
the finished run summarised by ``summary``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any

from ragdeck.console.answering.answers import DEFAULT_SYSTEM_PROMPT
from ragdeck.console.answering.generate import answer_question
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, is_chunk_id
from ragdeck.console.evaluation.answer_metrics import exact_match, token_f1
from ragdeck.console.evaluation.batching import EMBED_WINDOW, Inline, embed_questions
from ragdeck.console.evaluation.depth import method_text, retrieve_to_depth
from ragdeck.console.evaluation.metrics import LEVELS, doc_of, document_ranking, gold_level, score_levels
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.ports import AnswerJudge, EvalRunStore
from ragdeck.console.evaluation.prepare import prepare_set, qrels_of
from ragdeck.console.evaluation.saving import ResultSaver
from ragdeck.console.evaluation.summary import summarize
from ragdeck.console.interfaces import ChatModel
from ragdeck.console.retrieval.pipeline import RetrievedChunk, Retriever, SearchResult
from ragdeck.errors import InputError
from ragdeck.services.lexical import no_lexical_index
from ragdeck.services.types import RunRow

Progress = Callable[[int, int], None]  # (queries finished, queries in the run)


@dataclass
class EvalDeps:
    """What a run needs from the stack: retrieval, and for answers a chat model (None = extractive) and a
    judge (None = answers are scored against the reference only)."""

    retriever: Retriever
    runs: EvalRunStore
    chat_model: ChatModel | None = None
    judge: AnswerJudge | None = None
    max_context_chars: int = 4000


def score_query(
    ranking: Sequence[str], qrels: dict[str, int], plan: EvalPlan
) -> tuple[str, dict[str, float]]:
    """The gold's level ("chunk" or "document") and every retrieval metric of one ranked list of chunk ids:
    ``metric@k`` over k chunks (chunk-level gold only), ``doc_metric@k`` over k documents
    (``metrics.score_levels``)."""
    levels, metrics = score_levels([list(ranking)], [qrels], plan.ks)
    return levels[0], metrics[0]


def scoring_record(evalset: EvalSet, plan: EvalPlan) -> dict[str, Any]:
    """How a run scores, stored with it: the queries at each gold level, the cut-offs at each level and
    how deep it retrieves (``depth``), the retrieval mode and fusion (every other knob is in ``policy``)."""
    levels = [gold_level(qrels_of(r)) for r in evalset.records]
    ks = sorted(set(plan.ks))
    policy = plan.policy
    return {
        "levels": {level: levels.count(level) for level in LEVELS if level in levels},
        "chunk_cut_offs": ks if "chunk" in levels else [],
        "document_cut_offs": ks,
        "chunk_depth": plan.depth,
        "documents_wanted": max(ks),
        "depth_method": method_text(),
        "retrieval": policy.retrieval,
        "fusion": policy.fusion if policy.retrieval == "hybrid" else None,
    }


def new_run_id() -> str:
    """A readable, unique run id: ``run-YYYYmmdd-HHMMSS-xxxxxx`` (UTC)."""
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


class EvalRunner:
    """Runs plans over eval sets and stores every query's result (see the module docstring)."""

    def __init__(self, deps: EvalDeps) -> None:
        self.deps = deps

    def start(
        self,
        evalset: EvalSet,
        plan: EvalPlan,
        *,
        run_id: str | None = None,
        source: str | None = None,
        created_by: str | None = None,
        notes: Sequence[str] = (),
    ) -> tuple[RunRow, EvalSet]:
        """Check the set against the policy's collection and record a new run (status "running").

        ``source`` is the set's file, kept with the run so it can be resumed from the console;
        ``created_by`` says who or what made the run (e.g. "ragdeck demo"), kept in its config; ``notes``
        are kept after the set's own notes (what the run's report should say about how it ran).
        Returns the run and the set as it will be scored (mapped by spans when needed). Raises
        ``EvalSetProblems`` naming every unknown gold id before anything is stored.
        """
        store = self.deps.retriever.store
        collection = store.resolve(plan.policy.alias)
        if plan.policy.retrieval != "dense" and not store.collection_info(collection).lexical:
            raise no_lexical_index(collection)  # else every query would fail the same way
        prepared, notes_set, missing = prepare_set(evalset, store, collection, plan.missing_gold)
        now = time.time()
        row = RunRow(
            run_id=run_id or new_run_id(),
            created_at=now,
            updated_at=now,
            status="running",
            set_name=evalset.name,
            set_hash=evalset.content_hash(),
            collection=collection,
            total=len(prepared.records),
            config={
                **plan.to_json(),
                "notes": [*notes_set, *notes],
                "judge": self._judge_mode(plan),
                "set_path": source,
                "scoring": scoring_record(prepared, plan),
                "missing": missing.to_json(),
                **({"created_by": created_by} if created_by else {}),
            },
        )
        self.deps.runs.create_run(row)
        return row, prepared

    def _judge_mode(self, plan: EvalPlan) -> str | None:
        if not plan.answers:
            return None
        return self.deps.judge.mode if self.deps.judge is not None else "reference only"

    def resume_set(self, run: RunRow, evalset: EvalSet) -> EvalSet:
        """The set a run to be resumed is scored on; refuses a set whose content differs from the run's."""
        if evalset.content_hash() != run.set_hash:
            raise InputError(
                f"run {run.run_id} evaluated eval set {run.set_name!r} version sha256:{run.set_hash[:12]}…, "
                f"but the set given hashes to sha256:{evalset.content_hash()[:12]}…: resume it with the same "
                "version, or start a new run"
            )
        store = self.deps.retriever.store
        missing_gold = EvalPlan.from_json(run.config).missing_gold
        prepared, _, _ = prepare_set(evalset, store, run.collection, missing_gold)
        return prepared

    def execute(
        self,
        run: RunRow,
        evalset: EvalSet,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> RunRow:
        """Run every query of ``evalset`` the run has not finished; store results, then the summary.

        ``evalset`` is the prepared set (from ``start`` or ``resume_set``). Returns the updated run.
        Questions are embedded in batches ahead of their queries (``batching.embed_questions``);
        finished results are committed together (``saving.ResultSaver``), and ``progress`` counts only
        committed ones, which is also what a resume after a kill starts from.
        """
        plan = EvalPlan.from_json(run.config)
        done = self.deps.runs.finished_ids(run.run_id)
        todo = [(i, r) for i, r in enumerate(evalset.records) if r.id not in done]
        saver = ResultSaver(self.deps.runs, run.run_id, len(done), len(evalset.records), progress)
        if progress:
            progress(saver.finished, saver.total)
        self.deps.runs.update_run(run.run_id, status="running")
        _ = self.deps.retriever.embedder.dimension  # load the model now, not in the first queries' timings
        embeds, embedder = plan.policy.retrieval != "lexical", self.deps.retriever.embedder
        status = "done"
        try:
            many = plan.concurrency > 1  # one at a time runs inline: no thread hand-off per query
            with ThreadPoolExecutor(plan.concurrency, "eval") if many else Inline() as pool:
                pending: set[Future[tuple[EvalRecord, int, dict[str, Any]]]] = set()
                queue = deque(todo)
                vectors: deque[tuple[list[float] | None, float]] = deque()
                while queue or pending:
                    while queue and len(pending) < plan.concurrency and not (cancel and cancel.is_set()):
                        if not vectors:
                            window = [r.question for _, r in islice(queue, EMBED_WINDOW)]
                            vectors.extend(
                                embed_questions(embedder, window) if embeds else [(None, 0.0)] * len(window)
                            )
                        position, record = queue.popleft()
                        vector, embed_ms = vectors.popleft()
                        pending.add(pool.submit(self._run_one, run, plan, position, record, vector, embed_ms))
                    if not pending:
                        break
                    completed, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in completed:
                        saver.add(*future.result())  # a failure propagates: results must not be lost silently
                    saver.flush(when_due=True)
                    if cancel and cancel.is_set() and queue:
                        status = "cancelled"
                saver.flush()
        except BaseException as exc:
            with contextlib.suppress(Exception):  # keep what finished, unless the store is what failed
                saver.flush()
            self.deps.runs.update_run(run.run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        summary = summarize(run, self.deps.runs.results(run.run_id), plan)
        self.deps.runs.update_run(run.run_id, status=status, summary=summary)
        return self.deps.runs.get_run(run.run_id)

    def _run_one(
        self,
        run: RunRow,
        plan: EvalPlan,
        position: int,
        record: EvalRecord,
        vector: list[float] | None = None,
        embed_ms: float = 0.0,
    ) -> tuple[EvalRecord, int, dict[str, Any]]:
        result = self.evaluate_query(plan, record, run.collection, vector=vector, embed_ms=embed_ms)
        result["position"] = position
        return record, position, result

    def evaluate_query(
        self,
        plan: EvalPlan,
        record: EvalRecord,
        collection: str,
        *,
        vector: Sequence[float] | None = None,
        embed_ms: float = 0.0,
    ) -> dict[str, Any]:
        """One query's result (see ``ragdeck.console.evaluation.report`` for the fields); errors are
        recorded in the result's ``error`` rather than raised, so one bad query does not stop a run.
        ``vector``: the question's embedding made beforehand (with ``embed_ms``, its share of the batch's
        time, recorded as the embed timing); None embeds it here."""
        qrels = qrels_of(record)
        result: dict[str, Any] = {
            "query_id": record.id,
            "question": record.question,
            "reference_answer": record.reference_answer,
            "gold": qrels,
            "error": None,
            "level": None,
            "retrieved": [],
            "retrieved_docs": [],
            "depth": None,
            "reranker": None,
            "metrics": {},
            "timings_ms": {},
            "answer": None,
            "judge": None,
        }
        started = time.perf_counter()
        stage = "retrieval"
        try:
            policy = plan.policy
            params = policy.retrieval_params()
            searched: list[SearchResult] = []

            def search_at(depth: int) -> list[RetrievedChunk]:
                searched.append(
                    self.deps.retriever.search(
                        record.question, collection, params.at_depth(depth), vector=vector
                    )
                )
                return searched[-1].hits

            hits, depth = retrieve_to_depth(
                search_at, lambda h: doc_of(h.chunk_id), chunk_depth=plan.depth, documents=max(plan.ks)
            )
            search = searched[-1]
            ranking = [h.chunk_id for h in hits]
            result["depth"] = depth.to_json()
            result["reranker"] = search.reranker
            result["retrieved"] = [
                {
                    "chunk_id": h.chunk_id,
                    "doc_id": h.doc_id or doc_of(h.chunk_id),
                    "score": h.score,
                    "vector_score": h.vector_score,
                    "rerank_score": h.rerank_score,
                    "dense_rank": h.dense_rank,
                    "lexical_rank": h.lexical_rank,
                    "fused_score": h.fused_score,
                }
                for h in hits
            ]
            result["retrieved_docs"] = document_ranking(ranking)
            result["level"], result["metrics"] = score_query(ranking, qrels, plan)
            timings = {k: search.timings_ms[k] for k in ("embed", "search", "rerank")}
            if vector is not None:
                timings["embed"] = embed_ms
            if plan.answers:
                stage = "generation"
                t0 = time.perf_counter()
                answer = answer_question(
                    record.question,
                    hits[: policy.top_n],
                    self.deps.chat_model,
                    system_prompt=policy.system_prompt or DEFAULT_SYSTEM_PROMPT,
                    max_tokens=policy.max_tokens,
                    max_context_chars=self.deps.max_context_chars,
                )
                timings["generation"] = (time.perf_counter() - t0) * 1000
                result["answer"] = {
                    "text": answer.text,
                    "mode": answer.mode,
                    "model": answer.model,
                    "no_answer": answer.no_answer,
                    "citations": [c.chunk_id for c in answer.citations],
                    "prompt_tokens": answer.prompt_tokens,
                    "completion_tokens": answer.completion_tokens,
                }
                if record.reference_answer.strip():
                    result["metrics"]["exact_match"] = exact_match(answer.text, record.reference_answer)
                    result["metrics"]["token_f1"] = token_f1(answer.text, record.reference_answer)
                if self.deps.judge is not None:
                    stage = "judge"
                    t0 = time.perf_counter()
                    result["judge"] = self._judge(
                        record, answer.text, [c.text for c in answer.contexts], collection
                    )
                    timings["judge"] = (time.perf_counter() - t0) * 1000
                    for name, value in result["judge"]["scores"].items():
                        if value is not None:
                            result["metrics"][name] = float(value)
            timings["total"] = (time.perf_counter() - started) * 1000 + (
                embed_ms if vector is not None else 0.0
            )
            result["timings_ms"] = timings
        except Exception as exc:  # recorded per query: the run goes on, the page lists it as failed
            result["error"] = f"{stage}: {type(exc).__name__}: {exc}"
            result["timings_ms"]["total"] = (time.perf_counter() - started) * 1000
        return result

    def _judge(self, record: EvalRecord, answer: str, contexts: list[str], collection: str) -> dict[str, Any]:
        assert self.deps.judge is not None
        gold_chunks = [g for g in record.gold_context_ids if is_chunk_id(g)]
        points = self.deps.retriever.store.retrieve(collection, gold_chunks) if gold_chunks else []
        reference_contexts = [str(p.payload.get("text", "")) for p in points]
        verdict = self.deps.judge.judge(
            record.question, answer, contexts, record.reference_answer, reference_contexts
        )
        return {
            "mode": verdict.mode,
            "scores": dict(verdict.scores),
            "claims": [
                {"statement": c.statement, "verdict": c.verdict, "reason": c.reason} for c in verdict.claims
            ],
            "errors": dict(verdict.errors),
        }
