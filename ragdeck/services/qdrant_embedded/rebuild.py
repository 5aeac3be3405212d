"""The HNSW index of an embedded collection: rebuild it in place with new settings while searches go on
(``update_hnsw``), and measure it on disk (``index_bytes``).

The shard is copied to ``<root>/collections/.rebuild-<token>/`` (``cp --sparse``), the copy is re-indexed
by the child program ``python -m ragdeck.services.qdrant_embedded.build_index`` (the engine holds the GIL
while it builds), and the directories are swapped by ``rename``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ragdeck.errors import CollectionNotFound, ConfigError, RagdeckError, StoreBusy
from ragdeck.services.common import check_hnsw, write_json_atomic
from ragdeck.services.qdrant_embedded._shards import Slot, disk_bytes, read_json, remove_tree, swapped
from ragdeck.services.qdrant_embedded.catalog import Catalog
from ragdeck.services.types import HnswConfig

# The child program (not imported here: importing it in the parent package would load it twice in the child).
BUILD_INDEX_MODULE = "ragdeck.services.qdrant_embedded.build_index"


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a shard directory, keeping the engine's sparse files sparse (a Python copy writes them out)."""
    cp = shutil.which("cp")
    if cp is None:
        raise ConfigError("the cp command is needed to rebuild an embedded index in place; install coreutils")
    proc = subprocess.run(
        [cp, "-a", "--sparse=always", str(source), str(target)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RagdeckError(
            f"copying {source} failed: {proc.stderr.strip()}; check free disk space under {target.parent}"
        )


def build_index_command(shard_dir: Path, dimension: int, hnsw: HnswConfig, lexical: bool) -> list[str]:
    """The command line of the child program that builds ``shard_dir``'s index with ``hnsw``."""
    args = [dimension, hnsw.m, hnsw.ef_construct, hnsw.full_scan_threshold, int(lexical)]
    return [sys.executable, "-m", BUILD_INDEX_MODULE, str(shard_dir), *map(str, args)]


def _build_index(shard_dir: Path, dimension: int, hnsw: HnswConfig, lexical: bool) -> None:
    """Open a (closed) shard directory with ``hnsw`` and build its index, in a child process."""
    proc = subprocess.run(
        build_index_command(shard_dir, dimension, hnsw, lexical), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise RagdeckError(
            f"building the new HNSW index in {shard_dir} failed ({tail}); the old index is unchanged: "
            f"check free disk space and memory, then retry"
        )


class IndexRebuild(Catalog):
    """``update_hnsw`` and ``index_bytes`` (see the module docstring)."""

    def update_hnsw(self, name: str, hnsw: HnswConfig) -> None:
        """Rebuild the collection's HNSW index with new settings, in place, while searches go on.

        The shard is flushed and copied (``cp --sparse``; the lock is held only for the copy), the copy is
        opened with the new settings and re-indexed (``optimize``) in a child process (the engine holds
        the GIL while it builds, which would stall this process's searches), and then, under the lock, the
        old handle is closed, the directories are swapped by ``rename`` and the new shard opened. Searches
        wait only for the copy and the swap, never for the build. Points written during the build
        would be missing from the copy, so the swap is refused (``StoreBusy``, old index unchanged) when
        any were; a second rebuild of the same collection at once is refused too.
        """
        check_hnsw(hnsw)
        collection = self.resolve(name)
        slot = self._slot(collection)
        live = self._collection_dir(collection)
        work = self._scratch("rebuild")
        with slot.lock:
            if slot.rebuilding:
                raise StoreBusy(
                    f"the HNSW index of '{collection}' is already being rebuilt; wait for it to finish"
                )
            slot.rebuilding = True
        try:
            with slot.lock:
                self._ensure_open(collection, slot).flush()
                assert slot.meta is not None
                meta = {**slot.meta, "hnsw": asdict(hnsw)}
                writes = slot.writes
                work.mkdir()
                _copy_tree(live / "shard", work / "shard")
            _build_index(work / "shard", int(meta["dimension"]), hnsw, bool(meta.get("lexical")))
            with slot.lock:
                if not self._exists(collection):
                    raise CollectionNotFound(
                        f"collection '{collection}' was deleted while its HNSW index was rebuilt"
                    )
                if slot.writes != writes:
                    raise StoreBusy(
                        f"points of '{collection}' were written while its HNSW index was rebuilt, so the "
                        f"new index would miss them; the old index is unchanged: retry when writes stop"
                    )
                self._swap_shard(collection, slot, work, meta)
        finally:
            with slot.lock:
                slot.rebuilding = False
            remove_tree(work)

    def _swap_shard(self, collection: str, slot: Slot, work: Path, meta: dict[str, Any]) -> None:
        """Replace the live shard by ``work/shard`` and its meta.json; call with ``slot.lock`` held.

        On any failure the old shard and meta.json are put back (and reopened on next use).
        """
        live = self._collection_dir(collection)
        old_meta = read_json(live / "meta.json")
        self._release(slot)
        try:
            with swapped(live / "shard", work / "shard", work / "old"):
                write_json_atomic(live / "meta.json", meta)
                slot.shard, slot.meta = self._load(collection, live / "shard"), meta
        except BaseException:
            write_json_atomic(live / "meta.json", old_meta)
            raise

    def index_bytes(self, name: str) -> dict[str, int]:
        """Bytes allocated on disk by one collection, by part: ``hnsw`` (the graph files under
        ``segments/*/vector_index/``: what m and ef_construct change), ``vectors`` (``vector_storage``),
        ``total`` (the whole collection directory, WAL and payloads included)."""
        collection = self.resolve(name)
        with self._open(collection):
            shard = self._collection_dir(collection) / "shard"
            parts = {"hnsw": 0, "vectors": 0}
            for segment in (shard / "segments").glob("*"):
                parts["hnsw"] += disk_bytes(segment / "vector_index")
                parts["vectors"] += disk_bytes(segment / "vector_storage")
            return {**parts, "total": disk_bytes(self._collection_dir(collection))}
