"""``IndexOps``: the index operations on one alias of one store, the units of this package composed so a
front holds one object (``ops.rebuild``, ``ops.gate``, ``ops.swap``, ``ops.rollback``, ``ops.prune``,
``ops.create_snapshot`` ...). Each method is the unit's own (see ``catalog``, ``rebuild``, ``gate``,
``swap``, ``rollback``, ``snapshots``). The store, registry and audit log are handed in: build one with
``ragdeck.console.wiring.build_index_ops(settings, stack)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.gate import GateOps
from ragdeck.console.index_ops.ports import IndexRegistry, IndexStore
from ragdeck.console.index_ops.rebuild import RebuildOps
from ragdeck.console.index_ops.records import DEFAULT_MAX_REGRESSION, STALE_AFTER_S
from ragdeck.console.index_ops.rollback import RollbackOps
from ragdeck.console.index_ops.snapshots import SnapshotOps
from ragdeck.console.index_ops.swap import SwapOps

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog

__all__ = ["DEFAULT_MAX_REGRESSION", "IndexOps"]


class IndexOps:
    """Index operations on one alias of one store (see the module docstring)."""

    def __init__(
        self,
        store: IndexStore,
        registry: IndexRegistry,
        *,
        alias: str,
        log: AuditLog,
        serving_model: str | Callable[[], str] | None = None,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.log = log
        self.catalog = VersionCatalog(store, registry, alias)
        self.rebuilds = RebuildOps(self.catalog, log, stale_after_s=stale_after_s)
        self.gates = GateOps(self.catalog, log)
        self.swaps = SwapOps(self.catalog, log, serving_model=serving_model)
        self.rollbacks = RollbackOps(self.catalog, log)
        self.snapshot_ops = SnapshotOps(self.catalog, log)
        # reading
        self.live = self.catalog.live
        self.history = self.catalog.history
        self.rollback_target = self.catalog.rollback_target
        self.versions = self.catalog.versions
        self.version = self.catalog.version
        self.next_name = self.catalog.next_name
        self.cluster = self.catalog.cluster
        # rebuild, gate, swap, rollback and retention
        self.rebuild = self.rebuilds.rebuild
        self.interrupted = self.rebuilds.interrupted
        self.resume = self.rebuilds.resume
        self.cleanup = self.rebuilds.cleanup
        self.gate = self.gates.gate
        self.swap = self.swaps.swap
        self.rollback = self.rollbacks.rollback
        self.retention_plan = self.rollbacks.retention_plan
        self.prune = self.rollbacks.prune
        # snapshots
        self.snapshots = self.snapshot_ops.snapshots
        self.create_snapshot = self.snapshot_ops.create_snapshot
        self.local_snapshot = self.snapshot_ops.local_snapshot
        self.download_snapshot = self.snapshot_ops.download_snapshot
        self.restore_snapshot = self.snapshot_ops.restore_snapshot

    @property
    def store(self) -> IndexStore:
        """The vector store the versions live in."""
        return self.catalog.store

    @property
    def registry(self) -> IndexRegistry:
        """Where versions and alias moves are recorded."""
        return self.catalog.registry

    @property
    def alias(self) -> str:
        """The serving alias."""
        return self.catalog.alias
