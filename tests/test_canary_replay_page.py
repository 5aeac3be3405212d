"""The Canary page's replay button follows the replay job: "Replaying…" and disabled while it runs, back to
"Start replay" when it ends, with the outcome in the colour of what happened (AppTest, real RAG API)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pages import open_page
from servers import free_port

from ragdeck.console.online.replay import ReplayJob, ReplayPlan
from ragdeck.console.online.replay_state import replay_outcome, replay_progress
from ragdeck.console.wiring import build_replay_sender

DEMO_SETS = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets"


def _button(at, key: str):
    return next(b for b in at.button if b.key == key)


def _wait_ended(url: str) -> None:
    import ragdeck.ui as ui

    job = ui.get_replay_jobs()[url]
    deadline = time.monotonic() + 60
    while job.running:
        assert time.monotonic() < deadline, "the replay never ended"
        time.sleep(0.1)


def test_replay_button_follows_the_job_and_the_outcome_has_its_colour(
    demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragdeck.ui as ui

    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(DEMO_SETS))
    ui._hosted_api.clear()
    at = open_page("canary")
    next(b for b in at.button if b.label == "Start the RAG API in this console").click().run()
    hosted = ui.hosted_api()
    assert hosted is not None
    try:
        assert _button(at, "replay_start").label == "Start replay" and _button(at, "replay_stop").disabled
        numbers = {n.label: n for n in at.number_input}
        numbers["Requests per second"].set_value(4.0)
        numbers["Duration (s)"].set_value(2)
        _button(at, "replay_start").click().run()
        assert not at.exception, at.exception
        job = ui.get_replay_jobs()[hosted.url]
        if job.running:  # drawn while it ran: busy, and Stop is offered
            start = _button(at, "replay_start")
            assert start.label == "Replaying…" and start.disabled
            assert not _button(at, "replay_stop").disabled
        _wait_ended(hosted.url)
        at.run()
        start = _button(at, "replay_start")
        assert start.label == "Start replay" and not start.disabled and _button(at, "replay_stop").disabled
        assert [s.value for s in at.success if "Replay done" in s.value], [e.value for e in at.warning]
        assert job.summary is not None and job.summary.sent >= 4 and job.summary.error_count == 0

    finally:
        hosted.stop()
        ui._hosted_api.clear()


def _ended(job: ReplayJob) -> ReplayJob:
    deadline = time.monotonic() + 60
    while job.running:
        assert time.monotonic() < deadline, "the replay never ended"
        time.sleep(0.05)
    return job


def test_a_replay_whose_requests_all_fail_is_a_warning_not_a_success() -> None:
    target = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every send is a connection error
    plan = ReplayPlan(["What is PromQL?"], qps=5.0, duration_s=0.6, users=2)
    job = ReplayJob(plan, lambda: build_replay_sender(target, plan.max_in_flight, timeout_s=2), target)
    assert replay_progress(job).text.startswith("starting (0/3 sent)")
    _ended(job.start())
    level, message = replay_outcome(job)
    assert level == "warning" and "with errors" in message and "0 ok, 3 errors" in message


def test_a_replay_that_crashes_is_an_error_that_says_what_to_do() -> None:
    def broken_sender():
        raise ConnectionRefusedError("no route to the API")

    plan = ReplayPlan(["What is PromQL?"], qps=5.0, duration_s=0.6)
    job = _ended(ReplayJob(plan, broken_sender, "http://127.0.0.1:9").start())
    level, message = replay_outcome(job)
    assert level == "error" and "no route to the API" in message and "start it again" in message


def test_a_stopped_replay_is_a_warning() -> None:
    target = f"http://127.0.0.1:{free_port()}"
    plan = ReplayPlan(["What is PromQL?"], qps=2.0, duration_s=30.0)
    job = ReplayJob(plan, lambda: build_replay_sender(target, plan.max_in_flight, timeout_s=2), target)
    job.start().stop()
    level, message = replay_outcome(_ended(job))
    assert level == "warning" and message.startswith("Replay stopped after")
