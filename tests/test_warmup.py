"""The console's background warm-up (``console.warmup``) on the real embedder and embedded store: it loads
the model and opens the serving collection, reports its stages, survives an empty data directory, and its
status text says what happened (working, done, failed)."""

from __future__ import annotations

import threading

import numpy as np

from ragdeck.console.jobs import JobRunner
from ragdeck.console.warmup import warm_up, warm_up_status
from ragdeck.services.embedders import LocalEmbedder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


class Held:
    """The real embedder, held at its first call until ``release`` is set."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()

    def embed_query(self, text: str) -> np.ndarray:
        self.entered.set()
        self.release.wait()
        return self.inner.embed_query(text)


def test_warm_up_loads_the_model_and_reports_each_state(tmp_path) -> None:
    embedder = LocalEmbedder()
    store = EmbeddedQdrantStore(tmp_path / "qdrant")
    held = Held(embedder)
    assert warm_up_status(None)[0] == ""
    job = JobRunner().start("warm-up:x", lambda j: warm_up(held, store, "rag_chunks", j))
    assert held.entered.wait(60)
    level, text = warm_up_status(job)
    assert level == "info" and "loading the embedding model" in text
    held.release.set()
    # no collection yet: nothing to open, which is not a failure
    assert job.wait(300) and job.state == "done", job.error
    assert embedder.loaded
    level, text = warm_up_status(job)
    assert level == "success" and "loaded" in text


def test_a_failed_warm_up_is_shown_as_failed(tmp_path) -> None:
    broken = LocalEmbedder(str(tmp_path))  # a directory that is not a model
    store = EmbeddedQdrantStore(tmp_path / "qdrant")
    job = JobRunner().start("warm-up:y", lambda j: warm_up(broken, store, "rag_chunks", j))
    assert job.wait(120) and job.state == "failed"
    level, text = warm_up_status(job)
    assert level == "error" and "warm-up failed" in text and str(tmp_path) in text
