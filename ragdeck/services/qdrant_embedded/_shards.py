"""Where an embedded store's files are and who holds its shards: the root's paths, the process-wide registry
of open shard handles (one per collection directory, each with its own lock), aliases.json read and
replaced under a lock (and kept in memory until it changes), and the plain-file helpers the other modules
share.

The engine allows one open handle per shard directory per process, so handles live here, not in a store
object: several store objects on the same root share them, and a shard held by another process raises
``StoreBusy`` once ``busy_timeout_s`` has passed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from qdrant_edge import EdgeConfig, EdgeShard

from ragdeck.errors import AliasConflict, CollectionNotFound, ConfigError, RagdeckError, StoreBusy
from ragdeck.services.common import check_name, is_valid_name, write_json_atomic
from ragdeck.services.inputs import parse_json
from ragdeck.services.types import StoreCapabilities

_BUSY_MARK = "WouldBlock"  # what the engine says when another process holds the shard's WAL lock


@dataclass
class Slot:
    """The one open handle of a collection directory in this process, and the lock that guards it."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    shard: EdgeShard | None = None
    meta: dict[str, Any] | None = None  # meta.json as read when the handle was opened
    writes: int = 0  # point writes through this handle's slot (an in-place rebuild checks it before its swap)
    rebuilding: bool = False  # an in-place HNSW rebuild is under way


# Process-wide: the engine allows one handle per shard directory per process, whatever the store object.
_SLOTS: dict[str, Slot] = {}
_SLOTS_GUARD = threading.Lock()
_ALIAS_LOCK = threading.Lock()  # serialises aliases.json read-modify-write inside this process
_RACY_NS = 1_000_000_000  # an aliases.json younger than this when read is read again (see ``_aliases``)


# ------------------------------------------------------------------ plain files


def now() -> datetime:
    return datetime.now(UTC)


