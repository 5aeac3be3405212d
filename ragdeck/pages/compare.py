"""Compare page: run B against run A on the same eval set version, query by query, with paired statistics."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from ragdeck.charts.ab import diff_forest, pair_scatter
from ragdeck.console.evaluation.compare import (
    compare_runs,
    default_pair,
    metric_table,
    run_header,
    run_label,
    same_set_version,
)
from ragdeck.console.evaluation.power import spread_of_pair
from ragdeck.errors import RagdeckError
from ragdeck.pages.power_panel import power_panel
from ragdeck.ui import get_eval_store
from ragdeck.widgets import table

st.title("Compare")
st.caption(
    "Is B better than A? Per metric: B − A with a paired bootstrap 95 % interval, a paired permutation "
    "p-value (Holm-adjusted across the metrics shown) and B's wins, ties and losses; then where B lost."
)
store = get_eval_store()
runs = store.list_runs(limit=300)
if len(runs) < 2:
    st.info(
        "Comparing needs two eval runs of the same eval set version: run A's and B's policy on the Evaluate "
        "page (or `ragdeck eval --set FILE --policy A`, then `--policy B`)."
    )
    st.stop()

by_id = {r.run_id: r for r in runs}
default_a, default_b = default_pair(runs)
left, right = st.columns(2)
run_a = by_id[
    left.selectbox(
        "Run A (baseline)",
        list(by_id),
        index=list(by_id).index(default_a),
        format_func=lambda i: run_label(by_id[i]),
    )
]
any_version = right.toggle("Offer runs of other eval set versions", value=False, key="compare_any_version")
candidates = [r for r in runs if r.run_id != run_a.run_id] if any_version else same_set_version(run_a, runs)
if not candidates:
    right.info(f"No other run of `{run_a.set_name}` sha256:{run_a.set_hash[:8]}: run B's policy on it first.")
    st.stop()
offered = [r.run_id for r in candidates]
run_b = by_id[
    right.selectbox(
        "Run B (candidate)",
        offered,
        index=offered.index(default_b) if default_b in offered else 0,
        format_func=lambda i: run_label(by_id[i]),
    )
]

try:
    results_a, results_b = store.results(run_a.run_id), store.results(run_b.run_id)
    comparison = compare_runs(run_a, results_a, run_b, results_b)
    shown = st.multiselect("Metrics", comparison.compared, default=comparison.compared, key="compare_metrics")
    if shown and shown != comparison.compared:
        comparison = compare_runs(run_a, results_a, run_b, results_b, shown)
except RagdeckError as exc:
    st.error(str(exc), icon="⚠️")
    st.stop()

dropped = [f"{len(ids)} {reason.replace('_', ' ')}" for reason, ids in comparison.dropped.items() if ids]
st.caption(
    f"{len(comparison.pairs)} queries paired" + (f"; dropped: {', '.join(dropped)}" if dropped else "")
)
for column, name, run in zip(st.columns(2), "AB", (run_a, run_b), strict=True):
    column.markdown(f"**{name}**\n\n" + "\n".join(f"- {line}" for line in run_header(run)))
for note in comparison.notes:
    st.warning(note)

table(pd.DataFrame(metric_table(comparison)), hide_index=True, width="stretch")
st.plotly_chart(diff_forest(comparison), width="stretch")

metric = st.selectbox("Per query", comparison.compared, key="compare_metric")
st.plotly_chart(pair_scatter(comparison, metric), width="stretch")

regressions = comparison.largest_regressions(metric, 20)
st.subheader(f"Largest regressions of B on {metric}")
if not regressions:
    st.success(f"B scores lower than A on {metric} for no query.")
for q in regressions:
    with st.expander(f"{q['query_id']} · A {q['a']:.3f} → B {q['b']:.3f} · {q['question']}"):
        gold = set(q["gold"])
        st.caption("Gold: " + (", ".join(f"`{g}`" for g in q["gold"]) or "none"))
        side = st.columns(2)
        for column, name, key in ((side[0], "A", "retrieved_a"), (side[1], "B", "retrieved_b")):
            column.markdown(f"**{name}** ({'run ' + (run_a if name == 'A' else run_b).run_id})")
            column.dataframe(
                pd.DataFrame(
                    [
                        {"rank": i + 1, "chunk": c, "gold": "✅" if c in gold else ""}
                        for i, c in enumerate(q[key])
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
            answer = q["answer_a" if name == "A" else "answer_b"]
            if answer:
                column.markdown(f"> {answer}")

power_panel(
    "power_pair",
    comparison.compared,
    lambda m, _rho: spread_of_pair(run_a, results_a, run_b, results_b, m),
)

downloads = st.columns(2)
downloads[0].download_button(
    "Download comparison (JSON)",
    json.dumps(comparison.to_json(), indent=2),
    file_name=f"compare-{run_a.run_id}-{run_b.run_id}.json",
    mime="application/json",
)
downloads[1].download_button(
    "Download report (Markdown)",
    comparison.markdown(),
    file_name=f"compare-{run_a.run_id}-{run_b.run_id}.md",
    mime="text/markdown",
)
