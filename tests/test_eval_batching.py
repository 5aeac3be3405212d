"""The eval runner embeds questions in batches and commits results in batches: the results are those of
a one-by-one run, and a run interrupted between commits resumes from what was committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from index_helpers import small_corpus

from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evaluation import batching, saving
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> tuple[Path, EvalSet]:
    """A small collection this test builds, and 40 questions on it: words of its chunks."""
    root = tmp_path_factory.mktemp("batching")
    with EmbeddedQdrantStore(root / "qdrant") as store:
        ingest(
            small_corpus(root / "corpus"),
            store,
            local_embedder,
            collection="small_v1",
            alias="small",
            chunking=ChunkingConfig(min_chars=150, max_chars=400, overlap=0.1),
        )
        records: list[EvalRecord] = []
        asked: set[str] = set()
        for point in store.iter_points("small"):
            words = str(point.payload.get("body") or point.payload.get("text", "")).split()
            for start in (0, 8):  # two questions per chunk: its opening words, and the words after them
                question = " ".join(words[start : start + 10])
                key = "".join(c for c in question.casefold() if c.isalnum())
                if len(words) >= start + 6 and key not in asked:
                    asked.add(key)
                    records.append(EvalRecord(f"q{len(records)}", question, [point.id]))
    assert len(records) >= 40
    return root, EvalSet("batching", records[:40])


def _run(root: Path, embedder: Any, evalset: EvalSet, retrieval: str, db: str, **run: Any) -> EvalRunner:
    store = EmbeddedQdrantStore(root / "qdrant")
    runner = EvalRunner(EvalDeps(Retriever(store, embedder), EvalStore(root / db)))
    plan = EvalPlan(Policy("p", alias="small", top_n=10, rerank=False, retrieval=retrieval), **run)
    row, prepared = runner.start(evalset, plan)
    row = runner.execute(row, prepared)
    assert row.status == "done" and row.summary["failed"] == 0
    runner.last_run = row  # type: ignore[attr-defined]
    return runner


def _per_query(runner: EvalRunner) -> dict[str, tuple[dict[str, float], list[Any]]]:
    results = runner.deps.runs.results(runner.last_run.run_id)  # type: ignore[attr-defined]
    keep = ("chunk_id", "dense_rank", "lexical_rank", "fused_score", "vector_score")
    return {
        r["query_id"]: (r["metrics"], [tuple(h[k] for k in keep) for h in r["retrieved"]]) for r in results
    }


@pytest.mark.parametrize("retrieval", ["dense", "hybrid"])
def test_batched_run_gives_the_results_of_a_one_by_one_run(
    built, local_embedder, monkeypatch: pytest.MonkeyPatch, retrieval: str
) -> None:
    root, evalset = built
    batched = _per_query(_run(root, local_embedder, evalset, retrieval, f"batched-{retrieval}.sqlite3"))

    monkeypatch.setattr(batching, "EMBED_BATCH", 1)  # each question embedded on its own ...
    monkeypatch.setattr(saving, "SAVE_EVERY", 1)  # ... and each result committed on its own, as before
    single = _per_query(  # one query at a time in the calling thread (the batched run used 4 threads)
        _run(root, local_embedder, evalset, retrieval, f"single-{retrieval}.sqlite3", concurrency=1)
    )
    assert list(batched) == list(single) == [r.id for r in evalset.records]
    for query_id, (metrics, ranking) in single.items():
        assert batched[query_id][0] == pytest.approx(metrics, abs=1e-9), query_id
        assert [h[:3] for h in batched[query_id][1]] == [h[:3] for h in ranking], query_id
        for got, want in zip(batched[query_id][1], ranking, strict=True):  # fused and vector scores
            assert [x is None for x in got[3:]] == [x is None for x in want[3:]]
            assert [x for x in got[3:] if x is not None] == pytest.approx(
                [x for x in want[3:] if x is not None], abs=1e-5
            )


class _Interrupted(Exception):
    pass


class _StopsAfter(EvalStore):
    """The real store, but the process "dies" (raises) on the commit after ``commits`` commits."""

    def __init__(self, path: Path, commits: int) -> None:
        super().__init__(path)
        self.commits = commits

    def save_results(self, run_id: str, results: Any) -> None:
        if self.commits == 0:
            raise _Interrupted("killed between commits")
        self.commits -= 1
        super().save_results(run_id, results)


def test_a_run_interrupted_between_batched_commits_resumes_from_what_was_committed(
    built, local_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, evalset = built
    monkeypatch.setattr(saving, "SAVE_WITHIN_S", 3600.0)  # commits by count only: no clock in the test
    db = root / "interrupted.sqlite3"
    runs = _StopsAfter(db, commits=1)
    store = EmbeddedQdrantStore(root / "qdrant")
    runner = EvalRunner(EvalDeps(Retriever(store, local_embedder), runs))
    plan = EvalPlan(Policy("p", alias="small", top_n=10, rerank=False), concurrency=2)
    row, prepared = runner.start(evalset, plan)
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:  # what it reports is what is committed
        with sqlite3.connect(db) as con:
            committed = con.execute("SELECT COUNT(*) FROM eval_results").fetchone()[0]
        seen.append((done, total, committed))

    with pytest.raises(_Interrupted):
        runner.execute(row, prepared, progress=progress)
    assert all(done == committed for done, _, committed in seen)
    first = runs.finished_ids(row.run_id)
    # One batch committed (commits wait for SAVE_EVERY results; up to concurrency - 1 more may finish with
    # the last of them); the rest was lost with the "process".
    assert saving.SAVE_EVERY <= len(first) < saving.SAVE_EVERY + plan.concurrency
    assert runs.get_run(row.run_id).status == "failed"
    with sqlite3.connect(db) as con:
        saved_at = dict(con.execute("SELECT query_id, saved_at FROM eval_results").fetchall())

    runs.commits = 100
    seen.clear()
    done = runner.execute(row, runner.resume_set(row, evalset), progress=progress)
    assert done.status == "done" and done.summary["finished"] == 40
    assert seen[0][0] == len(first) and seen[-1][:2] == (40, 40)
    assert all(d == c for d, _, c in seen)
    with sqlite3.connect(db) as con:
        after = dict(con.execute("SELECT query_id, saved_at FROM eval_results").fetchall())
    assert {q: after[q] for q in first} == {q: saved_at[q] for q in first}  # not redone
    whole = _per_query(_run(root, local_embedder, evalset, "dense", "whole.sqlite3"))
    runner.last_run = done  # type: ignore[attr-defined]
    resumed = _per_query(runner)
    assert {q: m for q, (m, _) in resumed.items()} == {q: m for q, (m, _) in whole.items()}
