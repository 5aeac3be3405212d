"""Evaluate page: run a policy over an eval set version, then read the metrics, per query and in summary."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from ragdeck.charts.evaluation import curves, report_charts, summary_bars
from ragdeck.console.evalsets.files import listed_eval_sets, read_upload, save_upload
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evaluation.export import export_json
from ragdeck.console.evaluation.metric_names import DEFAULT_KS, cut_offs_up_to
from ragdeck.console.evaluation.missing import DEFAULT_MISSING_GOLD, MISSING_GOLD
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.evaluation.power import spread_of_run
from ragdeck.console.evaluation.report import (
    cutoff_table,
    headline_metrics,
    html_report,
    markdown_summary,
    metric_curves,
    per_query_rows,
    retrieval_label,
    to_csv,
)
from ragdeck.console.retrieval.collections import hit_rows, search_targets
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.roles import require
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.pages.power_panel import power_panel
from ragdeck.ui import (
    bounded_int,
    current_user,
    get_audit_log,
    get_eval_jobs,
    get_eval_runner,
    get_eval_store,
    get_stack,
    hit_table,
    retrieval_inputs,
    user_errors,
)
from ragdeck.widgets import table

st.title("Evaluate")
settings = Settings()
jobs = get_eval_jobs()


def start_run(path: Path, plan: EvalPlan) -> None:
    require(current_user(), "eval.run", target=path.name, log=get_audit_log())
    runner = get_eval_runner(plan.answers, plan.policy)
    evalset = read_any(path)
    run, prepared = runner.start(evalset, plan, source=str(path))
    jobs.start(runner, run, prepared)
    st.session_state["eval_run"] = run.run_id


runs_store = get_eval_store()
with st.expander("New run", expanded=not runs_store.list_runs(limit=1)), user_errors():
    files = listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
    origin = st.radio(
        "Eval set from", ["library", "a file"], horizontal=True, help="One source: a listed set or a file."
    )
    upload, choice = None, None
    if origin == "a file":
        upload = st.file_uploader(
            "Upload an eval set (JSONL or CSV)",
            type=["jsonl", "csv"],
            help="Checked when you press Run; kept under uploads only when it reads without errors.",
        )
    else:
        choice = st.selectbox(
            "Eval set",
            files,
            format_func=lambda f: f"{f.name} ({f.parent.name})",
            help=f"Files in {settings.eval_sets_dir}, uploads and the shipped demo set; publish on Publish.",
        )
    policies = build_policies(settings)
    names = [*policies, "custom"]
    picked = st.selectbox("Policy", names, help="Policies come from the settings ([policies.NAME]).")
    base = policies.get(picked) or next(iter(policies.values()))
    stack = get_stack()
    targets = search_targets(stack.store)
    cols = st.columns(4)
    alias = cols[0].selectbox(
        "Collection or alias",
        targets,
        index=targets.index(base.alias) if base.alias in targets else 0,
        disabled=picked != "custom",
    )
    fixed = picked != "custom"  # a named policy's values are shown, not edited
    depth, depth_problem = bounded_int(
        cols[1], "Results (k)", max(base.top_n, 10), minimum=1, maximum=200, disabled=fixed
    )
    ef, ef_problem = bounded_int(
        cols[2], "hnsw_ef (0 = default)", base.hnsw_ef or 0, minimum=0, maximum=4096, disabled=fixed
    )
    rerank = cols[3].toggle("Rerank", base.rerank, disabled=picked != "custom")
    modes = retrieval_inputs(
        base.retrieval,
        base.fusion,
        base.rrf_k,
        base.dense_weight,
        help="Overrides the policy's retrieval mode for this run.",
    )
    ks = st.multiselect("Cut-offs k", [1, 3, 5, 10, 20, 50, 100], default=list(DEFAULT_KS))
    ks_problem = None if ks else "pick at least one cut-off k"
    if ks_problem:
        st.error(ks_problem, icon="⛔")
    answers = st.toggle(
        "Generate and judge answers",
        False,
        help="Slow with a local model (tens of seconds per question on a laptop CPU); retrieval metrics "
        "alone take well under a second per question.",
    )
    concurrency = st.slider("Queries at once", 1, 16, 4)
    missing_gold = st.selectbox(
        "Gold the collection lacks",
        MISSING_GOLD,
        index=MISSING_GOLD.index(DEFAULT_MISSING_GOLD),
        help="fail: refuse the run and list those ids; skip: drop them (queries left without gold are "
        "excluded and listed); keep: count them as never retrieved (they lower recall).",
    )
    blocked = [p for p in (depth_problem, ef_problem, ks_problem) if p]
    if st.button(
        "Run",
        type="primary",
        disabled=(choice is None and upload is None) or bool(blocked),
        help="; ".join(blocked) or None,
    ):
        policy = (
            base
            if picked != "custom"
            else Policy(
                name="custom",
                alias=alias,
                top_k=max(base.top_k, int(depth)),
                top_n=int(depth),
                hnsw_ef=int(ef) or None,
                rerank=rerank,
                max_tokens=base.max_tokens,
            )
        )
        policy = replace(policy, **modes)
        cut_offs = cut_offs_up_to(ks, policy.top_n)
        uploads = settings.data_dir / "uploads"
        if upload:
            read_upload(upload.name, upload.getvalue())  # a bad file is refused before it is kept
        source = save_upload(upload.name, upload.getvalue(), uploads) if upload else choice
        start_run(source, EvalPlan(policy, cut_offs, answers, concurrency, missing_gold))


@st.fragment(run_every=1.0)
def live_progress() -> None:
    """Progress of the runs working in this process, with a cancel button each."""
    running = jobs.running()
    for job in running:
        cols = st.columns([5, 1])
        cols[0].progress(job.fraction, text=f"{job.run.run_id}: {job.done}/{job.total} queries")
        if cols[1].button("Cancel", key=f"cancel-{job.run.run_id}"):
            job.cancel.set()
    if not running and st.session_state.get("eval_watching"):
        st.session_state["eval_watching"] = False
        st.rerun()
    st.session_state["eval_watching"] = bool(running)


live_progress()

runs = runs_store.list_runs(limit=200)
if not runs:
    st.info("No eval runs yet: pick an eval set and a policy above and press Run.", icon="🧪")
    st.stop()

ids = [r.run_id for r in runs]
wanted = st.session_state.get("eval_run")
run_id = st.selectbox(
    "Run",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: next(
        f"{r.run_id} · {r.set_name} · {r.config.get('policy', {}).get('name')} · "
        f"{retrieval_label(r.config.get('policy', {}))} · {r.status}"
        + (f" · by {r.config['created_by']}" if r.config.get("created_by") else "")
        for r in runs
        if r.run_id == i
    ),
)
run = runs_store.get_run(run_id)
results = runs_store.results(run_id)
job = jobs.get(run_id)
if job is not None and job.error:
    st.error(f"The run stopped: {job.error}")
if run.status != "done" and not (job and job.running):
    st.warning(f"This run is {run.status}: {len(results)} of {run.total} queries have a result.")
    set_path = run.config.get("set_path")
    if set_path and Path(set_path).exists() and st.button("Resume", help="Runs only the unfinished queries."):
        with user_errors():
            require(current_user(), "eval.run", target=Path(set_path).name, log=get_audit_log())
            resumer = get_eval_runner(bool(run.config.get("answers")), EvalPlan.from_json(run.config).policy)
            jobs.start(resumer, run, resumer.resume_set(run, read_any(set_path)))
            st.rerun()
if run.summary is None:
    st.stop()

summary = run.summary
headline = headline_metrics(summary)
st.markdown(markdown_summary(run).split("\n\n|")[0])
cards = st.columns(min(len(headline), 6) or 1)
for i, name in enumerate(headline[:6]):
    value = summary["metrics"][name]
    cards[i].metric(name, f"{value['mean']:.3f}", help=f"95 % CI [{value['low']:.3f}, {value['high']:.3f}]")
left, right = st.columns(2)
left.plotly_chart(summary_bars(summary), width="stretch")
has_chunk_level = any(r["k"] for r in metric_curves(summary))
level = right.radio(
    "Level",
    ["chunk", "document"] if has_chunk_level else ["document"],
    horizontal=True,
    key="curve_level",
    help="chunk: metric@k over k chunks (gold that names chunks); document: doc_metric@k over k documents.",
)
right.plotly_chart(curves(summary, "doc_" if level == "document" else ""), width="stretch")
st.caption("Every cut-off (means); k counts chunks or documents as the row says")
table(pd.DataFrame(cutoff_table(summary)), hide_index=True, width="stretch", key="cutoff_table")
table(
    pd.DataFrame([{"metric": n, **summary["metrics"][n]} for n in summary["metrics"]]),
    hide_index=True,
    width="stretch",
)

st.subheader("Per query")
rows = per_query_rows(results, headline)
table(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    column_config={m: st.column_config.NumberColumn(m, format="%.3f") for m in headline},
)
failed = [r for r in results if r.get("error")]
if failed:
    st.subheader(f"Failed queries ({len(failed)})")
    table(
        pd.DataFrame(
            [{"query_id": r["query_id"], "question": r["question"], "error": r["error"]} for r in failed]
        ),
        hide_index=True,
        width="stretch",
    )

by_id = {r["query_id"]: r for r in results}
pick = st.selectbox("Drill down", list(by_id), format_func=lambda q: f"{q}: {by_id[q]['question'][:90]}")
if pick:
    result = by_id[pick]
    gold = result.get("gold", {})
    st.markdown(
        f"**{result['question']}**  \nlevel: {result.get('level')}, gold: "
        + ", ".join(f"`{g}` ({grade})" for g, grade in gold.items())
    )
    docs_gold = {g.split("#")[0] for g, grade in gold.items() if grade > 0}
    retrieved = result.get("retrieved", [])
    marks = [
        "✅" if gold.get(h["chunk_id"], 0) > 0 else ("📄" if h.get("doc_id") in docs_gold else "")
        for h in retrieved
    ]
    hit_table(hit_rows(retrieved, marks))
    st.caption(
        "✅ gold chunk · 📄 a chunk of a gold document · "
        f"{retrieval_label(run.config.get('policy', {}))} retrieval: dense_rank and lexical_rank are each "
        "chunk's place in the dense and lexical candidate lists (blank: not in that list)"
    )
    if result.get("answer"):
        st.markdown("**Answer** (" + result["answer"]["mode"] + "): " + result["answer"]["text"])
        if result.get("reference_answer"):
            st.markdown("**Reference:** " + result["reference_answer"])
    judge = result.get("judge")
    if judge:
        st.caption(f"judge: {judge['mode']}")
        if judge["claims"]:
            table(pd.DataFrame(judge["claims"]), hide_index=True, width="stretch")
        for metric, why in judge.get("errors", {}).items():
            st.warning(f"{metric}: {why}")
    st.json(result.get("metrics", {}), expanded=False)

power_panel("power_run", headline, lambda metric, rho: spread_of_run(run, results, metric, rho=rho))

st.subheader("Downloads")
cols = st.columns(3)
cols[0].download_button(
    "CSV", to_csv(per_query_rows(results, list(summary["metrics"]))), f"{run_id}.csv", "text/csv"
)
cols[1].download_button(
    "JSON", json.dumps(export_json(run, results), indent=2), f"{run_id}.json", "application/json"
)
cols[2].download_button(
    "HTML report", html_report(run, results, report_charts(summary)), f"{run_id}.html", "text/html"
)
