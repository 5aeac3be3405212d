"""The online A/B panel: live per-policy figures of the RAG API, and the canary controls (audited).

Figures come from Prometheus when ``PROMETHEUS_URL`` is set (PromQL over a window: every replica), else from
the RAG API's own ``/metrics`` (one process): counters and histogram buckets are differenced between two
scrapes, or taken whole since the API started when there is no earlier scrape. Latency quantiles use
Prometheus' ``histogram_quantile`` interpolation in both cases, so both sources agree to bucket resolution.

Changing the canary's weight, promoting it, rolling it back and editing the guard's thresholds go through the
API's admin endpoints, need the operator role, and are written to the audit log with before and after.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ragdeck.console import audit
from ragdeck.console.interfaces import MetricsQuery
from ragdeck.console.online.ports import RoutingAdmin
from ragdeck.console.roles import User, require
from ragdeck.errors import InputError
from ragdeck.services.types import MetricSample

REQUEST_HISTOGRAM = "rag_request_seconds"
SERVED = ("ok", "error")
THRESHOLD_NAMES = ("p95_ms", "error_rate", "min_samples", "window_s")


@dataclass(frozen=True)
class PolicyFigures:
    """One policy over the window: traffic share, requests served, latency, errors, no-answers, votes.

    Rates are None when nothing was counted (no request, no vote), never a made-up zero.
    """

    policy: str
    weight: float | None
    served: float
    throughput_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    error_rate: float | None
    no_answer_rate: float | None
    thumbs_up: float
    thumbs_down: float

    @property
    def thumbs_up_rate(self) -> float | None:
        """Share of votes that were thumbs up."""
        votes = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / votes if votes else None

    def row(self) -> dict[str, Any]:
        """The figures as one table row (rounded for display)."""
        return {
            "policy": self.policy,
            "weight": None if self.weight is None else round(self.weight, 4),
            "requests": round(self.served),
            "req/s": _round(self.throughput_rps, 3),
            "P50 ms": _round(self.p50_ms, 1),
            "P95 ms": _round(self.p95_ms, 1),
            "error rate": _round(self.error_rate, 4),
            "no-answer rate": _round(self.no_answer_rate, 4),
            "thumbs up": round(self.thumbs_up),
            "thumbs down": round(self.thumbs_down),
            "thumbs-up rate": _round(self.thumbs_up_rate, 3),
        }


@dataclass(frozen=True)
class LiveFigures:
    """Per-policy figures, where they came from (``source``: "prometheus" or "api") and over what window."""

    source: str
    window: str
    at: float
    policies: list[PolicyFigures]

    def rows(self) -> list[dict[str, Any]]:
        """One display row per policy."""
        return [p.row() for p in self.policies]

    def to_json(self) -> dict[str, Any]:
        """Everything, for a download."""
        return {
            "source": self.source,
            "window": self.window,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds"),
            "policies": [{**asdict(p), "thumbs_up_rate": p.thumbs_up_rate} for p in self.policies],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The ``q`` quantile from cumulative histogram buckets ``(upper_bound, count)``, as PromQL computes it.

    Buckets are sorted by bound; the last must be +Inf. With n = the +Inf count and rank = q * n, the
    quantile lies in the first bucket whose count reaches rank and is interpolated linearly inside it:
    start + (end - start) * (rank - count_below) / count_in_bucket, the first bucket starting at 0. A rank
    in the +Inf bucket returns the highest finite bound. None when there are no observations or no +Inf
    bucket; counts that decrease (scrapes from different moments) are made monotonic first, as PromQL does.
    """
    if not 0.0 <= q <= 1.0:
        raise InputError(f"quantile must be in [0, 1], got {q!r}")
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    bounds = [b for b, _ in ordered]
    counts: list[float] = []
    for _, count in ordered:
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, c in enumerate(counts) if c >= rank)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0 if index == 0 else bounds[index - 1]
    below = 0.0 if index == 0 else counts[index - 1]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return bounds[index]
    return start + (bounds[index] - start) * ((rank - below) / in_bucket)  # PromQL's order of operations


# ---------------------------------------------------------------------- from the API's /metrics


