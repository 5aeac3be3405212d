"""What stands behind one alias, read from the vector store and the index registry: the live version, every
version (recorded ones and collections named like one that ragdeck did not build), the alias history, the
rollback target, the next free name and the cluster layout. The other units change things; the catalog
only records a version ragdeck did not build when a gate is kept with it (``adopt``)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from ragdeck.console.index_ops.ports import IndexRegistry, IndexStore
from ragdeck.console.index_ops.records import IndexVersion, iso, version_number
from ragdeck.errors import CollectionNotFound, InputError, StoreBusy
from ragdeck.services.types import CollectionInfo

NOT_BUILT = "(not built by ragdeck)"  # who made a version found in the store but not in the registry


class VersionCatalog:
    """The versions of ``alias`` in ``store``, with what ``registry`` recorded about them."""

    def __init__(self, store: IndexStore, registry: IndexRegistry, alias: str) -> None:
        self.store = store
        self.registry = registry
        self.alias = alias

    def live(self) -> str | None:
        """The collection the alias serves from, or None when the alias does not exist."""
        try:
            return self.store.resolve(self.alias)
        except CollectionNotFound:
            return None

    def history(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """Alias moves newest first: id, time, action, from, to, actor, reason."""
        rows = self.registry.events(self.alias, limit)
        return [{**row, "time": iso(row["at"])} for row in rows]

    def rollback_target(self) -> str | None:
        """The collection the last move to the live version came from, if it still exists."""
        current = self.live()
        for event in self.registry.events(self.alias, None):
            if event["to_collection"] == current:
                previous = event["from_collection"]
                if previous and previous != current and self.store.collection_exists(previous):
                    return previous
                return None
        return None

    def physical(self) -> dict[str, CollectionInfo | None]:
        """Collections named ``{alias}_v{N}`` with their info (None when another process holds them)."""
        try:
            return {
                c.name: c
                for c in self.store.list_collections()
                if version_number(c.name, self.alias) is not None
            }
        except StoreBusy:  # another process holds a shard: names only
            names = [r["collection"] for r in self.registry.versions(self.alias)]
            return {n: None for n in names if self.store.collection_exists(n)}

    def versions(self, *, include_deleted: bool = False) -> list[IndexVersion]:
        """Every version: recorded ones and collections named like a version that ragdeck did not build."""
        physical = self.physical()
        live, previous = self.live(), self.rollback_target()
        out: dict[str, IndexVersion] = {}
        for row in self.registry.versions(self.alias):
            if row["status"] == "deleted" and not include_deleted:
                continue
            info = physical.get(row["collection"])
            out[row["collection"]] = IndexVersion.from_row(
                row, exists=row["collection"] in physical, points=info.points if info else None
            )
        for name, info in physical.items():
            if name not in out:
                out[name] = IndexVersion(
                    collection=name,
                    alias=self.alias,
                    version=version_number(name, self.alias) or 0,
                    status="ready",
                    created_at="",
                    created_by=NOT_BUILT,
                    spec={"hnsw": asdict(info.hnsw), "dimension": info.dimension} if info else {},
                    points=info.points if info else None,
                )
        for item in out.values():
            item.live = item.collection == live
            item.rollback_target = item.collection == previous
        return sorted(out.values(), key=lambda v: v.version, reverse=True)

    def version(self, collection: str) -> IndexVersion:
        """One version (recorded or not); InputError naming the versions there are."""
        for item in self.versions(include_deleted=True):
            if item.collection == collection:
                return item
        have = ", ".join(v.collection for v in self.versions()) or "none"
        raise InputError(f"no index version '{collection}' behind alias '{self.alias}' (versions: {have})")

    def next_name(self) -> str:
        """The next free ``{alias}_v{N}``: above every recorded version and every existing collection."""
        taken = [r["version"] for r in self.registry.versions(self.alias)]
        n = max(taken, default=0) + 1
        while self.store.collection_exists(f"{self.alias}_v{n}"):
            n += 1
        return f"{self.alias}_v{n}"

    def adopt(
        self, collection: str, *, created_by: str = NOT_BUILT, spec: dict[str, Any] | None = None
    ) -> None:
        """Record a version the registry lacks: one ragdeck did not build (e.g. a plain ingest), so a gate
        can be kept with it, or, with ``created_by`` and ``spec``, one it built another way (the demo)."""
        if self.registry.version(collection) is not None:
            return
        info = self.store.collection_info(collection)
        self.registry.add_version(
            {
                "collection": collection,
                "alias": self.alias,
                "version": version_number(collection, self.alias) or 0,
                "status": "ready",
                "created_by": created_by,
                "spec": {**(spec or {}), "hnsw": asdict(info.hnsw), "dimension": info.dimension},
                "points": info.points,
                "finished_at": time.time(),
            }
        )

    def cluster(self, collection: str | None = None) -> dict[str, Any] | None:
        """Shards, replicas and peers of a collection (default: the live one) on a Qdrant server; None
        for the embedded engine (one node, one shard)."""
        target = collection or self.live()
        if target is None or not self.store.capabilities.cluster:
            return None
        return self.store.cluster_info(target)
