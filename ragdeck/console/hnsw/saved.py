"""Sweeps kept in the state database (``ports.SweepLog``), so a partial sweep survives a restart.

A sweep job given a log records its request (collection, grid, k, the live index's m / ef_construct, and its
queries: vectors, labels, source and gold) before measuring, every configuration as soon as it is measured,
and how the run ended: ``done`` when every configuration of the plan is measured, else ``partial``. A sweep
whose process died stays ``running`` in the log; ``SavedSweep.state`` tells ``interrupted`` from running when
its process was on this machine. Any sweep not done is resumable (``load_sweep``): in any later process, on
the same queries, measuring only the configurations not kept, so it ends with the rows an uninterrupted
sweep has.
"""

from __future__ import annotations

import io
import os
import socket
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ragdeck.console.evaluation.metrics import set_recall_name
from ragdeck.console.hnsw.grid import Grid, Recommendation, SweepResult, SweepRow
from ragdeck.console.hnsw.ports import SweepLog
from ragdeck.console.hnsw.queries import QuerySet
from ragdeck.console.interfaces import VectorSearch
from ragdeck.errors import InputError
from ragdeck.services.common import pid_alive

RUNNING, PARTIAL, DONE = "running", "partial", "done"
_ROW_FIELDS = tuple(f.name for f in fields(SweepRow) if f.name not in ("recommended", "on_front"))


def new_sweep_id() -> str:
    """A fresh sweep id: creation time and a random token, e.g. ``sweep-1764852000-1a2b3c4d``."""
    return f"sweep-{int(time.time())}-{uuid.uuid4().hex[:8]}"


def encode_queries(queries: QuerySet) -> tuple[bytes, dict[str, Any]]:
    """The query vectors as ``.npy`` bytes (exact float32) and the rest as JSON values."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(queries.vectors, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue(), {"labels": queries.labels, "source": queries.source, "qrels": queries.qrels}


def decode_queries(blob: bytes, meta: dict[str, Any]) -> QuerySet:
    """The ``QuerySet`` that ``encode_queries`` wrote."""
    vectors = np.load(io.BytesIO(blob), allow_pickle=False)
    return QuerySet(vectors=vectors, labels=list(meta["labels"]), source=meta["source"], qrels=meta["qrels"])


def row_json(row: SweepRow) -> dict[str, Any]:
    """A row's measurements (not its front / recommendation marks, which depend on the choice)."""
    return {name: getattr(row, name) for name in _ROW_FIELDS}


@dataclass(frozen=True)
class SavedSweep:
    """One sweep as the log keeps it: what it measures, how far it got, who runs or ran it."""

    sweep_id: str
    collection: str
    status: str  # running, partial, done
    measured: int
    planned: int
    grid: Grid
    k: int
    query_source: str
    created_by: str
    created_at: float
    updated_at: float
    elapsed_s: float
    host: str
    pid: int
    error: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> SavedSweep:
        """From a ``SweepLog`` row."""
        request = row["request"]
        grid = Grid.of(request["grid"]["m"], request["grid"]["ef_construct"], request["grid"]["ef"])
        return cls(
            row["sweep_id"], row["collection"], row["status"], int(row["measured"]), int(row["planned"]),
            grid, int(request["k"]), request["queries"]["source"], row["created_by"], row["created_at"],
            row["updated_at"], row["elapsed_s"], row["host"], int(row["pid"]), row["error"],
        )  # fmt: skip

    @property
    def state(self) -> str:
        """done, partial, running, or interrupted (running by a process of this machine that is gone)."""
        if self.status == RUNNING and self.host == socket.gethostname() and not pid_alive(self.pid):
            return "interrupted"
        return self.status

    @property
    def resumable(self) -> bool:
        """True when configurations are missing and no live process of this machine is measuring them."""
        return self.state in (PARTIAL, "interrupted")


def saved_sweeps(log: SweepLog, collection: str | None = None) -> list[SavedSweep]:
    """Every kept sweep (of one physical collection when given), newest first."""
    return [SavedSweep.of(row) for row in log.sweeps(collection=collection)]


def resumable_sweeps(log: SweepLog, collection: str | None = None) -> list[SavedSweep]:
    """The kept sweeps that a resume can complete: partial, or interrupted by a process that died."""
    return [s for s in saved_sweeps(log, collection) if s.resumable]


