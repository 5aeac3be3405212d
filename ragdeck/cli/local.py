"""What ``ragdeck console`` and ``ragdeck api serve`` start on loopback for as long as they run (the local
LLM, supervised; Debian's Prometheus), the foreground child they wait on, and the options they share."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from ragdeck.cli.common import err, out
from ragdeck.cli.llm import model_path
from ragdeck.console.settings import Settings
from ragdeck.errors import RagdeckError
from ragdeck.services.llama_supervisor import LlmServerStatus

AddressOpt = Annotated[str, typer.Option(help="Address to listen on.")]
AllInterfacesOpt = Annotated[
    bool, typer.Option("--all-interfaces", help="Listen on every interface (in a container; else loopback).")
]
DemoOpt = Annotated[
    bool,
    typer.Option(
        "--demo/--no-demo",
        help="Build the demo collection first if missing, and run the demo gold set over it once "
        "(dense and hybrid) if it has no such runs.",
    ),
]
LlmOpt = Annotated[
    bool,
    typer.Option(
        "--llm/--no-llm",
        help="With LLM_BASE_URL unset, start the local llama.cpp server (ragdeck[llm]).",
    ),
]
ALL_INTERFACES = str(ipaddress.IPv4Address(0))


@contextmanager
def local_llm(settings: Settings, enabled: bool) -> Iterator[None]:
    """Run the packaged model on loopback, supervised, for the duration and point LLM_BASE_URL at it.

    Nothing happens when LLM_BASE_URL is set or ``enabled`` is false. A server already answering on the
    local port is reused (not supervised: ragdeck did not start it). When the local LLM cannot be started
    at all, say why and go on with extractive answers; when it starts but crashes, the supervisor restarts
    it and, meanwhile, policies fall back to extractive answers (labelled so).
    """
    if settings.llm_base_url or not enabled:
        yield
        return
    from ragdeck.services.llama_local import LlamaServer, llama_cpp_available
    from ragdeck.services.llama_supervisor import LlamaSupervisor, status_file
    from ragdeck.services.llm import OpenAIChatModel

    url = f"http://127.0.0.1:{settings.llm_port}/v1"
    with OpenAIChatModel(url, timeout_s=2.0) as probe:
        running = probe.health().ok
    supervisor = None
    if running:
        out.print(f"Using the LLM already serving at {url} (not started by ragdeck, so not supervised).")
    elif not llama_cpp_available():
        err.print("note: no local LLM (install it with pip install 'ragdeck[llm]'): answers are extractive.")
        yield
        return
    else:
        try:
            path = model_path(settings, None)
        except RagdeckError as exc:
            err.print(f"note: the local LLM is not available ({exc}); answers are extractive.")
            yield
            return
        server = LlamaServer(
            path,
            port=settings.llm_port,
            ctx=settings.llm_ctx,
            threads=settings.llm_threads,
            log_path=settings.data_dir / "logs" / "llama-server.log",
        )
        supervisor = LlamaSupervisor(server, status_file(settings.data_dir), on_change=_report_llm)
        out.print(f"Starting the local LLM ({path.name}) on 127.0.0.1:{settings.llm_port} …")
        supervisor.start()
        url = server.base_url
    os.environ["LLM_BASE_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("LLM_BASE_URL", None)
        if supervisor is not None:
            supervisor.stop()


def _report_llm(status: LlmServerStatus) -> None:
    """Print the local LLM's transitions as they happen (ready, crashed and restarting, gave up)."""
    if status.state == "ready":
        out.print(f"Local LLM ready: {escape(status.summary())}.")
    elif status.state in ("restarting", "failed"):
        err.print(f"[bold red]local LLM:[/] {escape(status.summary())}", highlight=False, soft_wrap=True)
        if status.last_failure and status.last_failure.log_tail:
            err.print(escape(status.last_failure.log_tail), highlight=False, soft_wrap=True)
        err.print(
            "Answers are extractive (and labelled so) until it answers again. "
            f"Log: {escape(status.log_path)}; `ragdeck llm smoke` tests the build.",
            highlight=False,
            soft_wrap=True,
        )


def run_foreground(command: list[str]) -> int:
    """Run ``command`` until it exits; Ctrl+C or SIGTERM stop it too (no orphaned child)."""
    proc = subprocess.Popen(command, env=os.environ.copy())

    def forward(signum: int, frame: object) -> None:
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.kill()


@contextmanager
def local_prometheus(settings: Settings, enabled: bool) -> Iterator[None]:
    """Run Debian's Prometheus on loopback for the duration, scraping the API the console hosts, and point
    PROMETHEUS_URL at it. Nothing happens when PROMETHEUS_URL is set, ``enabled`` is false or the binary is
    missing; a Prometheus that will not start is reported and skipped."""
    from ragdeck.services.prometheus_local import LocalPrometheus, bundled_rules, find_prometheus

    binary = find_prometheus()
    if settings.prometheus_url or not enabled or binary is None:
        yield
        return
    local = LocalPrometheus(
        binary,
        settings.data_dir / "prometheus",
        [f"127.0.0.1:{settings.api_port}"],
        rule_files=bundled_rules(),
    )
    try:
        url = local.start()
    except RagdeckError as exc:
        err.print(f"note: Prometheus did not start ({exc}); the SLO page shows the API's /metrics only.")
        yield
        return
    out.print(f"Prometheus on {url}, scraping the RAG API the console hosts (port {settings.api_port}).")
    os.environ["PROMETHEUS_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_URL", None)
        local.stop()
