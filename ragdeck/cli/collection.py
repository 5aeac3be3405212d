"""``ragdeck collection delete NAME``: delete a collection by hand (operators only, audited), never one an
alias points at; the way to remove a partial collection, or any other one no longer wanted."""

from __future__ import annotations

from typing import Annotated

import typer

from ragdeck.cli.common import open_stack, out
from ragdeck.console.ingest.cleanup import delete_collection
from ragdeck.console.roles import cli_user
from ragdeck.console.wiring import build_audit_log, build_ingest_journal

app = typer.Typer(help="Collections by name: delete one (operators only).", no_args_is_help=True)


@app.command("delete")
def delete_cmd(
    name: Annotated[str, typer.Argument(help="The collection to delete (not an alias, nor one behind one).")],
) -> None:
    """Delete a collection that no alias points at (operators only; audited)."""
    with open_stack() as stack:
        user = cli_user(stack.settings)
        journal, log = build_ingest_journal(stack.settings), build_audit_log(stack.settings)
        points = delete_collection(stack.store, user, name, journal=journal, log=log)
    held = "" if points is None else f" ({points} points)"
    out.print(f"deleted collection {name}{held}", highlight=False)
