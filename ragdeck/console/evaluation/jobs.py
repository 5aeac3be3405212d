"""Eval runs as background jobs (``ragdeck.console.jobs``), so a page can show progress, stay responsive and
cancel them.

``EvalJobs`` finds a run's job by run id, for any later rerun or another session. Results go to the state
store as they finish, so a job lost with its process is resumed from the store, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.evaluation.runner import EvalRunner
from ragdeck.console.jobs import Job, JobRunner
from ragdeck.services.types import RunRow

KIND = "eval"


@dataclass
class EvalJob(Job):
    """One run executing in a thread: ``run`` is its row (updated when the run ends), ``done`` / ``total``
    count queries."""

    run: RunRow | None = None


class EvalJobs:
    """The process's running and recently finished eval jobs, by run id (on a shared ``JobRunner``)."""

    def __init__(self, runner: JobRunner | None = None) -> None:
        self.jobs = runner or JobRunner()

    def start(self, runner: EvalRunner, run: RunRow, evalset: EvalSet) -> EvalJob:
        """Execute ``run`` over the prepared ``evalset`` in a daemon thread; a run already going is returned
        as it is."""
        job = EvalJob(key=_key(run.run_id), kind=KIND, label=run.run_id, run=run, total=run.total)

        def work(job: Job) -> RunRow:
            assert isinstance(job, EvalJob)
            job.run = runner.execute(
                run,
                evalset,
                progress=lambda done, total: job.report("queries", done, total),
                cancel=job.cancel,
            )
            return job.run

        started = self.jobs.start(job.key, work, job=job)
        assert isinstance(started, EvalJob)
        return started

    def get(self, run_id: str) -> EvalJob | None:
        """The job of a run started in this process, if any."""
        job = self.jobs.get(_key(run_id))
        return job if isinstance(job, EvalJob) else None

    def running(self) -> list[EvalJob]:
        """Eval jobs still working."""
        return [j for j in self.jobs.running(KIND) if isinstance(j, EvalJob)]


def _key(run_id: str) -> str:
    return f"{KIND}:{run_id}"
