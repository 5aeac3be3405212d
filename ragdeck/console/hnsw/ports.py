"""What HNSW tuning needs from outside: ``TuningStore``, the vector store roles a sweep and applying use,
and ``SweepLog``, where sweeps and their measured points are kept so a partial sweep survives a restart.

``services.hnsw_sweeps.SqliteSweepLog`` satisfies ``SweepLog``; ``console.wiring.build_sweep_log`` builds it
and the fronts hand it to ``start_sweep_job``. Every vector store adapter satisfies ``TuningStore``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ragdeck.console.interfaces import CollectionAdmin, VectorSearch

__all__ = ["SweepLog", "TuningStore"]


@runtime_checkable
class TuningStore(VectorSearch, CollectionAdmin, Protocol):
    """Searches and collection writes: a sweep searches the live index and builds temporary copies;
    applying rebuilds a collection's index. No snapshots."""


@runtime_checkable
class SweepLog(Protocol):
    """Sweeps and their measured points, kept as they are measured (``services.hnsw_sweeps``, SQLite).

    A sweep row: sweep_id, collection, status (``running``, ``partial``, ``done``), created_at, updated_at,
    created_by, host, pid (the process that runs or last ran it), planned, elapsed_s, request (a JSON
    object), error; ``get`` adds queries (bytes) and points, ``sweeps`` and ``get`` add measured (a count).
    """

    def create(
        self,
        sweep_id: str,
        *,
        collection: str,
        request: dict[str, Any],
        queries: bytes,
        planned: int,
        created_by: str,
    ) -> None:
        """Record a new sweep, running in this process."""

    def claim(self, sweep_id: str) -> None:
        """Mark a recorded sweep running again, in this process (its resume)."""

    def add_point(
        self, sweep_id: str, m: int, ef_construct: int, ef: int, result: dict[str, Any], *, elapsed_s: float
    ) -> None:
        """Keep one measured configuration's figures and the sweep's seconds so far."""

    def finish(self, sweep_id: str, status: str, *, elapsed_s: float, error: str | None = None) -> None:
        """Record how a run of the sweep ended (``done`` or ``partial``)."""

    def get(self, sweep_id: str) -> dict[str, Any] | None:
        """One sweep with its queries and its measured points (sorted by m, ef_construct, ef), or None."""

    def sweeps(self, *, collection: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Sweep rows newest first, without queries and points."""

    def delete(self, sweep_id: str) -> None:
        """Forget a sweep and its points."""
