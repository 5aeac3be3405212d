"""The eval runner on the real demo collection: metrics, answers, unknown gold, cancel and resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ragdeck.console.evalsets.io import read_jsonl, write_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, EvalSetProblems
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import ClaimVerdict, JudgeResult

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


@pytest.fixture
def demo_store(demo_data_dir: Path):
    with EmbeddedQdrantStore(demo_data_dir / "qdrant") as store:
        yield store


def runner_for(store, embedder, data_dir: Path, **deps) -> EvalRunner:
    return EvalRunner(EvalDeps(Retriever(store, embedder), EvalStore(data_dir / "state.sqlite3"), **deps))


def test_retrieval_run_over_the_demo_gold_set(demo_store, local_embedder, demo_data_dir: Path) -> None:
    evalset = read_jsonl(DEMO_GOLD)
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    plan = EvalPlan(Policy("A", alias="rag_chunks", top_n=10, rerank=False), ks=(1, 5, 10))
    run, prepared = runner.start(evalset, plan)
    seen: list[tuple[int, int]] = []
    run = runner.execute(run, prepared, progress=lambda d, t: seen.append((d, t)))

    assert run.status == "done" and run.collection == "rag_chunks_v1"
    assert run.set_hash == evalset.content_hash()
    assert seen[0] == (0, 43) and seen[-1] == (43, 43)
    results = runner.deps.runs.results(run.run_id)
    assert [r["query_id"] for r in results] == [r.id for r in evalset.records]
    for result, record in zip(results, evalset.records, strict=True):
        assert result["error"] is None and result["level"] == "chunk"
        ranked = [h["chunk_id"] for h in result["retrieved"]]
        # deep enough for 10 chunks and for 10 documents (several chunks of one document come back)
        assert len(ranked) >= 10 and len(result["retrieved_docs"]) == 10
        assert result["depth"]["filled"] and result["depth"]["chunks_scored"] == len(ranked)
        gold = set(record.gold_context_ids)
        # metrics agree with a direct reading of the ranking
        assert result["metrics"]["hit_rate@10"] == float(bool(gold & set(ranked[:10])))
        assert result["metrics"]["recall@5"] == pytest.approx(len(gold & set(ranked[:5])) / len(gold))
        first = next((i for i, c in enumerate(ranked) if c in gold), None)
        assert result["metrics"]["mrr@10"] == pytest.approx(
            0.0 if first is None or first >= 10 else 1 / (first + 1)
        )
        docs = result["retrieved_docs"]
        assert len(docs) == len(set(docs)) and docs[0] == result["retrieved"][0]["doc_id"]
        assert set(result["timings_ms"]) == {"embed", "search", "rerank", "total"}
    summary = run.summary
    assert summary["finished"] == 43 and summary["failed"] == 0
    recall = summary["metrics"]["recall@10"]
    assert recall["low"] <= recall["mean"] <= recall["high"]
    expected = sum(r["metrics"]["recall@10"] for r in results) / 43
    assert recall["mean"] == pytest.approx(expected)
    # the demo set's questions were written from their gold chunks: dense retrieval finds most of them
    assert summary["metrics"]["hit_rate@10"]["mean"] > 0.7
    assert summary["metrics"]["doc_hit_rate@10"]["mean"] >= summary["metrics"]["hit_rate@10"]["mean"]
    assert summary["latency_ms"]["total"]["p50"] > 0


def test_unknown_gold_ids_are_reported_before_the_run_starts(
    demo_store, local_embedder, demo_data_dir
) -> None:
    good = read_jsonl(DEMO_GOLD).records[0]
    bad = EvalSet(
        "broken",
        [
            good,
            EvalRecord("q-x", "What is a nonexistent thing?", ["no-such-doc.md#intro:0", "no-such-doc.md"]),
        ],
    )
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    with pytest.raises(EvalSetProblems) as caught:
        runner.start(bad, EvalPlan(Policy("A", rerank=False)))
    text = str(caught.value)
    assert "'no-such-doc.md#intro:0'" in text and "'no-such-doc.md'" in text
    assert runner.deps.runs.list_runs() == []  # nothing was stored


class FakeJudge:
    """A judge double for the runner's plumbing (the real Ragas judge has its own tests)."""

    mode = "llm"
    metric_names = ("faithfulness",)

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, str, int]] = []
        self.lock = threading.Lock()

    def judge(
        self,
        question: str,
        answer: str,
        contexts: Sequence[str],
        reference: str = "",
        reference_contexts: Sequence[str] = (),
    ) -> JudgeResult:
        with self.lock:
            self.calls.append((question, answer, len(contexts), reference, len(reference_contexts)))
        return JudgeResult(
            "llm",
            {"faithfulness": 0.5},
            [ClaimVerdict("a claim", True, "stated in [1]"), ClaimVerdict("another", False, "not stated")],
        )

    def close(self) -> None:
        pass


