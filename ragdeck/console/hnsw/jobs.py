"""A sweep as a background job of the process's job runner (``ragdeck.console.jobs``), so a page stays
responsive while it runs: progress per configuration, a cooperative cancel (checked between
configurations; the configurations measured so far are the job's partial result) and a resume that
measures only the configurations not done. One sweep per collection at a time in a process.

Given a ``SweepLog`` (``wiring.build_sweep_log``), the job keeps its request and each configuration as it is
measured in the state database (``saved``): a partial sweep is then resumable in any later process
(``load_sweep``), not only while the console that ran it is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ragdeck.console.hnsw.grid import Grid, SweepResult
from ragdeck.console.hnsw.ports import SweepLog, TuningStore
from ragdeck.console.hnsw.queries import QuerySet, StoredVectors
from ragdeck.console.hnsw.saved import LoadedSweep, SweepRecorder, new_sweep_id
from ragdeck.console.hnsw.sweep import resume_sweep, run_sweep
from ragdeck.console.jobs import Job, JobRunner

KIND = "hnsw.sweep"


@dataclass(frozen=True)
class SweepRequest:
    """What a sweep job measures: the physical collection, the queries, the grid and k; the stored vectors
    when already read (else read for the first copy); ``previous``, a partial sweep to complete;
    ``sweep_id``, its id in the sweep log (set by ``start_sweep_job`` when it has a log); ``created_by``,
    who asked (kept in the log)."""

    collection: str
    queries: QuerySet | None  # None until the job's ``prepare`` makes them
    grid: Grid
    k: int = 10
    points: StoredVectors | None = None
    previous: SweepResult | None = None
    sweep_id: str | None = None
    created_by: str = ""

    @classmethod
    def resuming(cls, saved: LoadedSweep, *, created_by: str = "") -> SweepRequest:
        """The request that completes a sweep kept in the log (``saved.load_sweep``)."""
        previous = saved.previous
        return cls(
            previous.collection, saved.queries, previous.grid, previous.k, previous=previous,
            sweep_id=saved.sweep_id, created_by=created_by,
        )  # fmt: skip


@dataclass
class SweepJob(Job):
    """A sweep working in a thread: ``request`` is what it measures; its ``result`` is the ``SweepResult``
    (``partial`` when cancelled)."""

    request: SweepRequest | None = None


def job_key(collection: str) -> str:
    """The job runner's key of the sweep of ``collection`` (a physical collection name)."""
    return f"hnsw-sweep:{collection}"


Prepare = Callable[[], tuple[QuerySet, StoredVectors | None]]
"""Makes a sweep's queries (and the stored vectors read for them) inside the job: embedding an eval set's
questions or reading every vector can take longer than the sweep itself."""


def start_sweep_job(
    jobs: JobRunner,
    store: TuningStore,
    request: SweepRequest,
    log: SweepLog | None = None,
    *,
    prepare: Prepare | None = None,
) -> SweepJob:
    """Start the sweep (or the resume of ``request.previous``) in a thread of ``jobs``; the job's ``request``
    is ``request`` (with a new ``sweep_id`` when ``log`` is given and it has none) and its ``result`` the
    ``SweepResult`` (``partial`` when cancelled). With ``log``, the request and each measured configuration
    are kept there as the job goes, and the sweep is marked done or partial when it ends. While a sweep of
    the same collection runs, that job is returned and nothing new starts. With ``prepare``, the job first
    makes the queries (its stage "preparing queries") and the result's ``total_s`` counts that time too: the
    sweep time shown is the whole wait, from start to result."""
    if request.queries is None and prepare is None:
        raise ValueError("a sweep request needs its queries, or a prepare step that makes them")
    if log is not None and request.sweep_id is None:
        request = replace(request, sweep_id=new_sweep_id())

    def work(job: Job) -> SweepResult:
        started = time.perf_counter()
        nonlocal request
        if prepare is not None:
            job.report("preparing queries", 0, 1)
            queries, points = prepare()
            request = replace(request, queries=queries, points=points or request.points)
            if isinstance(job, SweepJob):
                job.request = request
        prepared_s = time.perf_counter() - started
        recorder = None
        if log is not None and request.sweep_id is not None:
            recorder = SweepRecorder.begin(
                log, store, request.sweep_id, request.collection, request.queries, request.grid, request.k,
                previous=request.previous, created_by=request.created_by,
            )  # fmt: skip
        on_row = recorder.row if recorder is not None else None
        try:
            if request.previous is not None:
                result = resume_sweep(
                    store, request.previous, request.queries, points=request.points, progress=job.report,
                    cancel=job.cancel, on_row=on_row,
                )  # fmt: skip
            else:
                result = run_sweep(
                    store, request.collection, request.queries, ms=request.grid.ms,
                    ef_constructs=request.grid.ef_constructs, efs=request.grid.efs, k=request.k,
                    points=request.points, progress=job.report, cancel=job.cancel, on_row=on_row,
                )  # fmt: skip
        except Exception as exc:
            if recorder is not None:
                recorder.failed(f"{type(exc).__name__}: {exc}")
            raise
        result = replace(result, total_s=result.total_s + prepared_s)
        if recorder is not None:
            recorder.end(result)
        return result

    key = job_key(request.collection)
    job = SweepJob(key=key, kind=KIND, label=f"Sweep of {request.collection}", request=request)
    started = jobs.start(key, work, job=job)
    assert isinstance(started, SweepJob)
    return started


def sweep_job(jobs: JobRunner, collection: str) -> SweepJob | None:
    """The latest sweep job of ``collection`` started in this process, running or ended, if any."""
    job = jobs.get(job_key(collection))
    return job if isinstance(job, SweepJob) else None


def sweep_running(jobs: JobRunner, collection: str) -> bool:
    """True while a sweep job of ``collection`` works in this process (applying must wait for it)."""
    return jobs.active(job_key(collection)) is not None
