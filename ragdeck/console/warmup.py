"""The console's warm start: the embedding model loads and the serving collection opens in a background job
as soon as a page first builds the stack, so the first search does not pay for them and no health check has
to; the Stack page shows the job's state."""

from __future__ import annotations

import contextlib
import time

from ragdeck.console.interfaces import Embedder, VectorSearch
from ragdeck.console.jobs import Job
from ragdeck.errors import CollectionNotFound

WARM_UP_KIND = "warm-up"
WARM_TEXT = "warm up the embedding model"


def warm_up(embedder: Embedder, store: VectorSearch, alias: str, job: Job) -> float:
    """Load the model with one embedding, then one search on ``alias`` when it exists; seconds taken."""
    t0 = time.perf_counter()
    job.report("loading the embedding model", 0, 2)
    vector = embedder.embed_query(WARM_TEXT)
    job.report("opening the serving collection", 1, 2)
    with contextlib.suppress(CollectionNotFound):  # nothing indexed yet: there is nothing to open
        store.search(alias, vector, 10)
    job.report("warm", 2, 2)
    return time.perf_counter() - t0


def warm_up_status(job: Job | None) -> tuple[str, str]:
    """``(level, text)`` for a front: level is info (working), success, error or "" (not started)."""
    if job is None:
        return "", "Embedding model: not loaded yet (it loads when a page first needs it)."
    if job.running:
        return (
            "info",
            f"Embedding model: {job.stage or 'starting'}… ({time.time() - job.started_at:.0f} s so far)",
        )
    if job.error:
        return "error", f"Embedding model: warm-up failed: {job.error}"
    return (
        "success",
        f"Embedding model loaded and serving collection opened in the background in {job.result:.1f} s.",
    )
