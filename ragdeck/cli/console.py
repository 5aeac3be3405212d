"""``ragdeck console``: the Streamlit web console, with the local LLM and Prometheus it starts for itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ragdeck.cli.common import open_stack, out
from ragdeck.cli.ingest import build_demo
from ragdeck.cli.local import (
    ALL_INTERFACES,
    AddressOpt,
    AllInterfacesOpt,
    DemoOpt,
    LlmOpt,
    local_llm,
    local_prometheus,
    run_foreground,
)
from ragdeck.console.settings import Settings

# ragdeck/launch/console.py runs app.py (see there).
APP_FILE = Path(__file__).resolve().parent.parent / "launch" / "console.py"


def console_cmd(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    address: AddressOpt = "127.0.0.1",
    all_interfaces: AllInterfacesOpt = False,
    build_demo_first: DemoOpt = True,
    llm: LlmOpt = True,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus/--no-prometheus",
            help="Run Debian's Prometheus on loopback for the SLO page (if installed, PROMETHEUS_URL unset).",
        ),
    ] = True,
) -> None:
    """Start the web console (building the demo collection first unless --no-demo)."""
    if all_interfaces:
        address = ALL_INTERFACES
    if build_demo_first:
        with open_stack() as stack:
            build_demo(stack)
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_FILE),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    with local_llm(Settings(), llm), local_prometheus(Settings(), prometheus):
        out.print(f"ragdeck console on http://{address}:{port}  (Ctrl+C to stop)")
        code = run_foreground(command)
    raise typer.Exit(code)
