"""Ingestion end to end on the real engine and model, and what bad input does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.ingest.pipeline import ingest, next_version_name
from ragdeck.errors import CollectionExists, DimensionMismatch, InputError
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig


@pytest.fixture
def store(tmp_path: Path):
    with EmbeddedQdrantStore(tmp_path / "qdrant") as s:
        yield s


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_demo_corpus_end_to_end(demo_snapshot: Path, local_embedder) -> None:
    with EmbeddedQdrantStore(demo_snapshot / "qdrant") as store:
        assert store.list_aliases() == {"rag_chunks": "rag_chunks_v1"}
        info = store.collection_info("rag_chunks")
        assert info.name == "rag_chunks_v1"
        assert info.dimension == local_embedder.dimension == 384
        assert info.points > 1000  # 114 documents, 1.8 MB of text
        assert info.indexed_vectors == info.points
        hits = store.search(
            "rag_chunks", local_embedder.embed_query("What is a histogram bucket?").tolist(), 5
        )
        assert len(hits) == 5
        payload = hits[0].payload
        for key in ("chunk_id", "doc_id", "title", "section", "text", "body", "start", "end"):
            assert key in payload
        source = DEMO_CORPUS / f"{payload['doc_id']}.md"
        assert source.exists()


def test_ingest_folder_sets_alias_and_is_searchable(tmp_path: Path, store, local_embedder) -> None:
    corpus = tmp_path / "corpus"
    write(
        corpus / "alerts.md", "# Alerting\n\n" + "Alertmanager groups and routes alerts to receivers. " * 40
    )
    write(corpus / "tsdb.md", "# Storage\n\n" + "The TSDB writes samples into two-hour blocks on disk. " * 40)
    report = ingest(
        corpus, store, local_embedder, collection="docs_v1", alias="docs",
        chunking=ChunkingConfig(min_chars=300, max_chars=800), hnsw=HnswConfig(m=8, ef_construct=64),
    )  # fmt: skip
    assert report.documents == 2 and report.chunks >= 4
    assert store.resolve("docs") == "docs_v1"
    info = store.collection_info("docs_v1")
    assert info.points == report.chunks and info.hnsw.m == 8
    top = store.search("docs", local_embedder.embed_query("how are alerts routed").tolist(), 1)[0]
    assert top.payload["doc_id"] == "alerts"


def test_ingest_redacts_before_indexing(tmp_path: Path, store, local_embedder) -> None:
    corpus = write(
        tmp_path / "note.md",
        "# Contact\n\nMail ops.lead@example.org or use key sk-abcdefghijklmnopqrstuvwx1234.\n",
    )
    report = ingest(corpus, store, local_embedder, collection="notes")
    assert report.redactions.get("EMAIL") == 1
    texts = " ".join(p.payload["text"] for p in store.iter_points("notes"))
    assert "ops.lead@example.org" not in texts and "sk-abcdefghijklmnop" not in texts


def test_ingest_beir_jsonl(tmp_path: Path, store, local_embedder) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": f"d{i}", "title": f"Doc {i}", "text": f"Document number {i} talks about topic {i}."}
        for i in range(5)
    ]
    corpus.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = ingest(corpus, store, local_embedder, collection="beir")
    assert report.documents == 5
    assert {p.payload["doc_id"] for p in store.iter_points("beir")} == {f"d{i}" for i in range(5)}


def test_existing_collection_is_refused_unless_append(tmp_path: Path, store, local_embedder) -> None:
    doc = write(tmp_path / "a.md", "# A\n\nSome text about scraping targets.\n")
    ingest(doc, store, local_embedder, collection="c")
    with pytest.raises(CollectionExists, match="--append"):
        ingest(doc, store, local_embedder, collection="c")
    more = write(tmp_path / "b.md", "# B\n\nOther text about recording rules.\n")
    report = ingest(more, store, local_embedder, collection="c", append=True)
    assert report.appended and store.collection_info("c").points == 2


def test_append_with_wrong_dimension_is_refused(tmp_path: Path, store, local_embedder) -> None:
    store.create_collection("wide", 768, HnswConfig())
    doc = write(tmp_path / "a.md", "# A\n\ntext\n")
    with pytest.raises(DimensionMismatch, match="768"):
        ingest(doc, store, local_embedder, collection="wide", append=True)


def test_bad_jsonl_line_names_line_and_leaves_nothing(tmp_path: Path, store, local_embedder) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n["not", "an", "object"]\n')
    with pytest.raises(InputError, match="line 2"):
        ingest(corpus, store, local_embedder, collection="bad", alias="bad_alias")
    assert store.list_collections() == [] and store.list_aliases() == {}


def test_empty_corpus_is_refused(tmp_path: Path, store, local_embedder) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no documents"):
        ingest(tmp_path / "empty", store, local_embedder, collection="e")
    assert store.list_collections() == []


def test_failure_mid_ingest_removes_the_new_collection(tmp_path: Path, store, local_embedder) -> None:
    doc = write(tmp_path / "a.md", "# A\n\n" + "Text about exporters and service discovery. " * 200)

    class Exploding:
        dimension = local_embedder.dimension
        model_name = "exploding"
        mode = "local"
        calls = 0

        def embed_documents(self, texts):
            Exploding.calls += 1
            if Exploding.calls == 2:
                raise RuntimeError("embedder died")
            return local_embedder.embed_documents(texts)

    with pytest.raises(RuntimeError, match="embedder died"):
        ingest(doc, store, Exploding(), collection="half", alias="live", batch_size=2)
    assert not store.collection_exists("half")
    assert store.list_aliases() == {}


@pytest.mark.parametrize(
    ("collection", "alias", "hnsw", "needle"),
    [
        ("docs_v2", "bad alias!", None, "invalid alias name 'bad alias!'"),
        ("docs_v2", "docs_v2", None, "'docs_v2' is a collection, so it cannot also be an alias"),
        ("docs_v2", "docs_v1", None, "'docs_v1' is a collection, so it cannot also be an alias"),
        ("../up", None, None, "invalid collection name '../up'"),
        ("docs_v2", None, HnswConfig(m=8, ef_construct=2), "invalid HNSW settings"),
    ],
)
def test_cheap_checks_come_before_reading_and_embedding(
    tmp_path: Path, store, local_embedder, collection: str, alias: str | None, hnsw, needle: str
) -> None:
    store.create_collection("docs_v1", local_embedder.dimension, HnswConfig())
    doc = write(tmp_path / "a.md", "# A\n\nSome text about scraping targets.\n")
    embedded: list[int] = []
    stages: list[str] = []

    class Counting:  # the packaged model, counting what it is asked to embed
        dimension, model_name, mode = local_embedder.dimension, local_embedder.model_name, "local"

        def embed_documents(self, texts):
            embedded.append(len(texts))
            return local_embedder.embed_documents(texts)

    with pytest.raises(InputError, match=needle):
        ingest(
            doc, store, Counting(), collection=collection, alias=alias, hnsw=hnsw,
            progress=lambda stage, done, total: stages.append(stage),
        )  # fmt: skip
    assert embedded == [] and stages == []  # refused before any document was read, chunked or embedded
    assert [c.name for c in store.list_collections()] == ["docs_v1"] and store.list_aliases() == {}


def test_next_version_name(store) -> None:
    assert next_version_name(store, "rag_chunks") == "rag_chunks_v1"
    store.create_collection("rag_chunks_v1", 4, HnswConfig())
    assert next_version_name(store, "rag_chunks") == "rag_chunks_v2"