def read_json(path: Path, fix: str = "restore it from a backup or delete it") -> Any:
    """A JSON state file's content; RagdeckError naming the file and saying ``fix`` when it is a folder,
    cannot be read, is not UTF-8 or not valid JSON (``services.inputs.parse_json``: deep nesting and
    overlong numbers included). FileNotFoundError is left to the caller (missing often means "none yet")."""
    try:
        return parse_json(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise RagdeckError(f"{path} is a folder, not a file; {fix}") from None
    except OSError as exc:
        raise RagdeckError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from None
    except UnicodeDecodeError as exc:
        raise RagdeckError(f"{path} is not UTF-8 text (byte {exc.start}); {fix}") from None
    except json.JSONDecodeError as exc:
        raise RagdeckError(f"{path} is not valid JSON ({exc}); {fix}") from None


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (the engine's files are sparse: apparent sizes overstate)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def remove_tree(path: Path) -> None:
    """Remove a directory or file if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def swapped(live: Path, new: Path, aside: Path) -> Iterator[None]:
    """Move ``live`` (if there) to ``aside`` and ``new`` into its place, by ``rename``; when that or the
    body fails, put both back."""
    had_live = live.exists()
    if had_live:
        os.rename(live, aside)
    try:
        os.rename(new, live)
        try:
            yield
        except BaseException:
            os.rename(live, new)
            raise
    except BaseException:
        if had_live:
            os.rename(aside, live)
        raise


# ------------------------------------------------------------------ the store's root


class ShardRoot:
    """Paths, handles and aliases.json of an embedded store under ``root`` (the constructor's arguments are
    described on ``EmbeddedQdrantStore``); the store's other modules build on it."""

    mode: str = "embedded"
    capabilities = StoreCapabilities(
        mode="embedded",
        local_files=True,
        index_sizes=True,
        cluster=False,
        snapshots=True,
        sharding=False,
        hnsw=True,
        native_fusion=True,
    )

    def __init__(self, root: Path, *, busy_timeout_s: float = 2.0, upsert_batch_size: int = 512) -> None:
        self.root = Path(root)
        self.busy_timeout_s = busy_timeout_s
        self.upsert_batch_size = max(1, int(upsert_batch_size))
        try:
            (self.root / "collections").mkdir(parents=True, exist_ok=True)
            (self.root / "snapshots").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the embedded vector store at {self.root}: {exc}; "
                f"set RAGDECK_DATA_DIR to a writable directory"
            ) from exc
        self._used: set[str] = set()
        self._used_guard = threading.Lock()
        # Resolved once: a slot's key is this plus the collection's name (names hold no "/" and ragdeck
        # makes collection directories by rename, never as links).
        self._real_collections = os.path.realpath(self.root / "collections")
        self._aliases_file = str(self.root / "aliases.json")  # stat once per resolve: no Path built
        self._slots: dict[str, Slot] = {}  # name -> its slot in the process-wide registry, once looked up
        self._alias_cache: tuple[tuple[int, ...] | None, dict[str, str]] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ paths and names

    @property
    def _collections_dir(self) -> Path:
        return self.root / "collections"

    @property
    def _aliases_path(self) -> Path:
        return self.root / "aliases.json"

    def _collection_dir(self, name: str) -> Path:
        return self._collections_dir / check_name(name)

    def _snapshot_dir(self, collection: str) -> Path:
        return self.root / "snapshots" / check_name(collection)

    def _scratch(self, kind: str) -> Path:
        """A new hidden directory name beside the collections (``.create-…``, ``.trash-…``, …)."""
        return self._collections_dir / f".{kind}-{uuid.uuid4().hex}"

    def _exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self._real_collections, name, "meta.json"))

    def _is_open(self, name: str) -> bool:
        """Whether this process holds the collection's shard open, so that it exists: no other process can
        remove or replace it then (it would need the shard's WAL lock: ``StoreBusy``), and this process
        releases the handle before it does either."""
        slot = self._slots.get(name)
        return slot is not None and slot.shard is not None

    def _is_collection(self, name: str) -> bool:
        """``_exists`` without touching the disk when the collection's shard is open (``_is_open``)."""
        return self._is_open(name) or self._exists(name)

    def _collection_names(self) -> list[str]:
        try:
            entries = os.listdir(self._collections_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in entries if not n.startswith(".") and self._exists(n))

    def _not_found(self, name: str) -> CollectionNotFound:
        names = self._collection_names()
        aliases = self._read_aliases()
        have = ", ".join(names) if names else "none"
        alias_text = ", ".join(f"{a} -> {c}" for a, c in sorted(aliases.items())) or "none"
        return CollectionNotFound(
            f"no collection or alias named '{name}' (collections: {have}; aliases: {alias_text}); "
            f"ingest a corpus into it first or pick one of these"
        )

    # ------------------------------------------------------------------ aliases.json

    def _read_aliases(self) -> dict[str, str]:
        """aliases.json as {alias: collection}; {} when there is none. A damaged one (a folder, not JSON, not
        an object of names) raises RagdeckError naming it and what to do; the store never guesses aliases."""
        path = self._aliases_path
        fix = (
            "restore it from a backup, or move it aside and point the aliases again "
            "(`ragdeck index swap`, `ragdeck ingest --alias`); the collections themselves are intact"
        )
        try:
            data = read_json(path, fix)
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise RagdeckError(f"{path} is not an alias mapping (a JSON object); {fix}")
        bad = next((k for k, v in data.items() if not (is_valid_name(k) and is_valid_name(v))), None)
        if bad is not None:
            raise RagdeckError(
                f"{path}: entry {bad[:60]!r} is not 'alias': 'collection' with valid names; {fix}"
            )
        return dict(data)

    def _aliases(self) -> dict[str, str]:
        """aliases.json as ``_read_aliases`` reads it, cached in memory until the file changes (do not
        modify the mapping returned).

        Every writer replaces the file with ``os.replace``, in this process or another (``ragdeck index
        swap`` while the console runs), so a change shows in its ``os.stat``: a new inode, mtime, ctime or
        size. One ``stat`` per call instead of a read and a JSON parse. A file changed less than
        ``_RACY_NS`` before it was read is not trusted (read again next time), as git treats "racily
        clean" files: within one tick of the file system's coarse clock, a third write could reuse an
        inode with the same size and timestamp and look unchanged."""
        try:
            st = os.stat(self._aliases_file)
            signature: tuple[int, ...] | None = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:  # none yet, or unreadable: the reader says which
            signature = None
        cached = self._alias_cache
        if cached is not None and signature is not None and cached[0] == signature:
            return cached[1]
        mapping = self._read_aliases()
        settled = signature is not None and time.time_ns() - signature[2] > _RACY_NS
        self._alias_cache = (signature, mapping) if settled else None
        return mapping

    @contextlib.contextmanager
    def _alias_txn(self) -> Iterator[dict[str, str]]:
        """Exclusive read-modify-write of aliases.json (thread lock + fcntl lock across processes).

        Yields the current mapping; change it in place and it is written back atomically on exit.
        """
        with _ALIAS_LOCK, open(self.root / "aliases.lock", "a+b") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                mapping = self._read_aliases()
                before = dict(mapping)
                yield mapping
                if mapping != before:
                    self._write_aliases(mapping)
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _write_aliases(self, mapping: dict[str, str]) -> None:
        """Replace aliases.json atomically; call inside ``_alias_txn``."""
        write_json_atomic(self._aliases_path, dict(sorted(mapping.items())))

    def _expect_aliases(self, mapping: dict[str, str], expected: dict[str, str | None]) -> None:
        """AliasConflict unless every alias of ``expected`` points where it says (None: no alias, or one
        whose collection is gone); call inside ``_alias_txn`` so the check and the change are one step."""
        for alias, want in expected.items():
            actual = mapping.get(alias)
            if actual is not None and not self._exists(actual):
                actual = None
            if actual != want:
                raise AliasConflict(alias, want, actual)

    # ------------------------------------------------------------------ handles

    def _slot(self, name: str) -> Slot:
        slot = self._slots.get(name)
        if slot is not None:
            return slot
        key = os.path.join(self._real_collections, check_name(name))
        with _SLOTS_GUARD:
            slot = _SLOTS.get(key)
            if slot is None:
                slot = _SLOTS[key] = Slot()
        with self._used_guard:
            self._used.add(key)
            self._slots[name] = slot
        return slot

    def _load(self, name: str, shard_dir: Path, config: EdgeConfig | None = None) -> EdgeShard:
        """Open a shard, retrying while another process holds it, then ``StoreBusy``."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return EdgeShard.load(str(shard_dir), config)
            except Exception as exc:
                if _BUSY_MARK not in str(exc):
                    raise RagdeckError(
                        f"cannot open collection '{name}' at {shard_dir}: {exc}; "
                        f"restore it from a snapshot or delete and rebuild it"
                    ) from exc
                if time.monotonic() >= deadline:
                    raise StoreBusy(
                        f"collection '{name}' is open in another ragdeck process (is the console "
                        f"running?); stop it, or point both at a Qdrant server with QDRANT_URL"
                    ) from exc
                time.sleep(0.05)

    def _ensure_open(self, name: str, slot: Slot) -> EdgeShard:
        """The slot's handle, opened if needed; call with ``slot.lock`` held."""
        if slot.shard is None:
            if not self._exists(name):
                raise self._not_found(name)
            meta = read_json(self._collection_dir(name) / "meta.json")
            slot.shard = self._load(name, self._collection_dir(name) / "shard")
            slot.meta = meta
        return slot.shard

    def _claim(self, name: str, slot: Slot) -> None:
        """Make sure no other process holds the shard, then close ours; call with ``slot.lock`` held.

        A shard that fails to open for any other reason (damaged files) is let through, so that it
        can still be deleted or restored from a snapshot.
        """
        try:
            self._ensure_open(name, slot)
        except StoreBusy:
            raise
        except RagdeckError:
            pass
        self._release(slot, flush=False)

    @staticmethod
    def _release(slot: Slot, *, flush: bool = True) -> None:
        """Flush and close the slot's handle; call with ``slot.lock`` held."""
        shard, slot.shard, slot.meta = slot.shard, None, None
        if shard is not None:
            try:
                if flush:
                    shard.flush()
            finally:
                shard.close()

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[Slot]:
        """Hold the collection's lock with its handle open (``slot.shard``, ``slot.meta``)."""
        slot = self._slot(name)
        with slot.lock:
            self._ensure_open(name, slot)
            yield slot

    def close(self) -> None:
        """Flush and close every handle this store opened (another store object reopens lazily)."""
        with self._used_guard:
            keys, self._used = list(self._used), set()
            self._slots = {}
        errors: list[BaseException] = []
        for key in keys:
            with _SLOTS_GUARD:
                slot = _SLOTS.get(key)
            if slot is None:
                continue
            with slot.lock:
                try:
                    self._release(slot)
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise RagdeckError(f"closing the embedded vector store failed: {errors[0]}") from errors[0]
