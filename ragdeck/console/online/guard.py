"""The canary guard: sends every user back to control when the canary's latency or error rate goes bad.

The API records each canary request (``record``) and calls ``check`` after it. The guard judges a sliding
time window: once it holds at least ``min_samples`` requests, it trips when P95 latency exceeds
``p95_ms`` or the error share exceeds ``error_rate``. Tripping sets the canary's weight to 0 in the shared
``RoutingState`` (actor "guard"), so every replica stops routing users to it within a second, and logs a
"guard_trip" event. While the weight stays 0 the guard does not trip again; when an operator raises it,
the guard starts over with an empty window.

P95 is the linear interpolation between closest ranks (numpy's default "linear" method, Hyndman and Fan
type 7): with n sorted latencies x, P95 = x[k] + f * (x[k+1] - x[k]) where k + f = 0.95 * (n - 1).

With a ``source`` (``services.prometheus.PrometheusReader``) it judges every replica's requests from
Prometheus instead of its own window, and falls back to its own window when Prometheus is unreachable or
has no data yet. Thresholds set through the state (``set_thresholds``) override the constructor's.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import numpy as np

from ragdeck.console.online.ports import RoutingState
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError, RagdeckError

log = logging.getLogger(__name__)

REQUEST_HISTOGRAM = "rag_request_seconds"


@dataclass(frozen=True)
class GuardThresholds:
    """When the guard trips: P95 above ``p95_ms`` or error share above ``error_rate``, judged only once
    ``min_samples`` requests fell within the last ``window_s`` seconds."""

    p95_ms: float = 2500.0
    error_rate: float = 0.05
    min_samples: int = 100
    window_s: float = 300.0

    def __post_init__(self) -> None:
        checks = {
            "p95_ms": self.p95_ms > 0,
            "error_rate": 0.0 <= self.error_rate <= 1.0,
            "min_samples": self.min_samples >= 1 and float(self.min_samples).is_integer(),
            "window_s": self.window_s > 0,
        }
        for name, ok in checks.items():
            if not ok or not math.isfinite(float(getattr(self, name))):
                raise InputError(
                    f"guard threshold {name}={getattr(self, name)!r} is invalid: p95_ms and window_s must be "
                    f"> 0, error_rate in [0, 1], min_samples a whole number >= 1"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardThresholds:
        """The thresholds in ``settings`` (``guard_p95_ms``, ``guard_error_rate``, ...)."""
        return cls(
            p95_ms=settings.guard_p95_ms,
            error_rate=settings.guard_error_rate,
            min_samples=settings.guard_min_samples,
            window_s=settings.guard_window_s,
        )

    def as_dict(self) -> dict[str, float]:
        """The thresholds by name, as ``RoutingState.set_thresholds`` takes them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def merged(self, overrides: Mapping[str, float]) -> GuardThresholds:
        """These thresholds with known names from ``overrides``; an invalid set of overrides is ignored."""
        known = {f.name for f in fields(self)}
        values: dict[str, Any] = {k: float(v) for k, v in overrides.items() if k in known}
        if "min_samples" in values:
            values["min_samples"] = int(values["min_samples"])
        try:
            return replace(self, **values)
        except InputError as exc:
            log.warning("ignoring guard thresholds from the routing state: %s", exc)
            return self


@dataclass(frozen=True)
class GuardVerdict:
    """One judgement: whether the guard tripped now, why, and the numbers it saw (None: no data).

    ``source`` is "prometheus" (all replicas) or "local" (this process's window).
    """

    tripped: bool
    reason: str
    p95_ms: float | None
    error_rate: float | None
    samples: int
    source: str


class MetricsSource(Protocol):
    """What the guard reads from a metrics backend (``services.prometheus.PrometheusReader``)."""

    def p95_ms(self, metric: str, policy: str, window: str | float) -> float | None: ...

    def error_rate(self, policy: str, window: str | float) -> float | None: ...

    def sample_count(self, policy: str, window: str | float) -> int | None: ...


class EventLog(RoutingState, Protocol):
    """A routing state that can also append free-form events (both ``services.routing_state`` backends)."""

    def record_event(self, kind: str, *, policy: str = "", actor: str, reason: str = "", **data: Any) -> None:
        """Append one event."""


def p95(latencies_ms: np.ndarray) -> float:
    """P95 by linear interpolation between closest ranks (numpy "linear"); NaN for no samples."""
    return float(np.percentile(latencies_ms, 95)) if latencies_ms.size else math.nan


