"""``ragdeck console`` as a real process for browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import free_port


@contextlib.contextmanager
def running_console(log_dir: Path) -> Iterator[str]:
    """``ragdeck console --no-demo --no-llm`` with the current environment on a free port; yields its URL
    once healthy (the log is ``log_dir/console.log``) and stops the whole process group after."""
    port = free_port()
    log_path = log_dir / "console.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ragdeck"), "console", "--no-demo", "--no-llm",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.5)
        else:
            pytest.fail("console did not become healthy in 120 s")
        yield url
    finally:
        proc.terminate()  # the CLI stops its Streamlit child (and Prometheus); the group kill is a safety net
        try:
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
