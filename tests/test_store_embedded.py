"""The embedded vector store (qdrant-edge shards) against the VectorStore contract, on random data."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_edge import EdgeShard

from ragdeck.console.interfaces import VectorStore
from ragdeck.errors import (
    CollectionExists,
    CollectionNotFound,
    DimensionMismatch,
    InputError,
    RagdeckError,
    StoreBusy,
)
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.qdrant_embedded.build_index import main as build_index_main
from ragdeck.services.qdrant_embedded.rebuild import BUILD_INDEX_MODULE, _build_index, build_index_command
from ragdeck.services.types import HnswConfig, VectorPoint

SMALL = HnswConfig(m=16, ef_construct=64, full_scan_threshold=1)


def _vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _points(x: np.ndarray, prefix: str = "p") -> list[VectorPoint]:
    return [
        VectorPoint(
            id=f"{prefix}{i}",
            vector=x[i].tolist(),
            payload={"doc": f"d{i % 5}", "n": i % 3, "even": i % 2 == 0, "text": f"chunk {i}"},
        )
        for i in range(len(x))
    ]


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _topk(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = _normalize(q) @ _normalize(x).T
    order = np.argsort(-sims, axis=1)[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def _debris(root: Path) -> list[str]:
    """Temp files or directories left behind anywhere under the store root."""
    return [
        str(p.relative_to(root))
        for p in root.rglob(".*")
        if p.name != "aliases.lock" and "shard" not in p.relative_to(root).parts
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedQdrantStore]:
    with EmbeddedQdrantStore(tmp_path / "qdrant", busy_timeout_s=0.3) as s:
        yield s


@pytest.fixture
def filled(store: EmbeddedQdrantStore) -> tuple[EmbeddedQdrantStore, np.ndarray]:
    """Collection 'c' with 300 indexed 32-d points p0..p299."""
    x = _vectors(300, 32)
    store.create_collection("c", 32, SMALL)
    store.upsert("c", _points(x))
    store.finish_indexing("c")
    return store, x


# ---------------------------------------------------------------------------------------------- basics


def test_satisfies_protocol_and_reports_health(store: EmbeddedQdrantStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.mode == "embedded"
    health = store.health()
    assert health.ok and health.mode == "embedded" and health.component == "vector store"
    assert health.version == "0.9.0"
    assert health.endpoint == str(store.root)


def test_create_upsert_search_retrieve_iterate_delete(store: EmbeddedQdrantStore) -> None:
    x = _vectors(200, 16)
    store.create_collection("docs_v1", 16, SMALL)
    assert store.collection_exists("docs_v1")
    assert not store.collection_exists("nope")
    info = store.collection_info("docs_v1")
    assert (info.points, info.dimension, info.distance) == (0, 16, "Cosine")

    store.upsert("docs_v1", _points(x))
    before_index = store.collection_info("docs_v1")
    assert before_index.points == 200 and before_index.indexed_vectors == 0
    assert before_index.status == "yellow"
    store.finish_indexing("docs_v1")
    info = store.collection_info("docs_v1")
    assert info.points == info.indexed_vectors == 200 and info.status == "green"
    assert info.segments and info.disk_bytes and info.disk_bytes > 0
    assert info.hnsw == SMALL

    hits = store.search("docs_v1", x[7].tolist(), 5)
    assert hits[0].id == "p7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["chunk_id"] == "p7" and hits[0].payload["text"] == "chunk 7"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    got = store.retrieve("docs_v1", ["p3", "missing", "p1", "p3"], with_vectors=True)
    assert [p.id for p in got] == ["p3", "p1"]
    assert got[0].payload["doc"] == "d3"
    # Cosine collections store unit vectors.
    assert np.allclose(got[0].vector, x[3] / np.linalg.norm(x[3]), atol=1e-6)
    assert store.retrieve("docs_v1", ["p3"])[0].vector is None

    seen = [p.id for p in store.iter_points("docs_v1", batch_size=37)]
    assert sorted(seen) == sorted(f"p{i}" for i in range(200))
    vectors = list(store.iter_points("docs_v1", batch_size=500, with_vectors=True))
    assert all(len(p.vector or []) == 16 for p in vectors)

    # Upserting an existing chunk id replaces it.
    store.upsert("docs_v1", [VectorPoint(id="p7", vector=x[8].tolist(), payload={"text": "new"})])
    assert store.collection_info("docs_v1").points == 200
    assert store.retrieve("docs_v1", ["p7"])[0].payload == {"text": "new", "chunk_id": "p7"}

    store.delete_points("docs_v1", ["p0", "p1", "missing"])
    assert store.collection_info("docs_v1").points == 198
    assert store.retrieve("docs_v1", ["p0", "p2"])[0].id == "p2"

    assert [c.name for c in store.list_collections()] == ["docs_v1"]
    store.delete_collection("docs_v1")
    assert not store.collection_exists("docs_v1")
    assert store.list_collections() == []
    with pytest.raises(CollectionNotFound):
        store.search("docs_v1", x[0].tolist(), 3)
    assert not (store.root / "collections" / "docs_v1").exists()
    assert _debris(store.root) == []


def test_list_collections_is_sorted(store: EmbeddedQdrantStore) -> None:
    for name in ["zeta", "alpha", "mid.v2"]:
        store.create_collection(name, 4, SMALL)
    assert [c.name for c in store.list_collections()] == ["alpha", "mid.v2", "zeta"]


def test_payload_filter(filled: tuple[EmbeddedQdrantStore, np.ndarray]) -> None:
    store, x = filled
    q = x[0].tolist()
    for flt, expected in [
        ({"doc": "d1"}, {i for i in range(300) if i % 5 == 1}),
        ({"n": 2}, {i for i in range(300) if i % 3 == 2}),
        ({"even": True}, {i for i in range(300) if i % 2 == 0}),
        ({"even": False}, {i for i in range(300) if i % 2 == 1}),
        ({"doc": "d1", "even": False}, {i for i in range(300) if i % 5 == 1 and i % 2 == 1}),
    ]:
        exact = store.search("c", q, 1000, exact=True, payload_filter=flt)
        assert {int(h.id[1:]) for h in exact} == expected, flt
        approx = store.search("c", q, 10, payload_filter=flt)
        assert approx and all(int(h.id[1:]) in expected for h in approx), flt
    assert store.search("c", q, 10, payload_filter={"doc": "none"}) == []


def test_exact_search_equals_numpy_bruteforce(filled: tuple[EmbeddedQdrantStore, np.ndarray]) -> None:
    store, x = filled
    queries = _vectors(20, 32, seed=5)
    order, sims = _topk(x, queries, 10)
    for qi, q in enumerate(queries):
        hits = store.search("c", q.tolist(), 10, exact=True)
        assert [h.id for h in hits] == [f"p{i}" for i in order[qi]]
        assert np.allclose([h.score for h in hits], sims[qi], atol=1e-5)


def test_chunk_id_goes_into_the_payload(store: EmbeddedQdrantStore) -> None:
    store.create_collection("c", 4, SMALL)
    store.upsert("c", [VectorPoint(id="doc.md#0", vector=[1, 0, 0, 0])])
    assert store.retrieve("c", ["doc.md#0"])[0].payload == {"chunk_id": "doc.md#0"}
    assert store.search("c", [1, 0, 0, 0], 1)[0].id == "doc.md#0"
    with pytest.raises(InputError, match="chunk_id"):
        store.upsert("c", [VectorPoint(id="a", vector=[1, 0, 0, 0], payload={"chunk_id": "b"})])


# ---------------------------------------------------------------------------------------------- errors


def test_dimension_mismatch(store: EmbeddedQdrantStore) -> None:
    store.create_collection("c", 384, SMALL)
    good = VectorPoint(id="ok", vector=[0.1] * 384)
    bad = VectorPoint(id="bad", vector=[0.1] * 768)
    with pytest.raises(DimensionMismatch, match=r"'c' holds 384-d vectors but got 768-d ones"):
        store.upsert("c", [good, bad])
    assert store.collection_info("c").points == 0  # nothing of the batch was written
    with pytest.raises(DimensionMismatch, match="384-d"):
        store.search("c", [0.1] * 8, 3)


def test_not_found_exists_and_bad_names(store: EmbeddedQdrantStore) -> None:
    store.create_collection("real", 4, SMALL)
    with pytest.raises(CollectionExists):
        store.create_collection("real", 4, SMALL)
    for call in [
        lambda: store.search("ghost", [1, 0, 0, 0], 3),
        lambda: store.upsert("ghost", []),
        lambda: store.collection_info("ghost"),
        lambda: store.delete_collection("ghost"),
        lambda: store.resolve("ghost"),
        lambda: store.retrieve("ghost", ["a"]),
        lambda: store.iter_points("ghost"),
        lambda: store.finish_indexing("ghost"),
        lambda: store.create_snapshot("ghost"),
        lambda: store.delete_alias("ghost"),
    ]:
        with pytest.raises(CollectionNotFound) as err:
            call()
        assert "ghost" in str(err.value)
    with pytest.raises(CollectionNotFound, match="real"):  # names what exists
        store.resolve("ghost")
    for bad in ["", ".hidden", "../up", "a/b", "x" * 256, "sp ace", "ünï"]:
        with pytest.raises(InputError):
            store.create_collection(bad, 4, SMALL)
        assert not store.collection_exists(bad)
    with pytest.raises(InputError):
        store.create_collection("fine", 0, SMALL)
    assert store.collection_exists("x" * 256) is False
    store.create_collection("x" * 255, 4, SMALL)  # the longest name works
    store.set_alias("y" * 255, "x" * 255)
    assert store.resolve("y" * 255) == "x" * 255
    store.delete_collection("x" * 255)
    assert _debris(store.root) == []


# ---------------------------------------------------------------------------------------------- aliases


def test_alias_set_move_delete(store: EmbeddedQdrantStore) -> None:
    store.create_collection("a", 4, SMALL)
    store.create_collection("b", 4, SMALL)
    store.upsert("a", [VectorPoint(id="from-a", vector=[1, 0, 0, 0])])
    store.upsert("b", [VectorPoint(id="from-b", vector=[1, 0, 0, 0])])

    store.set_alias("live", "a")
    assert store.resolve("live") == "a" and store.resolve("a") == "a"
    assert store.search("live", [1, 0, 0, 0], 1)[0].id == "from-a"
    assert not store.collection_exists("live")
    assert store.collection_info("live").name == "a"
    assert store.collection_info("a").aliases == ["live"]

    store.set_alias("live", "b")  # move
    store.set_alias("stage", "b")
    assert store.search("live", [1, 0, 0, 0], 1)[0].id == "from-b"
    assert store.list_aliases() == {"live": "b", "stage": "b"}
    assert store.collection_info("b").aliases == ["live", "stage"]
    assert store.collection_info("a").aliases == []
    assert json.loads((store.root / "aliases.json").read_text()) == {"live": "b", "stage": "b"}

    store.delete_alias("stage")
    assert store.list_aliases() == {"live": "b"}
    with pytest.raises(CollectionNotFound):
        store.resolve("stage")

    # Qdrant's rule: alias and collection names never collide.
    with pytest.raises(InputError, match="is a collection"):
        store.set_alias("a", "b")
    with pytest.raises(InputError, match="is an alias"):
        store.create_collection("live", 4, SMALL)
    with pytest.raises(CollectionNotFound):
        store.set_alias("x", "missing")
    with pytest.raises(CollectionNotFound, match="is an alias"):
        store.set_alias("x", "live")
    with pytest.raises(CollectionNotFound, match="alias"):
        store.delete_collection("live")

    # Deleting a collection drops the aliases that point at it.
    store.delete_collection("b")
    assert store.list_aliases() == {}
    with pytest.raises(CollectionNotFound):
        store.search("live", [1, 0, 0, 0], 1)


def test_alias_swap_is_atomic_for_readers(store: EmbeddedQdrantStore, tmp_path: Path) -> None:
    x = _vectors(50, 8)
    for name in ["blue", "green"]:
        store.create_collection(name, 8, SMALL)
        store.upsert(name, _points(x, prefix=f"{name}-"))
    store.set_alias("live", "blue")
    other = EmbeddedQdrantStore(store.root, busy_timeout_s=0.3)  # a second object on the same root
    stop = threading.Event()
    problems: list[str] = []
    seen: dict[str, set[str]] = {"store": set(), "other": set()}

    def reader(label: str, s: EmbeddedQdrantStore) -> None:
        while not stop.is_set():
            try:
                target = s.resolve("live")
                if target not in ("blue", "green"):
                    problems.append(f"{label} resolved to {target}")
                seen[label].add(target)
                hits = s.search("live", x[3].tolist(), 3)
                prefixes = {h.id.split("-")[0] for h in hits}
                if len(hits) != 3 or len(prefixes) != 1 or not prefixes <= {"blue", "green"}:
                    problems.append(f"{label} got {[h.id for h in hits]}")
            except Exception as exc:
                problems.append(f"{label}: {exc!r}")

    threads = [
        threading.Thread(target=reader, args=("store", store)),
        threading.Thread(target=reader, args=("other", other)),
    ]
    for t in threads:
        t.start()
    try:
        for i in range(200):
            target = "green" if i % 2 == 0 else "blue"
            store.set_alias("live", target)
            assert other.resolve("live") == target
            assert other.list_aliases() == {"live": target}
    finally:
        stop.set()
        for t in threads:
            t.join()
        other.close()
    assert problems == []
    assert seen["store"] == {"blue", "green"} and seen["other"] == {"blue", "green"}
    assert store.resolve("live") == "blue"
    assert _debris(store.root) == []


# ---------------------------------------------------------------------------------------------- HNSW


def test_hnsw_settings_persist_and_update(store: EmbeddedQdrantStore) -> None:
    x = _vectors(500, 32)
    hnsw = HnswConfig(m=8, ef_construct=40, full_scan_threshold=1)
    store.create_collection("c", 32, hnsw)
    store.upsert("c", _points(x))
    store.finish_indexing("c")
    store.close()

    with EmbeddedQdrantStore(store.root) as reopened:
        info = reopened.collection_info("c")
        assert info.hnsw == hnsw and info.points == info.indexed_vectors == 500
        shard = reopened.root / "collections" / "c" / "shard"
        assert json.loads((shard / "edge_config.json").read_text())["hnsw_config"]["m"] == 8

        new = HnswConfig(m=24, ef_construct=80, full_scan_threshold=1)
        reopened.update_hnsw("c", new)
        info = reopened.collection_info("c")
        assert info.hnsw == new and info.points == info.indexed_vectors == 500
        edge = json.loads((shard / "edge_config.json").read_text())["hnsw_config"]
        assert (edge["m"], edge["ef_construct"]) == (24, 80)
        built = [json.loads(p.read_text()) for p in shard.glob("segments/*/vector_index/hnsw_config.json")]
        assert built and all((b["m"], b["ef_construct"]) == (24, 80) for b in built)
        assert reopened.search("c", x[11].tolist(), 3)[0].id == "p11"
        with pytest.raises(InputError):
            reopened.update_hnsw("c", HnswConfig(m=8, ef_construct=1))

    with EmbeddedQdrantStore(store.root) as again:
        assert again.collection_info("c").hnsw == HnswConfig(m=24, ef_construct=80, full_scan_threshold=1)


def test_the_build_index_child_runs_as_a_module_from_any_folder(
    store: EmbeddedQdrantStore, tmp_path: Path
) -> None:
    """The child program of an in-place rebuild, run the way ``update_hnsw`` runs it (``python -m``), from a
    folder that is not the repository: it rebuilds a closed shard's index with the new settings."""
    x = _vectors(300, 16)
    store.create_collection("c", 16, HnswConfig(m=8, ef_construct=40, full_scan_threshold=1))
    store.upsert("c", _points(x))
    store.finish_indexing("c")
    store.close()
    shard = store.root / "collections" / "c" / "shard"
    new = HnswConfig(m=24, ef_construct=80, full_scan_threshold=1)
    command = build_index_command(shard, 16, new, True)
    assert command[:3] == [sys.executable, "-m", BUILD_INDEX_MODULE]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no warning either (e.g. a double import)
    built = [json.loads(p.read_text()) for p in shard.glob("segments/*/vector_index/hnsw_config.json")]
    assert built and all((b["m"], b["ef_construct"]) == (24, 80) for b in built)
    assert json.loads((shard / "edge_config.json").read_text())["hnsw_config"]["m"] == 24
    assert list(elsewhere.iterdir()) == []
    # The store still reads the shard (meta.json is the parent's to update: it still says m=8).
    info = store.collection_info("c")
    assert info.points == info.indexed_vectors == 300 and info.hnsw.m == 8
    assert store.search("c", x[7].tolist(), 1)[0].id == "p7"
    assert store.search_lexical("c", "chunk 7", 1)[0].id == "p7"


