"""Traffic replay: eval-set questions sent to a RAG API at a bounded open-loop rate, and what came back.

- Schedule: request ``i`` is due at ``i / qps`` seconds after the start, for every ``i / qps < duration``;
  question ``i mod len(questions)``, user ``replay-user-{i mod users}`` (stable ids, so the API's canary
  routing splits them). Sends never run ahead of their slot; at most ``max_in_flight`` are outstanding (a send
  that waits for one is ``throttled``), and a send more than one interval late moves the rest of the schedule
  later instead of bursting to catch up. So at most ``ceil(duration * qps)`` are sent, and no window of
  T seconds holds more than ``T * qps + 2``.
- Stop: when the next slot falls past ``duration``, or when ``stop`` is set (Ctrl+C). After the duration the
  outstanding requests are awaited (the client's timeout bounds them); after ``stop`` they are cancelled.
- Statistics: latency percentiles (numpy's linear interpolation) over 200 answers only; errors counted by
  status (HTTP code, ``timeout``, ``connection``); per policy: count, P50/P95, error rate (errors / count)
  and no-answer rate (no-answers / 200 answers). An error with no policy in its body is counted under the
  forced ``--policy``, else under ``(unknown)``.

The HTTP call is any ``Sender``; ``ragdeck.services.replay_client.RagApiClient`` is the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ragdeck.errors import InputError
from ragdeck.services.replay_client import QueryReply

Sender = Callable[[str, str, "str | None"], Awaitable[QueryReply]]
"""``send(question, user_id, policy) -> QueryReply``: one ``POST /query``; no raising for server errors."""

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
UNKNOWN_POLICY = "(unknown)"


def check_target(url: str, allow_remote: bool = False) -> str:
    """The API's base URL without a trailing slash; InputError unless http(s) on loopback (or allowed)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--target {url!r} is not an http(s) URL: give e.g. http://127.0.0.1:8000")
    if parts.hostname.lower() not in LOOPBACK_HOSTS and not allow_remote:
        raise InputError(
            f"--target {url!r} is not on this machine (127.0.0.1, ::1 or localhost): replay sends real load, "
            "so pass --allow-remote to send it to another host"
        )
    return url.strip().rstrip("/")


def user_id(i: int, users: int) -> str:
    """The synthetic user of request ``i``: ``replay-user-{i mod users}``."""
    return f"replay-user-{i % users}"


