"""``ragdeck llm``: run the local llama.cpp server with the packaged model, and probe the configured LLM.

Thin: the work is in ``ragdeck.services.llama_local`` and ``ragdeck.services.llm``. Errors are RagdeckError
subclasses; the main CLI prints them as one line.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ragdeck.cli.common import EXIT_FAILED, err, out
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.llama_local import LlamaServer, packaged_gguf, smoke_generation
from ragdeck.services.llama_supervisor import LlamaSupervisor, LlmServerStatus, status_file
from ragdeck.services.llm import OpenAIChatModel

app = typer.Typer(
    name="llm",
    help="The local LLM (llama.cpp serving the packaged Qwen2.5-Coder-1.5B) and the configured LLM's status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _JoinProgress:
    """A byte progress bar that appears only when there is work (the first join or a re-verify)."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = Progress(
                TextColumn("Preparing model"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("join", total=total)
        self._bar.update(self._task, completed=done, total=total)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def model_path(settings: Settings, model: Path | None) -> Path:
    """``--model``, else ``RAGDECK_LLM_GGUF_PATH``, else the packaged GGUF joined into ``data_dir/models``.

    ConfigError when a given path is not a file or the packaged parts are not installed.
    """
    path = model or settings.llm_gguf_path
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"No GGUF file at {path}: check --model / RAGDECK_LLM_GGUF_PATH.")
        return Path(path)
    progress = _JoinProgress()
    try:
        return packaged_gguf(settings.data_dir / "models", progress=progress)
    finally:
        progress.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """Make SIGTERM (``kill``, a supervisor) stop the server like Ctrl+C does; the previous handler, or
    None when signals cannot be set here (not the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:
        return None


@app.command()
def serve(
    model: Annotated[
        Path | None, typer.Option("--model", help="A GGUF file (default: the packaged Qwen2.5-Coder-1.5B).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default RAGDECK_LLM_PORT, 8088).")
    ] = None,
    ctx: Annotated[
        int | None, typer.Option(help="Context length in tokens (default RAGDECK_LLM_CTX).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: llama.cpp's choice).")] = None,
    wait_s: Annotated[float, typer.Option(help="Seconds to wait for the server to answer.")] = 180.0,
    max_failures: Annotated[
        int, typer.Option(help="Give up after this many crashes or hangs in a row (restarts back off).")
    ] = 5,
) -> None:
    """Serve a GGUF over the OpenAI API on loopback, in the foreground, supervised (restarted when it
    crashes or hangs), until Ctrl+C."""
    settings = Settings()
    path = model_path(settings, model)
    server = LlamaServer(
        path,
        port=port or settings.llm_port,
        ctx=ctx or settings.llm_ctx,
        threads=threads or settings.llm_threads,
        log_path=settings.data_dir / "logs" / "llama-server.log",
    )
    supervisor = LlamaSupervisor(
        server,
        status_file(settings.data_dir),
        max_failures=max_failures,
        start_wait_s=wait_s,
        on_change=_report,
    )
    out.print(f"Starting llama.cpp with {escape(path.name)} on 127.0.0.1:{server.port} …")
    previous = _sigterm_as_interrupt()
    try:
        supervisor.start()
        final = supervisor.wait()
    except KeyboardInterrupt:
        supervisor.stop()
        out.print("Stopped the llama.cpp server.")
        return
    finally:
        supervisor.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    raise ServiceUnavailable(
        final.summary() + (f":\n{final.last_failure.log_tail}" if final.last_failure else "")
    )


def _report(status: LlmServerStatus) -> None:
    if status.state == "ready":
        log = escape(status.log_path)
        out.print(f"Serving model [bold]{escape(status.model)}[/] (pid {status.pid}, log: {log}).")
        if not status.restarts:
            out.print("Point ragdeck at it with:")
            out.print(f"  LLM_BASE_URL={status.url}", highlight=False, soft_wrap=True)
            out.print("Ctrl+C stops it.")
    elif status.state in ("restarting", "failed"):
        err.print(f"[bold red]{escape(status.summary())}[/]", highlight=False, soft_wrap=True)
        if status.last_failure and status.last_failure.log_tail:
            err.print(escape(status.last_failure.log_tail), highlight=False, soft_wrap=True)


@app.command()
def smoke(
    model: Annotated[
        Path | None, typer.Option("--model", help="A GGUF file (default: the packaged Qwen2.5-Coder-1.5B).")
    ] = None,
    wait_s: Annotated[float, typer.Option(help="Seconds to wait for the server and the answer.")] = 300.0,
) -> None:
    """Prove the local LLM works here: start llama.cpp on a free loopback port, generate one real answer,
    stop it. Exit 1 naming the cause and the fix when it cannot generate (./dev run and CI run this)."""
    settings = Settings()
    report = smoke_generation(model_path(settings, model), settings.data_dir / "logs", wait_s=wait_s)
    out.print(f"llama.cpp build: {escape(report.build)}", highlight=False, soft_wrap=True)
    out.print(
        f"Local LLM answered {report.text!r} ({report.completion_tokens} token(s) in "
        f"{report.seconds:.1f} s after a {report.load_seconds:.1f} s load) with {escape(report.model)}.",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Probe LLM_BASE_URL (else the local server's default port) and show its model and health."""
    settings = Settings()
    configured = settings.llm_base_url is not None
    url = settings.llm_base_url or f"http://127.0.0.1:{settings.llm_port}/v1"
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    with OpenAIChatModel(url, model=settings.llm_model, api_key=key, timeout_s=settings.llm_timeout_s) as llm:
        health = llm.health()
    if as_json:
        sys.stdout.write(json.dumps(asdict(health), indent=2) + "\n")
    else:
        source = "LLM_BASE_URL" if configured else "local default, LLM_BASE_URL unset"
        state = "[green]ok[/]" if health.ok else "[red]down[/]"
        out.print(f"endpoint  {escape(str(health.endpoint))}  ({source})", highlight=False)
        out.print(f"status    {state}", highlight=False)
        out.print(f"model     {escape(health.model or '-')}", highlight=False)
        out.print(f"detail    {escape(health.detail)}", highlight=False, soft_wrap=True)
    if not health.ok:
        raise typer.Exit(EXIT_FAILED)
