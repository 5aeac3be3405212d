"""Eval runs in a background thread, so a page can show progress, stay responsive and cancel them.

``EvalJobs`` is one registry per process: a page starts a job, and any later rerun (or another session)
finds it by run id to show its progress or cancel it. Results go to the state store as they finish, so a
job lost with its process is resumed from the store, not from here.

Other long work (an HNSW sweep) runs through the same registry as a ``TaskJob`` (``start_task``): any
function of the job that reports its progress on it and checks its cancel switch between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.evaluation.runner import EvalRunner
from ragdeck.services.types import RunRow


@dataclass
class EvalJob:
    """One run executing in a thread: its progress, its cancel switch and how it ended."""

    run: RunRow
    done: int = 0
    total: int = 0
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread works."""
        return self.thread is not None and self.thread.is_alive()

    @property
    def fraction(self) -> float:
        """Share of queries finished, 0..1."""
        return self.done / self.total if self.total else 0.0


@dataclass
class TaskJob:
    """Any long work in a thread: what it was started with, its stage and progress, its cancel switch, and
    what it returned (a cancelled work returns what it did so far) or the error it ended with."""

    key: str
    inputs: Any = None
    stage: str = "starting"
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread works."""
        return self.thread is not None and self.thread.is_alive()

    @property
    def fraction(self) -> float:
        """Share of the work done, 0..1."""
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def report(self, stage: str, done: int, total: int) -> None:
        """The work's progress callback: ``(stage, done, total)``."""
        self.stage, self.done, self.total = stage, done, total


class EvalJobs:
    """The process's running and recently finished eval jobs, by run id."""

    def __init__(self) -> None:
        self._jobs: dict[str, EvalJob] = {}
        self._tasks: dict[str, TaskJob] = {}
        self._lock = threading.Lock()

    def start(self, runner: EvalRunner, run: RunRow, evalset: EvalSet) -> EvalJob:
        """Execute ``run`` over the prepared ``evalset`` in a daemon thread; refuses a run already going."""
        with self._lock:
            current = self._jobs.get(run.run_id)
            if current is not None and current.running:
                return current
            job = EvalJob(run=run, total=run.total)

            def progress(done: int, total: int) -> None:
                job.done, job.total = done, total

            def work() -> None:
                try:
                    job.run = runner.execute(run, evalset, progress=progress, cancel=job.cancel)
                except Exception as exc:  # shown on the page; the run is marked failed in the store
                    job.error = f"{type(exc).__name__}: {exc}"

            job.thread = threading.Thread(target=work, name=f"eval-{run.run_id}", daemon=True)
            self._jobs[run.run_id] = job
            job.thread.start()
            return job

    def get(self, run_id: str) -> EvalJob | None:
        """The job of a run started in this process, if any."""
        with self._lock:
            return self._jobs.get(run_id)

    def running(self) -> list[EvalJob]:
        """Jobs still working."""
        with self._lock:
            return [j for j in self._jobs.values() if j.running]

    def start_task(self, key: str, work: Callable[[TaskJob], Any], *, inputs: Any = None) -> TaskJob:
        """Run ``work(job)`` in a daemon thread under ``key``; while one with that key runs, it is returned
        instead (one at a time per key). ``inputs`` is kept on the job for whoever follows it."""
        with self._lock:
            current = self._tasks.get(key)
            if current is not None and current.running:
                return current
            job = TaskJob(key=key, inputs=inputs)

            def run() -> None:
                try:
                    job.result = work(job)
                except Exception as exc:  # shown where the job is followed
                    job.error = f"{type(exc).__name__}: {exc}"

            job.thread = threading.Thread(target=run, name=f"task-{key}", daemon=True)
            self._tasks[key] = job
            job.thread.start()
            return job

    def task(self, key: str) -> TaskJob | None:
        """The latest task started under ``key`` in this process, running or ended, if any."""
        with self._lock:
            return self._tasks.get(key)
