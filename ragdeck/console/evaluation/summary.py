"""A run's summary: the mean of every metric with a bootstrap 95 % interval, per-stage latency percentiles,
the counts of finished and failed queries, how deep the rankings scored were (``depth``: chunks retrieved,
documents scored, the queries that could not fill k documents) and the rerankers that actually ranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ragdeck.console.evaluation.depth import depth_summary
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.stats import bootstrap_cis
from ragdeck.services.types import RunRow

STAGES = ("embed", "search", "rerank", "generation", "judge", "total")


def percentiles(values: list[float]) -> dict[str, float]:
    """P50 and P95 of ``values`` and how many there are."""
    array = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95)), "n": len(values)}


def summarize(run: RunRow, results: list[dict[str, Any]], plan: EvalPlan) -> dict[str, Any]:
    """Mean of every metric over the queries that finished, with a bootstrap 95 % interval, per-stage
    latency percentiles, and the counts of finished and failed queries."""
    ok = [r for r in results if r.get("error") is None]
    names: list[str] = list(plan.retrieval_metric_names())
    for r in ok:
        names += [n for n in r["metrics"] if n not in names]
    columns = {name: [r["metrics"][name] for r in ok if name in r["metrics"]] for name in names}
    columns = {name: values for name, values in columns.items() if values}
    metrics = {
        name: {"mean": mean, "low": low, "high": high, "n": len(columns[name])}
        for name, (mean, low, high) in bootstrap_cis(columns).items()
    }
    latency = {}
    for stage in STAGES:
        values = [r["timings_ms"][stage] for r in ok if stage in r["timings_ms"]]
        if any(values):  # a stage that never ran (no reranker) is left out
            latency[stage] = percentiles(values)
    return {
        "queries": run.total,
        "finished": len(ok),
        "failed": len(results) - len(ok),
        "metrics": metrics,
        "latency_ms": latency,
        "judge": run.config.get("judge"),
        "levels": sorted({r["level"] for r in ok if r.get("level")}),
        "depth": depth_summary(
            [r["depth"] for r in ok if r.get("depth")], [r["query_id"] for r in ok if r.get("depth")]
        ),
        "rerankers": sorted({r["reranker"] for r in ok if r.get("reranker")}),
    }
