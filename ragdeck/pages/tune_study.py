"""The Tune page's retrieval study tab: pick an eval set, a baseline and the knobs to try; the study runs
as a background job, then shows its trials, the held-out comparison and the decision, with its reports
and a draft policy for the Canary page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from ragdeck.charts.tuning import trials_figure
from ragdeck.console.evalsets.files import listed_eval_sets
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evaluation.metric_names import RETRIEVAL_METRICS
from ragdeck.console.identity import User
from ragdeck.console.knobs import FUSIONS, RETRIEVAL_MODES
from ragdeck.console.roles import allowed, require
from ragdeck.console.settings import Settings
from ragdeck.console.tuning.record import Study, new_study_id
from ragdeck.console.tuning.report import draft_summary, html_report, summary_lines, trial_rows
from ragdeck.console.tuning.space import SearchSpace
from ragdeck.console.tuning.study import (
    STUDY_JOB_KIND,
    StudyDeps,
    StudyRunner,
    objective_name,
    plan_study,
    start_study_job,
)
from ragdeck.console.wiring import Stack, build_policies, build_policy_drafts, build_study_files
from ragdeck.ui import get_audit_log, get_jobs, job_error, job_progress, user_errors
from ragdeck.widgets import table

OBJECTIVES = [f"{m}@{k}" for m in ("ndcg", "recall", "mrr", "hit_rate", "map", "precision") for k in (10, 5)]
HOW_TO_READ = (
    "Trials are scored on the **tune** questions only; the best one is then scored once on the **held-out** "
    "test questions, against the baseline. The held-out gain is the number to trust: the tune gain is "
    "partly fitted to the very questions it was picked on, and the optimism (tune gain − held-out gain) "
    "says by how much."
)


def _space(reranker: bool) -> SearchSpace | None:
    """The space from the form's inputs (None: something required is empty, said on the page)."""
    default = SearchSpace()
    cols = st.columns(4)
    modes = cols[0].multiselect("Modes", RETRIEVAL_MODES, default=list(RETRIEVAL_MODES))
    fusions = cols[1].multiselect("Fusions", FUSIONS, default=list(FUSIONS), help="For hybrid trials.")
    rrf_ks = cols[2].multiselect("RRF k", [10, 20, 40, 60, 100], default=list(default.rrf_ks))
    weights = cols[3].multiselect(
        "Dense weights", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], default=list(default.dense_weights)
    )
    cols = st.columns(4)
    top_ks = cols[0].multiselect(
        "Candidates per list",
        [10, 20, 40, 80, 160],
        default=list(default.top_ks),
        help="top_k: hybrid, rerank.",
    )
    efs = cols[1].multiselect(
        "Search ef", ["default", 32, 64, 128, 256, 512], default=["default"], help="HNSW ef at search time."
    )
    rerank = cols[2].multiselect(
        "Rerank",
        ["off", "on"],
        default=["off", "on"] if reranker else ["off"],
        disabled=not reranker,
        help=None if reranker else "No reranker is configured (RAGDECK_RERANKER or TEI_RERANK_URL).",
    )
    st.session_state["study_budget"] = cols[3].number_input("P95 budget (ms, 0 = none)", 0.0, 60_000.0, 0.0)
    if not (modes and top_ks and efs and rerank and (rrf_ks or "rrf" not in fusions)):
        return None
    if "hybrid" in modes and not fusions:
        return None
    return SearchSpace(
        modes=tuple(modes),
        fusions=tuple(fusions) or default.fusions,
        rrf_ks=tuple(rrf_ks) or default.rrf_ks,
        dense_weights=tuple(weights) or default.dense_weights,
        top_ks=tuple(top_ks),
        efs=tuple(None if e == "default" else int(e) for e in efs),
        rerank=tuple(r == "on" for r in rerank),
    )


def _start(stack: Stack, study: Study, evalset: Any) -> None:
    runner = StudyRunner(StudyDeps(stack.store, stack.embedder, stack.reranker), study.plan, evalset)
    files = build_study_files(Settings())
    job = start_study_job(get_jobs(), runner, study, files.save)
    st.session_state["study_job"], st.session_state["study_shown"] = job.key, study.study_id


def study_form(stack: Stack, targets: list[str], user: User) -> None:
    """The form that plans and starts a study."""
    settings = Settings()
    sets = listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
    if not sets:
        st.info("No eval set yet: publish one (Annotate → Publish) or upload one on Evaluate.", icon="🧪")
        return
    policies = build_policies(settings)
    running = any(j.running for j in get_jobs().running(STUDY_JOB_KIND))
    with st.form("study"), user_errors():
        cols = st.columns(3)
        source: Path = cols[0].selectbox("Eval set", sets, format_func=lambda f: f.name)
        collection = cols[1].selectbox(
            "Collection to search",
            targets,
            index=targets.index(settings.alias) if settings.alias in targets else 0,
        )
        names = list(policies)
        baseline = cols[2].selectbox(
            "Baseline policy",
            names,
            index=names.index(settings.control_policy) if settings.control_policy in names else 0,
            help="What the chosen configuration must beat on the held-out questions.",
        )
        cols = st.columns(4)
        metric = cols[0].selectbox("Objective", OBJECTIVES, help=f"Any of {', '.join(RETRIEVAL_METRICS)}@k.")
        level = cols[1].radio("Scored over", ["document", "gold"], format_func=lambda v: f"{v} level")
        fraction = cols[2].number_input("Held-out share", 0.1, 0.5, 0.3, step=0.05)
        seed = int(cols[3].number_input("Split seed", 0, 1_000_000, 0))
        space = _space(stack.reranker is not None)
        submitted = st.form_submit_button(
            "Studying…" if running else "Run study", type="primary", disabled=running, key="run_study"
        )
        if submitted:
            if space is None:
                st.error("Pick at least one value of every knob (and a fusion for hybrid).", icon="⚠️")
                return
            require(user, "eval.run", target=source.name, log=get_audit_log())
            evalset = read_any(source)
            budget = float(st.session_state.get("study_budget") or 0.0)
            plan = plan_study(
                evalset,
                policies[baseline],
                collection,
                objective=objective_name(metric, level),
                space=space,
                seed=seed,
                test_fraction=float(fraction),
                budget_p95_ms=budget or None,
                set_path=str(source),
            )
            _start(stack, Study(new_study_id(), plan), evalset)
            st.rerun()


