"""Running a sweep: every configuration of the grid measured on the same queries, then the front and the
recommendation worked out (``choice``).

- search-time ``ef`` on the live index (no rebuild), for the collection's own m / ef_construct (always
  measured, as the baseline);
- other m / ef_construct on temporary copies built from the stored vectors (``copies``), one at a time,
  each deleted before the next is built.

A ``cancel`` event is checked between configurations: a cancelled sweep stops there, deletes its copy, and
returns what it measured as a partial result, which ``resume_sweep`` completes (measuring only the
configurations not done). ``on_row`` sees each row as soon as it is measured (a job keeps it in the sweep
log: ``saved``). Nothing here changes the collection: applying a choice is ``apply``'s.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ragdeck.console import audit
from ragdeck.console.evaluation.metrics import set_recall_name
from ragdeck.console.hnsw.choice import choose
from ragdeck.console.hnsw.copies import temporary_copy
from ragdeck.console.hnsw.grid import (
    DEFAULT_EF_CONSTRUCTS,
    DEFAULT_EFS,
    DEFAULT_MS,
    Config,
    Grid,
    Progress,
    Recommendation,
    SweepResult,
    SweepRow,
    check_keys,
)
from ragdeck.console.hnsw.measure import WARMUP, exact_truth, index_bytes, measure
from ragdeck.console.hnsw.ports import SweepLog, TuningStore
from ragdeck.console.hnsw.queries import QuerySet, StoredVectors
from ragdeck.console.hnsw.saved import SavedSweep
from ragdeck.console.roles import User, require
from ragdeck.errors import InputError
from ragdeck.services.types import CollectionInfo, HnswConfig


def check_sweep(actor: User | str, collection: str, *, log: audit.AuditLog) -> None:
    """Sweeping needs the engineer role (PermissionDenied, audited, otherwise); a plain name is trusted."""
    if isinstance(actor, User):
        require(actor, "hnsw.sweep", target=f"collection:{collection}", log=log)


def discard_sweep(actor: User | str, saved: SavedSweep, sweeps: SweepLog, *, log: audit.AuditLog) -> None:
    """Forget a kept sweep and its measured configurations (``check_sweep``'s role), with an audit row
    saying what went."""
    check_sweep(actor, saved.collection, log=log)
    sweeps.delete(saved.sweep_id)
    audit.record(
        actor,
        "hnsw.sweep.discard",
        f"collection:{saved.collection}",
        before={
            "sweep": saved.sweep_id,
            "state": saved.state,
            "measured": saved.measured,
            "planned": saved.planned,
        },
        log=log,
    )


def measure_grid(
    store: TuningStore,
    collection: str,
    queries: QuerySet,
    *,
    ms: Sequence[int] = DEFAULT_MS,
    ef_constructs: Sequence[int] = DEFAULT_EF_CONSTRUCTS,
    efs: Sequence[int] = DEFAULT_EFS,
    k: int = 10,
    points: StoredVectors | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    done: Sequence[SweepRow] = (),
    on_row: Callable[[SweepRow], None] | None = None,
) -> list[SweepRow]:
    """Measure every (m, ef_construct) x ef on ``collection`` (an alias is resolved); rows sorted by m,
    ef_construct, ef.

    The live index is always measured (its own m / ef_construct, no rebuild: the baseline); every other
    pair is built on a temporary copy that is deleted before the next one is built, and in any case before
    this returns or raises. Rows of ``done`` (an earlier, cancelled sweep) are kept and their
    configurations not measured again; once ``cancel`` is set no further configuration starts, and the
    rows so far are returned (fewer than planned). ``on_row`` is called with each row measured here.
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    grid = Grid.of(ms, ef_constructs, efs)
    physical = store.resolve(collection)
    info = store.collection_info(physical)
    live_pair = (info.hnsw.m, info.hnsw.ef_construct)
    plan = grid.plan(live_pair)
    kept = {r.config: r for r in done if r.config in set(plan)}
    rows: list[SweepRow] = list(kept.values())
    total = len(plan)
    report = progress or (lambda stage, done, total: None)

    def stopped() -> bool:
        return cancel is not None and cancel.is_set()

    truth: list[list[str]] | None = None
    for m, ef_construct in grid.builds(live_pair):
        todo = [ef for ef in grid.efs if Config(m, ef_construct, ef) not in kept]
        if not todo:
            continue
        if stopped():
            break
        if truth is None:
            report("exact search (ground truth)", len(rows), total)
            truth = exact_truth(store, physical, queries, k)
        hnsw = HnswConfig(m=m, ef_construct=ef_construct, full_scan_threshold=info.hnsw.full_scan_threshold)
        live = (m, ef_construct) == live_pair
        with contextlib.ExitStack() as scope:
            target, build_s = physical, None
            if not live:
                if points is None:
                    report("reading stored vectors", len(rows), total)
                    points = StoredVectors.read(store, physical)
                report(f"building m={m} ef_construct={ef_construct}", len(rows), total)
                if stopped():
                    break
                target, build_s = scope.enter_context(temporary_copy(store, info, points, hnsw))
            size = index_bytes(store, target)
            for n, ef in enumerate(todo):
                if stopped():
                    break
                report(f"searching m={m} ef_construct={ef_construct} ef={ef}", len(rows), total)
                # A fresh copy's files are cold: its first ef gets a whole untimed pass first.
                warmup = len(queries) if n == 0 else WARMUP
                recall, gold, p50, p95 = measure(store, target, queries, truth, ef, k, warmup=warmup)
                row = SweepRow(
                    m, ef_construct, ef, recall, gold, p50, p95, build_s, size, "live" if live else "copy"
                )
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    rows.sort(key=lambda r: r.config)
    report("done" if len(rows) == total else "cancelled", len(rows), total)
    return rows


def run_sweep(
    store: TuningStore,
    collection: str,
    queries: QuerySet,
    *,
    ms: Sequence[int] = DEFAULT_MS,
    ef_constructs: Sequence[int] = DEFAULT_EF_CONSTRUCTS,
    efs: Sequence[int] = DEFAULT_EFS,
    k: int = 10,
    target: float = 0.95,
    budget_ms: float | None = None,
    recall_key: str | None = None,
    latency_key: str = "p95_ms",
    points: StoredVectors | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    done: Sequence[SweepRow] = (),
    on_row: Callable[[SweepRow], None] | None = None,
) -> SweepResult:
    """``measure_grid`` plus the Pareto front and the recommendation (recall against gold when the queries
    carry gold, else against exact search, unless ``recall_key`` says); ``partial`` when cancelled."""
    recall_key = recall_key or ("recall_gold" if queries.qrels is not None else "recall_exact")
    check_keys(recall_key, latency_key)
    started = time.perf_counter()
    physical = store.resolve(collection)
    info = store.collection_info(physical)
    live = info.hnsw
    rows = measure_grid(
        store, physical, queries, ms=ms, ef_constructs=ef_constructs, efs=efs, k=k, points=points,
        progress=progress, cancel=cancel, done=done, on_row=on_row,
    )  # fmt: skip
    grid = Grid.of(ms, ef_constructs, efs)
    result = SweepResult(
        collection=physical,
        k=k,
        query_source=queries.source,
        queries=len(queries),
        rows=rows,
        recommendation=Recommendation(None, ""),
        target=target,
        budget_ms=budget_ms,
        recall_key=recall_key,
        latency_key=latency_key,
        total_s=time.perf_counter() - started,
        live={"m": live.m, "ef_construct": live.ef_construct},
        notes=sweep_notes(info, rows),
        grid=grid,
        planned=len(grid.plan((live.m, live.ef_construct))),
        gold_metric=set_recall_name(queries.qrels, k) if queries.qrels is not None else None,
    )
    return choose(result, target, budget_ms, recall_key=recall_key, latency_key=latency_key)


def resume_sweep(
    store: TuningStore,
    previous: SweepResult,
    queries: QuerySet,
    *,
    points: StoredVectors | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    on_row: Callable[[SweepRow], None] | None = None,
) -> SweepResult:
    """Complete a partial sweep: measure only the configurations ``previous`` did not, on the same queries
    (InputError when they differ, or when the live index changed since: then its rows no longer compare)."""
    info = store.collection_info(store.resolve(previous.collection))
    now = {"m": info.hnsw.m, "ef_construct": info.hnsw.ef_construct}
    if info.name != previous.collection or now != previous.live:
        raise InputError(
            f"{previous.collection}'s index changed since the sweep (now {info.name} with m={now['m']}, "
            f"ef_construct={now['ef_construct']}): run a new sweep"
        )
    if queries.source != previous.query_source or len(queries) != previous.queries:
        raise InputError(
            f"resume a sweep with its own queries ({previous.query_source}), not {queries.source}"
        )
    result = run_sweep(
        store, previous.collection, queries, ms=previous.grid.ms, ef_constructs=previous.grid.ef_constructs,
        efs=previous.grid.efs, k=previous.k, target=previous.target, budget_ms=previous.budget_ms,
        recall_key=previous.recall_key, latency_key=previous.latency_key, points=points, progress=progress,
        cancel=cancel, done=previous.rows, on_row=on_row,
    )  # fmt: skip
    return replace(result, total_s=previous.total_s + result.total_s)


def sweep_notes(info: CollectionInfo, rows: Sequence[SweepRow]) -> list[str]:
    """Plain-language caveats: a collection under the full-scan threshold is searched exactly (HNSW
    settings change nothing there); ef below k is k."""
    notes = []
    vector_kb = info.points * info.dimension * 4 / 1024
    if vector_kb < info.hnsw.full_scan_threshold:
        notes.append(
            f"{info.name} holds {vector_kb:,.0f} KB of vectors, under its full_scan_threshold of "
            f"{info.hnsw.full_scan_threshold:,} KB: the engine searches it exactly (no HNSW), so m and ef "
            f"change nothing here until it grows past the threshold"
        )
    if rows and all(r.recall_exact == 1.0 for r in rows):
        notes.append("every configuration found the exact top-k: the cheapest one costs nothing in recall")
    return notes
