"""SLO page: each objective against its target, error budgets, burn rates and alert states, SLIs over time."""

from __future__ import annotations

import time

import streamlit as st

from ragdeck.charts.slo import burn_rate_bars, sli_series
from ragdeck.console.answering.costs import PriceTable
from ragdeck.console.interfaces import MetricsQuery
from ragdeck.console.retrieval.collections import live_version
from ragdeck.console.settings import Settings
from ragdeck.console.slo.components import (
    COMPONENTS,
    CostRate,
    component_rows,
    cost_from_prometheus,
    cost_from_samples,
)
from ragdeck.console.slo.live import data_span_s, series_promql, thin_windows
from ragdeck.console.slo.objectives import (
    SloStatus,
    SloTargets,
    load_overrides,
    overrides_file,
    save_targets,
    status_rows,
)
from ragdeck.console.slo.sources import SloReading, read_slos
from ragdeck.console.wiring import build_metrics_query
from ragdeck.errors import RagdeckError
from ragdeck.services.redact import redact_url
from ragdeck.ui import current_user, get_audit_log, get_eval_store, get_routing_admin, get_stack, user_errors
from ragdeck.widgets import table

STATE_COLOURS = {"green": "green", "amber": "orange", "red": "red", "unknown": "gray"}
RANGES = {"1 h": 3600, "6 h": 21600, "24 h": 86400, "7 d": 604800, "30 d": 2592000}

st.title("SLOs")
settings = Settings()
user = current_user()
path = overrides_file(settings)
targets = SloTargets.from_settings(settings, load_overrides(path))
query = build_metrics_query(settings)

with st.expander("Objectives"):
    with st.form("slo_targets"):
        cols = st.columns(4)
        availability = cols[0].number_input(
            "Availability (%)", 90.0, 99.9999, targets.availability * 100, step=0.01, format="%.4f"
        )
        retrieval = cols[1].number_input("P95 retrieval + rerank (ms)", 1.0, value=targets.retrieval_p95_ms)
        generation = cols[2].number_input("P95 generation (s)", 0.01, value=targets.generation_p95_s)
        error_rate = cols[3].number_input(
            "Error rate (%)", 0.0001, 50.0, targets.error_rate * 100, step=0.01, format="%.4f"
        )
        cols = st.columns(4)
        faithfulness = cols[0].number_input("Faithfulness ≥", 0.0, 1.0, targets.faithfulness, step=0.05)
        recall = cols[1].number_input("Recall ≥", 0.0, 1.0, targets.recall, step=0.05)
        recall_metric = cols[2].text_input("Recall metric", targets.recall_metric)
        period = cols[3].number_input("Period (days)", 1.0, 365.0, targets.period_days, step=1.0)
        if st.form_submit_button("Save objectives"):
            with user_errors():
                new = SloTargets(
                    availability=availability / 100,
                    retrieval_p95_ms=retrieval,
                    generation_p95_s=generation,
                    error_rate=error_rate / 100,
                    faithfulness=faithfulness,
                    recall=recall,
                    recall_metric=recall_metric.strip(),
                    period_days=period,
                )
                save_targets(user, path, targets, new, log=get_audit_log())
                st.toast("Objectives saved")
                st.rerun()
    st.caption(f"Defaults come from the settings (`RAGDECK_SLO_*`); what is saved here lives in {path}.")

controls = st.columns(3)
span = RANGES[controls[0].selectbox("Time range", list(RANGES), index=0)]
refresh = controls[1].selectbox(
    "Refresh", [0, 15, 60], index=1, format_func=lambda s: "off" if not s else f"every {s} s"
)


def evaluate() -> SloReading:
    """The objectives now, and where the numbers came from (``console.slo.sources``)."""
    runs = get_eval_store().list_runs(limit=200)
    collection = live_version(get_stack().store, settings.alias) or settings.alias
    shown = redact_url(settings.prometheus_url or "")
    return read_slos(query, get_routing_admin, targets, runs, collection, prometheus_shown=shown)