def test_the_build_index_child_fails_loudly(tmp_path: Path) -> None:
    """A bad argument is a usage error (exit 2); an engine error fails the child and the rebuild says so."""
    with pytest.raises(SystemExit) as usage:
        build_index_main([str(tmp_path), "16", "m", "80", "1", "1"])
    assert usage.value.code == 2
    missing = tmp_path / "no-such-shard"
    with pytest.raises(RagdeckError, match=r"building the new HNSW index in .* failed \(.+\); the old index"):
        _build_index(missing, 16, SMALL, True)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedQdrantStore, np.ndarray]]:
    """5,000 384-d vectors in 50 gaussian clusters, indexed with m=4 and m=32; 60 queries."""
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(50, 384)).astype(np.float32)
    x = (centers[rng.integers(0, 50, 5000)] + 2.0 * rng.normal(size=(5000, 384))).astype(np.float32)
    queries = (centers[rng.integers(0, 50, 60)] + 2.0 * rng.normal(size=(60, 384))).astype(np.float32)
    points = _points(x)
    with EmbeddedQdrantStore(tmp_path_factory.mktemp("recall") / "qdrant") as s:
        for m in (4, 32):
            s.create_collection(f"m{m}", 384, HnswConfig(m=m, ef_construct=64, full_scan_threshold=1))
            s.upsert(f"m{m}", points)
            s.finish_indexing(f"m{m}")
        yield s, queries


