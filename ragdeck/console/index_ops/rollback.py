"""Rollback and retention. ``rollback`` points the alias back at the version the last move came from (or at
a named one) in one atomic step; ``prune`` keeps the newest N versions, never the live one, its rollback
target or a rebuild in progress or interrupted, and deletes the rest only when called with ``confirm``."""

from __future__ import annotations

from types import EllipsisType
from typing import TYPE_CHECKING

from ragdeck.console import audit
from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.records import AliasMove
from ragdeck.console.index_ops.swap import expect_live, move_alias, refused
from ragdeck.console.roles import User, require
from ragdeck.errors import AliasConflict, CollectionNotFound, InputError

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog

KEPT_STATUSES = ("building", "interrupted")  # a rebuild someone may still resume


class RollbackOps:
    """Roll the catalog's alias back, and prune its old versions."""

    def __init__(self, catalog: VersionCatalog, log: AuditLog) -> None:
        self.catalog = catalog
        self.log = log

    def rollback(
        self,
        user: User,
        *,
        reason: str = "",
        to: str | None = None,
        expected: str | EllipsisType | None = ...,
    ) -> AliasMove:
        """Point the alias back at the version the last move came from (or at ``to``).

        ``expected`` is the live version the caller showed or read (``...``: the one live now); when the
        alias no longer points at it, AliasConflict and nothing changes.
        """
        alias = self.catalog.alias
        require(user, "index.rollback", target=alias, log=self.log)
        try:
            current = expect_live(self.catalog, expected)
        except AliasConflict as exc:
            refused(user, "index.rollback", alias, exc, log=self.log)
            raise
        target = to or self.catalog.rollback_target()
        if target is None:
            raise InputError(
                f"nothing to roll back to: no earlier version of '{alias}' is recorded and still exists "
                "(give one with --to)"
            )
        if not self.catalog.store.collection_exists(target):
            raise CollectionNotFound(
                f"cannot roll back to '{target}': it no longer exists (restore a snapshot)"
            )
        if target == current:
            raise InputError(f"'{target}' is already live behind '{alias}'")
        row = self.catalog.registry.version(target)
        if row is not None and row["status"] != "ready":
            raise InputError(f"'{target}' is {row['status']}, not ready: pick a finished version")
        return move_alias(
            self.catalog, user, "index.rollback", target, current, reason.strip(), {}, log=self.log
        )

    def retention_plan(self, keep: int) -> list[str]:
        """What ``prune(keep)`` deletes: all but the newest ``keep``; never live, previous or a rebuild."""
        if keep < 1:
            raise InputError(f"keep must be at least 1, got {keep}")
        existing = [v for v in self.catalog.versions() if v.exists]
        protected = {
            v.collection for v in existing if v.live or v.rollback_target or v.status in KEPT_STATUSES
        }
        newest = {v.collection for v in sorted(existing, key=lambda v: v.version, reverse=True)[:keep]}
        return [v.collection for v in existing if v.collection not in protected | newest]

    def prune(self, user: User, keep: int, *, confirm: bool = False) -> list[str]:
        """Delete the versions of ``retention_plan(keep)`` when ``confirm``; without it, only list them."""
        plan = self.retention_plan(keep)
        if not confirm or not plan:
            return plan
        require(user, "index.delete", target=self.catalog.alias, log=self.log)
        for name in plan:
            self.catalog.store.delete_collection(name)
            if self.catalog.registry.version(name) is not None:
                self.catalog.registry.update_version(name, status="deleted")
            audit.record(
                user, "index.delete", name, reason=f"retention: keep the newest {keep}", log=self.log
            )
        return plan