def planned_sends(qps: float, duration_s: float) -> int:
    """How many slots ``i / qps`` fall before ``duration_s``: ceil(duration * qps)."""
    return math.ceil(duration_s * qps - 1e-9)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay and how fast. ``policy`` forces one policy by name (else the API routes)."""

    questions: list[str]
    qps: float
    duration_s: float
    users: int = 10
    policy: str | None = None
    max_in_flight: int = 32

    def __post_init__(self) -> None:
        if not self.questions:
            raise InputError("the eval set has no questions to replay: add records to it")
        if not (self.qps > 0 and math.isfinite(self.qps)):
            raise InputError(f"--qps must be a positive number, got {self.qps}")
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise InputError(f"--duration must be a positive number of seconds, got {self.duration_s}")
        if self.users < 1:
            raise InputError(f"--users must be at least 1, got {self.users}")
        if self.max_in_flight < 1:
            raise InputError(f"--max-in-flight must be at least 1, got {self.max_in_flight}")


@dataclass(frozen=True)
class PolicyFigures:
    """One policy's share of the replay."""

    count: int
    ok: int
    errors: int
    no_answer: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        """errors / count (0.0 for none)."""
        return self.errors / self.count if self.count else 0.0

    @property
    def no_answer_rate(self) -> float:
        """no-answers / 200 answers (0.0 for none)."""
        return self.no_answer / self.ok if self.ok else 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain dict with the rates."""
        return {
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "no_answer": self.no_answer,
            "no_answer_rate": self.no_answer_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
        }


@dataclass(frozen=True)
class ReplaySummary:
    """The figures of a replay so far (live) or at the end (``done``)."""

    target_qps: float
    elapsed_s: float
    sent: int
    ok: int
    errors: dict[str, int]
    cancelled: int
    throttled: int
    p50_ms: float | None
    p95_ms: float | None
    policies: dict[str, PolicyFigures]
    done: bool = False
    interrupted: bool = False

    @property
    def achieved_qps(self) -> float:
        """sent / elapsed seconds of sending."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        """All errors, whatever their status."""
        return sum(self.errors.values())

    @property
    def in_flight(self) -> int:
        """Sent and not yet answered (nor cancelled)."""
        return self.sent - self.ok - self.error_count - self.cancelled

    def to_json(self) -> dict[str, Any]:
        """The summary as written by ``--json``."""
        return {
            "target_qps": self.target_qps,
            "achieved_qps": round(self.achieved_qps, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "cancelled": self.cancelled,
            "throttled": self.throttled,
            "latency_ms": {"p50": self.p50_ms, "p95": self.p95_ms},
            "policies": {name: figures.to_json() for name, figures in self.policies.items()},
            "interrupted": self.interrupted,
        }

    def lines(self) -> list[str]:
        """The summary as plain text lines (a table per policy)."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        errors = ", ".join(f"{status} x{n}" for status, n in sorted(self.errors.items())) or "none"
        state = "interrupted" if self.interrupted else ("done" if self.done else "running")
        out = [
            f"Replay {state}: {self.sent} sent in {self.elapsed_s:.1f} s "
            f"({self.achieved_qps:.2f} QPS achieved, target {self.target_qps:g}); "
            f"{self.ok} ok, {self.error_count} errors, "
            f"{self.in_flight} in flight, {self.cancelled} cancelled, {self.throttled} throttled.",
            f"Errors by status: {errors}.",
            f"Latency of ok answers: P50 {ms(self.p50_ms)} ms, P95 {ms(self.p95_ms)} ms.",
        ]
        if self.policies:
            out.append(
                f"{'policy':<12} {'count':>7} {'P50 ms':>9} {'P95 ms':>9} "
                f"{'error rate':>10} {'no-answer rate':>14}"
            )
            for name, f in sorted(self.policies.items()):
                out.append(
                    f"{name:<12} {f.count:>7} {ms(f.p50_ms):>9} {ms(f.p95_ms):>9} "
                    f"{f.error_rate:>10.1%} {f.no_answer_rate:>14.1%}"
                )
        return out


