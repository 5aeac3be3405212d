"""Snapshots of embedded collections, which the engine can restore but not create: a flushed, closed shard
directory tarred with GNU tar (sparse), beside a JSON file with its ``SnapshotInfo``, the collection's
meta.json and the alias mapping at that moment (Qdrant does not restore aliases from a snapshot)::

    <root>/snapshots/<collection>/<snapshot>.tar (+ .json)

Restoring unpacks and opens the snapshot next to the live collection before swapping the directories by
``rename``, so a failed restore leaves the live collection as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from qdrant_edge import EdgeShard

from ragdeck.errors import ConfigError, InputError, RagdeckError
from ragdeck.services.common import check_name, write_json_atomic
from ragdeck.services.files import atomic_path, copy_file_atomic
from ragdeck.services.qdrant_embedded._shards import now, read_json, remove_tree, swapped
from ragdeck.services.qdrant_embedded.catalog import Catalog
from ragdeck.services.types import SnapshotInfo

_MAX_SNAPSHOT_NAME = 240
_SIDECAR_FIX = "restore it from a backup, or delete the snapshot's .tar and .json and take a new snapshot"


def _incomplete(tar: Path, sidecar: Path) -> InputError:
    """A snapshot with its tar but not its record (or the other way round): named, with what to do."""
    have, missing = (tar, sidecar) if tar.is_file() else (sidecar, tar)
    what = "metadata file" if missing is sidecar else "tar file"
    return InputError(
        f"snapshot '{tar.stem}' is incomplete: {have} is there but its {what} {missing.name} is missing "
        f"(an interrupted snapshot, or a file deleted by hand); restore {missing.name} from a backup, or "
        f"delete {have} and take a new snapshot"
    )


def _read_info(sidecar: Path) -> SnapshotInfo:
    """The ``SnapshotInfo`` a snapshot's record holds; RagdeckError naming the file when it is damaged."""
    data = read_json(sidecar, _SIDECAR_FIX)
    try:
        if not isinstance(data["meta"], dict):
            raise TypeError("meta is not an object")
        return SnapshotInfo(
            name=str(data["name"]),
            collection=str(data["collection"]),
            created_at=str(data["created_at"]),
            size_bytes=int(data["size_bytes"]),
            aliases={str(k): str(v) for k, v in dict(data.get("aliases", {})).items()},
        )
    except KeyError as exc:
        raise RagdeckError(
            f"{sidecar} is not a snapshot record (no {exc.args[0]!r}); {_SIDECAR_FIX}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise RagdeckError(f"{sidecar} is not a snapshot record ({exc}); {_SIDECAR_FIX}") from None


class Snapshots(Catalog):
    """Create, list, locate and restore snapshots (see the module docstring)."""

    def _snapshot_collection(self, name: str) -> str:
        """The collection whose snapshots ``name`` means: itself, an alias's target, or a deleted one."""
        check_name(name)
        if self._exists(name):
            return name
        return self._read_aliases().get(name, name)

    def _snapshot_files(self, collection: str, snapshot: str) -> tuple[Path, Path]:
        check_name(snapshot, "snapshot")
        folder = self._snapshot_dir(collection)
        tar, sidecar = folder / f"{snapshot}.tar", folder / f"{snapshot}.json"
        if tar.is_file() != sidecar.is_file():
            raise _incomplete(tar, sidecar)
        if not tar.is_file():
            have = ", ".join(s.name for s in self.list_snapshots(collection)) or "none"
            raise InputError(
                f"no snapshot '{snapshot}' of collection '{collection}' (snapshots: {have}); "
                f"pick one of these or create one first"
            )
        return tar, sidecar

    def create_snapshot(self, name: str) -> SnapshotInfo:
        """Flush and close the shard, tar it (GNU tar, sparse) and record the alias mapping with it."""
        collection = self.resolve(name)
        tar_bin = shutil.which("tar")
        if tar_bin is None:
            raise ConfigError("GNU tar is needed for snapshots of the embedded store; install tar")
        folder = self._snapshot_dir(collection)
        folder.mkdir(parents=True, exist_ok=True)
        slot = self._slot(collection)
        with slot.lock:
            self._ensure_open(collection, slot)  # StoreBusy if another process holds it
            assert slot.meta is not None
            meta = dict(slot.meta)
            self._release(slot)
            while True:  # a name no snapshot of this collection has yet
                created = now()
                snapshot = f"{collection}-{created:%Y%m%dT%H%M%S%f}"
                if len(snapshot) > _MAX_SNAPSHOT_NAME:
                    raise InputError(
                        f"collection name '{collection[:40]}...' is too long to name a snapshot file; "
                        f"copy it to a collection with a name under 218 characters to snapshot it"
                    )
                if not ((folder / f"{snapshot}.json").exists() or (folder / f"{snapshot}.tar").exists()):
                    break
            final = folder / f"{snapshot}.tar"
            done = False
            try:
                shard_dir = self._collection_dir(collection) / "shard"
                with atomic_path(final) as tmp:
                    proc = subprocess.run(
                        [tar_bin, "--sparse", "-cf", str(tmp), "-C", str(shard_dir), "."],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if proc.returncode != 0:
                        raise RagdeckError(
                            f"tar failed while snapshotting '{collection}': {proc.stderr.strip()}; "
                            f"check free disk space under {folder}"
                        )
                info = SnapshotInfo(
                    name=snapshot,
                    collection=collection,
                    created_at=created.isoformat(),
                    size_bytes=final.stat().st_size,
                    aliases=self.list_aliases(),
                )
                write_json_atomic(folder / f"{snapshot}.json", {**asdict(info), "meta": meta})
                done = True
            finally:
                if not done:
                    with contextlib.suppress(FileNotFoundError):
                        final.unlink()
        return info

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        """Snapshots of one collection, newest first (an alias is resolved; a deleted one's are kept).

        A snapshot missing its tar or its metadata file raises InputError naming both; a damaged metadata
        file raises RagdeckError naming it: neither is skipped silently.
        """
        folder = self._snapshot_dir(self._snapshot_collection(name))
        if not folder.is_dir():
            return []
        out = []
        names = {
            p.stem for p in folder.iterdir() if p.suffix in (".tar", ".json") and not p.name.startswith(".")
        }
        for name in names:
            tar, sidecar = folder / f"{name}.tar", folder / f"{name}.json"
            if not (tar.is_file() and sidecar.is_file()):
                raise _incomplete(tar, sidecar)
            out.append(_read_info(sidecar))
        out.sort(key=lambda s: (s.created_at, s.name), reverse=True)
        return out

    def snapshot_path(self, name: str, snapshot: str) -> Path | None:
        """The snapshot's tar file; raises InputError when there is no such snapshot."""
        tar, _sidecar = self._snapshot_files(self._snapshot_collection(name), snapshot)
        return tar

    def download_snapshot(self, name: str, snapshot: str, dest: Path) -> Path:
        """Copy the snapshot's tar file to ``dest`` atomically; raises InputError when there is none."""
        tar, _sidecar = self._snapshot_files(self._snapshot_collection(name), snapshot)
        return copy_file_atomic(tar, dest)

    def restore_snapshot(
        self,
        name: str,
        snapshot: str,
        *,
        restore_aliases: bool = True,
        expected_aliases: Mapping[str, str | None] | None = None,
        on_restored: Callable[[], None] | None = None,
    ) -> None:
        """Replace the collection (recreating a deleted one) with a snapshot, and re-point its aliases.

        The snapshot is unpacked and opened next to the live collection first; only then, under the
        aliases lock, are ``expected_aliases`` checked (AliasConflict when one moved, nothing changed),
        the directories swapped, the aliases re-pointed and ``on_restored`` (history, audit) called, so
        a failure leaves the live collection as it was.
        """
        collection = self._snapshot_collection(name)
        tar, sidecar = self._snapshot_files(collection, snapshot)
        _read_info(sidecar)  # a damaged record is named before anything is touched
        recorded = read_json(sidecar, _SIDECAR_FIX)
        meta = recorded["meta"]
        repoint = {a: collection for a, c in dict(recorded.get("aliases", {})).items() if c == collection}
        clash = sorted(a for a in repoint if a != collection and self._exists(a))
        if restore_aliases and clash:
            raise InputError(
                f"cannot restore aliases {', '.join(clash)}: collections now have those names; "
                f"delete them or restore with restore_aliases=False"
            )
        live = self._collection_dir(collection)
        work, trash = self._scratch("restore"), self._scratch("trash")
        slot = self._slot(collection)
        with slot.lock:
            try:
                if self._exists(collection):
                    self._claim(collection, slot)  # StoreBusy if another process holds it
                work.mkdir()
                try:
                    EdgeShard.unpack_snapshot(str(tar), str(work / "shard"))
                except Exception as exc:
                    raise RagdeckError(
                        f"snapshot '{snapshot}' cannot be unpacked ({exc}); pick another snapshot"
                    ) from exc
                self._load(collection, work / "shard").close()  # prove it opens before swapping
                write_json_atomic(work / "meta.json", meta)
                with self._alias_txn() as mapping:
                    self._expect_aliases(mapping, dict(expected_aliases or {}))
                    with swapped(live, work, trash):
                        pass  # the swap is the restore; the aliases follow it
                    if restore_aliases and repoint:
                        mapping.update(repoint)
                        self._write_aliases(mapping)
                    if on_restored is not None:
                        on_restored()
            finally:
                remove_tree(work)
                remove_tree(trash)
