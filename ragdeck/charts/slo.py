"""Plotly figures of the SLO page: burn rates per window against the alert factors, and an SLI over time with
its objective drawn."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from ragdeck.charts.axes import empty_state, has_points, log_ticks
from ragdeck.console.slo.objectives import ALERT_RULES, WINDOWS, SloStatus


def burn_rate_bars(statuses: Sequence[SloStatus]) -> go.Figure:
    """Burn rate per window for each objective that has an error budget; dotted lines at the page and
    ticket factors (an alert fires when both windows of a pair are above their factor)."""
    fig = go.Figure()
    top = 20.0
    for s in statuses:
        if not s.burn_rates:
            continue
        rates = [s.burn_rates.get(w) for w in WINDOWS]
        top = max([top, *(2 * r for r in rates if r)])
        fig.add_trace(
            go.Bar(
                name=s.name,
                x=list(WINDOWS),
                y=[r if r else None for r in rates],  # 0 has no place on a log axis: no bar
                hovertemplate=s.name + " %{x}: burn rate %{y:.2f}<extra></extra>",
            )
        )
    for factor, severity in sorted({(r.factor, r.severity) for r in ALERT_RULES}):
        colour = "#d62728" if severity == "page" else "#ff7f0e"
        fig.add_hline(y=factor, line_dash="dot", line_color=colour, annotation_text=f"{severity} {factor:g}x")
    fig.update_layout(
        title="Burn rate by window (1 = spending the budget exactly over the period)",
        barmode="group",
        yaxis={
            "type": "log",
            "title": "burn rate",
            "range": [-2, math.log10(top)],
            **log_ticks(0.01, top),
        },
        margin={"t": 40, "b": 10},
        height=340,
    )
    if not any(has_points(trace.y) for trace in fig.data):
        return empty_state(fig, "no burn rate yet: no objective has spent any budget in these windows")
    return fig


def sli_series(name: str, points: Sequence[tuple[float, float]], threshold: float, unit: str) -> go.Figure:
    """One SLI over time with the objective as a dashed line."""
    fig = go.Figure(
        go.Scatter(
            x=[datetime.fromtimestamp(t, UTC) for t, _ in points],
            y=[v for _, v in points],
            mode="lines",
            name=name,
        )
    )
    fig.add_hline(y=threshold, line_dash="dash", line_color="#d62728", annotation_text="objective")
    fig.update_layout(
        title=f"{name}{f' ({unit})' if unit else ''}", margin={"t": 40, "b": 10}, height=260, showlegend=False
    )
    if not has_points(v for _, v in points):
        shown = f"{threshold:g} {unit}".strip()
        return empty_state(fig, f"no data yet (objective {shown})")
    return fig