def _recall(store: EmbeddedQdrantStore, name: str, queries: np.ndarray, ef: int) -> float:
    total = 0.0
    for q in queries:
        truth = {h.id for h in store.search(name, q.tolist(), 10, exact=True)}
        got = {h.id for h in store.search(name, q.tolist(), 10, hnsw_ef=ef)}
        total += len(truth & got) / 10
    return total / len(queries)


def test_recall_rises_with_ef_and_m(clustered: tuple[EmbeddedQdrantStore, np.ndarray]) -> None:
    store, queries = clustered
    info = store.collection_info("m4")
    assert info.indexed_vectors == info.points == 5000
    curve = [_recall(store, "m4", queries, ef) for ef in (4, 16, 32, 64, 128)]
    assert all(b >= a - 0.02 for a, b in itertools.pairwise(curve)), curve
    assert curve[0] < 0.7 and curve[-1] > 0.9, curve
    assert curve[-1] - curve[0] > 0.3, curve
    m32 = _recall(store, "m32", queries, 4)
    assert m32 >= curve[0] + 0.2, (m32, curve[0])


# ---------------------------------------------------------------------------------------------- snapshots


def test_snapshot_round_trip(filled: tuple[EmbeddedQdrantStore, np.ndarray]) -> None:
    store, _x = filled
    store.create_collection("other", 32, SMALL)
    store.set_alias("live", "c")
    store.set_alias("side", "other")
    queries = _vectors(10, 32, seed=9)

    def results() -> list[list[tuple[str, float]]]:
        return [[(h.id, h.score) for h in store.search("c", q.tolist(), 10)] for q in queries]

    before = results()
    snap = store.create_snapshot("live")  # an alias is resolved
    assert snap.collection == "c" and snap.name.startswith("c-")
    assert snap.aliases == {"live": "c", "side": "other"}
    tar = store.snapshot_path("c", snap.name)
    assert tar is not None and tar.is_file() and tar.stat().st_size == snap.size_bytes
    shard = store.root / "collections" / "c" / "shard"
    apparent = sum(p.stat().st_size for p in shard.rglob("*") if p.is_file())
    assert snap.size_bytes < apparent / 10, (snap.size_bytes, apparent)  # sparse files stay sparse

    # Change contents and aliases, then restore.
    store.upsert("c", _points(queries, prefix="new"))
    store.set_alias("live", "other")
    assert results() != before
    store.restore_snapshot("c", snap.name)
    assert results() == before
    assert store.list_aliases() == {"live": "c", "side": "other"}
    assert store.collection_info("c").points == 300

    # Without restore_aliases the mapping is left alone.
    store.set_alias("live", "other")
    store.restore_snapshot("c", snap.name, restore_aliases=False)
    assert store.resolve("live") == "other"

    second = store.create_snapshot("c")
    assert [s.name for s in store.list_snapshots("c")] == [second.name, snap.name]
    assert second.aliases == {"live": "other", "side": "other"}
    assert store.list_snapshots("other") == []

    # A deleted collection comes back from its snapshot, with its aliases.
    store.delete_collection("c")
    assert not store.collection_exists("c")
    assert [s.name for s in store.list_snapshots("c")] == [second.name, snap.name]
    store.restore_snapshot("c", snap.name)
    assert store.collection_exists("c")
    assert results() == before
    assert store.list_aliases() == {"live": "c", "side": "other"}
    assert store.collection_info("c").hnsw == SMALL

    with pytest.raises(InputError, match="no snapshot 'c-nope'"):
        store.restore_snapshot("c", "c-nope")
    with pytest.raises(InputError):
        store.snapshot_path("c", "c-nope")
    with pytest.raises(InputError):
        store.restore_snapshot("c", "../../etc")
    assert _debris(store.root) == []


