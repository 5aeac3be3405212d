"""Collections and aliases on top of the engine, which has neither: create, list, describe and delete
collections (one shard directory and a meta.json each), set, move, delete and resolve aliases (one
aliases.json), and the store's health.

A collection appears and disappears by ``rename`` of its whole directory and aliases.json is replaced
atomically, so a reader sees the old state or the new one, with the server's semantics (an alias never
shares a collection's name; deleting a collection deletes the aliases pointing at it).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from qdrant_edge import CountRequest, EdgeShard, Filter, HasVectorCondition

from ragdeck.errors import CollectionExists, CollectionNotFound, ConfigError, InputError, RagdeckError
from ragdeck.services.common import aliased_error, check_hnsw, check_name, is_valid_name, write_json_atomic
from ragdeck.services.lexical import LEXICAL_MODEL, LEXICAL_VECTOR
from ragdeck.services.qdrant_embedded._convert import (
    DISTANCE,
    INDEXING_THRESHOLD_KB,
    edge_config,
    hnsw_from_meta,
)
from ragdeck.services.qdrant_embedded._shards import ShardRoot, disk_bytes, now, remove_tree
from ragdeck.services.types import CollectionInfo, ComponentHealth, HnswConfig


class Catalog(ShardRoot):
    """The collections and aliases of an embedded store (see the module docstring)."""

    # ------------------------------------------------------------------ aliases

    def list_aliases(self) -> dict[str, str]:
        """Alias -> collection for every alias."""
        return dict(sorted(self._aliases().items()))

    def set_alias(self, alias: str, collection: str) -> None:
        """Create or move ``alias`` to ``collection`` with one atomic replace of aliases.json."""
        check_name(alias, "alias")
        check_name(collection)
        with self._alias_txn() as mapping:
            self._check_alias_target(mapping, alias, collection)
            mapping[alias] = collection

    def compare_and_set_alias(
        self,
        alias: str,
        collection: str,
        *,
        expected: str | None,
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        """Move ``alias`` to ``collection`` only if it points at ``expected`` now (None: no alias yet),
        else AliasConflict; the compare, the move and ``on_moved`` (history, audit) run under one lock
        across processes. When ``on_moved`` fails the alias is put back and its error raised."""
        check_name(alias, "alias")
        check_name(collection)
        with self._alias_txn() as mapping:
            self._expect_aliases(mapping, {alias: expected})
            self._check_alias_target(mapping, alias, collection)
            before = dict(mapping)
            mapping[alias] = collection
            self._write_aliases(mapping)
            if on_moved is not None:
                try:
                    on_moved()
                except BaseException:
                    self._write_aliases(before)
                    raise

    def _check_alias_target(self, mapping: dict[str, str], alias: str, collection: str) -> None:
        if self._exists(alias):
            raise InputError(
                f"'{alias}' is a collection, so it cannot also be an alias; pick another alias name"
            )
        if not self._exists(collection):
            if collection in mapping:
                raise CollectionNotFound(
                    f"'{collection}' is an alias (of '{mapping[collection]}'), not a collection; "
                    f"point '{alias}' at a collection"
                )
            raise self._not_found(collection)

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (the collection stays); raises CollectionNotFound for an unknown alias."""
        check_name(alias, "alias")
        with self._alias_txn() as mapping:
            if alias not in mapping:
                known = ", ".join(sorted(mapping)) or "none"
                raise CollectionNotFound(f"no alias named '{alias}' (aliases: {known})")
            del mapping[alias]

    def resolve(self, name: str) -> str:
        """The collection behind an alias, or ``name`` itself; raises CollectionNotFound.

        Reads no file for a collection whose shard this process holds, nor aliases.json unless it changed
        (``_aliases``); the alias mapping is consulted before the disk, since no alias shares a collection's
        name (every writer refuses it under the aliases lock)."""
        if self._is_open(check_name(name)):
            return name
        try:
            target = self._aliases().get(name)
        except RagdeckError:  # a damaged aliases.json: collections are still found by name
            if self._exists(name):
                return name
            raise
        if target is None:
            if self._exists(name):
                return name
            raise self._not_found(name)
        if self._is_collection(target):
            return target
        raise CollectionNotFound(
            f"alias '{name}' points at '{target}', which no longer exists; "
            f"point it at another collection or delete it"
        )

    # ------------------------------------------------------------------ collections

    def health(self) -> ComponentHealth:
        """Whether the root is usable, with the qdrant-edge-py version and the root as endpoint."""
        try:
            version: str | None = importlib.metadata.version("qdrant-edge-py")
        except importlib.metadata.PackageNotFoundError:
            version = None
        ok = self._collections_dir.is_dir() and os.access(self._collections_dir, os.W_OK)
        if ok:
            detail = f"qdrant-edge shards under {self.root} ({len(self._collection_names())} collections)"
        else:
            detail = f"{self.root} is missing or not writable; set RAGDECK_DATA_DIR to a writable directory"
        return ComponentHealth(
            component="vector store",
            mode=self.mode,
            ok=ok,
            detail=detail,
            version=version,
            endpoint=str(self.root),
        )

    def collection_exists(self, name: str) -> bool:
        """True when ``name`` is a physical collection (aliases do not count)."""
        return is_valid_name(name) and self._exists(name)

    def list_collections(self) -> list[CollectionInfo]:
        """Every collection, sorted by name, with counts, HNSW settings and aliases."""
        out = []
        for name in self._collection_names():
            with contextlib.suppress(CollectionNotFound):  # deleted meanwhile
                out.append(self._info(name))
        return out

    def collection_info(self, name: str) -> CollectionInfo:
        """One collection (an alias is resolved); raises CollectionNotFound."""
        return self._info(self.resolve(name))

    def _info(self, name: str) -> CollectionInfo:
        with self._open(name) as slot:
            assert slot.shard is not None and slot.meta is not None
            info = slot.shard.info()
            meta = slot.meta
            disk = disk_bytes(self._collection_dir(name))
            sparse = 0  # the engine counts sparse vectors as indexed vectors too: only dense ones count here
            if meta.get("lexical"):
                has_lexical = Filter(must=[HasVectorCondition(LEXICAL_VECTOR)])
                sparse = int(slot.shard.count(CountRequest(filter=has_lexical, exact=True)))
        points, indexed = int(info.points_count), int(info.indexed_vectors_count) - sparse
        dimension = int(meta["dimension"])
        below_threshold = points * dimension * 4 <= INDEXING_THRESHOLD_KB * 1024
        aliases = sorted(a for a, c in self._aliases().items() if c == name)
        return CollectionInfo(
            name=name,
            dimension=dimension,
            distance=str(meta.get("distance", DISTANCE)),
            points=points,
            indexed_vectors=indexed,
            hnsw=hnsw_from_meta(meta),
            aliases=aliases,
            status="green" if indexed >= points or below_threshold else "yellow",
            segments=int(info.segments_count),
            disk_bytes=disk,
            lexical=meta.get("lexical"),
        )

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
        """Create an empty cosine collection, with the BM25 sparse vector ``lexical`` unless ``lexical`` is
        False; raises CollectionExists (or InputError for an alias name). ``shards`` / ``replicas`` raise
        ConfigError: the engine is one node with one shard."""
        if shards or replicas:
            raise ConfigError(
                "shards and replicas need a Qdrant server (set QDRANT_URL); the embedded engine has one shard"
            )
        final = self._collection_dir(name)
        if not isinstance(dimension, int) or dimension < 1:
            raise InputError(f"invalid vector dimension {dimension!r} for '{name}': use a positive integer")
        check_hnsw(hnsw)
        meta = {
            "dimension": dimension,
            "distance": DISTANCE,
            "hnsw": asdict(hnsw),
            "created_at": now().isoformat(),
        }
        if lexical:
            meta["lexical"] = LEXICAL_MODEL
        work = self._scratch("create")
        try:
            with self._alias_txn() as mapping:  # no alias may take the name while we create it
                if name in mapping:
                    raise InputError(
                        f"'{name}' is an alias (of '{mapping[name]}'); a collection cannot share its name: "
                        f"pick another name or delete the alias"
                    )
                if final.exists():
                    hint = "" if self._exists(name) else " (its directory has no meta.json: remove it)"
                    raise CollectionExists(
                        f"collection '{name}' already exists{hint}; pick a new name or delete it first"
                    )
                work.mkdir()
                EdgeShard.create(str(work / "shard"), edge_config(dimension, hnsw, lexical)).close()
                write_json_atomic(work / "meta.json", meta)
                try:
                    os.rename(work, final)
                except OSError as exc:
                    raise CollectionExists(
                        f"collection '{name}' already exists; pick a new name or delete it first"
                    ) from exc
        finally:
            remove_tree(work)

    def cluster_info(self, name: str) -> dict[str, Any]:
        """ConfigError: the embedded engine has no cluster (``capabilities.cluster`` is False)."""
        raise ConfigError(
            f"the cluster view of '{name}' needs a Qdrant server (set QDRANT_URL); the embedded engine is "
            f"one node with one shard"
        )

    def delete_collection(self, name: str, *, unless_aliased: bool = False) -> None:
        """Delete a collection, its handle and every alias pointing at it; raises CollectionNotFound.
        ``unless_aliased``: InputError instead when an alias points at it (checked under the aliases lock,
        in the same step as the delete)."""
        live = self._collection_dir(name)
        if not self._exists(name):
            aliases = self._read_aliases()
            if name in aliases:
                raise CollectionNotFound(
                    f"'{name}' is an alias of '{aliases[name]}', not a collection; delete the alias, "
                    f"or the collection '{aliases[name]}'"
                )
            raise self._not_found(name)
        slot = self._slot(name)
        trash = self._scratch("trash")
        with slot.lock:
            self._claim(name, slot)  # StoreBusy if another process holds it
            try:
                with self._alias_txn() as mapping:
                    pointing = [a for a, c in mapping.items() if c == name]
                    if pointing and unless_aliased:
                        raise aliased_error(name, pointing)
                    os.rename(live, trash)
                    for alias in pointing:
                        del mapping[alias]
            finally:
                remove_tree(trash)
