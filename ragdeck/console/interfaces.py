"""The seams shared by several capability packages: the vector store by role (``DeclaresCapabilities``,
``VectorSearch``, ``CollectionAdmin``, ``SnapshotStore``, ``VectorStore``), ``Embedder``,
``ChatModel`` (annotation, answering, evaluation) and ``MetricsQuery`` (online, slo).

A Protocol that only one capability needs lives with it, in ``<package>/ports.py`` (``annotation``,
``answering``, ``online``, ``evaluation``, ``retrieval``, ``index_ops``). ``services`` holds the adapters that
satisfy them all and ``console.wiring`` picks one per component from settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ragdeck.services.types import (
    ChatMessage,
    ChatResult,
    CollectionInfo,
    ComponentHealth,
    HnswConfig,
    PayloadFilter,
    ScoredHit,
    SnapshotInfo,
    StoreCapabilities,
    StoredPoint,
    VectorPoint,
)


@runtime_checkable
class DeclaresCapabilities(Protocol):
    """A vector store role: every role carries the store's declared capabilities."""

    @property
    def capabilities(self) -> StoreCapabilities:
        """What this store can do (mode, local snapshot files, index sizes, cluster, ...); read this,
        never probe the store for attributes."""


@runtime_checkable
class VectorSearch(DeclaresCapabilities, Protocol):
    """The read side of a vector store: searches, points, collections and aliases as they are."""

    def list_collections(self) -> list[CollectionInfo]:
        """Every physical collection with counts, HNSW config and the aliases pointing at it."""

    def collection_info(self, name: str) -> CollectionInfo:
        """One collection (an alias is resolved); raises CollectionNotFound."""

    def collection_exists(self, name: str) -> bool:
        """True when ``name`` is a physical collection (aliases do not count)."""

    def list_aliases(self) -> dict[str, str]:
        """Alias -> collection for every alias."""

    def resolve(self, name: str) -> str:
        """The physical collection behind an alias, or ``name`` itself; raises CollectionNotFound."""

    def search(
        self,
        name: str,
        vector: Sequence[float],
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> list[ScoredHit]:
        """Nearest points by cosine similarity, best first; ``name`` may be an alias."""

    def search_lexical(
        self, name: str, text: str, limit: int, *, payload_filter: PayloadFilter | None = None
    ) -> list[ScoredHit]:
        """Points by BM25 score of ``text``, best first; InputError when built without a lexical index."""

    def search_both(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> tuple[list[ScoredHit], list[ScoredHit]]:
        """``(search(...), search_lexical(...))`` of one hybrid query in one call (server: one request)."""

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """Points by chunk id (missing ids are skipped)."""

    def iter_points(
        self, name: str, *, batch_size: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every point of a collection, in batches (for rebuilds and sweeps)."""

    def index_bytes(self, name: str) -> dict[str, int]:
        """Bytes on disk of one collection by part: ``hnsw`` (the graph), ``vectors``, ``total``;
        ConfigError unless ``capabilities.index_sizes`` (Qdrant's server reports no sizes)."""

    def cluster_info(self, name: str) -> dict[str, Any]:
        """Shards, replicas and peers of one collection (an alias is resolved); ConfigError unless
        ``capabilities.cluster`` (the embedded engine is one node with one shard)."""


@runtime_checkable
class CollectionAdmin(DeclaresCapabilities, Protocol):
    """The write side of a vector store: collections, their points and index, and aliases."""

    def create_collection(
        self,
        name: str,
        dimension: int,
        hnsw: HnswConfig,
        *,
        shards: int | None = None,
        replicas: int | None = None,
        lexical: bool = True,
    ) -> None:
        """Create an empty cosine collection (with the BM25 sparse vector unless ``lexical`` is False);
        raises CollectionExists. ``shards`` / ``replicas``: ConfigError unless ``capabilities.sharding``."""

    def delete_collection(self, name: str, *, unless_aliased: bool = False) -> None:
        """Delete a collection and every alias that points at it; raises CollectionNotFound.
        ``unless_aliased``: InputError naming the aliases instead when one points at it."""

    def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points (by chunk id); raises DimensionMismatch on a wrong vector size."""

    def finish_indexing(self, name: str) -> None:
        """Build the HNSW index for everything upserted and make it durable (flush)."""

    def update_hnsw(self, name: str, hnsw: HnswConfig) -> None:
        """Change m / ef_construct and rebuild the index (embedded: in place; server: update_collection)."""

    def set_alias(self, alias: str, collection: str) -> None:
        """Create or move an alias in one atomic step; readers see the old target or the new one."""

    def compare_and_set_alias(
        self,
        alias: str,
        collection: str,
        *,
        expected: str | None,
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        """Move ``alias`` to ``collection`` only if it points at ``expected`` now (None: no alias yet),
        else AliasConflict; ``on_moved`` (the history and audit of the move) runs right after the move,
        before another move can start (embedded: under the aliases lock; server: read back first)."""

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (the collection stays)."""


@runtime_checkable
class SnapshotStore(DeclaresCapabilities, Protocol):
    """Snapshots of collections with the alias mapping of their time; every call raises ConfigError unless
    ``capabilities.snapshots``."""

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Snapshot one collection and record the current alias mapping with it."""

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        """Snapshots of one collection, newest first."""

    def restore_snapshot(
        self,
        name: str,
        snapshot: str,
        *,
        restore_aliases: bool = True,
        expected_aliases: Mapping[str, str | None] | None = None,
        on_restored: Callable[[], None] | None = None,
    ) -> None:
        """Replace the collection's contents with a snapshot and, by default, its recorded aliases; only
        when every alias of ``expected_aliases`` still points where it says (else AliasConflict, nothing
        changed). ``on_restored`` (history, audit) runs right after, before another alias move."""

    def snapshot_path(self, name: str, snapshot: str) -> Path | None:
        """Local file of a snapshot (``capabilities.local_files``), or None when the store keeps it
        remotely."""

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        """Write a snapshot to ``dest`` atomically (embedded: a copy of its tar; server: streamed)."""


@runtime_checkable
class VectorStore(VectorSearch, CollectionAdmin, SnapshotStore, Protocol):
    """Collections of vectors with payloads, aliases and snapshots (embedded engine or Qdrant server): every
    role, plus health and lifetime. Type a function with the one role it needs when that is enough."""

    mode: str  # "embedded" | "server" (the same as ``capabilities.mode``)

    def health(self) -> ComponentHealth:
        """Whether the store answers, with its version and endpoint."""

    def close(self) -> None:
        """Release files and connections."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length dense vectors (sentence-transformers in process, or TEI)."""

    mode: str  # "local" | "server"
    model_name: str
    path: Path | None  # the model directory of an in-process model; None for a server

    @property
    def dimension(self) -> int:
        """Vector size."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages; returns float32 array of shape (len(texts), dimension)."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns float32 array of shape (dimension,)."""

    def health(self) -> ComponentHealth:
        """Whether the embedder answers, with its model and dimension."""


class FeedbackLog(Protocol):
    """Votes on answers, one per response id (``services.feedback_log`` in SQLite, ``feedback_redis``)."""

    def add(
        self, response_id: str, policy: str, vote: str, comment: str | None = None, *, ts: float | None = None
    ) -> str | None:
        """Record the vote on ``response_id``, replacing an earlier one; the vote it replaced, or None."""

    def vote(self, response_id: str) -> str | None:
        """The vote kept for ``response_id``, or None."""

    def counts(self) -> dict[tuple[str, str], int]:
        """(policy, vote) -> number of votes."""

    def prune(self, older_than_s: float, *, now: float | None = None) -> int:
        """Delete votes older than ``older_than_s`` seconds; how many."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class ChatModel(Protocol):
    """Chat completions from an OpenAI-compatible server (vLLM in production, llama.cpp locally)."""

    mode: str  # "server" | "local"
    model_name: str

    def chat(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> ChatResult:
        """One completion for ``messages``; raises ServiceUnavailable when the server fails."""

    def health(self) -> ComponentHealth:
        """Whether the server answers, with the model it serves."""


@runtime_checkable
class MetricsQuery(Protocol):
    """Instant PromQL queries (``services.prometheus.PrometheusReader``)."""

    def by_labels(self, promql: str, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        """The query's series keyed by the values of ``labels``."""

    def range_values(self, promql: str, start: float, end: float, step_s: float) -> list[tuple[float, float]]:
        """The first series of a range query as (Unix time, value) points."""