def test_failed_restore_leaves_the_collection_alone(filled: tuple[EmbeddedQdrantStore, np.ndarray]) -> None:
    store, x = filled
    snap = store.create_snapshot("c")
    assert snap.size_bytes > 0
    tar = store.snapshot_path("c", snap.name)
    assert tar is not None
    tar.write_bytes(b"not a tar" * 100)
    before = [h.id for h in store.search("c", x[1].tolist(), 5)]
    with pytest.raises(Exception, match="cannot be unpacked"):
        store.restore_snapshot("c", snap.name)
    assert [h.id for h in store.search("c", x[1].tolist(), 5)] == before
    assert _debris(store.root) == []


def test_damaged_collection_can_be_restored_or_deleted(
    filled: tuple[EmbeddedQdrantStore, np.ndarray],
) -> None:
    store, x = filled
    snap = store.create_snapshot("c")
    before = [(h.id, h.score) for h in store.search("c", x[2].tolist(), 5)]
    store.close()
    shard = store.root / "collections" / "c" / "shard"
    for path in [shard / "edge_config.json", *shard.glob("segments/*")]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    with pytest.raises(RagdeckError, match="cannot open collection 'c'"):
        store.search("c", x[2].tolist(), 5)
    store.restore_snapshot("c", snap.name)
    assert [(h.id, h.score) for h in store.search("c", x[2].tolist(), 5)] == before
    store.close()
    (shard / "edge_config.json").unlink()
    shutil.rmtree(shard / "segments")
    store.delete_collection("c")
    assert store.list_collections() == []
    assert _debris(store.root) == []


