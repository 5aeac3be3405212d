"""What ingestion needs from outside besides the vector store and the embedder: ``IngestJournal``, the
markers of ingests in progress (``services.ingest_markers.IngestMarkers``; built by
``console.wiring.build_ingest_journal``)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["IngestJournal"]


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
