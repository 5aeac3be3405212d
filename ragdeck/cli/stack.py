"""``ragdeck collections`` and ``ragdeck stack``: what the configured stack holds and how its parts are."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import typer
from rich.table import Table

from ragdeck.cli.common import EXIT_FAILED, JsonOpt, open_stack, out
from ragdeck.console.retrieval.collections import collection_rows


def collections_cmd(as_json: JsonOpt = False) -> None:
    """List collections and aliases with counts and HNSW config."""
    with open_stack() as stack:
        rows = collection_rows(stack.store)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("No collections yet: run `ragdeck demo` or `ragdeck ingest PATH --collection NAME`.")
        return
    table = Table()
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


def stack_cmd(as_json: JsonOpt = False) -> None:
    """Show each component's mode, health, version and model."""
    with open_stack() as stack:
        rows = [asdict(h) for h in stack.health()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        columns = ("component", "mode", "ok", "version", "model", "dimension", "detail")
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        out.print(table)
    if not all(row["ok"] for row in rows):
        raise typer.Exit(EXIT_FAILED)