class _Index:
    """Samples summed by (name, label values) for quick lookups."""

    def __init__(self, samples: Iterable[MetricSample]) -> None:
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for s in samples:
            key = (s.name, frozenset(s.labels.items()))
            self.values[key] = self.values.get(key, 0.0) + s.value

    def series(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = set(labels.items())
        return {k[1]: v for k, v in self.values.items() if k[0] == name and want <= k[1]}


def _delta(current: _Index, previous: _Index | None, name: str, **labels: str) -> float:
    """Sum over matching series of the increase since ``previous`` (a series that went down restarted)."""
    total = 0.0
    before = previous.series(name, **labels) if previous is not None else {}
    for key, value in current.series(name, **labels).items():
        old = before.get(key, 0.0)
        total += value - old if value >= old else value
    return total


def _bucket_deltas(current: _Index, previous: _Index | None, policy: str) -> list[tuple[float, float]]:
    by_le: dict[float, float] = defaultdict(float)
    before = previous.series(f"{REQUEST_HISTOGRAM}_bucket", policy=policy) if previous is not None else {}
    for key, value in current.series(f"{REQUEST_HISTOGRAM}_bucket", policy=policy).items():
        le = float(dict(key)["le"])
        old = before.get(key, 0.0)
        by_le[le] += value - old if value >= old else value
    return sorted(by_le.items())


def figures_from_samples(
    current: Sequence[MetricSample],
    previous: Sequence[MetricSample] | None = None,
    *,
    elapsed_s: float | None = None,
    weights: Mapping[str, float] | None = None,
    now: float | None = None,
) -> LiveFigures:
    """Per-policy figures from the RAG API's ``/metrics``: the change since ``previous`` (a scrape taken
    ``elapsed_s`` seconds before), or everything since the API started when there is no earlier scrape
    (throughput then divides by the age of the request counters, from their ``_created`` samples).

    Policies are those with request counters (the "invalid" label of rejected bodies is left out) and those
    in ``weights``; a policy's weight comes from ``weights``, else from the ``rag_policy_weight`` gauge.
    """
    now = time.time() if now is None else now
    cur = _Index(current)
    prev = _Index(previous) if previous is not None else None
    names = {dict(k).get("policy", "") for k in cur.series("rag_requests_total")} | set(weights or {})
    names.discard("")
    names.discard("invalid")
    gauge = {dict(k).get("policy"): v for k, v in cur.series("rag_policy_weight").items()}
    figures = []
    for policy in sorted(names):
        ok = _delta(cur, prev, "rag_requests_total", policy=policy, status="ok")
        errors = _delta(cur, prev, "rag_requests_total", policy=policy, status="error")
        served = ok + errors
        if prev is not None and elapsed_s:
            span: float | None = elapsed_s
        else:
            created = cur.series("rag_requests_created", policy=policy).values()
            span = now - min(created) if created else None
        quantiles = _bucket_deltas(cur, prev, policy)
        p50, p95 = histogram_quantile(0.5, quantiles), histogram_quantile(0.95, quantiles)
        no_answer = _delta(cur, prev, "rag_no_answer_total", policy=policy)
        weight = (weights or {}).get(policy, gauge.get(policy))
        figures.append(
            PolicyFigures(
                policy=policy,
                weight=weight,
                served=served,
                throughput_rps=served / span if span and span > 0 else None,
                p50_ms=None if p50 is None else p50 * 1000,
                p95_ms=None if p95 is None else p95 * 1000,
                error_rate=errors / served if served else None,
                no_answer_rate=no_answer / ok if ok else None,
                thumbs_up=_delta(cur, prev, "rag_feedback_total", policy=policy, vote="up"),
                thumbs_down=_delta(cur, prev, "rag_feedback_total", policy=policy, vote="down"),
            )
        )
    if prev is not None and elapsed_s:
        window = f"last {elapsed_s:.0f} s (this API process's /metrics)"
    else:
        window = "since the API process started (its /metrics)"
    return LiveFigures("api", window, now, figures)


class ScrapeHistory:
    """Recent scrapes of the API's ``/metrics`` (newest last), so figures can cover a window like PromQL's."""

    def __init__(self, max_scrapes: int = 720) -> None:
        self.scrapes: deque[tuple[float, list[MetricSample]]] = deque(maxlen=max_scrapes)

    def add(self, samples: Sequence[MetricSample], at: float | None = None) -> None:
        """Keep one scrape taken at ``at`` (now by default)."""
        self.scrapes.append((time.time() if at is None else at, list(samples)))

    def figures(self, window_s: float, weights: Mapping[str, float] | None = None) -> LiveFigures:
        """Figures of the newest scrape against the oldest one inside ``window_s`` (the whole history when
        it is shorter); since the API started when there is only one scrape."""
        if not self.scrapes:
            raise InputError("no scrape of the API's /metrics yet: refresh the panel")
        now, current = self.scrapes[-1]
        base = next(((t, s) for t, s in self.scrapes if now - t <= window_s and t < now), None)
        if base is None:
            return figures_from_samples(current, weights=weights, now=now)
        return figures_from_samples(current, base[1], elapsed_s=now - base[0], weights=weights, now=now)


# ---------------------------------------------------------------------- from Prometheus


def promql_queries(window_s: float) -> dict[str, str]:
    """The PromQL the panel runs, by figure, over the last ``window_s`` seconds (summed over replicas)."""
    w = f"{max(1, round(window_s))}s"
    served = f'rag_requests_total{{status=~"{"|".join(SERVED)}"}}'
    return {
        "served": f"sum by (policy) (increase({served}[{w}]))",
        "ok": f'sum by (policy) (increase(rag_requests_total{{status="ok"}}[{w}]))',
        "errors": f'sum by (policy) (increase(rag_requests_total{{status="error"}}[{w}]))',
        "p50": f"histogram_quantile(0.5, sum by (le, policy) (rate({REQUEST_HISTOGRAM}_bucket[{w}])))",
        "p95": f"histogram_quantile(0.95, sum by (le, policy) (rate({REQUEST_HISTOGRAM}_bucket[{w}])))",
        "no_answer": f"sum by (policy) (increase(rag_no_answer_total[{w}]))",
        "feedback": f"sum by (policy, vote) (increase(rag_feedback_total[{w}]))",
        "weight": "max by (policy) (rag_policy_weight)",
    }


def figures_from_prometheus(
    query: MetricsQuery,
    window_s: float = 300.0,
    *,
    weights: Mapping[str, float] | None = None,
    now: float | None = None,
) -> LiveFigures:
    """Per-policy figures over the last ``window_s`` seconds from Prometheus (every replica's requests).

    Counts come from ``increase`` (PromQL extrapolates them to the window's edges, so they need not be
    whole); throughput is served requests over the window.
    """
    if not window_s >= 1:
        raise InputError(f"the window must be at least 1 second, got {window_s!r}")
    promql = promql_queries(window_s)
    by_policy = {
        name: {k[0]: v for k, v in query.by_labels(promql[name], ("policy",)).items()}
        for name in ("served", "ok", "errors", "p50", "p95", "no_answer", "weight")
    }
    votes = query.by_labels(promql["feedback"], ("policy", "vote"))
    names = set(by_policy["served"]) | set(by_policy["weight"]) | set(weights or {})
    names.discard("")
    names.discard("invalid")
    figures = []
    for policy in sorted(names):
        served = by_policy["served"].get(policy, 0.0)
        ok = by_policy["ok"].get(policy, 0.0)
        p50, p95 = by_policy["p50"].get(policy), by_policy["p95"].get(policy)
        figures.append(
            PolicyFigures(
                policy=policy,
                weight=(weights or {}).get(policy, by_policy["weight"].get(policy)),
                served=served,
                throughput_rps=served / window_s,
                p50_ms=None if p50 is None else p50 * 1000,
                p95_ms=None if p95 is None else p95 * 1000,
                error_rate=by_policy["errors"].get(policy, 0.0) / served if served else None,
                no_answer_rate=by_policy["no_answer"].get(policy, 0.0) / ok if ok else None,
                thumbs_up=votes.get((policy, "up"), 0.0),
                thumbs_down=votes.get((policy, "down"), 0.0),
            )
        )
    minutes = f"{window_s / 60:g} min" if window_s >= 60 else f"{window_s:g} s"
    return LiveFigures(
        "prometheus", f"last {minutes}, all replicas (Prometheus)", now or time.time(), figures
    )


# ---------------------------------------------------------------------- controls


def _current_weight(admin: RoutingAdmin, policy: str) -> float | None:
    weights = admin.routing().get("weights") or {}
    value = weights.get(policy)
    return None if value is None else float(value)


def set_canary_weight(
    admin: RoutingAdmin,
    user: User,
    weight: float,
    reason: str = "",
    *,
    log: audit.AuditLog,
    action: str = "canary.weight",
) -> dict[str, Any]:
    """Send ``weight`` (0..1) of the users to the canary; operator only; audited. Returns the new routing."""
    if not (isinstance(weight, int | float) and 0.0 <= float(weight) <= 1.0):
        raise InputError(f"the canary weight must be between 0 and 100 %, got {weight!r}")
    summary = admin.routing()
    canary = str(summary["canary"])
    require(user, action, target=canary, log=log)
    before = (summary.get("weights") or {}).get(canary)
    after = admin.set_weight(canary, float(weight), reason=reason.strip(), actor=user.name)
    audit.record(user, action, canary, before=before, after=float(weight), reason=reason, log=log)
    return after


def promote_canary(
    admin: RoutingAdmin, user: User, reason: str = "", *, log: audit.AuditLog
) -> dict[str, Any]:
    """Send every user to the canary (weight 100 %); operator only; audited as ``canary.promote``."""
    return set_canary_weight(admin, user, 1.0, reason, log=log, action="canary.promote")


def roll_back_canary(
    admin: RoutingAdmin, user: User, reason: str = "", *, log: audit.AuditLog
) -> dict[str, Any]:
    """Send every user back to control (canary weight 0); operator only; audited as ``canary.rollback``."""
    return set_canary_weight(admin, user, 0.0, reason, log=log, action="canary.rollback")


def set_guard_thresholds(
    admin: RoutingAdmin, user: User, values: Mapping[str, float], reason: str = "", *, log: audit.AuditLog
) -> dict[str, Any]:
    """Change the guard's thresholds (any of p95_ms, error_rate, min_samples, window_s) on every replica;
    operator only; audited with the old and new values. Only values that differ from the current are sent."""
    unknown = sorted(set(values) - set(THRESHOLD_NAMES))
    if unknown:
        raise InputError(f"unknown guard threshold(s) {', '.join(unknown)}: use {', '.join(THRESHOLD_NAMES)}")
    require(user, "canary.thresholds", target="guard", log=log)
    current = admin.routing().get("thresholds") or {}
    changed = {
        k: float(v) for k, v in values.items() if current.get(k) is None or float(current[k]) != float(v)
    }
    if not changed:
        return admin.routing()
    after = admin.set_thresholds(changed, reason.strip(), actor=user.name)
    audit.record(
        user,
        "canary.thresholds",
        "guard",
        before={k: current.get(k) for k in changed},
        after=changed,
        reason=reason,
        log=log,
    )
    return after


def event_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The API's routing events (newest first) as table rows: time (UTC), kind, policy, actor, change, why."""
    rows = []
    for event in events:
        kind = str(event.get("kind", ""))
        if kind == "weight":
            change = f"weight {_pct(event.get('previous'))} → {_pct(event.get('weight'))}"
        elif kind == "guard_trip":
            p95, rate = event.get("p95_ms"), event.get("error_rate")
            seen = [f"P95 {p95:.0f} ms" if isinstance(p95, int | float) else ""]
            seen.append(f"errors {rate:.1%}" if isinstance(rate, int | float) else "")
            change = f"weight {_pct(event.get('previous_weight'))} → 0 % ({', '.join(s for s in seen if s)})"
        elif kind == "thresholds":
            change = ", ".join(f"{k} = {v:g}" for k, v in (event.get("values") or {}).items())
        else:
            change = ""
        ts = event.get("ts")
        rows.append(
            {
                "time (UTC)": datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")
                if isinstance(ts, int | float)
                else "",
                "event": "guard rollback" if kind == "guard_trip" else kind,
                "policy": event.get("policy", ""),
                "by": event.get("actor", ""),
                "change": change,
                "reason": event.get("reason", ""),
            }
        )
    return rows


def guard_rollbacks(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The guard's trips among the events (newest first)."""
    return [e for e in events if e.get("kind") == "guard_trip"]


def active_rollback(events: Iterable[Mapping[str, Any]], policy: str) -> Mapping[str, Any] | None:
    """The guard trip that set ``policy``'s current weight, or None when a later change (or none) did."""
    for event in events:  # newest first
        if event.get("policy") == policy and event.get("kind") in ("weight", "guard_trip"):
            return event if event.get("kind") == "guard_trip" else None
    return None


def _pct(value: Any) -> str:
    return f"{float(value):.0%}" if isinstance(value, int | float) else "default"
