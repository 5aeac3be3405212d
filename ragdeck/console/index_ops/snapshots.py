"""Snapshots of a version: create (with the alias mapping recorded next to it, since Qdrant does not restore
aliases from a snapshot), list, download (the embedded tar, or streamed from the Qdrant server) and restore
(replace or recreate the collection and put its recorded aliases back). Changes need the operator role."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING

from ragdeck.console import audit
from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.swap import expect_live, refused
from ragdeck.console.interfaces import SnapshotStore
from ragdeck.console.roles import User, require
from ragdeck.errors import AliasConflict, CollectionNotFound
from ragdeck.services.types import SnapshotInfo

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog


def snapshot_rows(snaps: list[SnapshotInfo]) -> list[dict[str, object]]:
    """Flat rows for a table: snapshot, created, bytes, aliases (the recorded mapping as JSON)."""
    return [
        {"snapshot": s.name, "created": s.created_at, "bytes": s.size_bytes, "aliases": json.dumps(s.aliases)}
        for s in snaps
    ]


class SnapshotOps:
    """Snapshots of the catalog's versions."""

    def __init__(self, catalog: VersionCatalog, log: AuditLog) -> None:
        self.catalog = catalog
        self.log = log

    @property
    def store(self) -> SnapshotStore:
        """The catalog's store in the one role this unit needs (alias reads go through the catalog's)."""
        return self.catalog.store

    def snapshots(self, collection: str | None = None) -> list[SnapshotInfo]:
        """Snapshots of one collection (default: the live one), newest first."""
        target = collection or self.catalog.live()
        return [] if target is None else self.store.list_snapshots(target)

    def create_snapshot(self, user: User, collection: str | None = None) -> SnapshotInfo:
        """Snapshot a collection (default: the live one) with the alias mapping recorded next to it."""
        target = collection or self.catalog.live()
        require(user, "snapshot.create", target=target or self.catalog.alias, log=self.log)
        if target is None:
            raise CollectionNotFound(
                f"alias '{self.catalog.alias}' does not exist: name the collection to snapshot"
            )
        info = self.store.create_snapshot(target)
        audit.record(user, "snapshot.create", target, after=asdict(info), log=self.log)
        return info

    def local_snapshot(self, collection: str, snapshot: str) -> Path | None:
        """The snapshot's file on this machine (embedded store), or None when the server keeps it."""
        return self.store.snapshot_path(collection, snapshot)

    def download_snapshot(self, collection: str, snapshot: str, dest: Path | None = None) -> Path:
        """Copy a snapshot to ``dest``: the embedded tar, or streamed from the Qdrant server. No ``dest``: its
        own name (``NAME.tar`` for the embedded store) in the working directory; a folder: that name inside
        it, as ``cp`` does. Returns the file written."""
        name = Path(snapshot + (".tar" if self.store.capabilities.local_files else ""))
        dest = name if dest is None else Path(dest)
        if dest.is_dir():
            dest = dest / name
        return self.store.download_snapshot(collection, snapshot, dest)

    def restore_snapshot(
        self,
        user: User,
        collection: str,
        snapshot: str,
        *,
        restore_aliases: bool = True,
        expected: str | EllipsisType | None = ...,
        reason: str = "",
    ) -> None:
        """Replace (or recreate) ``collection`` from a snapshot and put its recorded aliases back.

        ``expected`` is the live version the caller showed or read (``...``: the one live now); when the
        alias moved since, AliasConflict and nothing is restored. A restore that moves the alias is kept
        in its history, in the same step as the move.
        """
        require(user, "snapshot.restore", target=collection, log=self.log)
        alias, registry = self.catalog.alias, self.catalog.registry
        aliases = self.catalog.store.list_aliases
        try:
            current = expect_live(self.catalog, expected)
        except AliasConflict as exc:
            refused(user, "snapshot.restore", alias, exc, log=self.log)
            raise
        before = aliases()

        def record() -> None:
            after = aliases()
            if registry.version(collection) is not None:
                registry.update_version(collection, status="ready")
            moved_to = after.get(alias)
            if moved_to is not None and moved_to != current:
                registry.add_event(
                    alias=alias,
                    action="snapshot.restore",
                    from_collection=current,
                    to_collection=moved_to,
                    actor=user.name,
                    reason=f"restored {collection} from {snapshot}" + (f": {reason}" if reason else ""),
                )
            audit.record(
                user,
                "snapshot.restore",
                collection,
                before={"aliases": before},
                after={"snapshot": snapshot, "aliases": after},
                reason=reason,
                log=self.log,
            )

        try:
            self.store.restore_snapshot(
                collection,
                snapshot,
                restore_aliases=restore_aliases,
                expected_aliases={alias: current},
                on_restored=record,
            )
        except AliasConflict as exc:
            refused(user, "snapshot.restore", alias, exc, log=self.log)
            raise
