"""Long work in a background thread, so a front can show its progress, stay responsive and cancel it.

``JobRunner`` is one registry per process: a front starts a job under a key, and any later rerun (or
another session) finds it by that key to show its progress or cancel it. The work is a function of its
``Job``: it reports progress through ``job.report(stage, done, total)`` and checks ``job.cancel`` (a
``threading.Event``) between steps, raising ``Cancelled`` (or returning) when it is set. How a job ended
is kept on it: its result, the error it failed with, or that it was cancelled. Work whose state matters
after a crash keeps it in a store of its own (eval runs, index versions, HNSW sweeps), not here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragdeck.errors import RagdeckError


class Cancelled(RagdeckError):
    """Work stopped because its cancel switch was set."""


@dataclass
class Job:
    """One piece of work executing in a thread: its progress, its cancel switch and how it ended."""

    key: str
    kind: str = ""
    label: str = ""
    stage: str = ""
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None  # "Type: message" of the exception the work failed with
    exception: Exception | None = None  # that exception
    cancelled: str | None = None  # why, when the work stopped by raising Cancelled
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread works."""
        return self.thread is not None and self.thread.is_alive()

    @property
    def state(self) -> str:
        """running, cancelled, failed or done."""
        if self.running:
            return "running"
        if self.cancelled is not None:
            return "cancelled"
        return "failed" if self.error else "done"

    @property
    def fraction(self) -> float:
        """Share of the current stage finished, 0..1."""
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def progress_text(self) -> str:
        """e.g. ``embed 64/310`` (``starting`` before the first report)."""
        if not self.stage and not self.total:
            return "starting"
        return f"{self.stage} {self.done}/{self.total}".strip()

    def report(self, stage: str, done: int, total: int) -> None:
        """The progress callback to hand to the work: ``(stage, done, total)``."""
        self.stage, self.done, self.total = stage, done, total

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the work ends (or ``timeout_s`` passes); True when it has ended."""
        if self.thread is not None:
            self.thread.join(timeout_s)
        return not self.running


class JobRunner:
    """The process's running and recently finished jobs, by key (one running job per key)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(
        self, key: str, work: Callable[[Job], Any], *, kind: str = "", label: str = "", job: Job | None = None
    ) -> Job:
        """Run ``work(job)`` in a daemon thread and return the job; while a job under ``key`` is running,
        return that one instead. ``job`` is a prepared ``Job`` (or subclass) to use, with ``key`` as its key.
        """
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.running:
                return current
            if job is None:
                job = Job(key=key, kind=kind, label=label)
            job.key = key

            def run() -> None:
                try:
                    job.result = work(job)
                except Cancelled as exc:
                    job.cancelled = str(exc) or "cancelled"
                except Exception as exc:  # shown by the front; the work records what it must itself
                    job.error, job.exception = f"{type(exc).__name__}: {exc}", exc
                finally:
                    job.finished_at = time.time()

            job.thread = threading.Thread(target=run, name=f"job-{key}", daemon=True)
            self._jobs[key] = job
            job.thread.start()
            return job

    def get(self, key: str) -> Job | None:
        """The latest job started under ``key`` in this process, if any."""
        with self._lock:
            return self._jobs.get(key)

    def active(self, key: str) -> Job | None:
        """The job under ``key`` while it works, else None."""
        job = self.get(key)
        return job if job is not None and job.running else None

    def running(self, kind: str | None = None) -> list[Job]:
        """Jobs still working (of one ``kind`` when given), oldest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.running and (kind is None or j.kind == kind)]
        return sorted(jobs, key=lambda j: j.started_at)