def test_answers_are_generated_scored_and_judged(demo_store, local_embedder, demo_data_dir) -> None:
    evalset = EvalSet("small", read_jsonl(DEMO_GOLD).records[:4])
    judge = FakeJudge()
    runner = runner_for(demo_store, local_embedder, demo_data_dir, judge=judge)  # extractive answers
    plan = EvalPlan(Policy("A", top_n=3, top_k=40, rerank=False), ks=(1, 3, 10), answers=True, concurrency=2)
    run, prepared = runner.start(evalset, plan)
    run = runner.execute(run, prepared)
    results = runner.deps.runs.results(run.run_id)
    assert len(judge.calls) == 4
    for result in results:
        assert len(result["retrieved"]) >= 10  # deep enough for k=10 ...
        assert result["answer"]["mode"] == "extractive" and result["answer"]["text"]
        assert 0.0 <= result["metrics"]["token_f1"] <= 1.0 and "exact_match" in result["metrics"]
        assert result["metrics"]["faithfulness"] == 0.5
        assert [c["verdict"] for c in result["judge"]["claims"]] == [True, False]
        assert "generation" in result["timings_ms"] and "judge" in result["timings_ms"]
    # ... while the answer saw only the policy's top_n contexts, and the judge got the gold chunk texts
    assert {c[2] for c in judge.calls} <= {1, 2, 3}
    gold_by_question = {r.question: len(r.gold_context_ids) for r in evalset.records}  # any call order
    assert all(c[4] == gold_by_question[c[0]] for c in judge.calls)
    assert run.summary["metrics"]["faithfulness"]["mean"] == 0.5
    assert run.config["judge"] == "llm"


def test_cancel_then_resume_finishes_without_redoing(demo_store, local_embedder, demo_data_dir) -> None:
    evalset = read_jsonl(DEMO_GOLD)
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    run, prepared = runner.start(evalset, EvalPlan(Policy("A", rerank=False), concurrency=2))
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 5:
            cancel.set()

    run = runner.execute(run, prepared, progress=progress, cancel=cancel)
    assert run.status == "cancelled"
    first = runner.deps.runs.finished_ids(run.run_id)
    assert 5 <= len(first) < 43
    saved_at = _saved_at(runner.deps.runs.path, run.run_id)

    run = runner.execute(run, runner.resume_set(run, evalset))
    assert run.status == "done" and run.summary["finished"] == 43
    after = _saved_at(runner.deps.runs.path, run.run_id)
    assert {q: after[q] for q in first} == {q: saved_at[q] for q in first}  # not redone


def test_resume_refuses_another_version_of_the_set(demo_store, local_embedder, demo_data_dir) -> None:
    evalset = EvalSet("s", read_jsonl(DEMO_GOLD).records[:3])
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    run, _ = runner.start(evalset, EvalPlan(Policy("A", rerank=False)))
    changed = EvalSet("s", read_jsonl(DEMO_GOLD).records[:4])
    with pytest.raises(Exception, match="resume it with the same version"):
        runner.resume_set(run, changed)


def _saved_at(path: Path, run_id: str) -> dict[str, float]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT query_id, saved_at FROM eval_results WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())


