"""A sweep as a background job of the process's job runner (``ragdeck.console.jobs``), so a page stays
responsive while it runs: progress per configuration, a cooperative cancel (checked between
configurations; the configurations measured so far are the job's partial result) and a resume that
measures only the configurations not done. One sweep per collection at a time in a process.

Partial results live in the job (this process), not on disk: a resume needs the console still running.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragdeck.console.hnsw.grid import Grid, SweepResult
from ragdeck.console.hnsw.queries import QuerySet, StoredVectors
from ragdeck.console.hnsw.sweep import resume_sweep, run_sweep
from ragdeck.console.interfaces import VectorStore
from ragdeck.console.jobs import Job, JobRunner

KIND = "hnsw.sweep"


@dataclass(frozen=True)
class SweepRequest:
    """What a sweep job measures: the physical collection, the queries, the grid and k; the stored vectors
    when already read (else read for the first copy); ``previous``, a partial sweep to complete."""

    collection: str
    queries: QuerySet
    grid: Grid
    k: int = 10
    points: StoredVectors | None = None
    previous: SweepResult | None = None


@dataclass
class SweepJob(Job):
    """A sweep working in a thread: ``request`` is what it measures; its ``result`` is the ``SweepResult``
    (``partial`` when cancelled)."""

    request: SweepRequest | None = None


def job_key(collection: str) -> str:
    """The job runner's key of the sweep of ``collection`` (a physical collection name)."""
    return f"hnsw-sweep:{collection}"


def start_sweep_job(jobs: JobRunner, store: VectorStore, request: SweepRequest) -> SweepJob:
    """Start the sweep (or the resume of ``request.previous``) in a thread of ``jobs``; the job's ``request``
    is ``request`` and its ``result`` the ``SweepResult`` (``partial`` when cancelled). While a sweep of the
    same collection runs, that job is returned and nothing new starts."""

    def work(job: Job) -> SweepResult:
        if request.previous is not None:
            return resume_sweep(
                store, request.previous, request.queries, points=request.points, progress=job.report,
                cancel=job.cancel,
            )  # fmt: skip
        return run_sweep(
            store, request.collection, request.queries, ms=request.grid.ms,
            ef_constructs=request.grid.ef_constructs, efs=request.grid.efs, k=request.k,
            points=request.points, progress=job.report, cancel=job.cancel,
        )  # fmt: skip

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
