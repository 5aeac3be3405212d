"""The RAG API served from a background thread of another process: the console hosts one this way.

The embedded vector store allows one process per data directory, so on the embedded default the console
cannot reach an API process over the same data; it serves the API itself instead, over its own stack, on
loopback only. Production runs ``ragdeck api serve`` and points the console at it with RAGDECK_API_URL.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass

from pydantic import SecretStr

from ragdeck.api.app import create_app
from ragdeck.api.runtime import ApiRuntime, runtime_over
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack
from ragdeck.errors import ServiceUnavailable
from ragdeck.services.redact import remember_secrets

LOOPBACK = "127.0.0.1"


@dataclass
class BackgroundApi:
    """A running in-process API: its URL, its admin token and how to stop it."""

    url: str
    token: str
    runtime: ApiRuntime
    _server: object
    _thread: threading.Thread
    _socket: socket.socket

    def stop(self) -> None:
        """Stop serving (the shared stack stays open: its owner closes it)."""
        self._server.should_exit = True  # type: ignore[attr-defined]
        self._thread.join(timeout=10)
        self._socket.close()
        self.runtime.readiness.stop()
        self.runtime.feedback_log.close()


def _bind(port: int) -> socket.socket:
    """A listening socket on loopback ``port``, or on a free port when that one is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.bind((LOOPBACK, 0))
    return sock


def start_background_api(settings: Settings, stack: Stack, port: int | None = None) -> BackgroundApi:
    """Serve the RAG API over ``stack`` on 127.0.0.1 (``port``, default ``settings.api_port``; a free port
    when it is taken) from a daemon thread. Without ``RAGDECK_ADMIN_TOKEN`` a random admin token is made
    for this process, so the admin routes are never open without one."""
    import uvicorn

    token = settings.admin_token.get_secret_value() if settings.admin_token else secrets.token_urlsafe(24)
    remember_secrets([token])
    runtime = runtime_over(settings.model_copy(update={"admin_token": SecretStr(token)}), stack)
    sock = _bind(settings.api_port if port is None else port)
    app = create_app(runtime)
    quiet = {"log_level": "warning", "access_log": False}
    config = uvicorn.Config(app, lifespan="off", timeout_graceful_shutdown=2, **quiet)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rag-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ServiceUnavailable("the RAG API did not start inside the console: see the console's log")
        time.sleep(0.01)
    url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    return BackgroundApi(url, token, runtime, server, thread, sock)
