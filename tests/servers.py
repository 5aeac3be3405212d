"""Real local servers for tests (Debian's redis-server and prometheus), started on free loopback ports.

In CI (``RAGDECK_REQUIRE_SERVERS=1``) a missing binary fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ragdeck.services.common import stop_process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


def readyz_when_warm(get: Callable[[str], Any], timeout_s: float = 300.0) -> Any:
    """The API's ``/readyz`` response once it no longer says "warming" (``get`` is a client's ``get``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = get("/readyz")
        if not response.json().get("warming"):
            return response
        if time.monotonic() > deadline:
            raise TimeoutError(f"/readyz still warming after {timeout_s} s: {response.text}")
        time.sleep(0.05)


def require_binary(name: str, *candidates: str) -> str:
    """Path of a server binary; skip the test when absent (fail when RAGDECK_REQUIRE_SERVERS=1)."""
    for path in (*candidates, shutil.which(name)):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    message = f"{name} is not installed (apt-get install {name}); `./dev test` installs it"
    if os.environ.get("RAGDECK_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process and reap it."""
    stop_process(proc)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; yields its ``redis://`` URL."""
    binary = require_binary("redis-server", "/usr/bin/redis-server")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


@contextmanager
def prometheus_server(workdir: Path, scrape_targets: list[str], scrape_interval_s: int = 1) -> Iterator[str]:
    """A throwaway Prometheus (Debian's) scraping ``scrape_targets`` ("127.0.0.1:port") every
    ``scrape_interval_s`` seconds on a free loopback port; yields its ``http://`` URL once ready."""
    import urllib.request

    binary = require_binary("prometheus", "/usr/bin/prometheus")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    targets = ", ".join(f'"{target}"' for target in scrape_targets)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {scrape_interval_s}s\n  evaluation_interval: {scrape_interval_s}s\n"
        f"scrape_configs:\n  - job_name: ragdeck-test\n    static_configs:\n      - targets: [{targets}]\n"
    )
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        yield url
    finally:
        stop(proc)
        log.close()


@contextmanager
def serve_asgi(app: object, name: str = "asgi", on_stop: Callable[[], None] | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> in a background thread; yields its origin.

    ``on_stop`` runs first on exit (e.g. to release requests a fake holds open).
    """
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        if on_stop is not None:
            on_stop()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def api_serve(
    env: dict[str, str], log: Path, *, cwd: Path | None = None, timeout_s: float = 180
) -> Iterator[str]:
    """``ragdeck api serve --no-llm`` of this environment as its own process with ``env`` on a free loopback
    port, its output appended to ``log``; yields the base URL and stops the process at the end."""
    port = free_port()
    ragdeck = Path(sys.executable).parent / "ragdeck"
    with log.open("a") as out:
        proc = subprocess.Popen(
            [str(ragdeck), "api", "serve", "--port", str(port), "--no-llm", "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, timeout_s=timeout_s)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)
    assert proc.returncode is not None
