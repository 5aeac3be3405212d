"""The Qdrant server adapter.

Most tests run its code path on qdrant-client's local mode (no server binary installs here); the server-only
paths (status polling, snapshots, HTTP errors) run against a small fake of Qdrant's REST API mounted as an
httpx transport. ``TestLiveServer`` runs against a real server when ``QDRANT_URL`` is set.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from servers import free_port

from ragdeck.console.interfaces import VectorStore
from ragdeck.errors import (
    CollectionExists,
    CollectionNotFound,
    ConfigError,
    DimensionMismatch,
    InputError,
    ServiceUnavailable,
)
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig, VectorPoint

DIM = 16

# Local mode warns that search_params change nothing there (it is brute force); the tests know.
pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")


def make_points(n: int, dim: int = DIM, seed: int = 0) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim))
    return [
        VectorPoint(
            id=f"doc{i % 7}#s{i}",
            vector=vectors[i].tolist(),
            payload={"doc_id": f"doc{i % 7}", "n": i, "even": i % 2 == 0},
        )
        for i in range(n)
    ]


def brute_force(points: list[VectorPoint], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    matrix = np.array([p.vector for p in points])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (query / np.linalg.norm(query))
    order = np.argsort(-scores)[:k]
    return [(points[i].id, float(scores[i])) for i in order]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QdrantServerStore]:
    with QdrantServerStore(QdrantClient(":memory:"), meta_dir=tmp_path / "meta") as s:
        yield s


@pytest.fixture
def filled(store: QdrantServerStore) -> tuple[QdrantServerStore, list[VectorPoint]]:
    points = make_points(300)  # more than one upsert batch
    store.create_collection("docs_v1", DIM, HnswConfig(m=8, ef_construct=64))
    store.upsert("docs_v1", points)
    store.finish_indexing("docs_v1")
    return store, points


def test_satisfies_protocol(store: QdrantServerStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.mode == "server"


def test_points_round_trip(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, points = filled
    info = store.collection_info("docs_v1")
    assert (info.points, info.dimension, info.distance, info.status) == (300, DIM, "Cosine", "green")
    assert info.indexed_vectors == 0  # local mode is brute force and says so

    got = store.retrieve("docs_v1", ["doc3#s10", "missing", "doc1#s1"], with_vectors=True)
    assert [p.id for p in got] == ["doc3#s10", "doc1#s1"]
    assert got[0].payload == {"doc_id": "doc3", "n": 10, "even": True, "chunk_id": "doc3#s10"}
    expected = np.array(points[10].vector) / np.linalg.norm(points[10].vector)
    assert np.allclose(got[0].vector, expected, atol=1e-6)  # cosine collections store unit vectors
    assert store.retrieve("docs_v1", ["doc1#s1"])[0].vector is None

    assert sorted(p.id for p in store.iter_points("docs_v1", batch_size=64)) == sorted(p.id for p in points)

    top = store.search("docs_v1", points[42].vector, 1)[0]
    assert (top.id, round(top.score, 5)) == (points[42].id, 1.0)

    store.upsert("docs_v1", [VectorPoint(points[42].id, points[0].vector, {"n": -1})])  # replace by chunk id
    assert store.collection_info("docs_v1").points == 300
    assert store.retrieve("docs_v1", [points[42].id])[0].payload == {"n": -1, "chunk_id": points[42].id}


def test_exact_search_equals_brute_force(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, points = filled
    query = np.random.default_rng(7).normal(size=DIM)
    hits = store.search("docs_v1", query.tolist(), 10, exact=True)
    expected = brute_force(points, query, 10)
    assert [h.id for h in hits] == [i for i, _ in expected]
    assert np.allclose([h.score for h in hits], [s for _, s in expected], atol=1e-5)
    assert store.search("docs_v1", query, 10, hnsw_ef=128) == hits  # numpy vectors are accepted too


def test_payload_filters(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, points = filled
    query = points[0].vector
    for payload_filter in ({"doc_id": "doc3"}, {"n": 5}, {"even": False}, {"doc_id": "doc2", "even": True}):
        hits = store.search("docs_v1", query, 300, exact=True, payload_filter=payload_filter)
        expected = {p.id for p in points if all(p.payload[k] == v for k, v in payload_filter.items())}
        assert {h.id for h in hits} == expected, payload_filter
    assert store.search("docs_v1", query, 5, payload_filter={"doc_id": "nobody"}) == []


def test_dimension_mismatch(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, _ = filled
    with pytest.raises(DimensionMismatch) as err:
        store.upsert("docs_v1", [VectorPoint("new", [0.1] * 24)])
    assert str(err.value) == (
        "collection 'docs_v1' holds 16-d vectors but got 24-d ones; "
        "use the embedder the collection was built with or rebuild it"
    )
    assert store.retrieve("docs_v1", ["new"]) == []
    store.set_alias("docs", "docs_v1")
    with pytest.raises(DimensionMismatch, match="holds 16-d vectors but got 3-d"):
        store.search("docs", [1.0, 0.0, 0.0], 3)


def test_missing_names_raise_collection_not_found(
    filled: tuple[QdrantServerStore, list[VectorPoint]],
) -> None:
    store, points = filled
    store.set_alias("docs", "docs_v1")
    calls = {
        "search": lambda: store.search("nope", points[0].vector, 3),
        "upsert": lambda: store.upsert("nope", points[:1]),
        "info": lambda: store.collection_info("nope"),
        "resolve": lambda: store.resolve("nope"),
        "retrieve": lambda: store.retrieve("nope", ["a"]),
        "iter": lambda: list(store.iter_points("nope")),
        "delete": lambda: store.delete_collection("nope"),
        "delete_alias": lambda: store.delete_alias("nope"),
        "alias_target": lambda: store.set_alias("other", "nope"),
    }
    for what, call in calls.items():
        with pytest.raises(CollectionNotFound, match="'nope'") as err:
            call()
        if what != "delete_alias":
            assert "collections: docs_v1; aliases: docs -> docs_v1" in str(err.value), what
    with pytest.raises(CollectionNotFound, match="is an alias of 'docs_v1'"):
        store.delete_collection("docs")
    assert not store.collection_exists("nope")
    assert not store.collection_exists("docs")  # an alias is not a collection


def test_names_are_validated(store: QdrantServerStore) -> None:
    for bad in ("", ".hidden", "a/b", "x" * 256, "spaced name", "ünï"):
        with pytest.raises(InputError, match="invalid collection name"):
            store.create_collection(bad, DIM, HnswConfig())
    with pytest.raises(InputError, match="invalid alias name"):
        store.set_alias("../x", "whatever")
    store.create_collection("a-b_c.1", DIM, HnswConfig())
    with pytest.raises(InputError, match="dimension"):
        store.create_collection("zero", 0, HnswConfig())
    with pytest.raises(InputError, match="ef_construct >= 4"):
        store.create_collection("bad_hnsw", DIM, HnswConfig(ef_construct=2))
    assert not store.collection_exists("a/b")


def test_collection_and_alias_names_do_not_collide(store: QdrantServerStore) -> None:
    store.create_collection("docs_v1", DIM, HnswConfig())
    with pytest.raises(CollectionExists, match="already exists"):
        store.create_collection("docs_v1", DIM, HnswConfig())
    store.set_alias("docs", "docs_v1")
    with pytest.raises(InputError, match=r"'docs' is an alias \(of 'docs_v1'\)"):
        store.create_collection("docs", DIM, HnswConfig())
    with pytest.raises(InputError, match="is a collection"):
        store.set_alias("docs_v1", "docs_v1")
    with pytest.raises(CollectionNotFound, match="is an alias"):
        store.set_alias("other", "docs")


def test_aliases(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, points = filled
    store.create_collection("docs_v2", DIM, HnswConfig())
    store.upsert("docs_v2", points[:5])

    store.set_alias("docs", "docs_v1")
    store.set_alias("stable", "docs_v1")
    assert store.list_aliases() == {"docs": "docs_v1", "stable": "docs_v1"}
    assert store.collection_info("docs").aliases == ["docs", "stable"]
    assert store.search("docs", points[0].vector, 1)[0].id == points[0].id

    store.set_alias("docs", "docs_v2")  # move
    assert store.resolve("docs") == "docs_v2"
    assert store.collection_info("docs").points == 5
    assert [c.aliases for c in store.list_collections()] == [["stable"], ["docs"]]

    store.delete_alias("stable")
    assert store.list_aliases() == {"docs": "docs_v2"}
    assert store.collection_exists("docs_v1")

    store.delete_collection("docs_v2")
    assert store.list_aliases() == {}
    assert [c.name for c in store.list_collections()] == ["docs_v1"]


def test_alias_move_is_atomic(store: QdrantServerStore) -> None:
    for name in ("blue", "green"):
        store.create_collection(name, DIM, HnswConfig())
    store.set_alias("live", "blue")
    seen: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(store.resolve("live"))
            except BaseException as exc:
                failures.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 5
    try:
        for i in range(100_000):
            store.set_alias("live", "green" if i % 2 == 0 else "blue")
            time.sleep(0)  # let the reader in between moves
            if (i >= 200 and len(seen) == 2) or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert seen == {"blue", "green"}


def test_snapshots_need_a_server(filled: tuple[QdrantServerStore, list[VectorPoint]]) -> None:
    store, _ = filled
    with pytest.raises(ConfigError, match="needs a Qdrant server"):
        store.create_snapshot("docs_v1")
    with pytest.raises(ConfigError, match="needs a Qdrant server"):
        store.restore_snapshot("docs_v1", "any.snapshot")
    assert store.list_snapshots("docs_v1") == []
    assert store.snapshot_path("docs_v1", "any.snapshot") is None


def test_update_hnsw_in_local_mode_reports_the_client(
    filled: tuple[QdrantServerStore, list[VectorPoint]],
) -> None:
    store, _ = filled
    store.update_hnsw("docs_v1", HnswConfig(m=4, ef_construct=32))
    # Local mode ignores HNSW settings and keeps reporting its defaults; nothing is faked.
    assert store.collection_info("docs_v1").hnsw == HnswConfig()


def test_health_local(store: QdrantServerStore) -> None:
    health = store.health()
    assert (health.ok, health.mode, health.version, health.component) == (
        True,
        "server",
        "local-mode",
        "vector store",
    )
    assert "brute force" in health.detail


def test_persists_across_reopen(tmp_path: Path) -> None:
    points = make_points(40)
    with QdrantServerStore(QdrantClient(path=str(tmp_path / "q")), meta_dir=tmp_path / "meta") as store:
        store.create_collection("docs_v1", DIM, HnswConfig())
        store.upsert("docs_v1", points)
        store.set_alias("docs", "docs_v1")
        before = store.search("docs", points[3].vector, 5)
    with QdrantServerStore(QdrantClient(path=str(tmp_path / "q")), meta_dir=tmp_path / "meta") as store:
        assert store.list_aliases() == {"docs": "docs_v1"}
        assert store.collection_info("docs").points == 40
        after = store.search("docs", points[3].vector, 5)
    assert [h.id for h in after] == [h.id for h in before]
    assert np.allclose([h.score for h in after], [h.score for h in before], atol=1e-6)  # float32 on disk


def test_unreachable_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = QdrantServerStore.connect(url, None, 2.0, tmp_path)
    health = store.health()
    assert not health.ok
    assert health.endpoint == url
    assert f"Qdrant at {url} cannot be reached" in health.detail
    assert "check that the server runs" in health.detail
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        store.search("docs", [0.1] * DIM, 3)
    with pytest.raises(ServiceUnavailable):
        store.list_collections()
    store.close()


# ---- server-only paths, against a fake of Qdrant's REST API ------------------------------------


def _collection_info_json(dim: int, points: int) -> dict[str, Any]:
    client = QdrantClient(":memory:")
    client.create_collection(
        "x", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    info = client.get_collection("x").model_dump(mode="json")
    info.update(points_count=points, indexed_vectors_count=points)
    info["config"]["hnsw_config"].update(m=8, ef_construct=64)
    return info


class FakeQdrant:
    """Just enough of Qdrant's REST API to drive the adapter's server-only code paths."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Any]] = {"docs_v1": _collection_info_json(DIM, 10)}
        self.aliases: dict[str, str] = {"docs": "docs_v1"}
        self.statuses: list[str] = []  # statuses to report, one per GET of a collection; then green
        self.snapshots: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.fail: httpx.Response | Exception | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return self.fail
        parts = request.url.path.strip("/").split("/")
        route = (request.method, *parts)
        if route == ("GET",) or route == ("GET", ""):
            return httpx.Response(200, json={"title": "qdrant - vector search engine", "version": "1.15.1"})
        if route == ("GET", "aliases"):
            listed = [{"alias_name": a, "collection_name": c} for a, c in self.aliases.items()]
            return self._ok({"aliases": listed})
        if route == ("GET", "collections"):
            return self._ok({"collections": [{"name": n} for n in self.collections]})
        if route == ("POST", "collections", "aliases"):
            for action in body["actions"]:
                if "delete_alias" in action:
                    del self.aliases[action["delete_alias"]["alias_name"]]
                else:
                    create = action["create_alias"]
                    self.aliases[create["alias_name"]] = create["collection_name"]
            return self._ok(True)
        name = parts[1] if len(parts) > 1 else ""
        if route == ("PUT", "collections", name) and name not in self.collections:
            self.collections[name] = _collection_info_json(body["vectors"]["size"], 0)
            return self._ok(True)
        if name not in self.collections:
            return httpx.Response(
                404, json={"status": {"error": f"Not found: Collection `{name}` doesn't exist!"}, "time": 0}
            )
        if route == ("GET", "collections", name):
            info = dict(self.collections[name], status=self.statuses.pop(0) if self.statuses else "green")
            return self._ok(info)
        if route == ("PATCH", "collections", name):
            if "hnsw_config" in body:
                self.collections[name]["config"]["hnsw_config"].update(body["hnsw_config"])
            return self._ok(True)
        if route == ("POST", "collections", name, "snapshots"):
            n = len(self.snapshots) + 1
            snap = {
                "name": f"{name}-{n}.snapshot",
                "creation_time": f"2025-01-0{n}T10:00:00",
                "size": 100 * n,
            }
            self.snapshots.append(snap)
            return self._ok(snap)
        if route == ("GET", "collections", name, "snapshots"):
            return self._ok(self.snapshots)
        if route == ("PUT", "collections", name, "snapshots", "recover"):
            return self._ok(True)
        return httpx.Response(400, json={"status": {"error": f"fake: no route {route}"}, "time": 0})

    @staticmethod
    def _ok(result: Any) -> httpx.Response:
        return httpx.Response(200, json={"result": result, "status": "ok", "time": 0.0})


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[QdrantServerStore, FakeQdrant]]:
    server = FakeQdrant()
    client = QdrantClient(
        url="http://qdrant:6333", transport=httpx.MockTransport(server), check_compatibility=False
    )
    with QdrantServerStore(client, meta_dir=tmp_path / "meta", url="http://qdrant:6333") as store:
        yield store, server


