"""Axis and empty-state helpers shared by the figures: a chart with nothing to plot says so (no axis range
invented around a guide line, such as 2499–2501 around a 2500 ms threshold), and a log axis gets ticks
that cannot crowd into each other."""

from __future__ import annotations

import math
from collections.abc import Iterable

import plotly.graph_objects as go

NO_DATA = "no data yet"


def has_points(values: Iterable[float | None]) -> bool:
    """True when any value is a finite number."""
    return any(v is not None and math.isfinite(v) for v in values)


def empty_state(fig: go.Figure, message: str = NO_DATA) -> go.Figure:
    """Turn ``fig`` into an empty chart: ``message`` in the middle, no axes, no guide lines (a guide line
    alone would make the axis autorange around it)."""
    fig.layout.shapes = ()
    fig.layout.annotations = ()
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#777"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(showlegend=False)
    return fig


def _label(value: float) -> str:
    return f"{value:g}" if 1e-4 <= value < 1e6 else f"{value:.0e}"


def log_ticks(low: float, high: float) -> dict[str, list]:
    """``tickvals`` and ``ticktext`` for a log axis showing ``low`` to ``high`` (both > 0): every decade
    around them, plus 2 and 5 within each when they span fewer than three decades, so no two labels are
    closer than log10(2) of a decade (plotly's own log ticks crowd "2 5 2 5" into each other)."""
    low, high = min(low, high), max(low, high)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)
    steps = (1.0, 2.0, 5.0) if last - first < 3 else (1.0,)
    values = [m * 10.0**d for d in range(first, last) for m in steps] + [10.0**last]
    return {"tickvals": values, "ticktext": [_label(v) for v in values]}
