"""What the Canary page shows for a replay job: its progress while it runs, and how it ended (a level:
success, warning or error, and a message that says what happened). Green only when every request was
answered; a stopped replay or one with errors is a warning, a replay that crashed an error."""

from __future__ import annotations

from dataclasses import dataclass

from ragdeck.console.online.replay import ReplayJob, planned_sends


@dataclass(frozen=True)
class ReplayProgress:
    """A running replay: share of its duration gone (0..1) and a line such as ``12/60 sent, 40 s left``."""

    fraction: float
    text: str


def replay_progress(job: ReplayJob) -> ReplayProgress:
    """How far a running replay is, by time (sends follow the clock)."""
    planned = planned_sends(job.plan.qps, job.plan.duration_s)
    summary = job.summary
    if summary is None:
        return ReplayProgress(0.0, f"starting (0/{planned} sent)")
    fraction = min(1.0, summary.elapsed_s / job.plan.duration_s)
    left = max(0.0, job.plan.duration_s - summary.elapsed_s)
    return ReplayProgress(fraction, f"{summary.sent}/{planned} sent, {summary.ok} ok, {left:.0f} s left")


def replay_outcome(job: ReplayJob) -> tuple[str, str]:
    """How an ended replay went: (level, message)."""
    summary = job.summary
    if job.error:
        return (
            "error",
            f"The replay to {job.target} failed: {job.error}. Check that the API is up, then start it again.",
        )
    if summary is None:
        return "warning", f"The replay to {job.target} ended before sending anything."
    counts = f"{summary.sent} sent, {summary.ok} ok, {summary.error_count} errors"
    if summary.interrupted:
        return "warning", f"Replay stopped after {summary.elapsed_s:.0f} s: {counts}."
    if summary.error_count:
        return "warning", f"Replay done with errors: {counts} (see the errors by status below)."
    return "success", f"Replay done: {counts}."