def test_server_health_and_info(fake: tuple[QdrantServerStore, FakeQdrant]) -> None:
    store, _ = fake
    health = store.health()
    assert (health.ok, health.version, health.endpoint, health.detail) == (
        True,
        "1.15.1",
        "http://qdrant:6333",
        "1 collection",
    )
    info = store.collection_info("docs")
    assert (info.name, info.points, info.indexed_vectors, info.aliases) == ("docs_v1", 10, 10, ["docs"])
    assert info.hnsw == HnswConfig(m=8, ef_construct=64)


def test_server_errors_are_translated(fake: tuple[QdrantServerStore, FakeQdrant]) -> None:
    store, server = fake
    with pytest.raises(CollectionNotFound, match="collections: docs_v1; aliases: docs -> docs_v1"):
        store.search("gone", [0.1] * DIM, 3)  # the server's 404, with what exists listed
    server.fail = httpx.Response(503, json={"status": {"error": "overloaded"}, "time": 0})
    with pytest.raises(
        ServiceUnavailable, match=r"Qdrant at http://qdrant:6333 answered HTTP 503: overloaded"
    ):
        store.list_collections()
    server.fail = httpx.Response(401, text="Invalid api-key")
    with pytest.raises(ConfigError, match="check QDRANT_API_KEY"):
        store.list_aliases()
    server.fail = httpx.ReadTimeout("slow")
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        store.resolve("docs")
    server.fail = httpx.Response(200, json={"result": "not what the client expects"})
    with pytest.raises(ServiceUnavailable, match="cannot read"):
        store.list_aliases()
    server.fail = httpx.Response(200, text="<html>a proxy's page</html>")
    assert not store.health().ok
    with pytest.raises(ServiceUnavailable, match="not JSON"):
        store.list_aliases()
    server.fail = httpx.Response(429, headers={"Retry-After": "3"}, json={"status": {"error": "slow down"}})
    with pytest.raises(ServiceUnavailable, match="rate limiting"):
        store.list_aliases()


