"""Choosing from a sweep: the Pareto front of recall against latency, and the recommendation.

The recommendation is the cheapest configuration that meets the recall target: the lowest latency among
those at or above the target (and within the latency budget when one is given); ties go to the smaller
index, then smaller m, then smaller ef. Nothing here measures: the page's sliders call ``choose`` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ragdeck.console.evaluation.metric_names import DOC_PREFIX
from ragdeck.console.hnsw.grid import Recommendation, SweepResult, SweepRow, check_keys
from ragdeck.errors import InputError


def pareto_front(
    rows: Sequence[SweepRow], recall_key: str = "recall_exact", latency_key: str = "p95_ms"
) -> list[int]:
    """Indexes of the rows no other row beats: none has lower-or-equal latency and higher-or-equal recall
    with one of them strictly better. Sorted by latency. Rows without the recall figure are left out."""
    check_keys(recall_key, latency_key)
    points = [
        (i, float(getattr(r, latency_key)), float(getattr(r, recall_key)))
        for i, r in enumerate(rows)
        if getattr(r, recall_key) is not None
    ]
    front = [
        i
        for i, lat, rec in points
        if not any((l2 <= lat and r2 >= rec) and (l2 < lat or r2 > rec) for _, l2, r2 in points)
    ]
    return sorted(front, key=lambda i: (getattr(rows[i], latency_key), -getattr(rows[i], recall_key)))


def recommend(
    rows: Sequence[SweepRow],
    target: float,
    budget_ms: float | None = None,
    *,
    k: int = 10,
    recall_key: str = "recall_exact",
    latency_key: str = "p95_ms",
    gold_metric: str | None = None,
) -> Recommendation:
    """The cheapest configuration that meets ``target``: lowest latency among rows with recall >= target
    (and latency <= ``budget_ms`` when given); ties: smaller index, smaller m, smaller ef. ``gold_metric``
    names recall against gold (``recall@k`` over chunks or ``doc_recall@k`` over documents)."""
    check_keys(recall_key, latency_key)
    if not 0.0 <= target <= 1.0:
        raise InputError(f"the recall target must be in [0, 1], got {target}")
    recall_name = f"recall@{k}"
    what = "against exact search"
    if recall_key != "recall_exact":
        recall_name = gold_metric or recall_name
        counted = "documents" if recall_name.startswith(DOC_PREFIX) else "chunks"
        what = f"against the gold eval set (k {counted})"
    lat_name = "P95" if latency_key == "p95_ms" else "P50"
    scored = [(i, r) for i, r in enumerate(rows) if getattr(r, recall_key) is not None]
    if not scored:
        return Recommendation(
            None, f"No configuration has recall {what}: give an eval set or pick recall_exact."
        )
    meets = [(i, r) for i, r in scored if getattr(r, recall_key) >= target]
    within = [(i, r) for i, r in meets if budget_ms is None or getattr(r, latency_key) <= budget_ms]
    if not within:
        _, best = max(scored, key=lambda ir: (getattr(ir[1], recall_key), -getattr(ir[1], latency_key)))
        if meets:
            fastest = min(getattr(r, latency_key) for _, r in meets)
            return Recommendation(
                None,
                f"No configuration reaches {recall_name} >= {target:g} {what} within the {budget_ms:g} ms "
                f"budget: the fastest that reaches it takes {fastest:.2f} ms at {lat_name}, so raise the "
                f"budget or lower the target.",
            )
        return Recommendation(
            None,
            f"No configuration reaches {recall_name} >= {target:g} {what}: the best is {best.label} with "
            f"{getattr(best, recall_key):.3f} at {lat_name} {getattr(best, latency_key):.2f} ms, so try a "
            f"larger ef or m, or lower the target.",
        )
    index, row = min(
        within,
        key=lambda ir: (getattr(ir[1], latency_key), ir[1].index_bytes or 0, ir[1].m, ir[1].ef),
    )
    budget = f", within the {budget_ms:g} ms budget" if budget_ms is not None else ""
    return Recommendation(
        index,
        f"{row.label} is the cheapest of the {len(within)} configurations that reach {recall_name} >= "
        f"{target:g} {what}{budget}: recall {getattr(row, recall_key):.3f} at {lat_name} "
        f"{getattr(row, latency_key):.2f} ms.",
    )


def choose(
    result: SweepResult,
    target: float,
    budget_ms: float | None = None,
    *,
    recall_key: str = "recall_exact",
    latency_key: str = "p95_ms",
) -> SweepResult:
    """The same sweep with the front and the recommendation worked out for this target, budget and
    choice of recall and latency (the page's sliders call it; nothing is measured again). The sentence of
    a partial sweep says how much of the plan it measured."""
    front = set(pareto_front(result.rows, recall_key, latency_key))
    pick = recommend(
        result.rows, target, budget_ms, k=result.k, recall_key=recall_key, latency_key=latency_key,
        gold_metric=result.gold_metric,
    )  # fmt: skip
    if result.partial:
        pick = replace(
            pick,
            sentence=f"Partial sweep ({len(result.rows)} of {result.planned} configurations measured): "
            + pick.sentence,
        )
    rows = [replace(r, on_front=i in front, recommended=i == pick.index) for i, r in enumerate(result.rows)]
    return replace(
        result,
        rows=rows,
        recommendation=pick,
        target=target,
        budget_ms=budget_ms,
        recall_key=recall_key,
        latency_key=latency_key,
    )
