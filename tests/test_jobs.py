"""The background job runner (``ragdeck.console.jobs``) with real threads: progress, cooperative cancel,
errors captured, one running job per key; and eval runs on it (``EvalJobs``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from index_helpers import small_corpus, small_evalset

from ragdeck.console.evaluation.jobs import EvalJob, EvalJobs
from ragdeck.console.evaluation.runner import EvalPlan
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.jobs import Cancelled, Job, JobRunner
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_eval_runner, build_stack
from ragdeck.errors import InputError

WAIT_S = 30.0


def _wait_until(condition, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` (no fixed sleep: each wait ends as soon as it holds)."""
    event = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        event.wait(0.01)
    pytest.fail("condition not met in time")


def test_progress_then_result() -> None:
    runner = JobRunner()
    step, release = threading.Event(), threading.Event()

    def work(job: Job) -> str:
        job.report("embed", 3, 10)
        step.set()
        release.wait(WAIT_S)
        job.report("embed", 10, 10)
        return "built"

    job = runner.start("rebuild:docs", work, kind="rebuild", label="Rebuild of docs_v2")
    assert step.wait(WAIT_S)
    assert job.running and job.state == "running"
    assert (job.stage, job.done, job.total, job.fraction) == ("embed", 3, 10, 0.3)
    assert job.progress_text == "embed 3/10"
    assert runner.active("rebuild:docs") is job and runner.running("rebuild") == [job]
    assert runner.running("gate") == []
    release.set()
    assert job.wait(WAIT_S)
    assert job.state == "done" and job.result == "built" and job.error is None
    assert job.finished_at is not None and job.fraction == 1.0
    assert runner.active("rebuild:docs") is None and runner.get("rebuild:docs") is job


def test_cancel_is_cooperative_and_recorded() -> None:
    runner = JobRunner()
    batches: list[int] = []

    def work(job: Job) -> None:
        for batch in range(1000):
            if job.cancel.is_set():
                raise Cancelled(f"stopped before batch {batch}")
            batches.append(batch)
            job.report("batch", batch + 1, 1000)
            job.cancel.wait(0.01)

    job = runner.start("long", work)
    _wait_until(lambda: job.done >= 2)
    job.cancel.set()
    assert job.wait(WAIT_S)
    assert job.state == "cancelled" and job.cancelled is not None
    assert job.cancelled.startswith("stopped before batch") and job.error is None
    assert len(batches) < 1000


def test_an_error_is_captured_not_raised() -> None:
    runner = JobRunner()

    def work(job: Job) -> None:
        job.report("read", 1, 2)
        raise InputError("corpus /nowhere does not exist")

    job = runner.start("bad", work)
    assert job.wait(WAIT_S)
    assert job.state == "failed"
    assert job.error == "InputError: corpus /nowhere does not exist"
    assert isinstance(job.exception, InputError) and job.result is None
    assert job.progress_text == "read 1/2"


def test_one_running_job_per_key_and_a_new_one_after_it_ended() -> None:
    runner = JobRunner()
    release = threading.Event()
    calls: list[str] = []

    def work(job: Job) -> None:
        calls.append(job.label)
        release.wait(WAIT_S)

    first = runner.start("k", work, label="first")
    again = runner.start("k", work, label="second")
    assert again is first  # still running: the same job, not a second thread
    release.set()
    assert first.wait(WAIT_S)
    third = runner.start("k", lambda job: calls.append(job.label), label="third")
    assert third is not first and third.wait(WAIT_S)
    assert calls == ["first", "third"] and runner.get("k") is third


def test_eval_runs_are_jobs_on_a_shared_runner(data_dir: Path, tmp_path: Path, local_embedder) -> None:
    """An eval run through ``EvalJobs`` on a shared ``JobRunner``: progress in queries, the finished run."""
    stack = build_stack(Settings())
    stack.use_embedder(local_embedder)
    try:
        corpus = small_corpus(tmp_path / "corpus")
        ingest(corpus, stack.store, local_embedder, collection="docs_v1", alias="docs")
        shared = JobRunner()
        jobs = EvalJobs(shared)
        runner = build_eval_runner(stack.settings, stack)
        run, prepared = runner.start(small_evalset(), EvalPlan(Policy(name="dense", alias="docs"), (1, 5)))
        job = jobs.start(runner, run, prepared)
        assert isinstance(job, EvalJob) and jobs.get(run.run_id) is job and job.label == run.run_id
        assert job.wait(120)
        assert job.error is None and job.run is not None and job.run.status == "done"
        assert (job.stage, job.done, job.total) == ("queries", run.total, run.total) and run.total == 6
        assert jobs.running() == [] and shared.get(f"eval:{run.run_id}") is job
        assert job.run.summary and "doc_recall@5" in job.run.summary["metrics"]  # document-level gold
    finally:
        stack.close()
