"""The retrieval pipeline on the real engine and model, with and without a (TEI-protocol) reranker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tei_fake import FakeTei, rerank_score, run_fake_tei

from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_stack
from ragdeck.errors import DimensionMismatch, InputError
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.rerankers import TeiReranker
from ragdeck.services.types import HnswConfig

TOPICS = {
    "alerting": "Alertmanager deduplicates, groups and routes alerts to receivers such as PagerDuty.",
    "storage": "The local time series database keeps two-hour blocks on disk and compacts them.",
    "scraping": "Prometheus scrapes targets over HTTP at a configured interval and stores samples.",
    "promql": "PromQL selects time series by metric name and labels and aggregates them with rate.",
    "federation": "Federation lets one Prometheus server scrape selected series from another server.",
    "tei": "Text Embeddings Inference serves embedding and reranking models over an HTTP API with batching.",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, sentence in TOPICS.items():
        (root / f"{name}.md").write_text(f"# {name.title()}\n\n" + (sentence + " ") * 3)
    return root


@pytest.fixture
def store(tmp_path: Path, corpus: Path, local_embedder) -> Iterator[EmbeddedQdrantStore]:
    with EmbeddedQdrantStore(tmp_path / "qdrant") as s:
        ingest(corpus, s, local_embedder, collection="topics_v1", alias="topics")
        yield s


@pytest.fixture(scope="module")
def tei_reranker(local_embedder) -> Iterator[FakeTei]:
    with run_fake_tei(local_embedder, model_type="reranker") as fake:
        yield fake


def test_pipeline_without_reranker_keeps_vector_order(store, local_embedder) -> None:
    result = Retriever(store, local_embedder).search(
        "where are alerts routed?", "topics", RetrievalParams(top_n=3)
    )
    assert result.collection == "topics_v1" and result.reranker is None
    assert [h.rank for h in result.hits] == [1, 2, 3]
    assert result.hits[0].doc_id == "alerting"
    raw = store.search("topics_v1", local_embedder.embed_query("where are alerts routed?").tolist(), 3)
    assert [h.chunk_id for h in result.hits] == [h.id for h in raw]
    assert all(h.rerank_score is None and h.score == h.vector_score for h in result.hits)
    t = result.timings_ms
    assert t["rerank"] == 0.0 and t["embed"] > 0 and t["search"] > 0
    assert t["total"] >= t["embed"] + t["search"]
    assert result.hits[0].title == "Alerting" and result.hits[0].body in result.hits[0].text


def test_pipeline_reranks_top_k_to_top_n(store, local_embedder, tei_reranker: FakeTei) -> None:
    reranker = TeiReranker(tei_reranker.url, timeout_s=10)
    retriever = Retriever(store, local_embedder, reranker)
    query = "how does Prometheus collect metrics from targets"
    result = retriever.search(query, "topics", RetrievalParams(top_k=6, top_n=2))
    assert len(result.hits) == 2 and result.reranker == reranker.model_name
    q = local_embedder.embed_query(query)
    for hit in result.hits:
        expected = rerank_score(float(q @ local_embedder.embed_documents([hit.text])[0]))
        assert hit.rerank_score == pytest.approx(expected, abs=1e-5)
        assert hit.score == hit.rerank_score
    assert result.hits[0].score >= result.hits[1].score
    assert result.hits[0].doc_id == "scraping"
    assert result.timings_ms["rerank"] > 0
    plain = retriever.search(query, "topics", RetrievalParams(top_k=6, top_n=2, rerank=False))
    assert plain.reranker is None and all(h.rerank_score is None for h in plain.hits)


def test_exact_search_and_filter(store, local_embedder) -> None:
    retriever = Retriever(store, local_embedder)
    exact = retriever.search("embedding server", "topics", RetrievalParams(top_n=2, exact=True))
    approx = retriever.search("embedding server", "topics", RetrievalParams(top_n=2, hnsw_ef=64))
    assert [h.chunk_id for h in exact.hits] == [h.chunk_id for h in approx.hits]
    only = retriever.search("anything", "topics", RetrievalParams(payload_filter={"doc_id": "federation"}))
    assert {h.doc_id for h in only.hits} == {"federation"}


def test_dimension_mismatch_and_empty_question(store, local_embedder) -> None:
    store.create_collection("wide", 768, HnswConfig())
    retriever = Retriever(store, local_embedder)
    with pytest.raises(DimensionMismatch, match=r"768-d.*384-d"):
        retriever.search("q", "wide")
    with pytest.raises(InputError, match="empty"):
        retriever.search("   ", "topics")
    with pytest.raises(InputError):
        RetrievalParams(top_k=0)


def test_server_mode_wiring_drives_tei_end_to_end(
    data_dir: Path, corpus: Path, local_embedder, monkeypatch
) -> None:
    """TEI_URL and TEI_RERANK_URL switch the same console code to the TEI protocol."""
    with (
        run_fake_tei(local_embedder) as embed_server,
        run_fake_tei(local_embedder, model_type="reranker") as rr,
    ):
        monkeypatch.setenv("TEI_URL", embed_server.url)
        monkeypatch.setenv("TEI_RERANK_URL", rr.url)
        stack = build_stack(Settings())
        try:
            assert stack.embedder.mode == "server" and stack.reranker is not None
            health = {h.component: h for h in stack.health()}
            assert all(h.ok for h in health.values())
            assert (health["embedder"].mode, health["reranker"].mode, health["llm"].mode) == (
                "server",
                "server",
                "none",
            )
            ingest(corpus, stack.store, stack.embedder, collection="t_v1", alias="t")
            result = Retriever(stack.store, stack.embedder, stack.reranker).search(
                "federating Prometheus servers", "t", RetrievalParams(top_k=6, top_n=3)
            )
            assert result.hits[0].doc_id == "federation" and result.reranker
            assert embed_server.state.requests["/embed"] >= 2 and rr.state.requests["/rerank"] == 1
        finally:
            stack.close()