def test_finish_indexing_polls_until_green(fake: tuple[QdrantServerStore, FakeQdrant]) -> None:
    store, server = fake
    server.statuses = ["yellow", "grey", "grey", "yellow"]
    store.finish_indexing("docs", poll_s=0)
    nudges = [r for r in server.requests if r[0] == "PATCH"]
    assert nudges == [
        ("PATCH", "/collections/docs_v1", {"optimizers_config": {}})
    ]  # grey starts optimizers once
    assert server.statuses == []


def test_finish_indexing_gives_up_clearly(fake: tuple[QdrantServerStore, FakeQdrant]) -> None:
    store, server = fake
    server.statuses = ["yellow"] * 5
    with pytest.raises(ServiceUnavailable, match=r"'docs_v1' .* is still yellow after 0 s"):
        store.finish_indexing("docs_v1", timeout_s=0, poll_s=0)
    server.statuses = ["red"]
    with pytest.raises(ServiceUnavailable, match="is red"):
        store.finish_indexing("docs_v1", poll_s=0)


def test_create_collection_and_update_hnsw_requests(fake: tuple[QdrantServerStore, FakeQdrant]) -> None:
    store, server = fake
    store.update_hnsw("docs", HnswConfig(m=32, ef_construct=200, full_scan_threshold=1))
    assert server.requests[-1] == (
        "PATCH",
        "/collections/docs_v1",
        {"hnsw_config": {"m": 32, "ef_construct": 200, "full_scan_threshold": 1}},
    )
    assert store.collection_info("docs_v1").hnsw == HnswConfig(m=32, ef_construct=200, full_scan_threshold=1)
    store.create_collection("new", 384, HnswConfig(m=4, ef_construct=16, full_scan_threshold=1))
    method, path, body = server.requests[-1]
    assert (method, path) == ("PUT", "/collections/new")
    assert body["vectors"] == {"size": 384, "distance": "Cosine"}
    assert body["hnsw_config"] == {"m": 4, "ef_construct": 16, "full_scan_threshold": 1}
    assert body["optimizers_config"] == {"indexing_threshold": 1}


