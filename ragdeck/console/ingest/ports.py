"""What ingestion needs from outside: ``IngestStore``, the vector store roles an ingest uses, and
``IngestJournal``, the markers of ingests in progress (``services.ingest_markers.IngestMarkers``; built by
``console.wiring.build_ingest_journal``)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ragdeck.console.interfaces import CollectionAdmin, VectorSearch

__all__ = ["IngestJournal", "IngestStore"]


@runtime_checkable
class IngestStore(VectorSearch, CollectionAdmin, Protocol):
    """What ``ingest`` needs of a vector store: reads (does the collection exist, its dimension) and
    collection writes (create, upsert, index, alias, delete on failure). No snapshots."""


@runtime_checkable
class IngestJournal(Protocol):
    """One marker per collection an ingest is building: host, pid, started_at, created (whether that
    ingest created the collection, so a partial one may be deleted)."""

    def put(self, collection: str, marker: dict[str, Any]) -> None:
        """Record (or replace) the marker of ``collection``."""

    def get(self, collection: str) -> dict[str, Any] | None:
        """The marker of ``collection``, or None."""

    def remove(self, collection: str) -> None:
        """Forget the marker of ``collection``."""
