"""Micro-batching: concurrent small calls gathered into one model call on one worker thread.

``MicroBatcher(run)`` owns one daemon thread, the only one that calls ``run``. A caller hands it a list of
items and blocks until its own results come back. The worker takes the oldest pending call and every call
queued behind it (up to ``max_items`` items in all) and runs them as one ``run(items)``; each caller gets its
own slice of the results, or the exception ``run`` raised. A call of more than ``max_items`` items runs alone,
and so does ``alone(job)``: any other work that must stay on the same thread (a large encode).

When a call finds the worker idle (nothing was queued when the previous batch ended), it starts at once: a
lone caller never pays the wait. Only when calls were already waiting after a batch (the worker is under
load) does the worker gather for up to ``wait_ms`` more, to fill the batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
X = TypeVar("X")

RECENT_BATCHES = 256  # batches kept in ``recent`` for tests and diagnostics


@dataclass(frozen=True)
class BatchRecord:
    """One ``run`` call: how many callers and items it served, and whether the worker waited to gather."""

    calls: int
    items: int
    waited: bool
    job: bool = False  # an ``alone(job)`` call, not items


@dataclass
class _Call(Generic[T, R]):
    items: list[T]
    job: Callable[[], object] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: list[R] | None = None
    error: BaseException | None = None


class MicroBatcher(Generic[T, R]):
    """Gathers concurrent ``__call__(items)`` into single ``run(items)`` calls on one worker thread."""

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        *,
        wait_ms: float = 2.0,
        max_items: int = 32,
        name: str = "batch",
    ) -> None:
        if wait_ms < 0:
            raise ValueError(f"wait_ms must be >= 0, got {wait_ms}")
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self._run = run
        self.wait_s = wait_ms / 1000
        self.max_items = max_items
        self._name = name
        self._pending: deque[_Call[T, R]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.recent: deque[BatchRecord] = deque(maxlen=RECENT_BATCHES)

    def __call__(self, items: Sequence[T]) -> list[R]:
        """``run``'s results for ``items`` (in order), computed in a batch with concurrent calls."""
        call: _Call[T, R] = _Call(list(items))
        if not call.items:
            return []
        self._wait(call)
        assert call.result is not None
        return call.result

    def alone(self, job: Callable[[], X]) -> X:
        """``job()`` run on the worker thread as a batch of its own (its exception raised here)."""
        call: _Call[T, R] = _Call([], job=job)
        self._wait(call)
        return call.result  # type: ignore[return-value]

    def pending(self) -> int:
        """Calls queued and not yet taken into a batch."""
        with self._cond:
            return len(self._pending)

    def _wait(self, call: _Call[T, R]) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._pending.append(call)
            self._cond.notify()
        call.done.wait()
        if call.error is not None:
            raise call.error

    def _loop(self) -> None:
        loaded = False  # calls were still queued when the previous batch ended
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                    loaded = False
                batch, waited = self._gather(loaded)
            self._execute(batch, waited)
            with self._cond:
                loaded = bool(self._pending)

    def _gather(self, loaded: bool) -> tuple[list[_Call[T, R]], bool]:
        """The next batch (holding the lock): the oldest call and those behind it that fit."""
        first = self._pending.popleft()
        batch, count = [first], len(first.items)
        if first.job is not None or count >= self.max_items:
            return batch, False
        deadline = time.monotonic() + self.wait_s
        waited = False
        while count < self.max_items:
            if self._pending:
                head = self._pending[0]
                if head.job is not None or count + len(head.items) > self.max_items:
                    break
                call = self._pending.popleft()
                batch.append(call)
                count += len(call.items)
                continue
            left = deadline - time.monotonic()
            if not loaded or left <= 0:
                break
            waited = True
            self._cond.wait(left)
        return batch, waited

    def _execute(self, batch: list[_Call[T, R]], waited: bool) -> None:
        if batch[0].job is not None:
            call = batch[0]
            self.recent.append(BatchRecord(calls=1, items=0, waited=False, job=True))
            try:
                call.result = call.job()  # type: ignore[assignment]
            except BaseException as exc:
                call.error = exc
            call.done.set()
            return
        items = [item for call in batch for item in call.items]
        self.recent.append(BatchRecord(calls=len(batch), items=len(items), waited=waited))
        try:
            results = list(self._run(items))
            if len(results) != len(items):
                raise RuntimeError(f"batched call returned {len(results)} results for {len(items)} items")
        except BaseException as exc:  # every waiting caller gets it; the worker keeps going
            for call in batch:
                call.error = exc
                call.done.set()
            return
        start = 0
        for call in batch:
            call.result = results[start : start + len(call.items)]
            start += len(call.items)
            call.done.set()
