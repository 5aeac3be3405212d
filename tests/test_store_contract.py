"""One behavioural contract, run against both vector stores.

``embedded`` is qdrant-edge under a directory; ``server`` is the Qdrant server adapter's code path on
qdrant-client's local mode. Local mode is brute force, so it reports no indexed vectors and keeps its default
HNSW settings: those two facts are the only places the adapters may differ here (``honours_hnsw``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from ragdeck.console.interfaces import VectorStore
from ragdeck.errors import CollectionExists, CollectionNotFound, DimensionMismatch, InputError
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig, VectorPoint

DIM = 16
HNSW = HnswConfig(m=8, ef_construct=32, full_scan_threshold=1)

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "embedded":
        built: VectorStore = EmbeddedQdrantStore(tmp_path / "edge")
    else:
        built = QdrantServerStore(QdrantClient(":memory:"), meta_dir=tmp_path / "meta")
    try:
        yield built
    finally:
        built.close()


def honours_hnsw(store: VectorStore) -> bool:
    """False for qdrant-client's local mode, which ignores HNSW settings (brute force)."""
    return store.capabilities.hnsw


def make_points(n: int, seed: int = 0) -> list[VectorPoint]:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM))
    return [
        VectorPoint(
            id=f"doc{i % 5}#c{i}",
            vector=vectors[i].tolist(),
            payload={"doc_id": f"doc{i % 5}", "ordinal": i, "even": i % 2 == 0, "text": f"chunk {i}"},
        )
        for i in range(n)
    ]


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=float)
    return array / np.linalg.norm(array)


@pytest.fixture
def docs(store: VectorStore) -> list[VectorPoint]:
    points = make_points(120)
    store.create_collection("docs_v1", DIM, HNSW)
    store.upsert("docs_v1", points)
    store.finish_indexing("docs_v1")
    return points


def test_satisfies_the_protocol(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)


def test_points_and_ids(store: VectorStore, docs: list[VectorPoint]) -> None:
    got = store.retrieve("docs_v1", ["doc2#c7", "missing", "doc0#c0", "doc2#c7"], with_vectors=True)
    assert [p.id for p in got] == ["doc2#c7", "doc0#c0"]
    assert got[0].payload == {**docs[7].payload, "chunk_id": "doc2#c7"}
    assert np.allclose(got[0].vector, unit(docs[7].vector), atol=1e-5)  # cosine stores unit vectors
    assert store.retrieve("docs_v1", ["doc0#c0"])[0].vector is None

    listed = list(store.iter_points("docs_v1", batch_size=32))
    assert sorted(p.id for p in listed) == sorted(p.id for p in docs)
    assert all(p.payload["chunk_id"] == p.id for p in listed)

    hits = store.search("docs_v1", docs[33].vector, 3)
    assert hits[0].id == docs[33].id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload == {**docs[33].payload, "chunk_id": docs[33].id}
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert store.search("docs_v1", docs[33].vector, 0) == []

    store.upsert("docs_v1", [VectorPoint(docs[5].id, docs[6].vector, {"replaced": True})])
    store.finish_indexing("docs_v1")
    assert store.collection_info("docs_v1").points == 120
    assert store.retrieve("docs_v1", [docs[5].id])[0].payload == {"replaced": True, "chunk_id": docs[5].id}


def test_exact_search_equals_brute_force(store: VectorStore, docs: list[VectorPoint]) -> None:
    matrix = np.array([unit(p.vector) for p in docs])
    for seed in range(3):
        query = np.random.default_rng(100 + seed).normal(size=DIM)
        scores = matrix @ unit(query.tolist())
        order = np.argsort(-scores)[:10]
        hits = store.search("docs_v1", query.tolist(), 10, exact=True)
        assert [h.id for h in hits] == [docs[i].id for i in order]
        assert np.allclose([h.score for h in hits], scores[order], atol=1e-5)


def test_payload_filters(store: VectorStore, docs: list[VectorPoint]) -> None:
    for payload_filter in (
        {"doc_id": "doc3"},
        {"ordinal": 42},
        {"even": True},
        {"doc_id": "doc1", "even": False},
    ):
        hits = store.search("docs_v1", docs[0].vector, 200, exact=True, payload_filter=payload_filter)
        expected = {p.id for p in docs if all(p.payload[k] == v for k, v in payload_filter.items())}
        assert {h.id for h in hits} == expected, payload_filter
        assert all(all(h.payload[k] == v for k, v in payload_filter.items()) for h in hits)
    assert store.search("docs_v1", docs[0].vector, 5, payload_filter={"doc_id": "nobody"}) == []


def test_aliases(store: VectorStore, docs: list[VectorPoint]) -> None:
    fresh = make_points(10, seed=1)
    store.create_collection("docs_v2", DIM, HNSW)
    store.upsert("docs_v2", fresh)
    store.finish_indexing("docs_v2")

    store.set_alias("docs", "docs_v1")
    store.set_alias("pinned", "docs_v1")
    assert store.list_aliases() == {"docs": "docs_v1", "pinned": "docs_v1"}
    assert store.resolve("docs") == "docs_v1"
    assert store.resolve("docs_v1") == "docs_v1"
    assert store.search("docs", docs[4].vector, 1)[0].id == docs[4].id
    info = store.collection_info("docs")
    assert (info.name, info.aliases) == ("docs_v1", ["docs", "pinned"])
    assert store.collection_exists("docs_v1") and not store.collection_exists("docs")

    store.set_alias("docs", "docs_v2")  # move
    assert store.resolve("docs") == "docs_v2"
    assert store.search("docs", fresh[2].vector, 1)[0].id == fresh[2].id
    assert store.retrieve("docs", [fresh[2].id])[0].id == fresh[2].id
    assert {c.name: c.aliases for c in store.list_collections()} == {
        "docs_v1": ["pinned"],
        "docs_v2": ["docs"],
    }

    store.delete_alias("pinned")
    assert store.list_aliases() == {"docs": "docs_v2"}
    assert store.collection_info("docs_v1").points == 120  # the collection stays
    with pytest.raises(CollectionNotFound, match="pinned"):
        store.delete_alias("pinned")

    store.delete_collection("docs_v2")  # takes its aliases with it
    assert store.list_aliases() == {}
    assert [c.name for c in store.list_collections()] == ["docs_v1"]
    with pytest.raises(CollectionNotFound):
        store.resolve("docs")


