"""Plotly figure of a retrieval study: every trial's tune score against its P95 latency."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go


def trials_figure(study: dict[str, Any]) -> go.Figure:
    """One point per scored trial (x: P95 ms, y: the objective on the tune questions), one colour per
    retrieval mode; the chosen trial and the baseline marked, the P95 budget drawn when there is one."""
    fig = go.Figure()
    trials = [t for t in study.get("trials") or [] if t.get("tune_score") is not None]
    for mode in ("dense", "lexical", "hybrid"):
        points = [t for t in trials if t["params"].get("retrieval") == mode]
        if points:
            fig.add_trace(
                go.Scatter(
                    x=[t["p95_ms"] for t in points],
                    y=[t["tune_score"] for t in points],
                    mode="markers",
                    name=mode,
                    text=[t["label"] for t in points],
                    hovertemplate="%{text}<br>tune score %{y:.4f}<br>P95 %{x:.1f} ms<extra></extra>",
                    marker={"size": 9, "opacity": 0.8},
                )
            )
    chosen, baseline = study.get("chosen"), study.get("baseline_scores")
    if chosen and chosen.get("tune_score") is not None:
        fig.add_trace(
            go.Scatter(
                x=[chosen["p95_ms"]], y=[chosen["tune_score"]], mode="markers", name="chosen",
                marker={"size": 18, "symbol": "star", "color": "#2ca02c", "line": {"width": 1}},
                hovertemplate=f"chosen: {chosen['label']}<extra></extra>",
            )
        )  # fmt: skip
    if baseline and baseline.get("tune_score") is not None:
        fig.add_trace(
            go.Scatter(
                x=[baseline["p95_ms"]], y=[baseline["tune_score"]], mode="markers", name="baseline",
                marker={"size": 14, "symbol": "x", "color": "#444"},
                hovertemplate="baseline policy<extra></extra>",
            )
        )  # fmt: skip
    budget = study.get("budget_p95_ms")
    if budget:
        label = f"budget {budget:g} ms"
        fig.add_vline(x=budget, line_dash="dash", line_color="#d62728", annotation_text=label)
    fig.update_layout(
        xaxis_title="P95 latency (ms), measured on the tune questions",
        yaxis_title=f"{study.get('objective', 'objective')} on the tune questions",
        legend_title_text="retrieval",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=380,
    )
    return fig
