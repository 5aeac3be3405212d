"""The SLOs evaluated on live data: from Prometheus (every replica, over the SLO windows) or, without it, from
the RAG API's own ``/metrics`` (one process, since it started; no history, so no budget or burn rate).

The SLIs are the ones ``monitoring/rules/ragdeck_recording.yml`` records, written out in PromQL so that an
edited target is honoured: availability errors = 5xx / (ok + 5xx) of ``rag_requests_total``; slow requests
= the share of ``rag_retrieval_rerank_seconds`` (or ``rag_generation_seconds``) observations above the
latency target, read at the histogram bucket bound at or above the target (a histogram knows no finer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ragdeck.console.interfaces import MetricsQuery
from ragdeck.console.online.panel import histogram_quantile
from ragdeck.console.slo.objectives import (
    WINDOW_SECONDS,
    WINDOWS,
    SloStatus,
    SloTargets,
    quality_status,
    ratio_status,
)
from ragdeck.services.types import MetricSample, RunRow

RETRIEVAL = "rag_retrieval_rerank_seconds"
GENERATION = "rag_generation_seconds"
SERVED = 'status=~"ok|error"'


def bucket_at_or_above(target_s: float, bounds: Sequence[float]) -> float | None:
    """The smallest finite bucket bound >= ``target_s`` (None when every bound is below it)."""
    above = sorted(b for b in bounds if math.isfinite(b) and b >= target_s - 1e-12)
    return above[0] if above else None


def availability_promql(window: str) -> str:
    """Failed share of served requests over ``window``: the availability SLI."""
    errors = f'sum(rate(rag_requests_total{{status="error"}}[{window}]))'
    return f"({errors} or vector(0)) / sum(rate(rag_requests_total{{{SERVED}}}[{window}]))"


def slow_promql(histogram: str, le: str, window: str) -> str:
    """Share of ``histogram``'s observations above the bucket ``le`` (its label as exported, e.g. "0.2")
    over ``window``: a latency SLI."""
    fast = f'sum(rate({histogram}_bucket{{le="{le}"}}[{window}]))'
    return f"1 - {fast} / sum(rate({histogram}_count[{window}]))"


def p95_promql(histogram: str, window: str = "5m") -> str:
    """P95 of ``histogram`` over ``window`` in seconds."""
    return f"histogram_quantile(0.95, sum by (le) (rate({histogram}_bucket[{window}])))"


def _scalar(query: MetricsQuery, promql: str) -> float | None:
    return query.by_labels(promql, ()).get(())


def _bounds(query: MetricsQuery, histogram: str) -> dict[float, str]:
    """The histogram's bucket bounds, each with its ``le`` label as exported."""
    found = query.by_labels(f"count by (le) ({histogram}_bucket)", ("le",))
    return {float(le): le for (le,) in found}


def _period(targets: SloTargets) -> str:
    return f"{round(targets.period_days * 86400)}s"


def _latency_status(
    name: str,
    histogram: str,
    target_s: float,
    unit_scale: float,
    unit: str,
    bounds: Sequence[float],
    value_s: float | None,
    bad: Mapping[str, float | None],
    period_bad: float | None,
) -> SloStatus:
    bound = bucket_at_or_above(target_s, bounds)
    note = ""
    if not bounds:
        note = f"no {histogram} series yet: no request has been recorded"
    elif bound is None:
        note = f"no bucket of {histogram} at or above the target: the budget cannot be measured"
    elif abs(bound - target_s) > 1e-12:
        note = f"SLI counts requests over {bound:g} s, the bucket bound at or above the target"
    return ratio_status(
        name,
        f"P95 of {histogram} ≤ {target_s * unit_scale:g} {unit}: at most 5 % of requests slower",
        value=None if value_s is None else value_s * unit_scale,
        target=target_s * unit_scale,
        unit=unit,
        higher_is_better=False,
        budget=0.05,
        bad_ratios=bad,
        period_bad_ratio=period_bad,
        note=note,
    )


def data_span_s(query: MetricsQuery, now: float) -> float | None:
    """Seconds of request history Prometheus holds (up to the longest burn-rate window): from the first
    sample of ``rag_requests_total`` it has to ``now``, at 15-second resolution (0 when it has less than
    that); None when it has none."""
    longest = WINDOWS[-1]
    first = _scalar(query, f"min(min_over_time(timestamp(rag_requests_total)[{longest}:15s]))")
    if first is None:
        return 0.0 if _scalar(query, "count(rag_requests_total)") else None
    return max(0.0, now - first)


def thin_windows(span_s: float | None) -> list[str]:
    """The burn-rate windows longer than the data there is: their rates are computed from that data only."""
    if span_s is None:
        return []
    return [w for w in WINDOWS if WINDOW_SECONDS[w] > span_s + 60]  # one scrape step of slack


