"""services.common.pid_alive: the one liveness check of a recorded process id (index builds, the LLM
supervisor)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragdeck.services.common import pid_alive


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_a_reaped_child_is_not() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are told by /proc")
def test_a_zombie_is_not() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while pid_alive(proc.pid) and time.monotonic() < deadline:  # exited but not reaped: a zombie
            time.sleep(0.05)
        assert not pid_alive(proc.pid)
    finally:
        proc.wait()
