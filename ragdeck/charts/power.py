"""Plotly figure of a sample-size report: power against the number of questions."""

from __future__ import annotations

import plotly.graph_objects as go

from ragdeck.console.evaluation.power import PowerReport


def power_curve(report: PowerReport) -> go.Figure:
    """Power to detect Δ against the number of questions, with the target power and this set's n marked
    (and the n needed, when it lies on the curve)."""
    ns = [n for n, _ in report.curve]
    fig = go.Figure(
        go.Scatter(
            x=ns,
            y=[p for _, p in report.curve],
            mode="lines+markers" if report.method == "simulation" else "lines",
            name=f"power for Δ = {report.delta:g}",
            hovertemplate="%{x} questions: power %{y:.0%}<extra></extra>",
        )
    )
    fig.add_hline(
        y=report.power, line_dash="dot", line_color="#777", annotation_text=f"target {report.power:.0%}"
    )
    fig.add_vline(
        x=report.n_current,
        line_dash="dash",
        line_color="#1f77b4",
        annotation_text=f"this set: {report.n_current}",
        annotation_position="bottom right",
    )
    if report.n_needed is not None and report.n_needed <= max(ns):
        fig.add_vline(
            x=report.n_needed,
            line_dash="dash",
            line_color="#2ca02c",
            annotation_text=f"needed: {report.n_needed}",
            annotation_position="top left",
        )
    fig.update_layout(
        title=f"Power against questions ({report.method}), {report.metric}",
        xaxis={"title": "questions"},
        yaxis={"title": "power", "range": [0, 1.02], "tickformat": ".0%"},
        margin={"t": 40, "b": 10},
        height=320,
        showlegend=False,
    )
    return fig