def _synthetic_set(store, size: int) -> EvalSet:
    """One question per chunk: the chunk's opening words; the chunk is its gold."""
    records: dict[str, EvalRecord] = {}
    for point in store.iter_points("rag_chunks"):
        words = str(point.payload.get("body") or point.payload.get("text", "")).split()[:14]
        question = " ".join(words) + " ?"
        key = question.casefold()
        if len(words) >= 8 and key not in records:
            records[key] = EvalRecord(f"s{len(records)}", question, [point.id])
        if len(records) == size:
            break
    return EvalSet("synthetic", list(records.values()))


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_without_redoing(demo_data_dir: Path, tmp_path: Path) -> None:
    with EmbeddedQdrantStore(demo_data_dir / "qdrant") as store:
        evalset = _synthetic_set(store, 400)
    assert len(evalset.records) == 400
    set_file = tmp_path / "synthetic.jsonl"
    write_jsonl(evalset, set_file)
    env = {**os.environ, "RAGDECK_DATA_DIR": str(demo_data_dir)}
    command = [sys.executable, "-m", "ragdeck.cli", "eval", "--set", str(set_file), "--concurrency", "1"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = demo_data_dir / "ragdeck.sqlite3"
    deadline = time.monotonic() + 180
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            try:
                with sqlite3.connect(state, timeout=1) as db:
                    count = db.execute("SELECT COUNT(*) FROM eval_results").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0  # the table is not there yet
            if count >= 20:
                break
        time.sleep(0.005)
    assert proc.poll() is None, (
        f"the run ended before it could be killed: {proc.stderr.read().decode()[-800:]}"
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    store = EvalStore(state)
    (run,) = store.list_runs()
    assert run.status == "running"  # it never got to say otherwise
    before = _saved_at(state, run.run_id)
    assert 20 <= len(before) < 400

    resumed = subprocess.run(
        [*command[:3], "eval", "--set", str(set_file), "--resume", run.run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Eval run `{run.run_id}` (done)" in resumed.stdout
    after = _saved_at(state, run.run_id)
    assert len(after) == 400
    assert {q: after[q] for q in before} == before  # finished queries were not redone
    assert store.get_run(run.run_id).summary["finished"] == 400


def test_gold_labelled_on_another_chunking_is_mapped_by_span(
    demo_store, local_embedder, demo_data_dir
) -> None:
    """Chunk ids the collection lacks, with spans that lie in its documents: mapped before the run."""
    original = read_jsonl(DEMO_GOLD).records[:5]
    assert all(r.gold_spans for r in original)
    renamed = []
    for n, record in enumerate(original):
        spans = [
            replace(s, chunk_id=f"{s.doc_id}#other-chunking:{n * 10 + i}")
            for i, s in enumerate(record.gold_spans)
        ]
        renamed.append(
            replace(record, gold_context_ids=[s.chunk_id for s in spans], gold_spans=spans, relevance={})
        )
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    run, prepared = runner.start(EvalSet("other", renamed), EvalPlan(Policy("A", rerank=False)))
    assert "mapped onto rag_chunks_v1's chunks by span overlap" in run.config["notes"][0]
    for before, after in zip(original, prepared.records, strict=True):
        assert set(before.gold_context_ids) <= set(after.gold_context_ids)  # the same text, the same chunks
    run = runner.execute(run, prepared)
    assert run.status == "done" and run.summary["failed"] == 0


@pytest.mark.slow
def test_answers_judged_by_ragas_with_the_local_model(
    demo_store, local_embedder, demo_data_dir, llama_server
) -> None:
    """One question end to end with real parts: the local llama.cpp model answers, Ragas judges."""
    from ragdeck.services.judge import RagasJudge
    from ragdeck.services.llm import OpenAIChatModel

    chat = OpenAIChatModel(llama_server.base_url, model=llama_server.model_alias, timeout_s=600.0)
    judge = RagasJudge(
        llama_server.base_url,
        llama_server.model_alias,
        timeout_s=600.0,
        max_tokens=400,
        embed=lambda texts: local_embedder.embed_documents(texts).tolist(),
    )
    evalset = EvalSet("one", read_jsonl(DEMO_GOLD).records[:1])
    runner = runner_for(
        demo_store, local_embedder, demo_data_dir, chat_model=chat, judge=judge, max_context_chars=1500
    )
    plan = EvalPlan(Policy("A", top_n=3, rerank=False, max_tokens=120), answers=True, concurrency=1)
    run, prepared = runner.start(evalset, plan)
    run = runner.execute(run, prepared)
    (result,) = runner.deps.runs.results(run.run_id)
    assert result["error"] is None, result["error"]
    assert result["answer"]["mode"] == "llm" and result["answer"]["completion_tokens"] > 0
    judged = result["judge"]
    assert judged["mode"] == "llm"
    assert set(judged["scores"]) == {"faithfulness", "answer_relevancy", "context_recall"}
    for name, value in judged["scores"].items():  # a value in [0, 1], or the reason it has none
        assert (value is not None and 0.0 <= value <= 1.0) or judged["errors"].get(name), (name, judged)
    assert any(v is not None for v in judged["scores"].values()), judged
    if judged["scores"]["faithfulness"] is not None:
        assert judged["claims"] and all(isinstance(c["verdict"], bool) for c in judged["claims"])
    assert {"generation", "judge"} <= set(result["timings_ms"])
    chat.close()