def saved_result(row: dict[str, Any]) -> SweepResult:
    """A ``SweepLog.get`` row as the (partial) ``SweepResult`` of its kept rows, for ``resume_sweep``."""
    request = row["request"]
    grid = Grid.of(request["grid"]["m"], request["grid"]["ef_construct"], request["grid"]["ef"])
    has_gold = request["queries"]["qrels"] is not None
    return SweepResult(
        collection=row["collection"],
        k=int(request["k"]),
        query_source=request["queries"]["source"],
        queries=len(request["queries"]["labels"]),
        rows=[SweepRow(**{name: point[name] for name in _ROW_FIELDS}) for point in row["points"]],
        recommendation=Recommendation(None, ""),
        target=0.95,
        budget_ms=None,
        recall_key="recall_gold" if has_gold else "recall_exact",
        latency_key="p95_ms",
        total_s=float(row["elapsed_s"]),
        live=dict(request["live"]),
        grid=grid,
        planned=int(row["planned"]),
        gold_metric=set_recall_name(request["queries"]["qrels"], int(request["k"])) if has_gold else None,
    )


@dataclass(frozen=True)
class LoadedSweep:
    """A kept sweep ready to resume: its id, its queries and its result so far."""

    sweep_id: str
    queries: QuerySet
    previous: SweepResult


def load_sweep(log: SweepLog, sweep_id: str) -> LoadedSweep:
    """A kept sweep with its queries and rows; InputError when the log has no such sweep."""
    row = log.get(sweep_id)
    if row is None:
        raise InputError(f"no kept sweep {sweep_id!r}: pick one of the sweeps listed on the Tune page")
    return LoadedSweep(sweep_id, decode_queries(row["queries"], row["request"]["queries"]), saved_result(row))


class SweepRecorder:
    """Writes one run of a sweep job to the log: the request first, each row as measured, how it ended."""

    def __init__(self, log: SweepLog, sweep_id: str, elapsed_before: float = 0.0) -> None:
        self.log, self.sweep_id = log, sweep_id
        self.elapsed_before, self.started = elapsed_before, time.perf_counter()

    @classmethod
    def begin(
        cls,
        log: SweepLog,
        store: VectorSearch,
        sweep_id: str,
        collection: str,
        queries: QuerySet,
        grid: Grid,
        k: int,
        *,
        previous: SweepResult | None = None,
        created_by: str = "",
    ) -> SweepRecorder:
        """Claim ``sweep_id`` when the log has it (a resume), else record it as new (with the rows of
        ``previous``, a partial sweep of this process not kept yet)."""
        if log.get(sweep_id) is not None:
            log.claim(sweep_id)
            return cls(log, sweep_id, previous.total_s if previous is not None else 0.0)
        info = store.collection_info(store.resolve(collection))
        live = {"m": info.hnsw.m, "ef_construct": info.hnsw.ef_construct}
        if previous is not None:
            live = dict(previous.live)
        blob, meta = encode_queries(queries)
        request = {"grid": grid.to_json(), "k": k, "live": live, "queries": meta}
        planned = len(grid.plan((live["m"], live["ef_construct"])))
        log.create(
            sweep_id, collection=collection, request=request, queries=blob, planned=planned,
            created_by=created_by or f"pid {os.getpid()}",
        )  # fmt: skip
        recorder = cls(log, sweep_id, previous.total_s if previous is not None else 0.0)
        for row in previous.rows if previous is not None else ():
            recorder.row(row)
        return recorder

    def elapsed(self) -> float:
        """Seconds of the sweep so far, earlier runs included."""
        return self.elapsed_before + time.perf_counter() - self.started

    def row(self, row: SweepRow) -> None:
        """Keep one measured row (the ``on_row`` of ``run_sweep``)."""
        elapsed = self.elapsed()
        self.log.add_point(self.sweep_id, row.m, row.ef_construct, row.ef, row_json(row), elapsed_s=elapsed)

    def end(self, result: SweepResult) -> None:
        """``done`` when the plan is measured, else ``partial``."""
        self.log.finish(self.sweep_id, PARTIAL if result.partial else DONE, elapsed_s=result.total_s)

    def failed(self, error: str) -> None:
        """The run stopped on an error: ``partial``, with the error (the rows kept stay)."""
        self.log.finish(self.sweep_id, PARTIAL, elapsed_s=self.elapsed(), error=error)
