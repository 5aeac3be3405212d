"""Concurrent calls made to meet in one micro-batch without timing luck (tests of ``MicroBatcher`` users)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ragdeck.services.batching import MicroBatcher


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def gathered(batcher: MicroBatcher, calls: list[Callable[[], Any]]) -> list[Future]:
    """Run ``calls`` concurrently while the batcher's thread is held, so they queue; then let it go."""
    gate, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=batcher.alone, args=(lambda: held.set() or gate.wait(),))
    holder.start()
    held.wait()
    pool = ThreadPoolExecutor(max_workers=len(calls))
    futures = [pool.submit(call) for call in calls]
    wait_until(lambda: batcher.pending() == len(calls))
    gate.set()
    holder.join()
    for future in futures:
        future.exception(timeout=120)
    pool.shutdown()
    return futures
