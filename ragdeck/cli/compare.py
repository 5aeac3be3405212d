"""``ragdeck compare``: B against A, two eval runs of the same eval set version, query by query. Each run is
a stored run id or a file ``ragdeck eval --json`` wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ragdeck.console.evaluation.compare import compare_runs
from ragdeck.console.evaluation.export import run_from_export
from ragdeck.console.evaluation.ports import EvalRunStore
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_eval_store
from ragdeck.errors import InputError
from ragdeck.services.inputs import parse_json, special_file
from ragdeck.services.types import RunRow


def load_run(reference: str, store: EvalRunStore) -> tuple[RunRow, list[dict[str, Any]]]:
    """A run and its results: from a ``ragdeck eval --json`` file when ``reference`` is a path to one (or
    ends in ``.json``), else from the eval store by run id."""
    path = Path(reference)
    if path.suffix.lower() != ".json" and not path.is_file():
        return store.get_run(reference), store.results(reference)
    if (kind := special_file(path)) is not None:
        raise InputError(f"{reference} is {kind}, not a file: give a `ragdeck eval --json` file or a run id")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read {reference} ({exc.strerror or exc}): give a run id or a run file"
        ) from None
    try:
        return run_from_export(parse_json(text))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"{reference}: not a `ragdeck eval --json` file (missing or bad {exc}); write one with "
            "`ragdeck eval --set … --json FILE`"
        ) from None


def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="A (the baseline): a run id or a `ragdeck eval --json` file.")],
    run_b: Annotated[
        str, typer.Argument(help="B (the candidate): a run id or a `ragdeck eval --json` file.")
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="A metric to compare (repeatable; default: the headline ones)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown.")] = False,
) -> None:
    """Compare two eval runs: B−A per metric with paired bootstrap intervals, permutation p-values
    (Holm-adjusted) and wins/ties/losses, then B's largest regressions."""
    store = build_eval_store(Settings())
    (a, results_a), (b, results_b) = load_run(run_a, store), load_run(run_b, store)
    comparison = compare_runs(a, results_a, b, results_b, metric or None)
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_json(), indent=2) + "\n")
    else:
        typer.echo(comparison.markdown())
