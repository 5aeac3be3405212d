"""HNSW sweeps kept in the state database (console/hnsw/saved.py, services/hnsw_sweeps.py): a partial sweep
survives a restart, real embedded Qdrant and SQLite, a new job runner, log and store standing for the new
process (and, in one test, a real process killed mid-sweep)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hnsw_data import build_collection

from ragdeck.console import hnsw
from ragdeck.console.hnsw.saved import row_json
from ragdeck.console.jobs import JobRunner
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_sweep_log
from ragdeck.services.hnsw_sweeps import SqliteSweepLog
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

GRID = hnsw.Grid.of((4, 16, 32), (32,), (10, 40))  # live index m=4 ef_construct=32: 3 builds x 2 ef
PLAN = {(m, 32, ef) for m in (4, 16, 32) for ef in (10, 40)}


class HeldStore(EmbeddedQdrantStore):
    """Holds the index build of the ``hold``-th temporary copy until ``gate`` opens."""

    def __init__(self, root: Path, hold: int) -> None:
        super().__init__(root)
        self.hold, self.builds = hold, 0
        self.gate, self.waiting = threading.Event(), threading.Event()

    def finish_indexing(self, name: str) -> None:
        if name.startswith(hnsw.TEMP_PREFIX):
            self.builds += 1
            if self.builds == self.hold:
                self.waiting.set()
                assert self.gate.wait(120), "the gate was never opened"
        super().finish_indexing(name)


class CountingLog(SqliteSweepLog):
    """The real SQLite log, counting the points written through this object."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.written: list[tuple[int, int, int]] = []

    def add_point(
        self, sweep_id: str, m: int, ef_construct: int, ef: int, result: dict[str, Any], **kw
    ) -> None:
        self.written.append((m, ef_construct, ef))
        super().add_point(sweep_id, m, ef_construct, ef, result, **kw)


def _configs(result: hnsw.SweepResult) -> set[tuple[int, int, int]]:
    return {(r.m, r.ef_construct, r.ef) for r in result.rows}


def _wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_cancelled_sweep_resumes_after_a_restart_and_skips_the_points_kept(tmp_path: Path) -> None:
    build_collection(tmp_path / "qdrant", n=1000).close()
    db = tmp_path / "ragdeck.sqlite3"

    # First process: the sweep is cancelled while the second copy (m=32) is built: 4 of 6 points measured.
    log = CountingLog(db)
    with HeldStore(tmp_path / "qdrant", hold=2) as store:
        try:
            points = hnsw.StoredVectors.read(store, "vecs")
            queries = hnsw.sample_queries(points, 30, seed=5)
            request = hnsw.SweepRequest("vecs", queries, GRID, points=points, created_by="eve")
            job = hnsw.start_sweep_job(JobRunner(), store, request, log)
            assert job.request is not None and job.request.sweep_id is not None
            sweep_id = job.request.sweep_id
            assert store.waiting.wait(120)
            assert [s.state for s in hnsw.saved_sweeps(log)] == ["running"]  # this live process runs it
            assert hnsw.resumable_sweeps(log) == []
            job.cancel.set()
        finally:
            store.gate.set()
        assert job.wait(120) and job.error is None
        partial = job.result
    assert partial.partial and len(partial.rows) == 4
    assert log.written == [(4, 32, 10), (4, 32, 40), (16, 32, 10), (16, 32, 40)]

    # A new process: new job runner, new log object over the same file, new store; no memory of the sweep.
    log = CountingLog(db)
    [saved] = hnsw.resumable_sweeps(log, "vecs")
    assert (saved.sweep_id, saved.state, saved.measured, saved.planned) == (sweep_id, "partial", 4, 6)
    assert (saved.grid, saved.k, saved.created_by) == (GRID, 10, "eve")
    assert saved.query_source == queries.source and saved.elapsed_s == pytest.approx(partial.total_s)
    loaded = hnsw.load_sweep(log, sweep_id)
    assert loaded.queries.source == queries.source and loaded.queries.labels == queries.labels
    assert (loaded.queries.vectors == queries.vectors).all()  # the very same queries, bit for bit
    assert [row_json(r) for r in loaded.previous.rows] == [row_json(r) for r in partial.rows]  # measurements

    with EmbeddedQdrantStore(tmp_path / "qdrant") as store:
        jobs = JobRunner()
        job = hnsw.start_sweep_job(jobs, store, hnsw.SweepRequest.resuming(loaded, created_by="eve"), log)
        assert job.wait(300) and job.error is None, job.error
        full = job.result
        assert log.written == [(32, 32, 10), (32, 32, 40)]  # only the two points not kept were measured
        assert (job.stage, job.done, job.total) == ("done", 6, 6)
        assert not full.partial and _configs(full) == PLAN
        kept = {r.config: r.p50_ms for r in partial.rows}
        assert {r.config: r.p50_ms for r in full.rows if r.config in kept} == kept  # kept, not re-measured
        assert full.total_s > partial.total_s

        uninterrupted = hnsw.run_sweep(
            store, "vecs", queries, ms=GRID.ms, ef_constructs=GRID.ef_constructs, efs=GRID.efs
        )
        assert _configs(full) == _configs(uninterrupted) == PLAN
        assert [r.config for r in full.rows] == [r.config for r in uninterrupted.rows]
        assert full.recall_key == uninterrupted.recall_key and full.planned == uninterrupted.planned
        assert [c.name for c in store.list_collections()] == ["vecs"]

    [done] = hnsw.saved_sweeps(log)
    assert (done.state, done.measured, done.resumable) == ("done", 6, False)
    assert hnsw.resumable_sweeps(log) == []
    assert [p["m"] for p in log.get(sweep_id)["points"]] == [4, 4, 16, 16, 32, 32]