# ------------------------------------------------------------------------------ processes and threads

_HOLDER = """
import sys, time
from qdrant_edge import EdgeShard
shard = EdgeShard.load(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
shard.close()
"""


def test_store_busy_when_another_process_holds_the_shard(store: EmbeddedQdrantStore) -> None:
    x = _vectors(20, 8)
    store.create_collection("c", 8, SMALL)
    store.upsert("c", _points(x))
    store.close()  # release this process's handle so the other one can take it
    shard = store.root / "collections" / "c" / "shard"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(shard), "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        with pytest.raises(StoreBusy) as err:
            store.search("c", x[0].tolist(), 3)
        waited = time.monotonic() - started
        assert "'c' is open in another ragdeck process" in str(err.value)
        assert "QDRANT_URL" in str(err.value)
        assert 0.25 <= waited < 3, waited
        with pytest.raises(StoreBusy):
            store.delete_collection("c")
        assert store.collection_exists("c")
    finally:
        holder.kill()
        holder.wait()
    assert store.search("c", x[0].tolist(), 1)[0].id == "p0"


def test_close_releases_handles(store: EmbeddedQdrantStore) -> None:
    store.create_collection("c", 4, SMALL)
    store.upsert("c", [VectorPoint(id="a", vector=[1, 0, 0, 0])])
    store.close()
    shard = EdgeShard.load(str(store.root / "collections" / "c" / "shard"))
    shard.close()
    assert store.search("c", [1, 0, 0, 0], 1)[0].id == "a"  # reopens lazily


