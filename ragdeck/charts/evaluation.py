"""Plotly figures of an eval run: headline metrics with their 95 % intervals, and metric@k curves."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ragdeck.charts.axes import empty_state
from ragdeck.console.evaluation.report import headline_metrics, metric_curves


def summary_bars(summary: dict[str, Any] | None) -> go.Figure:
    """One bar per headline metric (mean) with its bootstrap 95 % interval as error bars."""
    metrics = (summary or {}).get("metrics") or {}
    names = headline_metrics(summary)
    means = [metrics[n]["mean"] for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=means,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [metrics[n]["high"] - metrics[n]["mean"] for n in names],
                "arrayminus": [metrics[n]["mean"] - metrics[n]["low"] for n in names],
            },
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Mean per metric (bars: bootstrap 95 % interval)",
        yaxis={"range": [0, 1.05]},
        margin={"t": 40, "b": 10},
        height=340,
    )
    return fig if names else empty_state(fig, "no metric yet: the run has no scored query")


def curves(summary: dict[str, Any] | None, prefix: str = "") -> go.Figure:
    """metric@k against k, one line per metric, with the interval as a band; ``prefix="doc_"`` for
    document level."""
    rows = metric_curves(summary, prefix)
    fig = go.Figure()
    for metric in sorted({r["metric"] for r in rows}):
        points = [r for r in rows if r["metric"] == metric]
        ks = [p["k"] for p in points]
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=[p["mean"] for p in points],
                mode="lines+markers",
                name=metric,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "thickness": 1,
                    "array": [p["high"] - p["mean"] for p in points],
                    "arrayminus": [p["mean"] - p["low"] for p in points],
                },
                hovertemplate=metric + "@%{x}: %{y:.3f}<extra></extra>",
            )
        )
    level = "document level: k documents" if prefix else "chunk level: k chunks"
    fig.update_layout(
        title=f"metric@k ({level})",
        xaxis={"title": "k", "tickvals": sorted({r["k"] for r in rows})},
        yaxis={"range": [0, 1.05]},
        margin={"t": 40, "b": 10},
        height=360,
    )
    return fig if rows else empty_state(fig, "no metric@k yet: the run has no scored query")


def report_charts(summary: dict[str, Any] | None) -> list[str]:
    """The figures as HTML fragments for the self-contained report (plotly.js inlined once)."""
    figures = [summary_bars(summary), curves(summary)]
    return [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
