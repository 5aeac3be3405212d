"""Index operations: shadow rebuild, gate, atomic alias swap, rollback, retention and snapshots, audited.

Versions are physical collections ``{alias}_v{N}`` behind the serving alias (DESIGN.md). The rules:

- A rebuild builds ``{alias}_v{N+1}`` next to the live version and never touches the alias. Its row in the
  state store (status ``building``, host, pid, heartbeat) is the journal: a rebuild whose process died is
  reported by ``interrupted()`` at the next start, then resumed (chunk ids are stable: only the missing
  points are embedded) or cleaned up (the shadow deleted).
- ``gate()`` evaluates the shadow and the live version on the same eval set with the same policy, compares
  them query by query and checks the gate; ``swap()`` refuses a shadow without a passed, current gate unless
  an operator overrides it with a written reason.
- ``swap()`` and ``rollback()`` move the alias in one atomic store call; every move is kept (who, when,
  why) and ``rollback()`` returns to the version the last move came from.
- ``prune()`` keeps the newest N versions (never the live one, its rollback target or a running rebuild)
  and deletes the rest only when called with ``confirm=True``.

Every change needs the operator role (``roles.require``) and lands in the audit log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragdeck.console import audit
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.pipeline import embed_and_upsert, prepare_chunks
from ragdeck.console.interfaces import Embedder, VectorStore
from ragdeck.console.roles import Role, User, require
from ragdeck.errors import CollectionNotFound, InputError, RagdeckError, StoreBusy
from ragdeck.services.audit_log import SqliteAuditLog
from ragdeck.services.common import pid_alive
from ragdeck.services.files import copy_file_atomic
from ragdeck.services.index_registry import SqliteIndexRegistry
from ragdeck.services.types import CollectionInfo, HnswConfig, SnapshotInfo

if TYPE_CHECKING:
    from ragdeck.console.evalsets.model import EvalSet
    from ragdeck.console.evaluation.gate import Condition
    from ragdeck.console.evaluation.runner import EvalRunner
    from ragdeck.console.retrieval.policies import Policy
    from ragdeck.console.wiring import Stack

# progress(stage, done, total): "chunk", "embed", "index" during a rebuild; "live", "shadow" during a gate.
Progress = Callable[[str, int, int], None]

STALE_AFTER_S = 300.0  # a rebuild silent this long counts as dead even when its process cannot be checked
HEARTBEAT_EVERY_S = 1.0  # at most one progress write a second
BEAT_EVERY_S = 30.0  # the heartbeat between progress reports
DEFAULT_MAX_REGRESSION = 0.02


class GateBlocked(InputError):
    """A swap without a passed, current gate (and no override)."""


@dataclass
class IndexVersion:
    """One version behind the alias, with how it was built and where it stands."""

    collection: str
    alias: str
    version: int
    status: str  # building, ready, failed, abandoned, deleted
    created_at: str
    created_by: str
    spec: dict[str, Any] = field(default_factory=dict)
    corpus_hash: str | None = None
    points: int | None = None
    gate: dict[str, Any] | None = None
    cleared_by_run: str | None = None
    progress: dict[str, Any] | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: float | None = None
    live: bool = False
    rollback_target: bool = False
    exists: bool = True

    @property
    def gate_passed(self) -> bool:
        """True when the last gate of this version passed."""
        return bool(self.gate and self.gate.get("passed"))

    @property
    def progress_text(self) -> str:
        """Where a rebuild is (or stopped), e.g. ``embed 64/310``."""
        p = self.progress or {}
        return f"{p.get('stage', '?')} {p.get('done', 0)}/{p.get('total', 0)}"

    def summary(self) -> dict[str, Any]:
        """One flat row for tables and ``--json``."""
        chunking = self.spec.get("chunking") or {}
        hnsw = self.spec.get("hnsw") or {}
        gate = "—" if not self.gate else ("passed" if self.gate.get("passed") else "failed")
        if self.gate and self.gate.get("override"):
            gate = "overridden"
        return {
            "collection": self.collection,
            "version": self.version,
            "state": "live" if self.live else ("previous" if self.rollback_target else self.status),
            "status": self.status,
            "points": self.points,
            "chunk chars": f"{chunking.get('min_chars', '?')}-{chunking.get('max_chars', '?')}"
            if chunking
            else "",
            "embedding model": self.spec.get("embedding_model", ""),
            "m": hnsw.get("m"),
            "ef_construct": hnsw.get("ef_construct"),
            "corpus": (self.corpus_hash or "")[:12],
            "created": self.created_at,
            "by": self.created_by,
            "gate": gate,
            "cleared by run": self.cleared_by_run or "",
        }


@dataclass(frozen=True)
class AliasMove:
    """A swap or rollback that happened."""

    alias: str
    action: str
    before: str | None
    after: str
    actor: str
    reason: str


@dataclass
class GateResult:
    """A gate of a shadow against the live version: outcome, both runs, the paired comparison."""

    collection: str
    passed: bool
    failures: list[str]
    checks: list[dict[str, Any]]
    live_collection: str | None
    live_run: str | None
    shadow_run: str
    set_name: str
    set_hash: str
    comparison_md: str = ""
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As stored with the version."""
        return asdict(self)


