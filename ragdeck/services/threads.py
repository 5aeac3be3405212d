"""CPU threads of in-process models, sized to the cores this process may use.

torch's default (one intra-op thread per core of the machine) oversubscribes the cores when the API's
request threads, the embedded vector store and other worker processes run beside it: measured on 2 cores,
a query embedding under 16 concurrent API requests took P50 138 ms with torch's default and 12 ms with one
thread. ``apply_torch_threads`` sets torch's threads once per process, before the first model call.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from pathlib import Path

_lock = threading.Lock()
_applied: int | None = None


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota where one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs the cgroup allows (v2 ``cpu.max``, else v1 ``cfs_quota_us``); None when unlimited or unknown."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def worker_processes() -> int:
    """API worker processes sharing these cores: ``WEB_CONCURRENCY`` (uvicorn's, gunicorn's), else 1."""
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))
    except ValueError:
        return 1


def torch_threads(requested: int | None = None, cores: int | None = None, workers: int | None = None) -> int:
    """Intra-op threads for torch: ``requested`` when set, else this process's share of the usable cores
    less one core left to request handling and the vector store (at least 1)."""
    if requested is not None:
        return max(1, requested)
    share = (cores or usable_cores()) // (workers or worker_processes())
    return max(1, share - 1)


def apply_torch_threads(requested: int | None = None) -> int:
    """Set torch's intra-op (and inter-op) threads and ``TOKENIZERS_PARALLELISM`` once per process; the
    first call wins (torch cannot change its inter-op pool later). Returns the intra-op thread count."""
    global _applied
    with _lock:
        if _applied is not None:
            return _applied
        import torch

        threads = torch_threads(requested)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if threads > 1 else "false")
        torch.set_num_threads(threads)
        # The models run on one inference thread each; once inter-op work has started, torch keeps its pool.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
        _applied = threads
        return threads
