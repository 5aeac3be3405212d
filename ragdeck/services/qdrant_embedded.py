"""The embedded vector store: Qdrant's own shard engine (qdrant-edge-py) in this process.

qdrant-edge has shards, not collections, aliases or snapshots; this adapter adds them with plain files::

    <root>/collections/<name>/shard/        one EdgeShard directory per collection
    <root>/collections/<name>/meta.json     dimension, distance, HNSW settings, lexical model, created_at
    <root>/aliases.json                     {alias: collection}
    <root>/snapshots/<collection>/<snapshot>.tar (+ .json: SnapshotInfo and the alias mapping)
    <root>/collections/.rebuild-<token>/    the copy an in-place HNSW rebuild builds (removed after)

Every JSON file is replaced atomically (temp file, fsync, ``os.replace``) and collection directories appear
and disappear by ``rename``, so a reader sees either the old state or the new one. The engine allows one open
handle per shard directory per process; handles live in a process-wide registry (one per collection
directory, each with its own lock), so several store objects on the same root share them, and a shard held
by another process raises ``StoreBusy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HasVectorCondition,
    HnswIndexConfig,
    MatchValue,
    Modifier,
    Point,
    Query,
    QueryRequest,
    ScrollRequest,
    SearchParams,
    SearchRequest,
    SparseVector,
    UpdateOperation,
)

from ragdeck.errors import (
    CollectionExists,
    CollectionNotFound,
    ConfigError,
    DimensionMismatch,
    InputError,
    RagdeckError,
    StoreBusy,
)
from ragdeck.services.common import (
    check_batch_size,
    check_hnsw,
    check_name,
    dimension_mismatch,
    in_order,
    is_valid_name,
    scored_hit,
    stored_point,
    write_json_atomic,
)
from ragdeck.services.files import atomic_path
from ragdeck.services.lexical import LEXICAL_MODEL, LEXICAL_VECTOR, encoder, lexical_text, no_lexical_index
from ragdeck.services.types import (
    CollectionInfo,
    ComponentHealth,
    HnswConfig,
    PayloadFilter,
    ScoredHit,
    SnapshotInfo,
    StoredPoint,
    VectorPoint,
    point_uuid,
)

__all__ = ["EmbeddedQdrantStore"]

_INDEXING_THRESHOLD_KB = 1  # index every segment larger than 1 KB once optimize() runs (0 would disable it)
_DEFAULT_SEGMENTS = 2
_DISTANCE = "Cosine"
_BUSY_MARK = "WouldBlock"  # what the engine says when another process holds the shard's WAL lock


@dataclass
class _Slot:
    """The one open handle of a collection directory in this process, and the lock that guards it."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    shard: EdgeShard | None = None
    meta: dict[str, Any] | None = None  # meta.json as read when the handle was opened
    writes: int = 0  # point writes through this handle's slot (an in-place rebuild checks it before its swap)
    rebuilding: bool = False  # an in-place HNSW rebuild is under way


# Process-wide: the engine allows one handle per shard directory per process, whatever the store object.
_SLOTS: dict[str, _Slot] = {}
_SLOTS_GUARD = threading.Lock()
_ALIAS_LOCK = threading.Lock()  # serialises aliases.json read-modify-write inside this process


def _now() -> datetime:
    return datetime.now(UTC)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RagdeckError(
            f"{path} is not valid JSON ({exc}); restore it from a backup or delete it"
        ) from exc


