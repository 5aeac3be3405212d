"""How an eval run batches its questions' embeddings, and runs its queries one at a time without threads.

Questions are embedded ``EMBED_WINDOW`` at a time ahead of their queries: the window is sorted by length and
embedded in calls of ``EMBED_BATCH`` (``embed_documents``), so each call pads little. On the 2-core CPU
(bench/eval.py), calls of 16 similar-length questions took half the time per question of one call per
question on the demo set's short questions and no more on longer ones; a call of 64 unsorted ones padded
to its longest took three times as long on the longer ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ragdeck.console.interfaces import Embedder

EMBED_BATCH = 16  # questions per embed_documents call
EMBED_WINDOW = 64  # questions sorted by length together, then embedded EMBED_BATCH at a time


def embed_questions(embedder: Embedder, questions: Sequence[str]) -> list[tuple[list[float] | None, float]]:
    """Each question's vector and its share of its call's time (ms), in the order given. A call that fails
    gives no vector to its questions: each query then embeds its own and records the error if it fails."""
    out: list[tuple[list[float] | None, float]] = [(None, 0.0)] * len(questions)
    order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
    for begin in range(0, len(order), EMBED_BATCH):
        chunk = order[begin : begin + EMBED_BATCH]
        t0 = time.perf_counter()
        try:
            rows = embedder.embed_documents([questions[i] for i in chunk]).tolist()
        except Exception:
            continue
        share = (time.perf_counter() - t0) * 1000 / len(chunk)
        for i, row in zip(chunk, rows, strict=True):
            out[i] = (row, share)
    return out


class Inline:
    """An executor that runs each call at once in the calling thread (a run with concurrency 1: no thread
    hand-off per query)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def __enter__(self) -> Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
