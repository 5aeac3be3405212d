"""Ingests in progress, so a killed one never blocks the next: ``begin`` marks a collection before an
ingest creates or fills it, ``finish`` forgets the mark once it is complete, and ``clear_stale`` (at the
next ingest) deletes the partial collection an ingest that died mid-way left, or refuses while that ingest
still runs. ``owner_alive`` is what ``ragdeck collection delete`` checks too."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from ragdeck.console.ingest.ports import IngestJournal, IngestStore
from ragdeck.errors import CollectionExists
from ragdeck.services.common import pid_alive


def begin(journal: IngestJournal, collection: str, *, created: bool) -> None:
    """Mark ``collection`` as being ingested by this process (``created``: this ingest creates it)."""
    journal.put(
        collection,
        {"host": socket.gethostname(), "pid": os.getpid(), "started_at": time.time(), "created": created},
    )


def owner_alive(marker: dict[str, Any]) -> bool:
    """Whether the ingest that wrote ``marker`` may still run: its process on this host is alive (this one
    included: another thread), or it ran on another host (which cannot be checked from here)."""
    pid, host = marker.get("pid"), marker.get("host")
    if pid is None or host is None:
        return False
    if host != socket.gethostname():
        return True
    return pid_alive(int(pid))


def busy_error(collection: str, marker: dict[str, Any]) -> CollectionExists:
    """The error for a collection another ingest is still building."""
    return CollectionExists(
        f"collection '{collection}' is being ingested by pid {marker.get('pid')} on {marker.get('host')}: "
        f"wait for it to finish; if that process is gone, delete the partial collection with "
        f"`ragdeck collection delete {collection}` and retry"
    )


def clear_stale(store: IngestStore, journal: IngestJournal, collection: str) -> dict[str, Any] | None:
    """Deal with a marker an earlier ingest of ``collection`` left: CollectionExists while that ingest
    runs; when it died, delete the partial collection it created (never one an alias points at: that one
    was complete) and forget the marker. Returns the stale marker with its ``collection``, or None when
    there was none."""
    marker = journal.get(collection)
    if marker is None:
        return None
    if owner_alive(marker):
        raise busy_error(collection, marker)
    aliased = any(target == collection for target in store.list_aliases().values())
    if marker.get("created", True) and store.collection_exists(collection) and not aliased:
        store.delete_collection(collection)
    journal.remove(collection)
    return {**marker, "collection": collection}
