"""``ragdeck audit``: the audit log (who did what to which target, why, when, with what outcome), listed or
exported as CSV / JSONL, with a check that no entry was changed outside ragdeck."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragdeck.cli.common import err_whole as err  # targets and reasons are kept whole, as in ragdeck index
from ragdeck.cli.common import out_whole as out
from ragdeck.cli.common import rows_table
from ragdeck.console import audit
from ragdeck.console.settings import Settings


def audit_cmd(
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
    settings = Settings()
    log = audit.open_log(settings)
    items = audit.entries(limit=limit, action=action, actor=actor, outcome=outcome, log=log)
    from ragdeck.services.files import write_text_atomic

    if csv_out:
        write_text_atomic(csv_out, audit.to_csv(items))
    if jsonl_out:
        write_text_atomic(jsonl_out, audit.to_jsonl(items))
    broken = audit.verify(log)
    if broken is not None:
        err.print(f"[red]audit log entry {broken} was changed outside ragdeck (its digest does not match)[/]")
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
