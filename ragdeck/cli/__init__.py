"""The ``ragdeck`` command: parses arguments, calls ``ragdeck.console`` and prints. No logic of its own.

One module per command group, each registered with ``app`` below (``ragdeck --help`` lists them so):

- ``ingest``      ``ragdeck ingest``, ``ragdeck demo``: chunk, embed and index a corpus (or the demo one)
- ``imports``     ``ragdeck import beir | trec | hf | csv``: a test collection and its eval set in one step
- ``retrieval``   ``ragdeck search``, and the retrieval-mode options ``search`` and ``eval`` share
- ``stack``       ``ragdeck collections``, ``ragdeck stack``: what the stack holds, how its parts are
- ``collection``  ``ragdeck collection delete``: a collection deleted by hand (operators, audited)
- ``console``     ``ragdeck console``: the web console
- ``audit``       ``ragdeck audit``: the audit log, listed or exported
- ``eval``        ``ragdeck eval``: a policy over an eval set, summary and CI gate
- ``compare``     ``ragdeck compare``: two eval runs, B against A
- ``replay``      ``ragdeck replay``: eval-set questions against a RAG API at a bounded rate
- ``api``         ``ragdeck api serve``: the RAG API service
- ``llm``         ``ragdeck llm serve | smoke | status``: the local LLM and the configured one
- ``evalset``     ``ragdeck evalset validate | convert | map | power``: eval set files, and their sample size
- ``index``       ``ragdeck index versions | rebuild | gate | swap | rollback | ...``: index versions
- ``hnsw``        ``ragdeck hnsw sweep | apply``: HNSW tuning
- ``policy``      ``ragdeck policy draft list | apply | undo``: study drafts, tried as the canary
- ``tune``        ``ragdeck tune``: a retrieval study, tuned on some questions and tested on the others

and beside them ``local`` (the local LLM and Prometheus that ``console`` and ``api serve`` start) and
``common`` (consoles, shared options, the stack, error lines and exit codes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import typer
from pydantic import ValidationError

from ragdeck.cli import (
    api,
    audit,
    collection,
    compare,
    console,
    eval,
    evalset,
    hnsw,
    imports,
    index,
    ingest,
    llm,
    policy,
    replay,
    retrieval,
    stack,
    tune,
)
from ragdeck.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, exit_on_sigterm, print_error
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, RagdeckError
from ragdeck.services.redact import install_log_redaction, remember_secrets

app = typer.Typer(
    name="ragdeck",
    help="Evaluation and operations console for self-hosted RAG stacks (Qdrant, TEI, vLLM, Prometheus).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("ingest")(ingest.ingest_cmd)
app.command("search")(retrieval.search_cmd)
app.command("collections")(stack.collections_cmd)
app.command("stack")(stack.stack_cmd)
app.command("demo")(ingest.demo_cmd)
app.command("console")(console.console_cmd)
app.add_typer(api.app, name="api")
app.add_typer(llm.app, name="llm")
app.add_typer(evalset.app, name="evalset")
app.add_typer(index.app, name="index")
app.add_typer(collection.app, name="collection")
app.add_typer(audit.app, name="audit")
app.add_typer(hnsw.app, name="hnsw")
app.add_typer(policy.app, name="policy")
app.add_typer(imports.app, name="import")
app.command("eval")(eval.eval_cmd)
app.command("compare")(compare.compare_cmd)
app.command("tune")(tune.tune_cmd)
app.command("replay")(replay.replay_cmd)


HELP_WIDTH_PIPED = 120  # --help written to a pipe or a file: wide enough that no option name is cut


def help_width() -> None:
    """``--help`` wraps to the terminal's width; piped (no terminal, neither COLUMNS nor TERMINAL_WIDTH set)
    it is ``HELP_WIDTH_PIPED`` wide instead of rich's 80 columns, which cut option names short."""
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS") and not os.environ.get("TERMINAL_WIDTH"):
        from typer import rich_utils  # typer reads it when it draws help

        rich_utils.MAX_WIDTH = HELP_WIDTH_PIPED


def main() -> None:
    """Entry point: user mistakes print one line and exit 1; bugs keep their traceback.

    SIGTERM unwinds like Ctrl+C, so what a command started (the local LLM server) is stopped too.
    """
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    help_width()
    install_log_redaction()  # no password, token or key in any log line or error
    with contextlib.suppress(ConfigError, ValidationError):  # bad settings: the command reading them says so
        remember_secrets(Settings().secret_values())
    try:
        app()
    except RagdeckError as exc:
        print_error(exc)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