def version_number(collection: str, alias: str) -> int | None:
    """N of ``{alias}_v{N}``, else None."""
    match = re.fullmatch(re.escape(alias) + r"_v(\d+)", collection)
    return int(match.group(1)) if match else None


def corpus_hash(path: Path) -> str:
    """SHA-256 over every file under ``path`` (relative name and bytes, in name order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _iso(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=8)
def _registry_at(path: Path) -> SqliteIndexRegistry:
    return SqliteIndexRegistry(path)


class IndexOps:
    """Index operations on one alias of one store (see the module docstring)."""

    def __init__(
        self,
        store: VectorStore,
        registry: SqliteIndexRegistry,
        *,
        alias: str,
        log: SqliteAuditLog | None = None,
        serving_model: str | Callable[[], str] | None = None,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.store = store
        self.registry = registry
        self.alias = alias
        self.log = log
        self.serving_model = serving_model
        self.stale_after_s = stale_after_s

    @classmethod
    def from_stack(cls, stack: Stack) -> IndexOps:
        """Operations on the stack's serving alias, with the registry and audit log in its state store."""
        settings = stack.settings
        return cls(
            stack.store,
            _registry_at(settings.state_db),
            alias=settings.alias,
            log=audit.open_log(settings),
            serving_model=lambda: stack.embedder.model_name,  # loads the model only when a swap asks
        )

    # ------------------------------------------------------------------ reading

    def live(self) -> str | None:
        """The collection the alias serves from, or None when the alias does not exist."""
        try:
            return self.store.resolve(self.alias)
        except CollectionNotFound:
            return None

    def history(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """Alias moves newest first: id, time, action, from, to, actor, reason."""
        rows = self.registry.events(self.alias, limit)
        return [{**row, "time": _iso(row["at"])} for row in rows]

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

    def _physical(self) -> dict[str, CollectionInfo | None]:
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
        physical = self._physical()
        live, previous = self.live(), self.rollback_target()
        out: dict[str, IndexVersion] = {}
        for row in self.registry.versions(self.alias):
            if row["status"] == "deleted" and not include_deleted:
                continue
            out[row["collection"]] = self._version(row, physical)
        for name, info in physical.items():
            if name not in out:
                out[name] = IndexVersion(
                    collection=name,
                    alias=self.alias,
                    version=version_number(name, self.alias) or 0,
                    status="ready",
                    created_at="",
                    created_by="(not built by ragdeck)",
                    spec={"hnsw": asdict(info.hnsw), "dimension": info.dimension} if info else {},
                    points=info.points if info else None,
                )
        for item in out.values():
            item.live = item.collection == live
            item.rollback_target = item.collection == previous
        return sorted(out.values(), key=lambda v: v.version, reverse=True)

    def _version(self, row: dict[str, Any], physical: dict[str, CollectionInfo | None]) -> IndexVersion:
        exists = row["collection"] in physical
        info = physical.get(row["collection"])
        points = info.points if info is not None else None
        return IndexVersion(
            collection=row["collection"],
            alias=row["alias"],
            version=int(row["version"]),
            status=row["status"],
            created_at=_iso(row["created_at"]),
            created_by=row["created_by"],
            spec=row["spec"] or {},
            corpus_hash=row["corpus_hash"],
            points=points if points is not None else row["points"],
            gate=row["gate"],
            cleared_by_run=row["cleared_by_run"],
            progress=row["progress"],
            error=row["error"],
            host=row["host"],
            pid=row["pid"],
            heartbeat_at=row["heartbeat_at"],
            exists=exists,
        )

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

    # ------------------------------------------------------------------ rebuild

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
    ) -> IndexVersion:
        """Build the next version from ``corpus`` next to the live one; the alias is never touched.

        A rebuild that fails is deleted and recorded as failed; one whose process is killed stays
        ``building`` until ``interrupted()`` reports it and ``resume()`` or ``cleanup()`` deals with it.
        """
        require(user, Role.OPERATOR, "index.rebuild", target=self.alias, log=self.log)
        corpus = Path(corpus).resolve()
        if not corpus.exists():
            raise InputError(
                f"corpus {corpus} does not exist: give a folder, a .md/.txt file or a corpus.jsonl"
            )
        if (shards or replicas) and getattr(self.store, "mode", "") == "embedded":
            raise InputError(
                "shards and replicas need a Qdrant server (QDRANT_URL); the embedded engine has one"
            )
        name = self.next_name()
        spec = {
            "corpus": str(corpus),
            "chunking": asdict(chunking),
            "hnsw": asdict(hnsw),
            "embedding_model": embedder.model_name,
            "embedding_path": str(embedder.path) if getattr(embedder, "path", None) else None,
            "dimension": embedder.dimension,
            "batch_size": batch_size,
            "shards": shards,
            "replicas": replicas,
        }
        self.registry.add_version(
            {
                "collection": name,
                "alias": self.alias,
                "version": version_number(name, self.alias),
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
        self._build(user, name, spec, embedder, progress, resume=False)
        return self.version(name)

    def _heartbeat(self, name: str, progress: Progress | None) -> Progress:
        last = [0.0, ""]

        def tick(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if stage != last[1] or done >= total or now - last[0] >= HEARTBEAT_EVERY_S:
                last[0], last[1] = now, stage
                self.registry.update_version(
                    name,
                    durable=False,
                    heartbeat_at=time.time(),
                    progress={"stage": stage, "done": done, "total": total},
                )
            if progress:
                progress(stage, done, total)

        return tick

    def _beat(self, name: str, stop: threading.Event) -> None:
        """Refresh the rebuild's heartbeat every ``BEAT_EVERY_S`` until ``stop`` is set."""
        while not stop.wait(BEAT_EVERY_S):
            with contextlib.suppress(RagdeckError):  # a busy database skips one beat
                self.registry.update_version(name, durable=False, heartbeat_at=time.time())

    def _build(
        self,
        user: User,
        name: str,
        spec: dict[str, Any],
        embedder: Embedder,
        progress: Progress | None,
        *,
        resume: bool,
    ) -> None:
        tick = self._heartbeat(name, progress)
        corpus = Path(spec["corpus"])
        created = False
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(name, stop), name=f"heartbeat-{name}", daemon=True)
        beat.start()  # also through steps without progress (a long finish_indexing)
        try:
            if not corpus.exists():
                raise InputError(f"corpus {corpus} of '{name}' is gone: clean the rebuild up instead")
            digest = corpus_hash(corpus)
            _, chunks, _ = prepare_chunks(corpus, ChunkingConfig(**spec["chunking"]), tick)
            if resume and self.store.collection_exists(name):
                present = {p.id for p in self.store.iter_points(name)}
                chunks = [c for c in chunks if c.chunk_id not in present]
            else:
                layout = {k: spec[k] for k in ("shards", "replicas") if spec.get(k)}  # server mode only
                self.store.create_collection(name, embedder.dimension, HnswConfig(**spec["hnsw"]), **layout)
                created = True
            embed_and_upsert(chunks, self.store, embedder, name, batch_size=spec["batch_size"], progress=tick)
            tick("index", 0, 1)
            self.store.finish_indexing(name)
            tick("index", 1, 1)
            points = self.store.collection_info(name).points
        except BaseException as exc:
            stop.set()
            with contextlib.suppress(RagdeckError):
                if (created or resume) and self.store.collection_exists(name):
                    self.store.delete_collection(name)
            self.registry.update_version(
                name, status="failed", error=f"{type(exc).__name__}: {exc}", pid=None
            )
            audit.record(user, "index.rebuild", name, reason=str(exc)[:500], outcome="failed", log=self.log)
            raise
        stop.set()
        beat.join()
        self.registry.update_version(
            name, status="ready", finished_at=time.time(), points=points, corpus_hash=digest, pid=None
        )
        audit.record(
            user, "index.rebuild", name, after={"points": points, "corpus_hash": digest}, log=self.log
        )

    def interrupted(self) -> list[IndexVersion]:
        """Rebuilds recorded as running whose process is gone (or silent for ``stale_after_s``)."""
        here = socket.gethostname()
        now = time.time()
        out = []
        for row in self.registry.versions(self.alias, status="building"):
            same_host = row["host"] == here and row["pid"] is not None
            dead = same_host and row["pid"] != os.getpid() and not pid_alive(int(row["pid"]))
            stale = (now - float(row["heartbeat_at"] or 0)) > self.stale_after_s
            if dead or stale:
                out.append(self._version(row, {}))
        return out

    def _interrupted(self, collection: str) -> IndexVersion:
        for item in self.interrupted():
            if item.collection == collection:
                return item
        raise InputError(
            f"'{collection}' is not an interrupted rebuild (interrupted: "
            f"{', '.join(v.collection for v in self.interrupted()) or 'none'})"
        )

    def cleanup(self, user: User, collection: str) -> None:
        """Delete what an interrupted rebuild left and mark it abandoned."""
        require(user, Role.OPERATOR, "index.rebuild.cleanup", target=collection, log=self.log)
        item = self._interrupted(collection)
        if self.live() == collection:  # cannot happen through ragdeck; refuse rather than break serving
            raise InputError(f"'{collection}' is live behind '{self.alias}': it cannot be cleaned up")
        existed = self.store.collection_exists(collection)
        if existed:
            self.store.delete_collection(collection)
        self.registry.update_version(
            collection, status="abandoned", pid=None, error="interrupted; cleaned up"
        )
        audit.record(
            user,
            "index.rebuild.cleanup",
            collection,
            before={"status": "building", "progress": item.progress, "collection_existed": existed},
            after={"status": "abandoned"},
            log=self.log,
        )

    def resume(
        self, user: User, collection: str, embedder: Embedder, progress: Progress | None = None
    ) -> IndexVersion:
        """Finish an interrupted rebuild: embed and upsert only the chunks its collection lacks."""
        require(user, Role.OPERATOR, "index.rebuild.resume", target=collection, log=self.log)
        item = self._interrupted(collection)
        if item.spec.get("embedding_model") != embedder.model_name:
            raise InputError(
                f"'{collection}' was being built with {item.spec.get('embedding_model')!r}, not "
                f"{embedder.model_name!r}: resume it with that model or clean it up"
            )
        self.registry.update_version(
            collection, host=socket.gethostname(), pid=os.getpid(), heartbeat_at=time.time()
        )
        audit.record(
            user, "index.rebuild.resume", collection, before={"progress": item.progress}, log=self.log
        )
        self._build(user, collection, item.spec, embedder, progress, resume=True)
        return self.version(collection)

    # ------------------------------------------------------------------ gate

    def _adopt(self, collection: str) -> None:
        """Record a version ragdeck did not build (e.g. the first ingest), so a gate can be kept with it."""
        if self.registry.version(collection) is not None:
            return
        info = self.store.collection_info(collection)
        self.registry.add_version(
            {
                "collection": collection,
                "alias": self.alias,
                "version": version_number(collection, self.alias) or 0,
                "status": "ready",
                "created_by": "(not built by ragdeck)",
                "spec": {"hnsw": asdict(info.hnsw), "dimension": info.dimension},
                "points": info.points,
            }
        )

    def gate(
        self,
        user: User,
        collection: str,
        evalset: EvalSet,
        runner: EvalRunner,
        policy: Policy,
        *,
        conditions: Sequence[Condition] = (),
        max_regression: float | None = DEFAULT_MAX_REGRESSION,
        ks: tuple[int, ...] | None = None,
        progress: Progress | None = None,
        shadow_runner: EvalRunner | None = None,
    ) -> GateResult:
        """Evaluate ``collection`` and the live version on ``evalset`` with ``policy`` and check the gate.

        The gate passes when every condition holds on the shadow and, with a live version, no headline
        metric fell by more than ``max_regression`` against it. The result is kept with the version.
        ``shadow_runner`` evaluates the shadow when it was embedded with another model (``runner_for``).
        """
        from ragdeck.console.evaluation.compare import compare_runs
        from ragdeck.console.evaluation.gate import check_gate
        from ragdeck.console.evaluation.report import headline_metrics, means
        from ragdeck.console.evaluation.runner import DEFAULT_KS, EvalPlan

        require(user, Role.ENGINEER, "index.gate", target=collection, log=self.log)
        if not self.store.collection_exists(collection):
            raise CollectionNotFound(f"no collection '{collection}' to gate: rebuild it first")
        live = self.live()
        self._adopt(collection)

        def run(target: str, stage: str, by: EvalRunner) -> Any:
            plan = EvalPlan(
                policy=dataclasses.replace(policy, alias=target), ks=ks or DEFAULT_KS, concurrency=2
            )
            row, prepared = by.start(evalset, plan, source=f"index gate of {collection}")
            step = (lambda done, total: progress(stage, done, total)) if progress else None
            row = by.execute(row, prepared, progress=step)
            return row, by.deps.runs.results(row.run_id)

        shadow_row, shadow_results = run(collection, "shadow", shadow_runner or runner)
        shadow_means = means(shadow_row.summary)
        live_row = comparison = None
        if live is not None and live != collection:
            live_row, live_results = run(live, "live", runner)
            comparison = compare_runs(live_row, live_results, shadow_row, shadow_results)
        outcome = check_gate(
            shadow_means,
            conditions,
            baseline=means(live_row.summary) if live_row else None,
            max_regression=max_regression if live_row else None,
            compared=comparison.compared if comparison else headline_metrics(shadow_row.summary),
        )
        headline = headline_metrics(shadow_row.summary)
        live_means = means(live_row.summary) if live_row else {}
        result = GateResult(
            collection=collection,
            passed=outcome.passed,
            failures=outcome.failures,
            checks=outcome.checks,
            live_collection=live,
            live_run=live_row.run_id if live_row else None,
            shadow_run=shadow_row.run_id,
            set_name=evalset.name,
            set_hash=evalset.content_hash(),
            comparison_md=comparison.markdown() if comparison else "",
            metrics={m: {"live": live_means.get(m), "shadow": shadow_means.get(m)} for m in headline},
        )
        stored = {**result.to_json(), "at": time.time(), "by": user.name}
        self.registry.update_version(
            collection, gate=stored, cleared_by_run=shadow_row.run_id if outcome.passed else None
        )
        audit.record(
            user,
            "index.gate",
            collection,
            after={"passed": outcome.passed, "failures": outcome.failures, "shadow_run": shadow_row.run_id},
            log=self.log,
        )
        return result

    # ------------------------------------------------------------------ swap and rollback

    def _move(
        self, user: User, action: str, collection: str, before: str | None, reason: str, extra: dict
    ) -> AliasMove:
        self.store.set_alias(self.alias, collection)  # one atomic step: readers see old or new
        self.registry.add_event(
            alias=self.alias,
            action=action,
            from_collection=before,
            to_collection=collection,
            actor=user.name,
            reason=reason,
        )
        audit.record(
            user,
            action,
            self.alias,
            before={"collection": before},
            after={"collection": collection, **extra},
            reason=reason,
            log=self.log,
        )
        return AliasMove(self.alias, action.split(".")[-1], before, collection, user.name, reason)

    def swap(self, user: User, collection: str, *, reason: str = "", override: bool = False) -> AliasMove:
        """Point the alias at ``collection`` when its gate passed against the live version.

        ``override`` swaps without a passed gate; it needs a written ``reason`` (operators only, as
        every swap).
        """
        require(user, Role.OPERATOR, "index.swap", target=self.alias, log=self.log)
        reason = reason.strip()
        if not self.store.collection_exists(collection):
            raise CollectionNotFound(f"no collection '{collection}' to swap to: rebuild it first")
        row = self.registry.version(collection)
        if row is not None and row["status"] not in ("ready",):
            raise InputError(
                f"'{collection}' is {row['status']}, not ready: only a finished rebuild can go live"
            )
        current = self.live()
        if current == collection:
            raise InputError(f"'{collection}' is already live behind '{self.alias}'")
        model = self.serving_model() if callable(self.serving_model) else self.serving_model
        built_with = (row or {}).get("spec", {}).get("embedding_model") if row else None
        if model and built_with and built_with != model:
            raise InputError(
                f"'{collection}' was embedded with {built_with!r} but queries are embedded with {model!r}: "
                "set RAGDECK_EMBEDDING_MODEL / TEI_URL to that model for the console and API, then swap"
            )
        gate = (row or {}).get("gate") if row else None
        problem = None
        if not gate:
            problem = f"'{collection}' has not been gated: run `ragdeck index gate {collection}` first"
        elif not gate.get("passed"):
            problem = f"the gate of '{collection}' failed: " + "; ".join(gate.get("failures") or [])
        elif gate.get("live_collection") != current:
            problem = (
                f"the gate of '{collection}' compared it with '{gate.get('live_collection')}', but "
                f"'{current}' is live now: gate it again"
            )
        if problem and not override:
            raise GateBlocked(problem + "; or override with a written reason (operators only)")
        if problem and not reason:
            raise InputError(
                "an override of the gate needs a written reason: say why this version must go live"
            )
        extra = {"gate": "overridden" if problem else "passed"}
        if problem:
            extra["gate_problem"] = problem
            self.registry.update_version(
                collection, gate={**(gate or {}), "override": True, "override_reason": reason}
            )
        return self._move(user, "index.swap", collection, current, reason, extra)

    def rollback(self, user: User, *, reason: str = "", to: str | None = None) -> AliasMove:
        """Point the alias back at the version the last move came from (or at ``to``)."""
        require(user, Role.OPERATOR, "index.rollback", target=self.alias, log=self.log)
        current = self.live()
        target = to or self.rollback_target()
        if target is None:
            raise InputError(
                f"nothing to roll back to: no earlier version of '{self.alias}' is recorded and still exists "
                "(give one with --to)"
            )
        if not self.store.collection_exists(target):
            raise CollectionNotFound(
                f"cannot roll back to '{target}': it no longer exists (restore a snapshot)"
            )
        if target == current:
            raise InputError(f"'{target}' is already live behind '{self.alias}'")
        row = self.registry.version(target)
        if row is not None and row["status"] != "ready":
            raise InputError(f"'{target}' is {row['status']}, not ready: pick a finished version")
        return self._move(user, "index.rollback", target, current, reason.strip(), {})

    # ------------------------------------------------------------------ retention

    def retention_plan(self, keep: int) -> list[str]:
        """What ``prune(keep)`` deletes: all but the newest ``keep``; never live, previous or building."""
        if keep < 1:
            raise InputError(f"keep must be at least 1, got {keep}")
        existing = [v for v in self.versions() if v.exists]
        protected = {v.collection for v in existing if v.live or v.rollback_target or v.status == "building"}
        newest = {v.collection for v in sorted(existing, key=lambda v: v.version, reverse=True)[:keep]}
        return [v.collection for v in existing if v.collection not in protected | newest]

    def prune(self, user: User, keep: int, *, confirm: bool = False) -> list[str]:
        """Delete the versions of ``retention_plan(keep)`` when ``confirm``; without it, only list them."""
        plan = self.retention_plan(keep)
        if not confirm or not plan:
            return plan
        require(user, Role.OPERATOR, "index.delete", target=self.alias, log=self.log)
        for name in plan:
            self.store.delete_collection(name)
            if self.registry.version(name) is not None:
                self.registry.update_version(name, status="deleted")
            audit.record(
                user, "index.delete", name, reason=f"retention: keep the newest {keep}", log=self.log
            )
        return plan

    def cluster(self, collection: str | None = None) -> dict[str, Any] | None:
        """Shards, replicas and peers of a collection (default: the live one) on a Qdrant server; None
        for the embedded engine (one node, one shard)."""
        info = getattr(self.store, "cluster_info", None)
        target = collection or self.live()
        if info is None or target is None or getattr(self.store, "local", False):
            return None
        return info(target)

    # ------------------------------------------------------------------ snapshots

    def snapshots(self, collection: str | None = None) -> list[SnapshotInfo]:
        """Snapshots of one collection (default: the live one), newest first."""
        target = collection or self.live()
        return [] if target is None else self.store.list_snapshots(target)

    def create_snapshot(self, user: User, collection: str | None = None) -> SnapshotInfo:
        """Snapshot a collection (default: the live one) with the alias mapping recorded next to it."""
        target = collection or self.live()
        require(user, Role.OPERATOR, "snapshot.create", target=target or self.alias, log=self.log)
        if target is None:
            raise CollectionNotFound(f"alias '{self.alias}' does not exist: name the collection to snapshot")
        info = self.store.create_snapshot(target)
        audit.record(user, "snapshot.create", target, after=asdict(info), log=self.log)
        return info

    def local_snapshot(self, collection: str, snapshot: str) -> Path | None:
        """The snapshot's file on this machine (embedded store), or None when the server keeps it."""
        return self.store.snapshot_path(collection, snapshot)

    def download_snapshot(self, collection: str, snapshot: str, dest: Path) -> Path:
        """Copy a snapshot to ``dest``: the embedded tar, or streamed from the Qdrant server."""
        local = self.store.snapshot_path(collection, snapshot)
        dest = Path(dest)
        if local is None:
            return self.store.download_snapshot(collection, snapshot, dest)  # type: ignore[attr-defined]
        return copy_file_atomic(local, dest)

    def restore_snapshot(
        self, user: User, collection: str, snapshot: str, *, restore_aliases: bool = True
    ) -> None:
        """Replace (or recreate) ``collection`` from a snapshot and put its recorded aliases back."""
        require(user, Role.OPERATOR, "snapshot.restore", target=collection, log=self.log)
        before = self.store.list_aliases()
        self.store.restore_snapshot(collection, snapshot, restore_aliases=restore_aliases)
        if self.registry.version(collection) is not None:
            self.registry.update_version(collection, status="ready")
        audit.record(
            user,
            "snapshot.restore",
            collection,
            before={"aliases": before},
            after={"snapshot": snapshot, "aliases": self.store.list_aliases()},
            log=self.log,
        )


def version_embedder(stack: Stack, version: IndexVersion) -> Embedder:
    """The embedder ``version`` was built with: the serving one when the model names match, else the local
    model from the directory recorded at rebuild."""
    model = version.spec.get("embedding_model")
    if not model or model == stack.embedder.model_name:
        return stack.embedder
    path = version.spec.get("embedding_path")
    if not path or not Path(path).is_dir():
        raise InputError(
            f"'{version.collection}' was embedded with {model!r}, whose model directory "
            f"({path or 'unknown'}) is not here: evaluate it where that model is, or rebuild it with the "
            "serving model"
        )
    from ragdeck.console.wiring import build_embedder

    return build_embedder(stack.settings.model_copy(update={"embedding_model": path, "tei_url": None}))


def runner_for(stack: Stack, embedder: Embedder) -> EvalRunner:
    """An eval runner over ``stack`` that embeds queries with ``embedder`` (retrieval only)."""
    from ragdeck.console.wiring import Stack as StackType
    from ragdeck.console.wiring import build_eval_runner

    if embedder is stack.embedder:
        return build_eval_runner(stack.settings, stack)
    other = StackType(settings=stack.settings, store=stack.store, reranker=stack.reranker)
    other.use_embedder(embedder)
    return build_eval_runner(stack.settings, other)
