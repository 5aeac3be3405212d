"""Shadow rebuild: build ``{alias}_v{N+1}`` from a corpus next to the live version; the alias never moves.

The version's row in the registry (status ``building``, host, pid, heartbeat) is the journal. A rebuild
whose process died is reported by ``interrupted()`` at the next start; so is one stopped by its cancel
switch (status ``interrupted``, its shadow kept). Either is then resumed (chunk ids are stable: only the
missing points are embedded) or cleaned up (the shadow deleted). A rebuild that fails is deleted and
recorded as failed. The cancel switch is checked between batches.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragdeck.console import audit
from ragdeck.console.index_ops.catalog import VersionCatalog
from ragdeck.console.index_ops.records import (
    BEAT_EVERY_S,
    HEARTBEAT_EVERY_S,
    STALE_AFTER_S,
    IndexVersion,
    Progress,
    RebuildCancelled,
    corpus_hash,
    version_number,
)
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.pipeline import embed_and_upsert, prepare_chunks
from ragdeck.console.interfaces import Embedder
from ragdeck.console.roles import User, require
from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.common import pid_alive
from ragdeck.services.types import HnswConfig

if TYPE_CHECKING:
    from ragdeck.console.audit import AuditLog


class RebuildOps:
    """Rebuild, resume and clean up shadow versions of the catalog's alias."""

    def __init__(
        self,
        catalog: VersionCatalog,
        log: AuditLog,
        *,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.catalog = catalog
        self.log = log
        self.stale_after_s = stale_after_s

    def rebuild(
        self,
        user: User,
        corpus: Path,
        embedder: Embedder,
        *,
        chunking: ChunkingConfig,
        hnsw: HnswConfig,
        batch_size: int = 64,
        shards: int | None = None,
        replicas: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> IndexVersion:
        """Build the next version from ``corpus`` next to the live one; the alias is never touched.

        A rebuild that fails is deleted and recorded as failed; one whose process is killed stays
        ``building`` until ``interrupted()`` reports it and ``resume()`` or ``cleanup()`` deals with it.
        Setting ``cancel`` stops it after the current batch: ``RebuildCancelled``, the shadow kept as
        ``interrupted``.
        """
        alias, store, registry = self.catalog.alias, self.catalog.store, self.catalog.registry
        require(user, "index.rebuild", target=alias, log=self.log)
        corpus = Path(corpus).resolve()
        if not corpus.exists():
            raise InputError(
                f"corpus {corpus} does not exist: give a folder, a .md/.txt file or a corpus.jsonl"
            )
        if (shards or replicas) and not store.capabilities.sharding:
            raise InputError(
                "shards and replicas need a Qdrant server (QDRANT_URL); the embedded engine has one"
            )
        name = self.catalog.next_name()
        spec = {
            "corpus": str(corpus),
            "chunking": asdict(chunking),
            "hnsw": asdict(hnsw),
            "embedding_model": embedder.model_name,
            "embedding_path": str(embedder.path) if embedder.path else None,
            "dimension": embedder.dimension,
            "batch_size": batch_size,
            "shards": shards,
            "replicas": replicas,
        }
        registry.add_version(
            {
                "collection": name,
                "alias": alias,
                "version": version_number(name, alias),
                "status": "building",
                "created_by": user.name,
                "spec": spec,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "heartbeat_at": time.time(),
                "progress": {"stage": "start", "done": 0, "total": 0},
            }
        )
        audit.record(user, "index.rebuild.start", name, after=spec, log=self.log)
        self._build(user, name, spec, embedder, progress, cancel, resume=False)
        return self.catalog.version(name)

    def interrupted(self) -> list[IndexVersion]:
        """Rebuilds recorded as running whose process is gone (or silent for ``stale_after_s``), and
        rebuilds stopped by their cancel switch."""
        here = socket.gethostname()
        now = time.time()
        out = []
        registry, alias = self.catalog.registry, self.catalog.alias
        for row in registry.versions(alias, status="building"):
            same_host = row["host"] == here and row["pid"] is not None
            dead = same_host and row["pid"] != os.getpid() and not pid_alive(int(row["pid"]))
            stale = (now - float(row["heartbeat_at"] or 0)) > self.stale_after_s
            if dead or stale:
                out.append(IndexVersion.from_row(row, exists=False))
        out += [
            IndexVersion.from_row(r, exists=False) for r in registry.versions(alias, status="interrupted")
        ]
        return sorted(out, key=lambda v: v.version, reverse=True)

    def cleanup(self, user: User, collection: str) -> None:
        """Delete what an interrupted rebuild left and mark it abandoned."""
        require(user, "index.rebuild.cleanup", target=collection, log=self.log)
        item = self._interrupted(collection)
        store = self.catalog.store
        if (
            self.catalog.live() == collection
        ):  # cannot happen through ragdeck; refuse rather than break serving
            raise InputError(f"'{collection}' is live behind '{self.catalog.alias}': it cannot be cleaned up")
        existed = store.collection_exists(collection)
        if existed:
            store.delete_collection(collection)
        self.catalog.registry.update_version(
            collection, status="abandoned", pid=None, error="interrupted; cleaned up"
        )
        audit.record(
            user,
            "index.rebuild.cleanup",
            collection,
            before={"status": item.status, "progress": item.progress, "collection_existed": existed},
            after={"status": "abandoned"},
            log=self.log,
        )

    def resume(
        self,
        user: User,
        collection: str,
        embedder: Embedder,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> IndexVersion:
        """Finish an interrupted rebuild: embed and upsert only the chunks its collection lacks."""
        require(user, "index.rebuild.resume", target=collection, log=self.log)
        item = self._interrupted(collection)
        if item.spec.get("embedding_model") != embedder.model_name:
            raise InputError(
                f"'{collection}' was being built with {item.spec.get('embedding_model')!r}, not "
                f"{embedder.model_name!r}: resume it with that model or clean it up"
            )
        self.catalog.registry.update_version(
            collection,
            status="building",
            error=None,
            host=socket.gethostname(),
            pid=os.getpid(),
            heartbeat_at=time.time(),
        )
        audit.record(
            user, "index.rebuild.resume", collection, before={"progress": item.progress}, log=self.log
        )
        self._build(user, collection, item.spec, embedder, progress, cancel, resume=True)
        return self.catalog.version(collection)

    def _interrupted(self, collection: str) -> IndexVersion:
        for item in self.interrupted():
            if item.collection == collection:
                return item
        raise InputError(
            f"'{collection}' is not an interrupted rebuild (interrupted: "
            f"{', '.join(v.collection for v in self.interrupted()) or 'none'})"
        )

    def _heartbeat(self, name: str, progress: Progress | None, cancel: threading.Event | None) -> Progress:
        last = [0.0, ""]

        def record(stage: str, done: int, total: int) -> None:
            last[0], last[1] = time.monotonic(), stage
            self.catalog.registry.update_version(
                name,
                durable=False,
                heartbeat_at=time.time(),
                progress={"stage": stage, "done": done, "total": total},
            )

        def tick(stage: str, done: int, total: int) -> None:
            due = stage != last[1] or done >= total or time.monotonic() - last[0] >= HEARTBEAT_EVERY_S
            if due:
                record(stage, done, total)
            if progress:
                progress(stage, done, total)
            if cancel is not None and cancel.is_set() and stage != "index":
                if not due:  # where it stopped is recorded: the page names it, a resume starts there
                    record(stage, done, total)
                raise RebuildCancelled(f"the rebuild of '{name}' was cancelled at {stage} {done}/{total}")

        return tick

    def _beat(self, name: str, stop: threading.Event) -> None:
        """Refresh the rebuild's heartbeat every ``BEAT_EVERY_S`` until ``stop`` is set."""
        while not stop.wait(BEAT_EVERY_S):
            with contextlib.suppress(RagdeckError):  # a busy database skips one beat
                self.catalog.registry.update_version(name, durable=False, heartbeat_at=time.time())

    def _build(
        self,
        user: User,
        name: str,
        spec: dict[str, Any],
        embedder: Embedder,
        progress: Progress | None,
        cancel: threading.Event | None,
        *,
        resume: bool,
    ) -> None:
        store, registry = self.catalog.store, self.catalog.registry
        tick = self._heartbeat(name, progress, cancel)
        corpus = Path(spec["corpus"])
        created = False
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(name, stop), name=f"heartbeat-{name}", daemon=True)
        beat.start()  # also through steps without progress (a long finish_indexing)
        try:
            if not corpus.exists():
                raise InputError(f"corpus {corpus} of '{name}' is gone: clean the rebuild up instead")
            digest = corpus_hash(corpus)
            _, chunks, redactions, _ = prepare_chunks(corpus, ChunkingConfig(**spec["chunking"]), tick)
            if resume and store.collection_exists(name):
                present = {p.id for p in store.iter_points(name)}
                chunks = [c for c in chunks if c.chunk_id not in present]
            else:
                layout = {k: spec[k] for k in ("shards", "replicas") if spec.get(k)}  # server mode only
                store.create_collection(name, embedder.dimension, HnswConfig(**spec["hnsw"]), **layout)
                created = True
            embed_and_upsert(chunks, store, embedder, name, batch_size=spec["batch_size"], progress=tick)
            tick("index", 0, 1)
            store.finish_indexing(name)
            tick("index", 1, 1)
            points = store.collection_info(name).points
        except RebuildCancelled as exc:
            stop.set()
            registry.update_version(name, status="interrupted", error=str(exc))
            audit.record(
                user,
                "index.rebuild.cancel",
                name,
                after={"status": "interrupted", "collection_kept": store.collection_exists(name)},
                reason=str(exc),
                log=self.log,
            )
            raise
        except BaseException as exc:
            stop.set()
            with contextlib.suppress(RagdeckError):
                if (created or resume) and store.collection_exists(name):
                    store.delete_collection(name)
            registry.update_version(name, status="failed", error=f"{type(exc).__name__}: {exc}", pid=None)
            audit.record(user, "index.rebuild", name, reason=str(exc)[:500], outcome="failed", log=self.log)
            raise
        stop.set()
        beat.join()
        done = {"stage": "index", "done": 1, "total": 1, "redactions": redactions}  # counts by kind, kept
        registry.update_version(
            name, status="ready", finished_at=time.time(), points=points, corpus_hash=digest, pid=None,
            progress=done,
        )  # fmt: skip
        after = {"points": points, "corpus_hash": digest, "redactions": redactions}
        audit.record(user, "index.rebuild", name, after=after, log=self.log)
