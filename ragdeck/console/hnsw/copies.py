"""Temporary copies of a collection with other m / ef_construct, built from its stored vectors (no
re-embedding), named ``_hnsw-sweep-<unix time>-<token>-m<m>-efc<ef_construct>`` and always deleted, also
when the sweep fails or is cancelled. Copies of a killed process are removed by the next sweep once they are
hours old (``remove_temporary``).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

from ragdeck.console.hnsw.ports import TuningStore
from ragdeck.console.hnsw.queries import StoredVectors
from ragdeck.console.interfaces import CollectionAdmin
from ragdeck.errors import CollectionNotFound, StoreBusy
from ragdeck.services.types import CollectionInfo, HnswConfig, VectorPoint

TEMP_PREFIX = "_hnsw-sweep-"
_UPSERT_BATCH = 512

_ACTIVE: set[str] = set()  # temporary copies of sweeps running in this process
_ACTIVE_LOCK = threading.Lock()


def temporary_name(m: int, ef_construct: int, *, now: float | None = None) -> str:
    """A fresh name for a temporary copy: prefix, creation time (Unix seconds), token, m, ef_construct."""
    created = int(time.time() if now is None else now)
    return f"{TEMP_PREFIX}{created}-{uuid.uuid4().hex[:8]}-m{m}-efc{ef_construct}"


def _created(name: str) -> float:
    """The creation time in a temporary copy's name (0 when it has none: treated as old)."""
    stamp = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return float(stamp) if stamp.isdigit() else 0.0


def remove_temporary(store: TuningStore, *, older_than_s: float = 6 * 3600) -> list[str]:
    """Delete temporary copies left by sweeps that died (killed process, power cut): those created more than
    ``older_than_s`` ago and not in use by a sweep of this process; returns their names. A copy another
    process still holds open (embedded store) is skipped."""
    gone = []
    for info in store.list_collections():
        name = info.name
        if not name.startswith(TEMP_PREFIX) or time.time() - _created(name) < older_than_s:
            continue
        with _ACTIVE_LOCK:
            if name in _ACTIVE:
                continue
        try:
            store.delete_collection(name)
        except CollectionNotFound:
            continue
        except StoreBusy:  # a live sweep in another process
            continue
        gone.append(name)
    return gone


def _build_copy(
    store: CollectionAdmin, name: str, info: CollectionInfo, points: StoredVectors, hnsw: HnswConfig
) -> float:
    """Create ``name`` with ``hnsw``, load every stored vector into it, build its index; the build seconds."""
    store.create_collection(name, info.dimension, hnsw, lexical=False)  # sweeps are dense only
    for begin in range(0, len(points.ids), _UPSERT_BATCH):
        end = begin + _UPSERT_BATCH
        store.upsert(
            name,
            [
                VectorPoint(id=i, vector=v, payload=p)  # type: ignore[arg-type]  # adapters take ndarrays
                for i, v, p in zip(
                    points.ids[begin:end], points.vectors[begin:end], points.payloads[begin:end], strict=True
                )
            ],
        )
    started = time.perf_counter()
    store.finish_indexing(name)
    return time.perf_counter() - started


@contextlib.contextmanager
def temporary_copy(
    store: CollectionAdmin, info: CollectionInfo, points: StoredVectors, hnsw: HnswConfig
) -> Iterator[tuple[str, float]]:
    """A copy of the collection ``info`` describes, indexed with ``hnsw``: yields its name and build
    seconds, and deletes it on leaving, whatever happened inside or during the build."""
    name = temporary_name(hnsw.m, hnsw.ef_construct)
    with _ACTIVE_LOCK:
        _ACTIVE.add(name)
    try:
        yield name, _build_copy(store, name, info, points, hnsw)
    finally:
        with contextlib.suppress(CollectionNotFound):
            store.delete_collection(name)
        with _ACTIVE_LOCK:
            _ACTIVE.discard(name)
