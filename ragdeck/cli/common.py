"""What every command module shares: the consoles it prints to, the common options, the stack it opens,
one table shape, and how errors become one line and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_stack
from ragdeck.errors import RagdeckError
from ragdeck.services.redact import redact_text

# Exit codes: 0 done; 1 a user mistake (one ``error:`` line) or a failed check (gate, health); 2 a usage error
# (typer's) or, for ``evalset map``, nothing done; 128 + N killed by signal N; 130 interrupted (Ctrl+C).
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

out = Console()
err = Console(stderr=True)
# Long lines kept whole (index operations and the audit log name collections, snapshots and commands).
out_whole = Console(soft_wrap=True)
err_whole = Console(stderr=True, soft_wrap=True)

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "--alias", "-c", help="Collection or alias (default: the serving alias)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextmanager
def open_stack() -> Iterator[Stack]:
    """The adapters from the settings, closed when the command is done."""
    stack = build_stack(Settings())
    try:
        yield stack
    finally:
        stack.close()


def rows_table(rows: list[dict], title: str | None = None) -> Table:
    """Rows as a table (their keys are the columns), markup escaped; names and times never wrap."""
    table = Table(title=title)
    for column in rows[0] if rows else []:
        table.add_column(str(column), no_wrap=column in ("collection", "time", "action", "snapshot"))
    for row in rows:
        table.add_row(*("" if v is None else escape(str(v)) for v in row.values()))
    return table


def print_error(exc: RagdeckError) -> None:
    """A user mistake as one line on stderr: ``error: …`` (no traceback)."""
    err.print(f"[bold red]error:[/] {escape(redact_text(str(exc)))}", highlight=False, soft_wrap=True)


def exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    """SIGTERM unwinds like Ctrl+C (``finally`` blocks run), exiting 128 + the signal number."""
    raise SystemExit(128 + signum)