def test_concurrent_search_while_upserting(store: EmbeddedQdrantStore) -> None:
    x = _vectors(3000, 32, seed=3)
    store.create_collection("c", 32, SMALL)
    store.upsert("c", _points(x[:500]))
    store.finish_indexing("c")
    stop = threading.Event()
    errors: list[BaseException] = []
    searches = [0]

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            try:
                hits = store.search("c", rng.normal(size=32).tolist(), 5, hnsw_ef=32)
                assert len(hits) == 5
                searches[0] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    points = _points(x)
    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for begin in range(500, 3000, 250):
            store.upsert("c", points[begin : begin + 250])
        store.finish_indexing("c")
        list(store.iter_points("c", batch_size=400))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert searches[0] > 0
    info = store.collection_info("c")
    assert info.points == info.indexed_vectors == 3000


def test_json_files_are_written_atomically(store: EmbeddedQdrantStore) -> None:
    store.create_collection("c", 4, SMALL)
    meta = json.loads((store.root / "collections" / "c" / "meta.json").read_text())
    assert meta["dimension"] == 4 and meta["distance"] == "Cosine"
    assert meta["hnsw"] == {"m": 16, "ef_construct": 64, "full_scan_threshold": 1}
    assert meta["created_at"].endswith("+00:00")
    store.set_alias("live", "c")
    assert sorted(os.listdir(store.root)) == ["aliases.json", "aliases.lock", "collections", "snapshots"]
