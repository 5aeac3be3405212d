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
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.llama_local import LlamaServer, packaged_gguf, tail
from ragdeck.services.llm import OpenAIChatModel

app = typer.Typer(
    name="llm",
    help="The local LLM (llama.cpp serving the packaged Qwen2.5-Coder-1.5B) and the configured LLM's status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


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
) -> None:
    """Serve a GGUF over the OpenAI API on loopback, in the foreground, until Ctrl+C."""
    settings = Settings()
    path = model_path(settings, model)
    server = LlamaServer(
        path,
        port=port or settings.llm_port,
        ctx=ctx or settings.llm_ctx,
        threads=threads or settings.llm_threads,
        log_path=settings.data_dir / "logs" / "llama-server.log",
    )
    out.print(f"Starting llama.cpp with {escape(path.name)} on 127.0.0.1:{server.port} …")
    previous = _sigterm_as_interrupt()
    try:
        server.start(wait_s=wait_s)
        out.print(
            f"Serving model [bold]{escape(server.model_alias)}[/] (log: {escape(str(server.log_path))})."
        )
        out.print("Point ragdeck at it with:")
        out.print(f"  LLM_BASE_URL={server.base_url}", highlight=False, soft_wrap=True)
        out.print("Ctrl+C stops it.")
        code = server.wait()
    except KeyboardInterrupt:
        server.stop()
        out.print("Stopped the llama.cpp server.")
        return
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    raise ServiceUnavailable(
        f"The llama.cpp server exited with code {code} (log: {server.log_path}):\n{tail(server.log_path)}"
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
        raise typer.Exit(1)
