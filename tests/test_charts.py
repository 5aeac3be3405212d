"""The figures say "no data yet" instead of drawing an axis around a guide line, and log axes get ticks that
cannot crowd into each other."""

from __future__ import annotations

import itertools
import math

import plotly.graph_objects as go
import pytest

from ragdeck.charts.ab import latency_bars, p95_history, rate_bars
from ragdeck.charts.axes import NO_DATA, log_ticks
from ragdeck.charts.evaluation import curves, summary_bars
from ragdeck.charts.hnsw import pareto_figure
from ragdeck.charts.slo import burn_rate_bars, sli_series
from ragdeck.console.hnsw.grid import SweepRow
from ragdeck.console.online.panel import LiveFigures, PolicyFigures
from ragdeck.console.slo.objectives import WINDOWS, SloStatus


def _is_empty(fig: go.Figure) -> bool:
    texts = [a.text for a in fig.layout.annotations]
    return (
        any("no " in t for t in texts)
        and fig.layout.xaxis.visible is False
        and fig.layout.yaxis.visible is False
        and not fig.layout.shapes
    )


def _policy(name: str, p50: float | None, p95: float | None, errors: float | None = None) -> PolicyFigures:
    return PolicyFigures(name, 0.5, 0.0 if p95 is None else 10.0, None, p50, p95, errors, None, 0.0, 0.0)


def _live(*policies: PolicyFigures) -> LiveFigures:
    return LiveFigures("api", "over the last 5 min", 1_700_000_000.0, list(policies))


def test_an_sli_with_no_points_says_so_and_has_no_axis_around_the_objective() -> None:
    fig = sli_series("P95 retrieval", [], 2500.0, "ms")
    assert _is_empty(fig)
    assert "no data yet (objective 2500 ms)" in fig.layout.annotations[0].text
    assert all(trace.y is None or len(trace.y) == 0 for trace in fig.data)


def test_an_sli_with_points_keeps_its_axes_and_objective_line() -> None:
    fig = sli_series("P95 retrieval", [(1_700_000_000.0, 120.0), (1_700_000_060.0, 140.0)], 2500.0, "ms")
    assert not _is_empty(fig)
    assert [shape.y0 for shape in fig.layout.shapes] == [2500.0]


def test_live_latency_and_rates_with_no_request_are_empty_states() -> None:
    quiet = _live(_policy("A", None, None), _policy("B", None, None))
    latency = latency_bars(quiet, guard_p95_ms=2500.0)
    assert _is_empty(latency)
    assert "no answered request over the last 5 min" in latency.layout.annotations[0].text
    assert _is_empty(rate_bars(quiet))
    assert _is_empty(p95_history([quiet, quiet], 2500.0))
    busy = _live(_policy("A", 80.0, 200.0, 0.0), _policy("B", None, None))
    assert not _is_empty(latency_bars(busy, guard_p95_ms=2500.0))
    assert not _is_empty(rate_bars(busy))


def test_eval_charts_without_metrics_are_empty_states() -> None:
    assert _is_empty(summary_bars({"metrics": {}}))
    assert _is_empty(curves(None))


def _status(rates: dict[str, float | None]) -> SloStatus:
    return SloStatus("availability", "", 0.999, 0.995, "", True, burn_rates=rates)


def test_burn_rates_on_a_log_axis_tick_only_at_decades() -> None:
    fig = burn_rate_bars([_status(dict.fromkeys(WINDOWS, 3.0))])
    axis = fig.layout.yaxis
    assert axis.type == "log"
    assert list(axis.tickvals) == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert list(axis.ticktext) == ["0.01", "0.1", "1", "10", "100"]
    quiet = burn_rate_bars([_status(dict.fromkeys(WINDOWS, 0.0))])
    assert _is_empty(quiet) and NO_DATA.split()[0] in quiet.layout.annotations[0].text


RANGES = [(0.05, 2.0), (0.003, 0.004), (1.0, 1.0), (0.01, 500.0), (7.0, 9e4)]


@pytest.mark.parametrize(("low", "high"), RANGES)
def test_log_ticks_are_never_closer_than_a_factor_of_two(low: float, high: float) -> None:
    ticks = log_ticks(low, high)
    values = ticks["tickvals"]
    assert len(values) == len(ticks["ticktext"]) >= 2
    assert values[0] <= low and values[-1] >= high  # the data lies between the first and last tick
    gaps = [math.log10(b / a) for a, b in itertools.pairwise(values)]
    assert min(gaps) >= math.log10(2) - 1e-9
    if math.log10(high / low) > 3:
        assert all(math.log10(v) == pytest.approx(round(math.log10(v))) for v in values)


def _row(m: int, ef: int, p95: float, recall: float) -> SweepRow:
    return SweepRow(m, 100, ef, recall, None, p95 / 2, p95, None, None, "copy")


def test_pareto_log_axis_has_explicit_ticks_and_an_empty_sweep_says_so() -> None:
    rows = [_row(16, 8, 0.04, 0.8), _row(16, 64, 0.3, 0.97), _row(32, 128, 1.5, 0.999)]
    fig = pareto_figure(rows, [0, 1, 2], 1, k=10, target=0.95, budget_ms=5.0)
    axis = fig.layout.xaxis
    assert axis.type == "log"
    assert axis.tickvals[0] <= 0.04 and axis.tickvals[-1] >= 5.0
    assert list(axis.ticktext) == ["0.01", "0.1", "1", "10"]  # three decades: one tick each
    narrow = pareto_figure(rows[1:], [0, 1], 0, k=10).layout.xaxis  # 0.3-1.5 ms: 1, 2, 5 per decade
    assert list(narrow.ticktext) == ["0.1", "0.2", "0.5", "1", "2", "5", "10"]
    assert _is_empty(pareto_figure([], [], None, k=10, target=0.95))