def test_snapshot_round_trip_on_fake(fake: tuple[QdrantServerStore, FakeQdrant], tmp_path: Path) -> None:
    store, server = fake
    first = store.create_snapshot("docs")
    assert (first.collection, first.name, first.created_at) == (
        "docs_v1",
        "docs_v1-1.snapshot",
        "2025-01-01T10:00:00+00:00",
    )
    assert first.aliases == {"docs": "docs_v1"}
    sidecar = tmp_path / "meta" / "snapshots" / "docs_v1" / "docs_v1-1.snapshot.json"
    assert json.loads(sidecar.read_text())["aliases"] == {"docs": "docs_v1"}

    server.collections["docs_v2"] = _collection_info_json(DIM, 3)
    store.set_alias("docs", "docs_v2")
    store.set_alias("old", "docs_v1")
    second = store.create_snapshot("docs_v1")
    assert [s.name for s in store.list_snapshots("docs_v1")] == [second.name, first.name]
    assert store.list_snapshots("docs_v1")[1].aliases == {"docs": "docs_v1"}

    del server.requests[:]
    store.restore_snapshot("old", first.name)
    recover = [r for r in server.requests if r[1].endswith("/snapshots/recover")]
    assert recover == [
        (
            "PUT",
            "/collections/docs_v1/snapshots/recover",
            {
                "location": "http://qdrant:6333/collections/docs_v1/snapshots/docs_v1-1.snapshot",
                "priority": "snapshot",
            },
        )
    ]
    alias_calls = [r for r in server.requests if r[1] == "/collections/aliases"]
    assert alias_calls == [
        (
            "POST",
            "/collections/aliases",
            {
                "actions": [
                    {"delete_alias": {"alias_name": "docs"}},
                    {"create_alias": {"collection_name": "docs_v1", "alias_name": "docs"}},
                ]
            },
        )
    ]  # one request: the move back is atomic
    assert store.list_aliases() == {"docs": "docs_v1", "old": "docs_v1"}

    store.set_alias("docs", "docs_v2")
    store.restore_snapshot("docs_v1", first.name, restore_aliases=False)
    assert store.resolve("docs") == "docs_v2"
    with pytest.raises(InputError, match=r"has no snapshot 'nope\.snapshot'"):
        store.restore_snapshot("docs_v1", "nope.snapshot")


