"""Finished eval results committed a few at a time: one transaction per batch instead of one per query.

A run that is killed loses only the results still waiting (at most ``SAVE_EVERY``, none older than
``SAVE_WITHIN_S``) and redoes them on resume; ``progress`` counts committed results only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ragdeck.console.evalsets.model import EvalRecord
from ragdeck.console.evaluation.ports import EvalRunStore

SAVE_EVERY = 16  # finished results committed in one transaction ...
SAVE_WITHIN_S = 1.0  # ... or sooner, once the oldest has waited this long (slow runs: answers, judge)


class ResultSaver:
    """Finished results waiting to be committed, and the count of committed ones (what ``progress``
    reports). ``flush(when_due=True)`` commits once ``SAVE_EVERY`` results wait or the oldest has waited
    ``SAVE_WITHIN_S``; ``flush()`` commits whatever waits. One transaction per flush."""

    def __init__(
        self,
        runs: EvalRunStore,
        run_id: str,
        finished: int,
        total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.runs, self.run_id, self.progress = runs, run_id, progress
        self.finished, self.total = finished, total
        self.waiting: list[tuple[str, int, bool, dict[str, Any]]] = []
        self.since = 0.0

    def add(self, record: EvalRecord, position: int, result: dict[str, Any]) -> None:
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting.append((record.id, position, result["error"] is None, result))

    def flush(self, *, when_due: bool = False) -> None:
        if not self.waiting:
            return
        if when_due and len(self.waiting) < SAVE_EVERY and time.monotonic() - self.since < SAVE_WITHIN_S:
            return
        batch, self.waiting = self.waiting, []
        self.runs.save_results(self.run_id, batch)
        self.finished += len(batch)
        if self.progress:
            self.progress(self.finished, self.total)
