"""The demo's first eval runs on the command line: run them (``console.evaluation.demo_runs``) and say what
ran, what was already there, what was skipped and how long each took."""

from __future__ import annotations

import time

from ragdeck.cli.common import err, out
from ragdeck.console.evaluation.demo_runs import DEMO_SET, DemoRun, ensure_demo_runs
from ragdeck.console.evaluation.report import headline_metrics
from ragdeck.console.wiring import Stack, build_eval_runner, build_index_registry

SHOWN = 3  # headline metrics spelled out per run


def run_demo_evals(stack: Stack) -> list[DemoRun]:
    """Run the demo gold set once per retrieval mode where it has no finished run; print one line each."""
    settings = stack.settings
    started = time.perf_counter()
    last: dict[str, float] = {}

    def progress(mode: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == 0 or done == total or now - last.get(mode, 0.0) >= 1.0:
            last[mode] = now
            err.print(f"demo eval ({mode}) {done}/{total}", highlight=False, markup=False)

    registry = build_index_registry(settings)

    def built_by(collection: str) -> str | None:
        return (registry.version(collection) or {}).get("created_by")

    outcomes = ensure_demo_runs(build_eval_runner(settings, stack), settings, built_by, progress=progress)
    reasons = {o.reason for o in outcomes if o.outcome == "skipped"}
    if len(reasons) == 1 and all(o.outcome == "skipped" for o in outcomes):
        out.print(f"Demo eval runs skipped: {reasons.pop()}", highlight=False, markup=False)
    else:
        for outcome in outcomes:
            out.print(describe(outcome), highlight=False, markup=False)
    made = [o for o in outcomes if o.outcome == "made"]
    for note in dict.fromkeys(n for o in made if o.run for n in o.run.config.get("notes", [])):
        err.print(f"note: {note}", highlight=False, markup=False)
    if made:
        out.print(
            f"Demo eval runs of {DEMO_SET.name} took {time.perf_counter() - started:.1f} s in all; "
            "open them on the Evaluate and Compare pages.",
            highlight=False,
        )
    return outcomes


def describe(outcome: DemoRun) -> str:
    """One line for one mode: the run made (time, headline metrics), found, or skipped and why."""
    if outcome.outcome == "skipped":
        return f"Demo eval ({outcome.mode}) skipped: {outcome.reason}"
    run = outcome.run
    assert run is not None
    if outcome.outcome == "found":
        return f"Demo eval ({outcome.mode}) already there: run {run.run_id} on {run.collection}."
    summary = run.summary or {}
    metrics = summary.get("metrics") or {}
    figures = ", ".join(f"{m} {metrics[m]['mean']:.3f}" for m in headline_metrics(summary)[:SHOWN])
    return (
        f"Demo eval ({outcome.mode}): run {run.run_id}, {run.set_name} ({run.total} questions) on "
        f"{run.collection} in {outcome.seconds:.1f} s, {run.status}" + (f": {figures}" if figures else "")
    )