@dataclass
class ReplayStats:
    """Running counts of a replay; ``summary()`` turns them into figures."""

    target_qps: float
    forced_policy: str | None = None
    sent: int = 0
    cancelled: int = 0
    throttled: int = 0
    ok_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    by_policy: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, reply: QueryReply, latency_ms: float) -> None:
        """Count one reply under its policy."""
        name = reply.policy or self.forced_policy or UNKNOWN_POLICY
        entry = self.by_policy.setdefault(name, {"count": 0, "errors": 0, "no_answer": 0, "ok_ms": []})
        entry["count"] += 1
        if reply.ok:
            self.ok_ms.append(latency_ms)
            entry["ok_ms"].append(latency_ms)
            entry["no_answer"] += int(reply.no_answer)
        else:
            self.errors[str(reply.status)] += 1
            entry["errors"] += 1

    def summary(self, elapsed_s: float, done: bool = False, interrupted: bool = False) -> ReplaySummary:
        """The figures now."""
        policies = {
            name: PolicyFigures(
                count=e["count"],
                ok=len(e["ok_ms"]),
                errors=e["errors"],
                no_answer=e["no_answer"],
                p50_ms=percentile(e["ok_ms"], 50),
                p95_ms=percentile(e["ok_ms"], 95),
            )
            for name, e in self.by_policy.items()
        }
        return ReplaySummary(
            target_qps=self.target_qps,
            elapsed_s=elapsed_s,
            sent=self.sent,
            ok=len(self.ok_ms),
            errors=dict(self.errors),
            cancelled=self.cancelled,
            throttled=self.throttled,
            p50_ms=percentile(self.ok_ms, 50),
            p95_ms=percentile(self.ok_ms, 95),
            policies=policies,
            done=done,
            interrupted=interrupted,
        )


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``event``; True when it is set."""
    if timeout_s > 0 and not event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
    return event.is_set()


async def run_replay(
    plan: ReplayPlan,
    send: Sender,
    *,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[ReplaySummary], None] | None = None,
    tick_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Replay ``plan`` through ``send`` (see the module docstring); ``on_tick`` gets the live figures every
    ``tick_s`` seconds. Returns the final summary (``interrupted`` when ``stop`` ended it)."""
    stop = stop or asyncio.Event()
    stats = ReplayStats(plan.qps, plan.policy)
    slots = asyncio.Semaphore(plan.max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / plan.qps
    start = clock()
    end = start + plan.duration_s
    base, base_i = start, 0  # slot i is due at base + (i - base_i) * interval; moved later when behind
    sending_ended = end

    async def one(question: str, user: str) -> None:
        t0 = time.perf_counter()
        try:
            reply = await send(question, user, plan.policy)
        except Exception as exc:  # a broken sender must not end the replay; count it
            reply = QueryReply(f"exception:{type(exc).__name__}")
        finally:
            slots.release()
        stats.record(reply, (time.perf_counter() - t0) * 1000.0)

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if task.cancelled():
            stats.cancelled += 1

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_s)
            if on_tick is not None:
                on_tick(stats.summary(min(clock(), sending_ended) - start))

    ticking = asyncio.create_task(ticker())
    try:
        i = 0
        while True:
            due = base + (i - base_i) * interval
            if due >= end or await _wait(stop, due - clock()):
                sending_ended = min(clock(), end) if stop.is_set() else end
                break
            if slots.locked():
                stats.throttled += 1
            acquired = asyncio.ensure_future(slots.acquire())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {acquired, stopped}, timeout=end - clock(), return_when=asyncio.FIRST_COMPLETED
            )
            stopped.cancel()
            now = clock()
            if not acquired.done() or stop.is_set() or now >= end:
                acquired.cancel()
                if acquired.done() and not acquired.cancelled():
                    slots.release()
                sending_ended = min(now, end)
                break
            if now - due > interval:  # fell behind (a full in-flight window): resume from now, no burst
                base, base_i = now, i
            question = plan.questions[i % len(plan.questions)]
            task = asyncio.create_task(one(question, user_id(i, plan.users)))
            tasks.add(task)
            task.add_done_callback(finished)
            stats.sent += 1
            i += 1
        if tasks and not stop.is_set():
            pending = asyncio.ensure_future(asyncio.wait(set(tasks)))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({pending, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            pending.cancel()
    finally:
        ticking.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, ticking, return_exceptions=True)
    return stats.summary(sending_ended - start, done=True, interrupted=stop.is_set())


class ReplayJob:
    """A replay running in a background thread (the console's Canary page), with its live summary.

    ``open_sender`` builds the sender inside the job's own event loop (an async HTTP client belongs to one
    loop); the sender's ``aclose`` is awaited when the replay ends. ``stop()`` ends it early.
    """

    def __init__(self, plan: ReplayPlan, open_sender: Callable[[], Any], target: str) -> None:
        self.plan = plan
        self.target = target
        self.summary: ReplaySummary | None = None
        self.error: str | None = None
        self._open_sender = open_sender
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="replay", daemon=True)

    def start(self) -> ReplayJob:
        """Start sending; returns once the replay's loop runs."""
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    @property
    def running(self) -> bool:
        """True until the replay has ended (by itself, stopped or failed)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """End the replay now (outstanding requests are cancelled; the summary is kept)."""
        if self._loop is not None and self._stop is not None and self.running:
            self._loop.call_soon_threadsafe(self._stop.set)

    def _main(self) -> None:
        async def replay() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            sender = self._open_sender()
            try:
                self.summary = await run_replay(
                    self.plan, sender, stop=self._stop, on_tick=lambda s: setattr(self, "summary", s)
                )
            finally:
                await sender.aclose()

        try:
            asyncio.run(replay())
        except Exception as exc:  # shown on the page; the console keeps running
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()
