"""Plotly figures of the A/B pages: B − A per metric with intervals, A against B per query, and the live
per-policy latency and rates of the canary panel."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from ragdeck.charts.axes import empty_state, has_points
from ragdeck.console.evaluation.compare import ALPHA, Comparison
from ragdeck.console.online.panel import LiveFigures

OUTCOME_COLOURS = {"win": "#2ca02c", "tie": "#7f7f7f", "loss": "#d62728"}
OUTCOME_LABELS = {"win": "B wins", "tie": "ties", "loss": "B loses"}


DECISION_COLOURS = {"B better": "#2ca02c", "no difference": "#7f7f7f", "B worse": "#d62728"}


def diff_forest(comparison: Comparison, alpha: float = ALPHA) -> go.Figure:
    """B − A per metric with its paired bootstrap 95 % interval; 0 marked (right of it: B better). Each
    point is coloured by the decision the Holm-adjusted p-value supports at ``alpha`` (one legend entry
    per decision), not by its own interval, which is not corrected for the number of metrics."""
    rows = list(reversed(comparison.metrics))
    fig = go.Figure()
    for decision, colour in DECISION_COLOURS.items():
        picked = [r for r in rows if r.decision(alpha) == decision]
        fig.add_trace(
            go.Scatter(
                x=[r.diff for r in picked],
                y=[r.metric for r in picked],
                name=f"{decision} (Holm p < {alpha:g})" if decision != "no difference" else decision,
                mode="markers",
                marker={"size": 10, "color": colour},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.high - r.diff for r in picked],
                    "arrayminus": [r.diff - r.low for r in picked],
                },
                customdata=[[r.low, r.high, r.p_holm] for r in picked],
                hovertemplate="%{y}: B−A %{x:+.4f} [%{customdata[0]:+.4f}, %{customdata[1]:+.4f}], "
                "p (Holm) %{customdata[2]:.3g}<extra></extra>",
                showlegend=True,
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="#555")
    fig.update_yaxes(categoryorder="array", categoryarray=[r.metric for r in rows])
    fig.update_layout(
        title="B − A per metric (bars: paired bootstrap 95 % interval; right of 0: B better)",
        xaxis_title="B − A (metric units)",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 40, "b": 10},
        height=max(260, 40 * len(rows) + 130),
    )
    return fig if rows else empty_state(fig, "no metric compared yet")


def pair_scatter(comparison: Comparison, metric: str) -> go.Figure:
    """A's value against B's for each query on ``metric``; queries with the same pair of values share one
    marker sized by their count. Above the diagonal B wins, below it B loses."""
    groups: dict[tuple[float, float, str], list[str]] = defaultdict(list)
    for row in comparison.per_query(metric):
        if row["outcome"] is not None:
            groups[(round(row["a"], 4), round(row["b"], 4), row["outcome"])].append(str(row["query_id"]))
    fig = go.Figure()
    for outcome, colour in OUTCOME_COLOURS.items():
        points = [(a, b, ids) for (a, b, o), ids in groups.items() if o == outcome]
        if not points:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="markers",
                name=f"{OUTCOME_LABELS[outcome]} ({sum(len(p[2]) for p in points)})",
                marker={
                    "color": colour,
                    "size": [8 + 6 * math.sqrt(len(p[2]) - 1) for p in points],
                    "opacity": 0.75,
                },
                customdata=[
                    [len(p[2]), ", ".join(p[2][:5]) + (" …" if len(p[2]) > 5 else "")] for p in points
                ],
                hovertemplate="A %{x:.3f} → B %{y:.3f}: %{customdata[0]} queries<br>%{customdata[1]}"
                "<extra></extra>",
            )
        )
    values = [v for (a, b, _) in groups for v in (a, b)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.05 or 0.05
    fig.add_shape(
        type="line",
        x0=low - pad,
        y0=low - pad,
        x1=high + pad,
        y1=high + pad,
        line={"dash": "dot", "color": "#555"},
    )
    fig.update_layout(
        title=f"{metric} per query: A against B (above the diagonal: B better)",
        xaxis_title=f"A ({comparison.run_a.run_id})",
        yaxis_title=f"B ({comparison.run_b.run_id})",
        margin={"t": 40, "b": 10},
        height=420,
    )
    return fig if groups else empty_state(fig, f"no query scored on {metric} by both runs")


def latency_bars(figures: LiveFigures, guard_p95_ms: float | None = None) -> go.Figure:
    """P50 and P95 request latency per policy; the guard's P95 threshold as a dashed line."""
    policies = [p.policy for p in figures.policies]
    fig = go.Figure(
        [
            go.Bar(name="P50", x=policies, y=[p.p50_ms for p in figures.policies]),
            go.Bar(name="P95", x=policies, y=[p.p95_ms for p in figures.policies]),
        ]
    )
    if guard_p95_ms:
        fig.add_hline(y=guard_p95_ms, line_dash="dash", line_color="#d62728", annotation_text="guard P95")
    fig.update_layout(
        title=f"Request latency (ms), {figures.window}",
        barmode="group",
        margin={"t": 40, "b": 10},
        height=320,
    )
    if not any(has_points(trace.y) for trace in fig.data):
        return empty_state(fig, f"no answered request {figures.window}")
    return fig


def rate_bars(figures: LiveFigures) -> go.Figure:
    """Error rate, no-answer rate and thumbs-up rate per policy (missing where nothing was counted)."""
    policies = [p.policy for p in figures.policies]
    series = {
        "error rate": [p.error_rate for p in figures.policies],
        "no-answer rate": [p.no_answer_rate for p in figures.policies],
        "thumbs-up rate": [p.thumbs_up_rate for p in figures.policies],
    }
    fig = go.Figure([go.Bar(name=name, x=policies, y=values) for name, values in series.items()])
    fig.update_layout(
        title="Rates per policy",
        barmode="group",
        yaxis={"range": [0, 1.05]},
        margin={"t": 40, "b": 10},
        height=320,
    )
    if not any(has_points(trace.y) for trace in fig.data):
        return empty_state(fig, f"no request counted {figures.window}")
    return fig


def p95_history(history: Sequence[LiveFigures], guard_p95_ms: float | None = None) -> go.Figure:
    """P95 per policy at each refresh of the panel (this browser session's history)."""
    fig = go.Figure()
    names = sorted({p.policy for f in history for p in f.policies})
    for name in names:
        points = [(f.at, p.p95_ms) for f in history for p in f.policies if p.policy == name]
        fig.add_trace(
            go.Scatter(
                x=[datetime.fromtimestamp(at, UTC) for at, _ in points],
                y=[v for _, v in points],
                mode="lines+markers",
                name=name,
            )
        )
    if guard_p95_ms:
        fig.add_hline(y=guard_p95_ms, line_dash="dash", line_color="#d62728", annotation_text="guard P95")
    fig.update_layout(title="P95 latency (ms) at each refresh", margin={"t": 40, "b": 10}, height=300)
    if not any(has_points(trace.y) for trace in fig.data):
        return empty_state(fig)
    return fig
