"""The sample-size panel of the Evaluate and Compare pages: δ, power, α and the method in; the questions
needed, the set's n and the smallest difference it detects out, with a power curve. Not a page itself
(``app.py`` lists the pages); the statistics live in ``console.evaluation.power``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from ragdeck.charts.power import power_curve
from ragdeck.console.evaluation.power import (
    DEFAULT_ALPHA,
    DEFAULT_POWER,
    DEFAULT_RHO,
    METHODS,
    Spread,
    sample_size,
)
from ragdeck.errors import RagdeckError

METHOD_LABELS = {"normal": "normal approximation", "simulation": "simulation (resampling)"}


def power_panel(key: str, metrics: Sequence[str], spread_for: Callable[[str, float], Spread]) -> None:
    """Draw the panel. ``spread_for(metric, rho)`` gives the spread (two runs ignore ``rho``: the panel
    asks for it only when ``key`` names a one-run panel, i.e. ends in "_run")."""
    st.subheader("Sample size")
    one_run = key.endswith("_run")
    st.caption(
        "How many questions detect a difference of Δ, and the smallest difference this set detects. "
        + (
            "From this run's spread: the spread of a paired difference is assumed from ρ, the correlation "
            "of two policies' per-question values (compare two runs for the observed one)."
            if one_run
            else "From the per-question differences B − A of these two runs."
        )
    )
    if not metrics:
        st.info("No metric to size: the run has no scored question.")
        return
    cols = st.columns(6 if one_run else 5)
    metric = cols[0].selectbox("Metric", list(metrics), key=f"{key}_metric")
    delta = cols[1].number_input(
        "Δ to detect",
        min_value=0.0001,
        max_value=1.0,
        value=0.02,
        step=0.005,
        format="%.4f",
        key=f"{key}_delta",
    )
    power = cols[2].number_input(
        "Power", min_value=0.5, max_value=0.99, value=DEFAULT_POWER, step=0.05, key=f"{key}_power"
    )
    alpha = cols[3].number_input(
        "α (two-sided)",
        min_value=0.001,
        max_value=0.2,
        value=DEFAULT_ALPHA,
        step=0.01,
        format="%.3f",
        key=f"{key}_alpha",
    )
    method = cols[4].selectbox(
        "Method", list(METHODS), format_func=METHOD_LABELS.__getitem__, key=f"{key}_method"
    )
    rho = DEFAULT_RHO
    if one_run:
        rho = cols[5].number_input(
            "Assumed ρ",
            min_value=-0.99,
            max_value=0.99,
            value=DEFAULT_RHO,
            step=0.1,
            key=f"{key}_rho",
            help="Correlation of two policies' values on the same question; 0.5: the SD of a difference "
            "equals the metric's SD. Higher ρ (policies that agree) means fewer questions.",
        )
    try:
        report = sample_size(
            spread_for(metric, float(rho)), float(delta), power=power, alpha=alpha, method=method
        )
    except RagdeckError as exc:
        st.warning(str(exc), icon="⚠️")
        return
    st.markdown(f"**{report.headline()}**")
    st.caption(" · ".join(report.lines()[1:]))
    st.plotly_chart(power_curve(report), width="stretch", key=f"{key}_chart")