class CanaryGuard:
    """Watches one canary ``policy`` and sets its weight to 0 when it breaches ``thresholds``.

    ``trips`` counts the trips made by this process (the API exports it); ``last_verdict`` is the latest
    judgement. The local window keeps at most ``max_samples`` newest requests (a check then costs about
    1 ms). The state is re-read at most every ``cache_s`` seconds and Prometheus at most every
    ``source_cache_s`` seconds (a failed read too), since ``check`` runs after every request.
    """

    def __init__(
        self,
        state: EventLog,
        thresholds: GuardThresholds,
        policy: str,
        clock: Callable[[], float] = time.monotonic,
        source: MetricsSource | None = None,
        *,
        metric: str = REQUEST_HISTOGRAM,
        cache_s: float = 1.0,
        source_cache_s: float = 5.0,
        max_samples: int = 10_000,
    ) -> None:
        self.state = state
        self.thresholds = thresholds
        self.policy = policy
        self.source = source
        self.metric = metric
        self.cache_s = cache_s
        self.source_cache_s = source_cache_s
        self.trips = 0
        self.last_verdict: GuardVerdict | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[tuple[float, float, bool]] = deque(maxlen=max_samples)
        self._state_at: float | None = None
        self._weight: float | None = None
        self._overrides: dict[str, float] = {}
        self._disarmed = False
        self._armed_at: float | None = None
        self._source_at: float | None = None
        self._source_stats: tuple[int, float | None, float | None] | None = None

    # ------------------------------------------------------------------ recording

    def record(self, policy: str, latency_s: float, ok: bool) -> None:
        """Note one finished request; requests of other policies are ignored."""
        if policy != self.policy:
            return
        with self._lock:
            self._window.append((self._clock(), max(0.0, float(latency_s)), bool(ok)))

    def current_thresholds(self) -> GuardThresholds:
        """The constructor's thresholds with the state's overrides (as last read)."""
        return self.thresholds.merged(self._overrides)

    # ------------------------------------------------------------------ judging

    def check(self) -> GuardVerdict:
        """Judge the window now; trip (weight 0, event, counter, warning) when a threshold is breached."""
        with self._lock:
            now = self._clock()
            try:
                self._refresh_state(now)
            except RagdeckError as exc:
                log.warning("canary guard cannot read the routing state: %s", exc)
                return self._verdict(False, f"routing state unavailable: {exc}", None, None, 0, "local")
            thresholds = self.current_thresholds()
            if self._weight == 0.0:  # nothing to protect; what arrives meanwhile is not judged later
                self._disarmed = True
                self._window.clear()
                return self._verdict(False, f"canary '{self.policy}' weight is 0", None, None, 0, "local")
            if self._disarmed:  # an operator raised the weight again: judge only what came after
                self._disarmed = False
                self._armed_at = now
                self._source_at = None
            samples, p95_ms, error_rate, source = self._stats(now, thresholds)
            if samples < thresholds.min_samples:
                reason = f"{samples} of {thresholds.min_samples} samples needed"
                return self._verdict(False, reason, p95_ms, error_rate, samples, source)
            breaches = []
            if p95_ms is not None and p95_ms > thresholds.p95_ms:
                breaches.append(f"P95 {p95_ms:.0f} ms > {thresholds.p95_ms:.0f} ms")
            if error_rate is not None and error_rate > thresholds.error_rate:
                breaches.append(f"error rate {error_rate:.1%} > {thresholds.error_rate:.1%}")
            if not breaches:
                return self._verdict(False, "within thresholds", p95_ms, error_rate, samples, source)
            reason = (
                f"canary '{self.policy}' {' and '.join(breaches)} over {samples} requests "
                f"in {thresholds.window_s:.0f} s ({source})"
            )
            return self._trip(reason, p95_ms, error_rate, samples, source)

    def _verdict(self, *args: Any) -> GuardVerdict:
        self.last_verdict = GuardVerdict(*args)
        return self.last_verdict

    def _refresh_state(self, now: float) -> None:
        if self._state_at is not None and now - self._state_at < self.cache_s:
            return
        self._weight = self.state.weights().get(self.policy)
        self._overrides = self.state.thresholds()
        self._state_at = now

    def _stats(self, now: float, thresholds: GuardThresholds) -> tuple[int, float | None, float | None, str]:
        if self.source is not None:
            stats = self._read_source(now, thresholds)
            if stats is not None:
                return (*stats, "prometheus")
        while self._window and now - self._window[0][0] > thresholds.window_s:
            self._window.popleft()
        n = len(self._window)
        if n == 0:
            return 0, None, None, "local"
        latencies_ms = np.fromiter((s[1] * 1000.0 for s in self._window), dtype=float, count=n)
        errors = sum(1 for s in self._window if not s[2])
        return n, p95(latencies_ms), errors / n, "local"

    def _read_source(
        self, now: float, thresholds: GuardThresholds
    ) -> tuple[int, float | None, float | None] | None:
        """(samples, p95_ms, error_rate) from the source, cached; None when unreachable or without data."""
        if self._source_at is not None and now - self._source_at < self.source_cache_s:
            return self._source_stats
        self._source_at = now
        self._source_stats = None
        window = thresholds.window_s
        if self._armed_at is not None:
            window = min(window, now - self._armed_at)
        if window < 1:
            return None
        assert self.source is not None
        try:
            samples = self.source.sample_count(self.policy, window)
            if samples is None:
                return None
            p95_ms = self.source.p95_ms(self.metric, self.policy, window)
            error_rate = self.source.error_rate(self.policy, window)
        except RagdeckError as exc:
            log.warning("canary guard falls back to its own window: metrics source failed: %s", exc)
            return None
        self._source_stats = (samples, p95_ms, error_rate)
        return self._source_stats

    def _trip(
        self, reason: str, p95_ms: float | None, error_rate: float | None, samples: int, source: str
    ) -> GuardVerdict:
        try:
            previous = self.state.weights().get(self.policy)
            if previous == 0.0:  # another replica tripped first
                self._weight, self._disarmed = 0.0, True
                reason = f"canary '{self.policy}' weight is 0"
                return self._verdict(False, reason, p95_ms, error_rate, samples, source)
            self.state.set_weight(self.policy, 0.0, actor="guard", reason=reason)
            numbers = {"p95_ms": p95_ms, "error_rate": error_rate, "samples": samples, "source": source}
            self.state.record_event(
                "guard_trip",
                policy=self.policy,
                actor="guard",
                reason=reason,
                previous_weight=previous,
                **numbers,
            )
        except RagdeckError as exc:
            log.error("canary guard could not set '%s' to weight 0 (%s): %s", self.policy, reason, exc)
            failed = f"{reason}; could not set the weight: {exc}"
            return self._verdict(False, failed, p95_ms, error_rate, samples, source)
        self.trips += 1
        self._weight, self._disarmed = 0.0, True
        self._window.clear()
        log.warning("canary guard tripped: %s; weight set to 0", reason)
        return self._verdict(True, reason, p95_ms, error_rate, samples, source)