@st.fragment(run_every=1.0)
def study_progress() -> None:
    """The running study's progress and Cancel; when it ends, the page shows it."""
    key = st.session_state.get("study_job")
    job = get_jobs().get(key) if key else None
    running = job is not None and job.running
    if running:
        assert job is not None
        job_progress(job)
    elif job is not None and job.error:
        st.error(f"The study stopped: {job_error(job)}", icon="⚠️")
    if not running and st.session_state.get("study_watching"):
        st.session_state["study_watching"] = False
        st.rerun()
    st.session_state["study_watching"] = running


def _decision(study: dict[str, Any]) -> None:
    decision = study.get("decision") or ""
    if study["status"] != "done":
        st.warning(
            f"Study {study['status']}: {len(study['trials'])} trial(s) kept; resume it to finish.", icon="⏸️"
        )
    elif decision.startswith("try"):
        st.success(decision, icon=":material/star:")
    elif "worse" in decision or "no trial" in decision:
        st.warning(decision, icon="⚠️")
    else:
        st.info(decision, icon=":material/info:")


def study_result(stack: Stack, user: User) -> None:
    """A saved study: its decision, figures, chart, trials, reports, resume and draft."""
    files = build_study_files(Settings())
    saved = files.list()
    if not saved:
        st.info("No study yet: pick the knobs to try and press Run study.", icon="🧪")
        return
    ids = [s["study_id"] for s in saved]
    shown = st.session_state.get("study_shown")
    picked = st.selectbox(
        "Study",
        ids,
        index=ids.index(shown) if shown in ids else 0,
        format_func=lambda i: next(f"{i} · {s['status']} · {s['objective']} on {s['eval_set']['name']}"
                                   for s in saved if s["study_id"] == i),
    )  # fmt: skip
    study = next(s for s in saved if s["study_id"] == picked)
    if get_jobs().active(f"study:{picked}") is not None:
        st.caption("This study is running: its trials so far.")
    else:
        _decision(study)
    test = study.get("test")
    if test:
        cols = st.columns(4)
        cols[0].metric(
            "Held-out gain", f"{test['difference']:+.4f}", help="Chosen − baseline on test questions."
        )
        cols[1].metric("95 % interval", f"[{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]")
        cols[2].metric("Permutation p", f"{test['p_value']:.3g}")
        cols[3].metric("Optimism", f"{test['optimism']:+.4f}", help="Tune gain − held-out gain.")
    st.caption(HOW_TO_READ)
    for line in summary_lines(study):
        st.text(line)
    if study.get("trials"):
        st.plotly_chart(trials_figure(study), width="stretch", key=f"study-chart-{picked}")
        table(trial_rows(study))
    if test:
        with st.expander(f"The {test['questions']} held-out questions"):
            table(test["per_question"])
    cols = st.columns(3)
    cols[0].download_button(
        "Download JSON", json.dumps(study, indent=2), f"{picked}.json", "application/json", key="study-json"
    )
    cols[1].download_button(
        "Download HTML", html_report(study), f"{picked}.html", "text/html", key="study-html"
    )
    resumable = study["status"] != "done" and get_jobs().active(f"study:{picked}") is None
    if resumable and cols[2].button("Resume study", key="study-resume"):
        with user_errors():
            _resume(stack, Study.from_json(study))
    if study.get("chosen_knobs") and study["status"] == "done":
        _draft_form(study, user)


def _resume(stack: Stack, study: Study) -> None:
    """Start a stopped study again on the eval set version it ran on (its file, else a listed set)."""
    settings = Settings()
    paths = [Path(study.plan.set_path)] if study.plan.set_path else []
    paths += listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
    for path in paths:
        if path.is_file() and (evalset := read_any(path)).content_hash() == study.plan.set_hash:
            _start(stack, study, evalset)
            st.rerun()
    st.error(
        f"Eval set {study.plan.set_name} version sha256:{study.plan.set_hash[:12]}… is no longer here: "
        "the study cannot resume (start a new one)",
        icon="⚠️",
    )


def _draft_form(study: dict[str, Any], user: User) -> None:
    can = allowed(user, "policy.draft")
    with st.form("study-draft"), user_errors():
        cols = st.columns([2, 1])
        name = cols[0].text_input("Draft name", f"study-{study['study_id'][-6:]}", disabled=not can)
        if cols[1].form_submit_button("Save as draft policy", disabled=not can):
            draft = build_policy_drafts(Settings()).save_draft(
                name,
                study["chosen_knobs"],
                study_id=study["study_id"],
                summary=draft_summary(study),
                actor=user,
            )
            st.success(f"Saved draft {draft.name}: try it as the canary from the Canary page.")
    if not can:
        st.caption(f"You are {user}; saving a draft needs the engineer role.")
