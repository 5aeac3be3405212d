"""``ragdeck compare``: B against A, two stored eval runs of the same eval set version, query by query."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ragdeck.console.evaluation.compare import compare_runs
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_eval_store


def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Run id of A (the baseline).")],
    run_b: Annotated[str, typer.Argument(help="Run id of B (the candidate).")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="A metric to compare (repeatable; default: the headline ones)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown.")] = False,
) -> None:
    """Compare two eval runs: B−A per metric with paired bootstrap intervals, permutation p-values
    (Holm-adjusted) and wins/ties/losses, then B's largest regressions."""
    store = build_eval_store(Settings())
    a, b = store.get_run(run_a), store.get_run(run_b)
    comparison = compare_runs(a, store.results(run_a), b, store.results(run_b), metric or None)
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_json(), indent=2) + "\n")
    else:
        typer.echo(comparison.markdown())
