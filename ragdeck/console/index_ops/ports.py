"""What index operations need from outside: ``IndexStore``, the vector store roles they use, and
``IndexRegistry``, the index versions and alias moves.

``services.index_registry`` satisfies ``IndexRegistry``, every vector store adapter ``IndexStore``;
``console.wiring.build_index_ops`` hands both to ``IndexOps``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ragdeck.console.interfaces import CollectionAdmin, SnapshotStore, VectorSearch

__all__ = ["IndexRegistry", "IndexStore"]


@runtime_checkable
class IndexStore(VectorSearch, CollectionAdmin, SnapshotStore, Protocol):
    """Every vector store role, without health and lifetime (the stack's): versions are read, built,
    swapped, pruned, snapshotted and restored."""


@runtime_checkable
class IndexRegistry(Protocol):
    """Index versions and alias moves (``services.index_registry.SqliteIndexRegistry``, SQLite).

    A version row: collection, alias, version, status, created_at, created_by, spec, corpus_hash, points,
    host, pid, heartbeat_at, progress, gate, cleared_by_run, error (JSON fields decoded).
    """

    def add_version(self, row: dict[str, Any]) -> None:
        """Insert a version row (a new collection, or one replacing a deleted row)."""

    def update_version(self, collection: str, *, durable: bool = True, **fields: Any) -> None:
        """Change some fields of a version row (``durable=False``: a heartbeat that may be lost)."""

    def version(self, collection: str) -> dict[str, Any] | None:
        """One version row, or None."""

    def versions(self, alias: str | None = None, *, status: str | None = None) -> list[dict[str, Any]]:
        """Version rows, newest version first, filtered by alias and status."""

    def add_event(
        self,
        *,
        alias: str,
        action: str,
        from_collection: str | None,
        to_collection: str,
        actor: str,
        reason: str,
        pending: bool = False,
    ) -> int:
        """Record one alias move (swap, rollback, restore); its id. ``pending``: written before the move,
        owned by this process, until ``settle_event``."""

    def settle_event(self, event_id: int, *, moved: bool) -> bool:
        """Mark a pending move done (``moved``) or delete it (it never happened); whether anything changed."""

    def events(
        self, alias: str, limit: int | None = 100, *, state: str | None = None
    ) -> list[dict[str, Any]]:
        """Alias moves newest first: id, alias, at, action, from_collection, to_collection, actor, reason,
        state ('pending' or 'done'), host and pid (of a pending move's process)."""