def slo_from_prometheus(
    query: MetricsQuery, targets: SloTargets, runs: Sequence[RunRow], collection: str
) -> list[SloStatus]:
    """Every objective from Prometheus: values, budgets over the period, burn rates over the windows."""
    period = _period(targets)
    budget = 1.0 - targets.availability
    bad = {w: _scalar(query, availability_promql(w)) for w in WINDOWS}
    period_bad = _scalar(query, availability_promql(period))
    statuses = [
        ratio_status(
            "availability",
            f"≥ {targets.availability:.3%} of served requests succeed over {targets.period_days:g} days",
            value=None if period_bad is None else 1.0 - period_bad,
            target=targets.availability,
            unit="",
            higher_is_better=True,
            budget=budget,
            bad_ratios=bad,
            period_bad_ratio=period_bad,
        )
    ]
    for name, histogram, target_s, scale, unit in (
        ("retrieval + rerank P95", RETRIEVAL, targets.retrieval_p95_ms / 1000, 1000.0, "ms"),
        ("generation P95", GENERATION, targets.generation_p95_s, 1.0, "s"),
    ):
        bounds = _bounds(query, histogram)
        bound = bucket_at_or_above(target_s, list(bounds))
        slow = (
            {w: _scalar(query, slow_promql(histogram, bounds[bound], w)) for w in (*WINDOWS, period)}
            if bound is not None
            else {}
        )
        statuses.append(
            _latency_status(
                name, histogram, target_s, scale, unit, bounds, _scalar(query, p95_promql(histogram)),
                slow, slow.get(period),
            )
        )  # fmt: skip
    error_1h = bad.get("1h")
    statuses.append(
        SloStatus("error rate", f"< {targets.error_rate:.2%} of served requests fail over 1 h", error_1h,
                  targets.error_rate, "", False)
    )  # fmt: skip
    return statuses + _quality_statuses(targets, runs, collection)


def slo_from_samples(
    samples: Sequence[MetricSample], targets: SloTargets, runs: Sequence[RunRow], collection: str
) -> list[SloStatus]:
    """Every objective from one scrape of the API's ``/metrics``: values since the API process started;
    budgets and burn rates need history (Prometheus), so they are left empty with a note saying so."""
    note = "since the API started (its /metrics); budget and burn rates need PROMETHEUS_URL"
    totals: dict[tuple[str, str], float] = {}
    buckets: dict[str, dict[float, float]] = {RETRIEVAL: {}, GENERATION: {}}
    for s in samples:
        if s.name == "rag_requests_total":
            key = ("requests", s.labels.get("status", ""))
            totals[key] = totals.get(key, 0.0) + s.value
        elif s.name.endswith("_bucket") and s.name[: -len("_bucket")] in buckets:
            hist = buckets[s.name[: -len("_bucket")]]
            le = float(s.labels["le"])
            hist[le] = hist.get(le, 0.0) + s.value
    served = totals.get(("requests", "ok"), 0.0) + totals.get(("requests", "error"), 0.0)
    error_ratio = totals.get(("requests", "error"), 0.0) / served if served else None
    availability = None if error_ratio is None else 1.0 - error_ratio
    statuses = [
        SloStatus("availability", f"≥ {targets.availability:.3%} of served requests succeed",
                  availability, targets.availability, "", True, note=note)
    ]  # fmt: skip
    for name, histogram, target_s, scale, unit in (
        ("retrieval + rerank P95", RETRIEVAL, targets.retrieval_p95_ms / 1000, 1000.0, "ms"),
        ("generation P95", GENERATION, targets.generation_p95_s, 1.0, "s"),
    ):
        hist = buckets[histogram]
        p95 = histogram_quantile(0.95, sorted(hist.items()))
        statuses.append(
            SloStatus(name, f"P95 of {histogram} ≤ {target_s * scale:g} {unit}",
                      None if p95 is None else p95 * scale, target_s * scale, unit, False, note=note)
        )  # fmt: skip
    statuses.append(
        SloStatus("error rate", f"< {targets.error_rate:.2%} of served requests fail", error_ratio,
                  targets.error_rate, "", False, note=note)
    )  # fmt: skip
    return statuses + _quality_statuses(targets, runs, collection)


def _quality_statuses(targets: SloTargets, runs: Sequence[RunRow], collection: str) -> list[SloStatus]:
    """The quality objectives (faithfulness and the recall metric), read from the latest eval runs."""
    return [
        quality_status("faithfulness", "faithfulness", targets.faithfulness, runs, collection),
        quality_status(targets.recall_metric, targets.recall_metric, targets.recall, runs, collection),
    ]


def series_promql(targets: SloTargets) -> dict[str, tuple[str, float, str]]:
    """Time series the SLO page draws: name -> (PromQL, threshold, unit)."""
    return {
        "retrieval + rerank P95": (f"{p95_promql(RETRIEVAL)} * 1000", targets.retrieval_p95_ms, "ms"),
        "generation P95": (p95_promql(GENERATION), targets.generation_p95_s, "s"),
        "error rate": (availability_promql("5m"), targets.error_rate, ""),
    }
