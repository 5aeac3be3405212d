"""``ragdeck audit``: the audit log (who did what to which target, why, when, with what outcome), listed or
exported as CSV / JSONL; ``ragdeck audit verify`` proves no entry was changed, added, cut or deleted outside
ragdeck (exit 1 and the first bad entry otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragdeck.cli.common import EXIT_FAILED, rows_table
from ragdeck.cli.common import err_whole as err  # targets and reasons are kept whole, as in ragdeck index
from ragdeck.cli.common import out_whole as out
from ragdeck.console import audit
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log
from ragdeck.services.files import write_text_atomic

app = typer.Typer(
    help="The audit log: list or export it (ragdeck audit), or check it (ragdeck audit verify).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def audit_cmd(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option(min=1, help="Newest entries to show.")] = 50,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. index.swap.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, denied or failed.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the entries as CSV here.")] = None,
    jsonl_out: Annotated[
        Path | None, typer.Option("--jsonl", help="Write the entries as JSONL here.")
    ] = None,
) -> None:
    """The audit log (who, action, target, reason, time, outcome; --csv / --jsonl add before and after)."""
    if ctx.invoked_subcommand is not None:
        return
    log = build_audit_log(Settings())
    items = audit.entries(limit=limit, action=action, actor=actor, outcome=outcome, log=log)
    if csv_out:
        write_text_atomic(csv_out, audit.to_csv(items))
    if jsonl_out:
        write_text_atomic(jsonl_out, audit.to_jsonl(items))
    broken = audit.verify(log)
    if broken is not None:
        err.print(f"[red]the audit log was altered outside ragdeck: {broken}[/] (ragdeck audit verify)")
    if csv_out or jsonl_out:
        out.print(f"wrote {len(items)} entries", highlight=False)
        return
    rows = [
        {
            "time": e.time[:19],
            "user": f"{e.actor} ({e.role})" if e.role else e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "reason": e.reason,
        }
        for e in items
    ]
    out.print(rows_table(rows) if rows else "the audit log is empty")


@app.command("verify")
def verify_cmd() -> None:
    """Check the log against its key and head record (exit 1, naming the first bad entry, if altered)."""
    settings = Settings()
    log = build_audit_log(settings)
    broken = audit.verify(log)
    if broken is not None:
        err.print(f"error: the audit log was altered outside ragdeck: {broken}", markup=False)
        raise typer.Exit(EXIT_FAILED)
    count = len(audit.entries(limit=None, log=log))
    out.print(f"audit log intact: {count} entries, sealed with {settings.audit_key_path}", highlight=False)
