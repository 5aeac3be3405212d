"""Plotly figure of an HNSW sweep: recall against latency for every configuration, the Pareto front joined
by a line, the recommended configuration starred, the recall target and latency budget as guide lines."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ragdeck.charts.axes import empty_state, log_ticks
from ragdeck.console.hnsw import SweepRow

_SYMBOLS = {"live": "circle", "copy": "diamond"}
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_NAMES = {
    "recall_exact": "recall vs exact search",
    "recall_gold": "recall vs gold",
    "p50_ms": "P50",
    "p95_ms": "P95",
}


def _hover(row: SweepRow) -> str:
    gold = "n/a" if row.recall_gold is None else f"{row.recall_gold:.3f}"
    build = "live index" if row.build_s is None else f"{row.build_s:.2f} s"
    size = "n/a" if row.index_bytes is None else f"{row.index_bytes:,} B"
    return (
        f"<b>m={row.m} ef_construct={row.ef_construct} ef={row.ef}</b><br>"
        f"recall vs exact {row.recall_exact:.3f}<br>recall vs gold {gold}<br>"
        f"P50 {row.p50_ms:.3f} ms, P95 {row.p95_ms:.3f} ms<br>build {build}<br>HNSW {size}"
    )


def pareto_figure(
    rows: Sequence[SweepRow],
    front: Sequence[int],
    recommended: int | None,
    *,
    k: int,
    target: float | None = None,
    budget_ms: float | None = None,
    recall_key: str = "recall_exact",
    latency_key: str = "p95_ms",
    recall_label: str | None = None,
) -> go.Figure:
    """Every configuration as a point (colour: m; circle: live index, diamond: temporary copy), the front
    as a line labelled with m and ef, the recommendation as a star; hover shows every figure of a
    configuration. ``recall_label`` names the recall axis (``SweepResult.gold_label`` states the level)."""
    recall_name = recall_label or f"{_NAMES[recall_key]}@{k}"
    fig = go.Figure()
    scored = [(i, r) for i, r in enumerate(rows) if getattr(r, recall_key) is not None]
    for n, m in enumerate(sorted({r.m for _, r in scored})):
        group = [(i, r) for i, r in scored if r.m == m]
        fig.add_trace(
            go.Scatter(
                x=[getattr(r, latency_key) for _, r in group],
                y=[getattr(r, recall_key) for _, r in group],
                mode="markers",
                marker={
                    "size": 10,
                    "color": _COLOURS[n % len(_COLOURS)],
                    "symbol": [_SYMBOLS.get(r.index, "circle") for _, r in group],
                },
                name=f"m={m}",
                hovertext=[_hover(r) for _, r in group],
                hoverinfo="text",
            )
        )
    if front:
        fig.add_trace(
            go.Scatter(
                x=[getattr(rows[i], latency_key) for i in front],
                y=[getattr(rows[i], recall_key) for i in front],
                mode="lines+text",
                text=[f"m{rows[i].m} ef{rows[i].ef}" for i in front],
                textposition="bottom right",
                textfont={"size": 9},
                line={"color": "rgba(60,60,60,0.6)", "dash": "dot", "shape": "hv"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    if recommended is not None:
        best = rows[recommended]
        fig.add_trace(
            go.Scatter(
                x=[getattr(best, latency_key)],
                y=[getattr(best, recall_key)],
                mode="markers",
                marker={
                    "size": 20,
                    "symbol": "star",
                    "color": "gold",
                    "line": {"width": 1, "color": "black"},
                },
                name="recommended",
                hovertext=[_hover(best)],
                hoverinfo="text",
            )
        )
    if target is not None:
        fig.add_hline(y=target, line={"dash": "dash", "color": "green"}, annotation_text=f"target {target:g}")
    if budget_ms is not None:
        fig.add_vline(
            x=budget_ms, line={"dash": "dash", "color": "red"}, annotation_text=f"budget {budget_ms:g} ms"
        )
    fig.update_layout(
        title=f"{recall_name} against {_NAMES[latency_key]} search latency",
        xaxis_title=f"{_NAMES[latency_key]} latency (ms, log scale)",
        xaxis_type="log",
        yaxis_title=recall_name,
        legend_title="",
        margin={"t": 50, "b": 10},
        height=460,
    )
    latencies = [getattr(r, latency_key) for _, r in scored if getattr(r, latency_key) > 0]
    if not latencies:
        return empty_state(fig, "no configuration measured yet")
    fig.update_xaxes(**log_ticks(min(latencies), max([*latencies, budget_ms or 0])))
    return fig
