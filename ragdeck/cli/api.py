"""``ragdeck api``: the RAG API service (FastAPI) on the configured stack."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from ragdeck.cli.common import out
from ragdeck.cli.ingest import build_demo
from ragdeck.cli.local import ALL_INTERFACES, AddressOpt, AllInterfacesOpt, DemoOpt, LlmOpt, local_llm
from ragdeck.console.settings import Settings

app = typer.Typer(help="The RAG API service (FastAPI): /query, /feedback, /healthz, /readyz, /metrics.")


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    address: AddressOpt = "127.0.0.1",
    all_interfaces: AllInterfacesOpt = False,
    build_demo_first: DemoOpt = False,
    llm: LlmOpt = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the RAG API on the configured stack (one process; run replicas behind a gateway)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE  # its exit status for a server that could not start

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime

    if all_interfaces:
        address = ALL_INTERFACES

    class WarmOnceListening(uvicorn.Server):
        """Starts the warm-up once the port listens: loading a model can hold the GIL for half a second
        (ONNX Runtime builds its session in one C++ call), which would delay the bind and /healthz."""

        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            runtime.readiness.start()

    with local_llm(Settings(), llm):
        runtime = build_runtime(Settings(), warm=False)
        try:
            if build_demo_first:
                build_demo(runtime.stack)
            out.print(f"ragdeck API on http://{address}:{port}  (docs at /docs; Ctrl+C to stop)")
            config = uvicorn.Config(create_app(runtime), host=address, port=port, log_level=log_level)
            server = WarmOnceListening(config)
            with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl+C is a clean stop
                server.run()
            if not server.started:  # as uvicorn.run: a port in use is a failed start
                raise typer.Exit(STARTUP_FAILURE)
        finally:
            runtime.close()