def test_names_collide_nowhere(store: VectorStore, docs: list[VectorPoint]) -> None:
    store.set_alias("docs", "docs_v1")
    with pytest.raises(CollectionExists, match="docs_v1"):
        store.create_collection("docs_v1", DIM, HNSW)
    with pytest.raises(InputError, match="'docs' is an alias"):
        store.create_collection("docs", DIM, HNSW)
    with pytest.raises(InputError, match="'docs_v1' is a collection"):
        store.set_alias("docs_v1", "docs_v1")
    with pytest.raises(CollectionNotFound, match="'docs' is an alias"):
        store.set_alias("other", "docs")
    with pytest.raises(CollectionNotFound, match="'docs' is an alias of 'docs_v1'"):
        store.delete_collection("docs")
    for bad in ("", ".hidden", "a/b", "x" * 256):
        with pytest.raises(InputError, match="invalid collection name"):
            store.create_collection(bad, DIM, HNSW)
        assert not store.collection_exists(bad)
    with pytest.raises(InputError, match="invalid alias name"):
        store.set_alias("bad/alias", "docs_v1")


def test_dimension_mismatch(store: VectorStore, docs: list[VectorPoint]) -> None:
    with pytest.raises(DimensionMismatch) as err:
        store.upsert("docs_v1", [VectorPoint("wide", [0.1] * 24)])
    assert str(err.value) == (
        "collection 'docs_v1' holds 16-d vectors but got 24-d ones; "
        "use the embedder the collection was built with or rebuild it"
    )
    assert store.retrieve("docs_v1", ["wide"]) == []
    with pytest.raises(DimensionMismatch, match="collection 'docs_v1' holds 16-d vectors"):
        store.search("docs_v1", [0.1] * 8, 3)


def test_collection_not_found(store: VectorStore, docs: list[VectorPoint]) -> None:
    store.set_alias("docs", "docs_v1")
    calls = {
        "search": lambda: store.search("nope", docs[0].vector, 3),
        "upsert": lambda: store.upsert("nope", docs[:1]),
        "retrieve": lambda: store.retrieve("nope", ["x"]),
        "iter_points": lambda: store.iter_points("nope"),  # raised at the call, not at the first item
        "collection_info": lambda: store.collection_info("nope"),
        "resolve": lambda: store.resolve("nope"),
        "finish_indexing": lambda: store.finish_indexing("nope"),
        "update_hnsw": lambda: store.update_hnsw("nope", HNSW),
        "delete_collection": lambda: store.delete_collection("nope"),
        "set_alias": lambda: store.set_alias("docs", "nope"),
    }
    for what, call in calls.items():
        with pytest.raises(CollectionNotFound, match="'nope'") as err:
            call()
        assert "collections: docs_v1; aliases: docs -> docs_v1" in str(err.value), what
    assert store.resolve("docs") == "docs_v1"  # a failed move leaves the alias as it was
    assert not store.collection_exists("nope")


def test_collection_info_after_finish_indexing(store: VectorStore, docs: list[VectorPoint]) -> None:
    info = store.collection_info("docs_v1")
    assert (info.name, info.dimension, info.distance, info.points, info.status) == (
        "docs_v1",
        DIM,
        "Cosine",
        120,
        "green",
    )
    assert 0 <= info.indexed_vectors <= info.points
    if honours_hnsw(store):
        assert info.hnsw == HNSW
        assert info.indexed_vectors == info.points
    else:
        assert info.indexed_vectors == 0  # brute force: nothing is indexed, and it says so
    assert [c.name for c in store.list_collections()] == ["docs_v1"]

    store.create_collection("empty", DIM, HNSW)
    store.finish_indexing("empty")
    empty = store.collection_info("empty")
    assert (empty.points, empty.indexed_vectors, empty.indexed_share) == (0, 0, 1.0)


def test_update_hnsw(store: VectorStore, docs: list[VectorPoint]) -> None:
    new = HnswConfig(m=4, ef_construct=16, full_scan_threshold=1)
    before = store.collection_info("docs_v1").hnsw
    store.update_hnsw("docs_v1", new)
    store.finish_indexing("docs_v1")
    assert store.collection_info("docs_v1").hnsw == (new if honours_hnsw(store) else before)
    assert store.search("docs_v1", docs[9].vector, 1, hnsw_ef=64)[0].id == docs[9].id
    with pytest.raises(InputError, match="ef_construct >= 4"):
        store.update_hnsw("docs_v1", HnswConfig(ef_construct=1))


def test_search_targets_lists_aliases_then_collections(store: VectorStore) -> None:
    from ragdeck.console.retrieval.collections import search_targets

    assert search_targets(store) == []
    for name in ("kb_v2", "kb_v1"):
        store.create_collection(name, DIM, HNSW)
    store.set_alias("kb", "kb_v1")
    assert search_targets(store) == ["kb", "kb_v1", "kb_v2"]