# ---- a real server --------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(
    not os.environ.get("QDRANT_URL"), reason="QDRANT_URL is not set: no Qdrant server to test"
)
class TestLiveServer:
    @pytest.fixture
    def live(self, tmp_path: Path) -> Iterator[tuple[QdrantServerStore, str]]:
        store = QdrantServerStore.connect(
            os.environ["QDRANT_URL"], os.environ.get("QDRANT_API_KEY") or None, 30.0, tmp_path
        )
        prefix = f"ragdeck_test_{uuid.uuid4().hex[:8]}"
        try:
            yield store, prefix
        finally:
            for alias, target in store.list_aliases().items():
                if target.startswith(prefix):
                    store.delete_alias(alias)
            for info in store.list_collections():
                if info.name.startswith(prefix):
                    for snapshot in store.client.list_snapshots(info.name):
                        store.client.delete_snapshot(info.name, snapshot.name)
                    store.delete_collection(info.name)
            store.close()

    def test_health(self, live: tuple[QdrantServerStore, str]) -> None:
        store, _ = live
        health = store.health()
        assert health.ok, health.detail
        assert health.version and health.version != "local-mode"

    def test_snapshot_restore_round_trip(self, live: tuple[QdrantServerStore, str]) -> None:
        store, prefix = live
        name, alias = f"{prefix}_v1", f"{prefix}_alias"
        points = make_points(200)
        store.create_collection(name, DIM, HnswConfig(m=8, ef_construct=64))
        store.upsert(name, points)
        store.finish_indexing(name)
        store.set_alias(alias, name)
        query = np.random.default_rng(3).normal(size=DIM).tolist()
        before = store.search(alias, query, 10, exact=True)

        snapshot = store.create_snapshot(name)
        assert snapshot.aliases[alias] == name
        assert snapshot.name in [s.name for s in store.list_snapshots(name)]

        store.upsert(name, make_points(50, seed=9))  # change contents (ids overlap the first 50)
        store.delete_alias(alias)
        store.restore_snapshot(name, snapshot.name)
        store.finish_indexing(name)

        assert store.list_aliases()[alias] == name
        assert store.collection_info(name).points == 200
        after = store.search(alias, query, 10, exact=True)
        assert [h.id for h in after] == [h.id for h in before]
        assert np.allclose([h.score for h in after], [h.score for h in before], atol=1e-6)

    def test_update_hnsw_changes_reported_config(self, live: tuple[QdrantServerStore, str]) -> None:
        store, prefix = live
        name = f"{prefix}_hnsw"
        store.create_collection(name, DIM, HnswConfig(m=8, ef_construct=64))
        store.upsert(name, make_points(100))
        store.finish_indexing(name)
        assert store.collection_info(name).hnsw.m == 8
        store.update_hnsw(name, HnswConfig(m=24, ef_construct=128))
        store.finish_indexing(name)
        info = store.collection_info(name)
        assert (info.hnsw.m, info.hnsw.ef_construct) == (24, 128)

    def test_lexical_and_hybrid_candidates_survive_a_snapshot(
        self, live: tuple[QdrantServerStore, str]
    ) -> None:
        store, prefix = live
        name = f"{prefix}_lexical"
        points = [
            VectorPoint(
                p.id, p.vector, {**p.payload, "text": f"chunk {i} about {'twemproxy' if i == 7 else 'x'}"}
            )
            for i, p in enumerate(make_points(50))
        ]
        store.create_collection(name, DIM, HnswConfig())
        store.upsert(name, points)
        store.finish_indexing(name)
        assert store.collection_info(name).lexical == "bm25-english-v1"
        query = np.random.default_rng(4).normal(size=DIM).tolist()
        dense, lexical = store.search_both(name, query, "Twemproxy?", 5)
        assert [h.id for h in lexical] == [points[7].id]
        assert [h.id for h in dense] == [h.id for h in store.search(name, query, 5)]
        snapshot = store.create_snapshot(name)
        store.delete_collection(name)
        store.restore_snapshot(name, snapshot.name)
        store.finish_indexing(name)
        assert store.search_both(name, query, "Twemproxy?", 5)[1] == lexical
