"""Document-level evaluation as IR means it, and gold the collection lacks, on the real demo collection.

The demo collection holds many chunks per document, so k chunks and k documents differ: a run's ``doc_``
metrics must equal ranx on the deduplicated document ranking cut at k documents (k = 1, 10, 100), its
chunk metrics ranx on the chunk ranking cut at k chunks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_metrics import ranx_scores

from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, EvalSetProblems, doc_id_of
from ragdeck.console.evaluation.depth import DEPTH_FACTOR, retrieve_to_depth
from ragdeck.console.evaluation.metric_names import RETRIEVAL_METRICS, metric_names
from ragdeck.console.evaluation.metrics import document_qrels, document_ranking
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.report import markdown_summary
from ragdeck.console.evaluation.runner import EvalDeps, EvalRunner
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.console.retrieval.policies import Policy
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"
KS = (1, 10, 100)
TOL = 1e-9


@pytest.fixture
def demo_store(demo_data_dir: Path):
    with EmbeddedQdrantStore(demo_data_dir / "qdrant") as store:
        yield store


def runner_for(store, embedder, data_dir: Path) -> EvalRunner:
    return EvalRunner(EvalDeps(Retriever(store, embedder), EvalStore(data_dir / "state.sqlite3")))


def document_set(size: int = 12) -> EvalSet:
    """The demo questions with graded document-level gold: the first gold chunk's document grade 2, the
    other gold documents grade 1."""
    records = []
    for record in read_jsonl(DEMO_GOLD).records[:size]:
        docs = list(dict.fromkeys(map(doc_id_of, record.gold_context_ids)))
        grades = {doc: 2 if i == 0 else 1 for i, doc in enumerate(docs)}
        records.append(EvalRecord(record.id, record.question, docs, relevance=grades))
    return EvalSet("demo-docs", records)


def run(runner: EvalRunner, evalset: EvalSet, **plan):
    row, prepared = runner.start(evalset, EvalPlan(Policy("A", rerank=False), **plan))
    row = runner.execute(row, prepared)
    return row, runner.deps.runs.results(row.run_id)


def test_document_gold_is_scored_at_k_documents_equal_to_ranx(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    evalset = document_set()
    row, results = run(runner, evalset, ks=KS)
    assert row.status == "done" and row.summary["failed"] == 0
    assert row.config["scoring"]["levels"] == {"document": len(evalset.records)}
    assert row.config["scoring"]["retrieval"] == "dense" and row.config["scoring"]["documents_wanted"] == 100
    chunk_rankings = [[h["chunk_id"] for h in r["retrieved"]] for r in results]
    doc_rankings = [document_ranking(c) for c in chunk_rankings]
    qrels = [document_qrels(r["gold"]) for r in results]
    # The demo corpus has fewer than 100 documents: k = 100 takes every one of them, and says it could not
    # fill 100 (k = 10 fills).
    documents = len({doc_id_of(p.id) for p in demo_store.iter_points("rag_chunks_v1")})
    assert 10 < documents < 100
    for r, docs, chunks in zip(results, doc_rankings, chunk_rankings, strict=True):
        assert r["level"] == "document"
        assert not any(name in r["metrics"] for name in metric_names(KS))  # names say their level
        assert len(docs) == documents and r["retrieved_docs"] == docs
        assert not r["depth"]["filled"] and r["depth"]["why"] == "exhausted"
        assert r["depth"]["documents_scored"] == documents and r["depth"]["chunks_scored"] == len(chunks)
        assert r["depth"]["searches"] >= 2  # 200 chunks never hold every document of the demo corpus
    # The trap: the first 100 chunks hold fewer than 100 documents, so @100 over chunks differs.
    assert all(len(document_ranking(c[:100])) < 100 for c in chunk_rankings)
    names = [f"{m}@{k}" for m in RETRIEVAL_METRICS for k in KS]
    theirs = ranx_scores([d[:100] for d in doc_rankings], qrels, names)
    for name in names:
        ours = np.array([r["metrics"][f"doc_{name}"] for r in results])
        np.testing.assert_allclose(ours, theirs[name], rtol=0, atol=TOL, err_msg=name)
    # At k = 10 too, 10 chunks hold fewer than 10 documents: the documents scored come from deeper.
    assert any(len(document_ranking(c[:10])) < 10 for c in chunk_rankings)
    text = markdown_summary(row)
    assert "document metrics (doc_) count k documents" in text and "could not fill 100 documents" in text
    assert "| doc_recall | documents |" in text and "@1 | @10 | @100" in text  # every k, not only 100
    assert "reranker: off" in text


def test_chunk_gold_keeps_chunk_cut_offs_equal_to_ranx(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    evalset = EvalSet("demo-chunks", read_jsonl(DEMO_GOLD).records[:10])
    row, results = run(runner, evalset, ks=KS)
    chunk_rankings = [[h["chunk_id"] for h in r["retrieved"]] for r in results]
    gold = [r["gold"] for r in results]
    names = [f"{m}@{k}" for m in RETRIEVAL_METRICS for k in KS]
    chunks = ranx_scores(chunk_rankings, gold, names)
    docs = ranx_scores(
        [document_ranking(c) for c in chunk_rankings], [document_qrels(g) for g in gold], names
    )
    for name in names:
        np.testing.assert_allclose(
            [r["metrics"][name] for r in results], chunks[name], rtol=0, atol=TOL, err_msg=name
        )
        np.testing.assert_allclose(
            [r["metrics"][f"doc_{name}"] for r in results], docs[name], rtol=0, atol=TOL, err_msg=name
        )
    assert all(r["level"] == "chunk" and len(c) >= 100 for r, c in zip(results, chunk_rankings, strict=True))
    assert "chunk metrics count k chunks" in markdown_summary(row)


def test_a_query_that_cannot_fill_k_documents_says_so(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    documents = len({doc_id_of(p.id) for p in demo_store.iter_points("rag_chunks_v1")})
    row, results = run(runner, document_set(2), ks=(1, documents + 5))
    for r in results:
        assert not r["depth"]["filled"] and r["depth"]["why"] == "exhausted"
        assert r["depth"]["documents"] == documents and len(r["retrieved_docs"]) == documents
    assert set(row.summary["depth"]["not_filled"]) == {r["query_id"] for r in results}
    assert f"2 queries could not fill {documents + 5} documents" in markdown_summary(row)


def test_the_depth_doubles_until_k_documents_and_keeps_what_the_cut_offs_read() -> None:
    pool = [f"d{i // 4}#s:{i % 4}" for i in range(400)]  # 100 documents of 4 chunks each
    asked: list[int] = []

    def search(n: int) -> list[str]:
        asked.append(n)
        return pool[:n]

    hits, depth = retrieve_to_depth(search, doc_id_of, chunk_depth=10, documents=30)
    assert asked == [DEPTH_FACTOR * 30, DEPTH_FACTOR * 60]  # 60 chunks: 15 documents; 120: 30
    assert len(hits) == 117 and depth.documents_scored == 30 and depth.filled  # through d29's first chunk
    hits, depth = retrieve_to_depth(search, doc_id_of, chunk_depth=10, documents=150)
    assert not depth.filled and depth.why == "exhausted" and depth.documents == 100 and len(hits) == 400


def test_missing_gold_fail_names_the_flag_and_lists_the_ids(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    good = document_set(3).records
    lacking = EvalRecord(
        "q-x", "What does the retention flag do?", [good[0].gold_context_ids[0], "no-such-doc"]
    )
    evalset = EvalSet("with-missing", [*good, lacking])
    with pytest.raises(EvalSetProblems) as caught:
        runner.start(evalset, EvalPlan(Policy("A", rerank=False)))
    text = str(caught.value)
    assert "1 of " in text and "(in 1 queries)" in text and "'no-such-doc'" in text
    assert "--missing-gold skip" in text and "--missing-gold keep" in text
    assert runner.deps.runs.list_runs() == []


def test_missing_gold_skip_drops_ids_and_excludes_empty_queries(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    good = document_set(3).records
    partly = EvalRecord(
        "q-part", "How long does Prometheus keep data?", [good[0].gold_context_ids[0], "gone"]
    )
    empty = EvalRecord("q-empty", "A question about nothing here?", ["gone-too"])
    row, results = run(runner, EvalSet("skip", [*good, partly, empty]), ks=(1, 10), missing_gold="skip")
    assert row.total == 4 and [r["query_id"] for r in results][-1] == "q-part"
    assert results[-1]["gold"] == {good[0].gold_context_ids[0]: 1}
    missing = row.config["missing"]
    assert missing["choice"] == "skip" and missing["default"] == "fail" and missing["missing"] == 2
    assert missing["queries"] == {"q-part": ["gone"], "q-empty": ["gone-too"]}
    assert missing["excluded_queries"] == ["q-empty"]
    assert row.config["missing_gold"] == "skip"
    assert any("q-empty" in note and "excluded" in note for note in row.config["notes"])


def test_missing_gold_keep_counts_in_the_denominator(demo_store, local_embedder, demo_data_dir):
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    (good,) = document_set(1).records
    kept = EvalRecord(
        good.id, good.question, [*good.gold_context_ids, "never-there"], relevance=good.relevance
    )
    _, (base,) = run(runner, EvalSet("base", [good]), ks=(10,))
    row, (result,) = run(runner, EvalSet("keep", [kept]), ks=(10,), missing_gold="keep")
    assert row.config["missing"]["queries"] == {good.id: ["never-there"]}
    relevant = len(good.gold_context_ids)
    found = base["metrics"]["doc_recall@10"] * relevant
    assert result["metrics"]["doc_recall@10"] == pytest.approx(found / (relevant + 1))
    assert "kept as never retrievable" in markdown_summary(row)


@pytest.mark.parametrize("level", ["document", "chunk"])
def test_the_hnsw_sweeps_gold_recall_is_the_evals_recall(demo_store, local_embedder, demo_data_dir, level):
    """One recall definition: the sweep's recall against gold at the live index equals the eval run's mean
    of the same metric (the demo collection is searched exactly at any ef: under its full-scan threshold)."""
    from ragdeck.console import hnsw

    evalset = document_set(6) if level == "document" else EvalSet("c", read_jsonl(DEMO_GOLD).records[:6])
    runner = runner_for(demo_store, local_embedder, demo_data_dir)
    row, _ = run(runner, evalset, ks=(10,))
    queries = hnsw.eval_queries(evalset, local_embedder, demo_store, "rag_chunks")
    live = demo_store.collection_info("rag_chunks_v1").hnsw
    result = hnsw.run_sweep(
        demo_store, "rag_chunks", queries, ms=[live.m], ef_constructs=[live.ef_construct], efs=[64], k=10
    )
    name = "doc_recall@10" if level == "document" else "recall@10"
    assert result.gold_metric == name and result.to_json()["gold_metric"] == name
    assert result.gold_label == f"gold {name} (k {'documents' if level == 'document' else 'chunks'})"
    (measured,) = result.rows
    assert measured.recall_gold == pytest.approx(row.summary["metrics"][name]["mean"], abs=1e-12)
    assert name in result.recommendation.sentence