def test_a_sweep_of_a_killed_process_is_interrupted_and_resumable(tmp_path: Path, data_dir: Path) -> None:
    """A real process runs a sweep job with the wired log and is killed (SIGKILL) while a copy builds."""
    build_collection(data_dir / "qdrant", n=1000).close()
    code = textwrap.dedent(
        """
        import sys, threading
        from ragdeck.console import hnsw
        from ragdeck.console.jobs import JobRunner
        from ragdeck.console.settings import Settings
        from ragdeck.console.wiring import build_sweep_log
        from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

        class Stuck(EmbeddedQdrantStore):
            def finish_indexing(self, name):
                if name.startswith(hnsw.TEMP_PREFIX):
                    print("building", flush=True)
                    threading.Event().wait()  # killed here
                super().finish_indexing(name)

        settings = Settings()
        store = Stuck(settings.qdrant_dir)
        points = hnsw.StoredVectors.read(store, "vecs")
        queries = hnsw.sample_queries(points, 20, seed=9)
        grid = hnsw.Grid.of((4, 16), (32,), (10, 40))
        request = hnsw.SweepRequest("vecs", queries, grid)
        job = hnsw.start_sweep_job(JobRunner(), store, request, build_sweep_log(settings))
        job.wait()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "building"
        log = build_sweep_log(Settings())
        [running] = hnsw.saved_sweeps(log)
        assert (running.state, running.pid, running.measured, running.planned) == ("running", child.pid, 2, 4)
        assert not running.resumable
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    _wait_for(lambda: hnsw.saved_sweeps(log)[0].state == "interrupted")
    [interrupted] = hnsw.resumable_sweeps(log)
    assert interrupted.status == "running" and interrupted.measured == 2

    with EmbeddedQdrantStore(Settings().qdrant_dir) as store:
        assert len(hnsw.remove_temporary(store, older_than_s=0)) == 1  # the killed sweep's copy
        request = hnsw.SweepRequest.resuming(hnsw.load_sweep(log, interrupted.sweep_id))
        job = hnsw.start_sweep_job(JobRunner(), store, request, log)
        assert job.wait(300) and job.error is None, job.error
        assert not job.result.partial and [(r.m, r.ef) for r in job.result.rows] == [
            (m, ef) for m in (4, 16) for ef in (10, 40)
        ]
    [done] = hnsw.saved_sweeps(log)
    assert (done.state, done.measured) == ("done", 4)