def _disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (the engine's files are sparse: apparent sizes overstate)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


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


_BUILD_SCRIPT = """
import sys
from ragdeck.services.qdrant_embedded import EdgeShard, _edge_config
from ragdeck.services.types import HnswConfig
path, dimension, m, ef_construct, full_scan, lexical = sys.argv[1], *map(int, sys.argv[2:7])
shard = EdgeShard.load(path, _edge_config(dimension, HnswConfig(m, ef_construct, full_scan), bool(lexical)))
shard.optimize()
shard.flush()
shard.close()
"""


def _build_index(shard_dir: Path, dimension: int, hnsw: HnswConfig, lexical: bool) -> None:
    """Open a (closed) shard directory with ``hnsw`` and build its index, in a child process."""
    args = [
        str(shard_dir),
        str(dimension),
        str(hnsw.m),
        str(hnsw.ef_construct),
        str(hnsw.full_scan_threshold),
        str(int(lexical)),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise RagdeckError(
            f"building the new HNSW index in {shard_dir} failed ({tail}); the old index is unchanged: "
            f"check free disk space and memory, then retry"
        )


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _hnsw_from_meta(meta: dict[str, Any]) -> HnswConfig:
    h = meta["hnsw"]
    return HnswConfig(
        m=int(h["m"]), ef_construct=int(h["ef_construct"]), full_scan_threshold=int(h["full_scan_threshold"])
    )


def _edge_config(dimension: int, hnsw: HnswConfig, lexical: bool) -> EdgeConfig:
    return EdgeConfig(
        vectors=EdgeVectorParams(size=dimension, distance=Distance.Cosine),
        sparse_vectors={LEXICAL_VECTOR: EdgeSparseVectorParams(modifier=Modifier.Idf)} if lexical else None,
        hnsw_config=HnswIndexConfig(
            m=hnsw.m, ef_construct=hnsw.ef_construct, full_scan_threshold=hnsw.full_scan_threshold
        ),
        optimizers=EdgeOptimizersConfig(
            indexing_threshold=_INDEXING_THRESHOLD_KB, default_segment_number=_DEFAULT_SEGMENTS
        ),
    )


def _match_value(value: str | int | bool) -> MatchValue:
    # Trap: qdrant-edge reads a Python bool as the integer 0/1 (bool is an int subclass), so
    # MatchValue(True) never matches a stored `true`; numpy's bool_ is read as a real boolean.
    if isinstance(value, bool):
        return MatchValue(np.bool_(value))
    return MatchValue(value)


def _to_filter(payload_filter: PayloadFilter | None) -> Filter | None:
    if not payload_filter:
        return None
    return Filter(must=[FieldCondition(key=k, match=_match_value(v)) for k, v in payload_filter.items()])


def _vector_list(vector: Any) -> list[float]:
    if isinstance(vector, dict):  # the unnamed dense vector beside the named sparse one
        vector = vector.get("")
    if vector is None:
        return []
    return [float(x) for x in vector]


def _point_vectors(dense: list[float], payload: dict[str, Any]) -> dict[str, Any]:
    terms = encoder().document(lexical_text(payload))
    if not terms.indices:  # no term to index: no sparse vector (so counting them counts real ones)
        return {"": dense}
    return {"": dense, LEXICAL_VECTOR: SparseVector(terms.indices, terms.values)}


def _stored(record: Any, with_vectors: bool) -> StoredPoint:
    return stored_point(record.id, record.payload, _vector_list(record.vector) if with_vectors else None)


class EmbeddedQdrantStore:
    """``VectorStore`` on qdrant-edge shards under ``root`` (see the module docstring for the layout).

    ``busy_timeout_s`` is how long to retry when another process holds a shard before raising
    ``StoreBusy``; ``upsert_batch_size`` bounds the points sent to the engine per update.
    """

    mode: str = "embedded"

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

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> EmbeddedQdrantStore:
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

    def _exists(self, name: str) -> bool:
        return (self._collections_dir / name / "meta.json").is_file()

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

    # ------------------------------------------------------------------ handles

    def _slot(self, name: str) -> _Slot:
        key = os.path.realpath(self._collection_dir(name))
        with _SLOTS_GUARD:
            slot = _SLOTS.get(key)
            if slot is None:
                slot = _SLOTS[key] = _Slot()
        with self._used_guard:
            self._used.add(key)
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

    def _ensure_open(self, name: str, slot: _Slot) -> EdgeShard:
        """The slot's handle, opened if needed; call with ``slot.lock`` held."""
        if slot.shard is None:
            if not self._exists(name):
                raise self._not_found(name)
            meta = _read_json(self._collection_dir(name) / "meta.json")
            slot.shard = self._load(name, self._collection_dir(name) / "shard")
            slot.meta = meta
        return slot.shard

    def _claim(self, name: str, slot: _Slot) -> None:
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
    def _release(slot: _Slot, *, flush: bool = True) -> None:
        """Flush and close the slot's handle; call with ``slot.lock`` held."""
        shard, slot.shard, slot.meta = slot.shard, None, None
        if shard is not None:
            try:
                if flush:
                    shard.flush()
            finally:
                shard.close()

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[_Slot]:
        """Hold the collection's lock with its handle open (``slot.shard``, ``slot.meta``)."""
        slot = self._slot(name)
        with slot.lock:
            self._ensure_open(name, slot)
            yield slot

    # ------------------------------------------------------------------ aliases

    def _read_aliases(self) -> dict[str, str]:
        try:
            data = _read_json(self._aliases_path)
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise RagdeckError(f"{self._aliases_path} is not an alias mapping; fix or delete it")
        return {str(k): str(v) for k, v in data.items()}

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
                    write_json_atomic(self._aliases_path, dict(sorted(mapping.items())))
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def list_aliases(self) -> dict[str, str]:
        """Alias -> collection for every alias."""
        return dict(sorted(self._read_aliases().items()))

    def set_alias(self, alias: str, collection: str) -> None:
        """Create or move ``alias`` to ``collection`` with one atomic replace of aliases.json."""
        check_name(alias, "alias")
        check_name(collection)
        with self._alias_txn() as mapping:
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
            mapping[alias] = collection

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (the collection stays); raises CollectionNotFound for an unknown alias."""
        check_name(alias, "alias")
        with self._alias_txn() as mapping:
            if alias not in mapping:
                known = ", ".join(sorted(mapping)) or "none"
                raise CollectionNotFound(f"no alias named '{alias}' (aliases: {known})")
            del mapping[alias]

    def resolve(self, name: str) -> str:
        """The collection behind an alias, or ``name`` itself; raises CollectionNotFound."""
        check_name(name)
        if self._exists(name):
            return name
        target = self._read_aliases().get(name)
        if target is None:
            raise self._not_found(name)
        if not self._exists(target):
            raise CollectionNotFound(
                f"alias '{name}' points at '{target}', which no longer exists; "
                f"point it at another collection or delete it"
            )
        return target

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
            disk = _disk_bytes(self._collection_dir(name))
            sparse = 0  # the engine counts sparse vectors as indexed vectors too: only dense ones count here
            if meta.get("lexical"):
                has_lexical = Filter(must=[HasVectorCondition(LEXICAL_VECTOR)])
                sparse = int(slot.shard.count(CountRequest(filter=has_lexical, exact=True)))
        points, indexed = int(info.points_count), int(info.indexed_vectors_count) - sparse
        dimension = int(meta["dimension"])
        below_threshold = points * dimension * 4 <= _INDEXING_THRESHOLD_KB * 1024
        aliases = sorted(a for a, c in self._read_aliases().items() if c == name)
        return CollectionInfo(
            name=name,
            dimension=dimension,
            distance=str(meta.get("distance", _DISTANCE)),
            points=points,
            indexed_vectors=indexed,
            hnsw=_hnsw_from_meta(meta),
            aliases=aliases,
            status="green" if indexed >= points or below_threshold else "yellow",
            segments=int(info.segments_count),
            disk_bytes=disk,
            lexical=meta.get("lexical"),
        )

    def create_collection(self, name: str, dimension: int, hnsw: HnswConfig, *, lexical: bool = True) -> None:
        """Create an empty cosine collection, with the BM25 sparse vector ``lexical`` unless ``lexical`` is
        False; raises CollectionExists (or InputError for an alias name)."""
        final = self._collection_dir(name)
        if not isinstance(dimension, int) or dimension < 1:
            raise InputError(f"invalid vector dimension {dimension!r} for '{name}': use a positive integer")
        check_hnsw(hnsw)
        meta = {
            "dimension": dimension,
            "distance": _DISTANCE,
            "hnsw": asdict(hnsw),
            "created_at": _now().isoformat(),
        }
        if lexical:
            meta["lexical"] = LEXICAL_MODEL
        work = self._collections_dir / f".create-{uuid.uuid4().hex}"
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
                EdgeShard.create(str(work / "shard"), _edge_config(dimension, hnsw, lexical)).close()
                write_json_atomic(work / "meta.json", meta)
                try:
                    os.rename(work, final)
                except OSError as exc:
                    raise CollectionExists(
                        f"collection '{name}' already exists; pick a new name or delete it first"
                    ) from exc
        finally:
            _remove_tree(work)

    def delete_collection(self, name: str) -> None:
        """Delete a collection, its handle and every alias pointing at it; raises CollectionNotFound."""
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
        trash = self._collections_dir / f".trash-{uuid.uuid4().hex}"
        with slot.lock:
            self._claim(name, slot)  # StoreBusy if another process holds it
            try:
                os.rename(live, trash)
                with self._alias_txn() as mapping:
                    for alias in [a for a, c in mapping.items() if c == name]:
                        del mapping[alias]
            finally:
                _remove_tree(trash)

    # ------------------------------------------------------------------ points

    def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points by chunk id; raises DimensionMismatch before writing anything.

        In a collection with a lexical index each point also gets its BM25 vector, from its payload text.
        """
        collection = self.resolve(name)
        with self._open(collection) as slot:
            assert slot.meta is not None
            dimension = int(slot.meta["dimension"])
            lexical = bool(slot.meta.get("lexical"))
        prepared: list[tuple[str, list[float], dict[str, Any]]] = []
        for p in points:
            if not isinstance(p.id, str) or not p.id:
                raise InputError(f"point id {p.id!r} is not a non-empty chunk id string")
            vector = p.vector.tolist() if isinstance(p.vector, np.ndarray) else list(p.vector)
            if len(vector) != dimension:
                raise dimension_mismatch(collection, dimension, len(vector))
            payload = dict(p.payload or {})
            if payload.setdefault("chunk_id", p.id) != p.id:
                raise InputError(
                    f"point '{p.id}' carries payload chunk_id {payload['chunk_id']!r}; "
                    f"the payload's chunk_id must equal the point id"
                )
            prepared.append((p.id, vector, payload))
        for begin in range(0, len(prepared), self.upsert_batch_size):
            batch = [
                Point(point_uuid(cid), _point_vectors(vector, payload) if lexical else vector, payload)
                for cid, vector, payload in prepared[begin : begin + self.upsert_batch_size]
            ]
            with self._open(collection) as slot:
                assert slot.shard is not None
                slot.shard.update(UpdateOperation.upsert_points(batch))
                slot.writes += 1

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by chunk id (unknown ids are ignored); an extra, like on the server store."""
        collection = self.resolve(name)
        if not ids:
            return
        with self._open(collection) as slot:
            assert slot.shard is not None
            slot.shard.update(UpdateOperation.delete_points([point_uuid(i) for i in dict.fromkeys(ids)]))
            slot.writes += 1

    def finish_indexing(self, name: str) -> None:
        """Run the optimizers (builds HNSW for every segment over 1 KB of vectors) and flush."""
        with self._open(self.resolve(name)) as slot:
            assert slot.shard is not None
            slot.shard.optimize()
            slot.shard.flush()

    def search(
        self,
        name: str,
        vector: Sequence[float],
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> list[ScoredHit]:
        """Nearest points by cosine similarity, best first; ``name`` may be an alias.

        Note: the engine searches with ``max(hnsw_ef, limit)``, so an ef below ``limit`` changes nothing.
        """
        collection = self.resolve(name)
        if limit <= 0:
            return []
        query = vector.tolist() if isinstance(vector, np.ndarray) else [float(x) for x in vector]
        request = SearchRequest(
            query=Query.Nearest(query),
            limit=int(limit),
            filter=_to_filter(payload_filter),
            params=SearchParams(hnsw_ef=hnsw_ef, exact=exact),
            with_payload=True,
        )
        with self._open(collection) as slot:
            assert slot.shard is not None and slot.meta is not None
            dimension = int(slot.meta["dimension"])
            if len(query) != dimension:
                raise DimensionMismatch(
                    f"collection '{collection}' holds {dimension}-d vectors but the query is "
                    f"{len(query)}-d; use the embedder the collection was built with or rebuild it"
                )
            found = slot.shard.search(request)
        return [scored_hit(p.id, p.score, p.payload) for p in found]

    def search_lexical(
        self, name: str, text: str, limit: int, *, payload_filter: PayloadFilter | None = None
    ) -> list[ScoredHit]:
        """Points by BM25 score of ``text`` (Qdrant's IDF over the collection), best first; points that
        share no term with it are not returned. Raises InputError for a collection built without a
        lexical index."""
        collection = self.resolve(name)
        if limit <= 0:
            return []
        terms = encoder().query(text)
        with self._open(collection) as slot:
            assert slot.shard is not None and slot.meta is not None
            if not slot.meta.get("lexical"):
                raise no_lexical_index(collection)
            if not terms.indices:
                return []
            found = slot.shard.query(
                QueryRequest(
                    query=Query.Nearest(SparseVector(terms.indices, terms.values), using=LEXICAL_VECTOR),
                    limit=int(limit),
                    filter=_to_filter(payload_filter),
                    with_payload=True,
                )
            )
        return [scored_hit(p.id, p.score, p.payload) for p in found]

    def search_both(
        self,
        name: str,
        vector: Sequence[float],
        text: str,
        limit: int,
        *,
        hnsw_ef: int | None = None,
        exact: bool = False,
        payload_filter: PayloadFilter | None = None,
    ) -> tuple[list[ScoredHit], list[ScoredHit]]:
        """The dense and the lexical candidates of one hybrid query from the same state of the collection
        (no write between them): ``(search(...), search_lexical(...))``."""
        collection = self.resolve(name)
        with self._slot(collection).lock:
            dense = self.search(
                collection, vector, limit, hnsw_ef=hnsw_ef, exact=exact, payload_filter=payload_filter
            )
            return dense, self.search_lexical(collection, text, limit, payload_filter=payload_filter)

    def retrieve(self, name: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """Points by chunk id, in the order asked (missing ids are skipped)."""
        collection = self.resolve(name)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with self._open(collection) as slot:
            assert slot.shard is not None
            records = slot.shard.retrieve(
                [point_uuid(i) for i in wanted], with_payload=True, with_vector=with_vectors
            )
        return in_order((_stored(r, with_vectors) for r in records), wanted)

    def iter_points(
        self, name: str, *, batch_size: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every point of a collection, scrolled in batches (the lock is not held between batches)."""
        collection = self.resolve(name)
        check_batch_size(batch_size)
        return self._scroll(collection, batch_size, with_vectors)

    def _scroll(self, collection: str, batch_size: int, with_vectors: bool) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            with self._open(collection) as slot:
                assert slot.shard is not None
                records, offset = slot.shard.scroll(
                    ScrollRequest(
                        offset=offset, limit=batch_size, with_payload=True, with_vector=with_vectors
                    )
                )
            for r in records:
                yield _stored(r, with_vectors)
            if offset is None:
                return

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
        work = self._collections_dir / f".rebuild-{uuid.uuid4().hex}"
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
            _remove_tree(work)

    def _swap_shard(self, collection: str, slot: _Slot, work: Path, meta: dict[str, Any]) -> None:
        """Replace the live shard by ``work/shard`` and its meta.json; call with ``slot.lock`` held.

        On any failure the old shard and meta.json are put back and reopened.
        """
        live = self._collection_dir(collection)
        old_meta = _read_json(live / "meta.json")
        self._release(slot)
        os.rename(live / "shard", work / "old")
        try:
            os.rename(work / "shard", live / "shard")
            try:
                write_json_atomic(live / "meta.json", meta)
                slot.shard, slot.meta = self._load(collection, live / "shard"), meta
            except BaseException:
                os.rename(live / "shard", work / "shard")
                raise
        except BaseException:
            os.rename(work / "old", live / "shard")
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
                parts["hnsw"] += _disk_bytes(segment / "vector_index")
                parts["vectors"] += _disk_bytes(segment / "vector_storage")
            return {**parts, "total": _disk_bytes(self._collection_dir(collection))}

    # ------------------------------------------------------------------ snapshots

    def _snapshot_collection(self, name: str) -> str:
        """The collection whose snapshots ``name`` means: itself, an alias's target, or a deleted one."""
        check_name(name)
        if self._exists(name):
            return name
        target = self._read_aliases().get(name)
        return target if target is not None else name

    def _snapshot_files(self, collection: str, snapshot: str) -> tuple[Path, Path]:
        check_name(snapshot, "snapshot")
        folder = self._snapshot_dir(collection)
        tar, sidecar = folder / f"{snapshot}.tar", folder / f"{snapshot}.json"
        if not (tar.is_file() and sidecar.is_file()):
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
            created = _now()
            snapshot = f"{collection}-{created:%Y%m%dT%H%M%S%f}"
            if len(snapshot) > 240:
                raise InputError(
                    f"collection name '{collection[:40]}...' is too long to name a snapshot file; "
                    f"copy it to a collection with a name under 218 characters to snapshot it"
                )
            while (folder / f"{snapshot}.json").exists() or (folder / f"{snapshot}.tar").exists():
                created = _now()
                snapshot = f"{collection}-{created:%Y%m%dT%H%M%S%f}"
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
        """Snapshots of one collection, newest first (an alias is resolved; a deleted one's are kept)."""
        folder = self._snapshot_dir(self._snapshot_collection(name))
        if not folder.is_dir():
            return []
        out = []
        for sidecar in folder.glob("*.json"):
            if sidecar.name.startswith(".") or not sidecar.with_suffix(".tar").is_file():
                continue
            data = _read_json(sidecar)
            out.append(
                SnapshotInfo(
                    name=data["name"],
                    collection=data["collection"],
                    created_at=data["created_at"],
                    size_bytes=int(data["size_bytes"]),
                    aliases=dict(data.get("aliases", {})),
                )
            )
        out.sort(key=lambda s: (s.created_at, s.name), reverse=True)
        return out

    def snapshot_path(self, name: str, snapshot: str) -> Path | None:
        """The snapshot's tar file; raises InputError when there is no such snapshot."""
        tar, _sidecar = self._snapshot_files(self._snapshot_collection(name), snapshot)
        return tar

    def restore_snapshot(self, name: str, snapshot: str, *, restore_aliases: bool = True) -> None:
        """Replace the collection (recreating a deleted one) with a snapshot, and re-point its aliases.

        The snapshot is unpacked and opened next to the live collection first; only then are the
        directories swapped, so a failure leaves the live collection as it was.
        """
        collection = self._snapshot_collection(name)
        tar, sidecar = self._snapshot_files(collection, snapshot)
        recorded = _read_json(sidecar)
        meta = recorded["meta"]
        repoint = {a: collection for a, c in dict(recorded.get("aliases", {})).items() if c == collection}
        clash = sorted(a for a in repoint if a != collection and self._exists(a))
        if restore_aliases and clash:
            raise InputError(
                f"cannot restore aliases {', '.join(clash)}: collections now have those names; "
                f"delete them or restore with restore_aliases=False"
            )
        live = self._collection_dir(collection)
        token = uuid.uuid4().hex
        work = self._collections_dir / f".restore-{token}"
        trash = self._collections_dir / f".trash-{token}"
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
                had_live = live.exists()
                if had_live:
                    os.rename(live, trash)
                try:
                    os.rename(work, live)
                except BaseException:
                    if had_live:
                        os.rename(trash, live)
                    raise
                if restore_aliases and repoint:
                    with self._alias_txn() as mapping:
                        mapping.update(repoint)
            finally:
                _remove_tree(work)
                _remove_tree(trash)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush and close every handle this store opened (another store object reopens lazily)."""
        with self._used_guard:
            keys, self._used = list(self._used), set()
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
