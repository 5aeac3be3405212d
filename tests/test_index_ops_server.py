"""Index operations in server mode: shards and replicas chosen at rebuild reach Qdrant's create request;
the cluster view (shards, replicas, peers) comes from Qdrant's distributed API (on a fake of its REST API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from test_store_server import DIM, FakeQdrant

from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.errors import InputError
from ragdeck.services.audit_log import SqliteAuditLog
from ragdeck.services.index_registry import SqliteIndexRegistry
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig

CLUSTER = {
    "status": "enabled",
    "peer_id": 1,
    "peers": {"1": {"uri": "http://qdrant-0:6335/"}, "2": {"uri": "http://qdrant-1:6335/"}},
    "raft_info": {
        "term": 3,
        "commit": 40,
        "pending_operations": 0,
        "leader": 1,
        "role": "Leader",
        "is_voter": True,
    },
    "consensus_thread_status": {"consensus_thread_status": "working", "last_update": "2025-01-01T10:00:00Z"},
    "message_send_failures": {},
}
LAYOUT = {
    "peer_id": 1,
    "shard_count": 2,
    "local_shards": [{"shard_id": 0, "points_count": 6, "state": "Active"}],
    "remote_shards": [
        {"shard_id": 0, "peer_id": 2, "state": "Active"},
        {"shard_id": 1, "peer_id": 2, "state": "Partial"},
    ],
    "shard_transfers": [],
}


class ClusterFake(FakeQdrant):
    """The fake Qdrant plus its distributed API (two peers, two shards, two replicas)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = tuple(request.url.path.strip("/").split("/"))
        if request.method == "GET" and parts == ("cluster",):
            return self._ok(CLUSTER)
        if (
            request.method == "GET"
            and len(parts) == 3
            and parts[0] == "collections"
            and parts[2] == "cluster"
        ):
            return self._ok(LAYOUT)
        if request.method == "GET" and len(parts) == 4 and parts[2] == "snapshots":
            if any(snap["name"] == parts[3] for snap in self.snapshots):
                self.requests.append((request.method, request.url.path, None))
                return httpx.Response(200, content=b"SNAPSHOT-BYTES:" + parts[3].encode() * 1000)
            return httpx.Response(404, json={"status": {"error": "not found"}, "time": 0})
        return super().__call__(request)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[QdrantServerStore, ClusterFake]]:
    fake = ClusterFake()
    client = QdrantClient(
        url="http://qdrant:6333", transport=httpx.MockTransport(fake), check_compatibility=False
    )
    with QdrantServerStore(client, meta_dir=tmp_path / "meta", url="http://qdrant:6333") as store:
        yield store, fake


def test_shards_and_replicas_reach_the_create_request(server: tuple[QdrantServerStore, ClusterFake]) -> None:
    store, fake = server
    store.create_collection("docs_v2", DIM, HnswConfig(m=8), shards=2, replicas=2)
    body: dict[str, Any] = next(b for m, p, b in fake.requests if m == "PUT" and p == "/collections/docs_v2")
    assert (body["shard_number"], body["replication_factor"]) == (2, 2)
    store.create_collection("docs_v3", DIM, HnswConfig(m=8))
    body = next(b for m, p, b in fake.requests if m == "PUT" and p == "/collections/docs_v3")
    assert body.get("shard_number") is None and body.get("replication_factor") is None


def test_cluster_view(server: tuple[QdrantServerStore, ClusterFake], tmp_path: Path) -> None:
    store, _ = server
    ops = IndexOps(
        store, SqliteIndexRegistry(tmp_path / "state.sqlite3"), alias="docs",
        log=SqliteAuditLog(tmp_path / "state.sqlite3"),
    )  # fmt: skip
    view = ops.cluster()
    assert view is not None and view["collection"] == "docs_v1" and view["cluster"] == "enabled"
    assert view["peers"] == [
        {"peer_id": 1, "uri": "http://qdrant-0:6335/"},
        {"peer_id": 2, "uri": "http://qdrant-1:6335/"},
    ]
    assert view["shards"] == [
        {"shard_id": 0, "peer_id": 1, "state": "Active", "points": 6},
        {"shard_id": 0, "peer_id": 2, "state": "Active", "points": None},
        {"shard_id": 1, "peer_id": 2, "state": "Partial", "points": None},
    ]


def test_embedded_store_has_no_cluster_and_refuses_shards(
    data_dir: Path, tmp_path: Path, local_embedder
) -> None:
    from ragdeck.console.ingest.chunking import ChunkingConfig
    from ragdeck.console.roles import Role, User
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ops = IndexOps(
        store, SqliteIndexRegistry(tmp_path / "state.sqlite3"), alias="rag_chunks",
        log=SqliteAuditLog(tmp_path / "state.sqlite3"),
    )  # fmt: skip
        assert ops.cluster() is None
        with pytest.raises(InputError, match="need a Qdrant server"):
            ops.rebuild(
                User("olga", Role.OPERATOR),
                tmp_path,
                local_embedder,
                chunking=ChunkingConfig(),
                hnsw=HnswConfig(),
                shards=2,
            )


def test_download_a_server_snapshot(server: tuple[QdrantServerStore, ClusterFake], tmp_path: Path) -> None:
    store, fake = server
    ops = IndexOps(
        store, SqliteIndexRegistry(tmp_path / "state.sqlite3"), alias="docs",
        log=SqliteAuditLog(tmp_path / "state.sqlite3"),
    )  # fmt: skip
    info = store.create_snapshot("docs")
    assert ops.local_snapshot("docs_v1", info.name) is None  # the server keeps it
    path = ops.download_snapshot("docs_v1", info.name, tmp_path / "copy.snapshot")
    assert path.read_bytes() == b"SNAPSHOT-BYTES:" + info.name.encode() * 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert ("GET", f"/collections/docs_v1/snapshots/{info.name}") in [(m, p) for m, p, _ in fake.requests]
    with pytest.raises(InputError, match="no snapshot 'nope'"):
        ops.download_snapshot("docs_v1", "nope", tmp_path / "x")