def thin_data_warning(query: MetricsQuery) -> None:
    """Say which burn-rate windows (and the budget's period) are longer than the history Prometheus has."""
    try:
        span = data_span_s(query, time.time())
    except RagdeckError:
        return
    thin = thin_windows(span)
    if span is None or not thin:
        return
    hours, minutes = span / 3600, span / 60
    held = "under a minute" if span < 60 else f"{minutes:.0f} min" if span < 3600 else f"{hours:.1f} h"
    st.warning(
        f"Prometheus holds {held} of request history: the burn rates over {', '.join(thin)} and the "
        f"{targets.period_days:g}-day error budget are computed from those {held} alone, not full windows. "
        "Read them as early estimates until the history is as long as the window.",
        icon="⏳",
    )


@st.fragment(run_every=refresh or None)
def panel() -> None:
    """Cards, table, burn rates and the SLIs over time."""
    reading = evaluate()
    statuses = reading.statuses
    if reading.problem:
        st.error(reading.problem, icon="📉")
    st.caption(f"Source: {reading.source} · {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    if query is not None and reading.kind == "prometheus":
        thin_data_warning(query)
    if reading.hint:
        st.info(reading.hint, icon="ℹ️")
    cards = [column for _ in range(0, len(statuses), 3) for column in st.columns(3)]
    for card, status in zip(cards, statuses, strict=False):
        shown = "no data" if status.value is None else _format(status)
        card.metric(status.name, shown, help=status.description)
        colour = STATE_COLOURS[status.state]
        card.markdown(f":{colour}[● {status.state}] · target {_format(status, status.target)}")
    table(status_rows(statuses), width="stretch")
    if any(s.burn_rates and any(v is not None for v in s.burn_rates.values()) for s in statuses):
        st.plotly_chart(burn_rate_bars(statuses), width="stretch")
    if query is not None:
        end = time.time()
        step = max(15.0, span / 240)
        charts = st.columns(3)
        for column, (name, (promql, threshold, unit)) in zip(
            charts, series_promql(targets).items(), strict=True
        ):
            try:
                points = query.range_values(promql, end - span, end, step)
            except RagdeckError as exc:
                column.warning(str(exc))
                continue
            column.plotly_chart(sli_series(name, points, threshold, unit), width="stretch")


def components() -> None:
    """Which component to blame: vLLM, TEI, Qdrant and RAG API figures, and the cost per 1,000 requests."""
    st.subheader("Components")
    prices = PriceTable.from_settings(settings)
    if query is None:
        st.caption(
            "vLLM, TEI and Qdrant panels read Prometheus (PROMETHEUS_URL scraping them, as "
            "monitoring/prometheus.yml does); the RAG API's own figures are on the Canary page."
        )
        admin = get_routing_admin()
        if admin is not None:
            with user_errors():
                _cost(cost_from_samples(admin.metrics(), prices), "since the API started")
        return
    tabs = st.tabs([*COMPONENTS, "Cost"])
    for tab, component in zip(tabs, COMPONENTS, strict=False):
        with tab:
            rows = component_rows(query, component)
            table(rows, width="stretch")
    with tabs[-1], user_errors():
        _cost(cost_from_prometheus(query, prices), "over the last hour")


def _cost(rate: CostRate, window: str) -> None:
    if rate.per_1000_requests_usd is None:
        st.caption(f"Cost per 1,000 requests: no answered request {window}.")
        return
    known = "" if rate.known else " (a model has no price: set RAGDECK_LLM_PRICES)"
    st.metric(f"Cost per 1,000 requests, {window}", f"${rate.per_1000_requests_usd:,.4f}{known}")


def _format(status: SloStatus, value: float | None = None) -> str:
    value = status.value if value is None else value
    if value is None:
        return "—"
    if status.unit:
        return f"{value:,.0f} {status.unit}" if status.unit == "ms" else f"{value:.2f} {status.unit}"
    return f"{value:.3%}" if status.name in ("availability", "error rate") else f"{value:.3f}"


panel()
components()
