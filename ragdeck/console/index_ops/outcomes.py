"""What the Index Ops page says when one of its background jobs (rebuild, resume, gate) has ended: a level
(success, warning, error) and a message that says what happened and what to do next. A failed gate is an
error, never a success."""

from __future__ import annotations

from ragdeck.console.jobs import Job


def job_outcome(job: Job, error_text: str) -> tuple[str, str]:
    """How a finished job ended: (level, message); ``error_text`` is the job's error, fit to show."""
    if job.cancelled is not None:
        return "warning", f"{job.label} cancelled: {job.cancelled}."
    if job.error is not None:
        return "error", f"{job.label} stopped: {error_text}"
    result = job.result
    if job.kind == "index.gate":
        if result.passed:
            return "success", f"Gate of {result.collection} passed."
        return "error", (
            f"Gate of {result.collection} failed: " + "; ".join(result.failures) + ". "
            "Rebuild with other settings or fix the eval set and gate again; an operator can still swap "
            "with an override and a written reason."
        )
    if job.kind == "index.resume":
        return "success", f"Resumed {result.collection} (redacted: {result.redacted_text}): ready to gate."
    built = f"Built {result.collection} ({result.points} points; redacted: {result.redacted_text})"
    return "success", f"{built}; the alias did not move. Gate it next."
