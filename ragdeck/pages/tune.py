"""Tune page: what HNSW m, ef_construct and search-time ef cost and buy on a collection; apply the choice."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from ragdeck.charts.hnsw import pareto_figure
from ragdeck.console.evalsets.files import listed_eval_sets
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.hnsw import (
    DEFAULT_EFS,
    DEFAULT_MS,
    Grid,
    Prepare,
    QuerySet,
    StoredVectors,
    SweepRequest,
    SweepResult,
    apply_hnsw,
    apply_policy_ef,
    check_sweep,
    choose,
    discard_sweep,
    eval_queries,
    live_search,
    load_sweep,
    remove_temporary,
    resumable_sweeps,
    sample_queries,
    start_sweep_job,
    sweep_job,
    sweep_running,
)
from ragdeck.console.retrieval.collections import search_targets
from ragdeck.console.roles import allowed
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.pages.tune_study import study_form, study_progress, study_result
from ragdeck.ui import (
    current_user,
    get_audit_log,
    get_jobs,
    get_policy_overrides,
    get_stack,
    get_sweep_log,
    or_stop,
    progress_callback,
    user_errors,
)
from ragdeck.widgets import confirm_delete, table

st.title("Tune")
st.caption(
    "HNSW sweep: m (links per node) and ef_construct are fixed when the index is built, ef is chosen per "
    "search; a sweep measures each configuration on the same queries (temporary copies are built from the "
    "stored vectors and deleted afterwards). Retrieval study: modes, fusions, depths and ef tried on part of "
    "an eval set, the best one tested on the rest against a baseline policy."
)
settings = Settings()
stack = get_stack()
store = stack.store
user = current_user()
jobs = get_jobs()  # the process's job runner: sweeps run in its threads, off the page
log = get_sweep_log()  # each measured configuration is kept there: a partial sweep survives a restart
targets = or_stop(lambda: search_targets(store))
if not targets:
    st.info("No collections yet: ingest a corpus (`ragdeck demo` or `ragdeck ingest`) to tune it.", icon="🎛️")
    st.stop()

hnsw_tab, study_tab = st.tabs(["HNSW sweep", "Retrieval study"])
with study_tab:  # drawn first: the sweep's part ends the script when it has nothing to show yet
    study_form(stack, targets, user)
    study_progress()
    study_result(stack, user)
with hnsw_tab:

    def start(request: SweepRequest, prepare: Prepare | None = None) -> None:
        """Start the sweep as a job (kept in the sweep log as it goes) and follow it from this session."""
        if sweep_running(jobs, request.collection):
            st.info(f"A sweep of {request.collection} is already running: following it.", icon="🎛️")
        else:
            start_sweep_job(jobs, store, replace(request, created_by=user.name), log, prepare=prepare)
        st.session_state["hnsw_job"] = request.collection

    sweeping = "hnsw_job" in st.session_state and sweep_running(jobs, st.session_state["hnsw_job"])
    with st.form("sweep"), user_errors():
        collection = st.selectbox(
            "Collection or alias",
            targets,
            index=targets.index(settings.alias) if settings.alias in targets else 0,
        )
        cols = st.columns(3)
        ms = cols[0].multiselect("m", [4, 8, 16, 32, 64], default=list(DEFAULT_MS))
        efcs = cols[1].multiselect("ef_construct", [32, 64, 100, 200, 400], default=[100])
        efs = cols[2].multiselect(
            "ef (search time)", [8, 10, 16, 32, 64, 128, 256, 512], default=list(DEFAULT_EFS)
        )
        st.caption(
            "The live index (its own m and ef_construct) is always measured too, without a rebuild. "
            "The engine searches with max(ef, k), so an ef below k behaves as k."
        )
        cols = st.columns([2, 1, 1, 1])
        sets = listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
        source = cols[0].selectbox(
            "Queries",
            [None, *sets],
            format_func=lambda f: "sampled stored vectors" if f is None else f"eval set {f.name}",
            help="An eval set's questions (recall against gold too), or stored vectors sampled with a seed.",
        )
        n_queries = cols[1].number_input("Sampled queries", 10, 2000, 200, step=10)
        noise = cols[2].number_input(
            "Noise", 0.0, 1.0, 0.1, step=0.05, help="Relative noise on sampled vectors."
        )
        k = int(cols[3].number_input("k", 1, 100, 10))
        if st.form_submit_button(
            "Sweeping…" if sweeping else "Run sweep", type="primary", disabled=sweeping, key="run_sweep"
        ):
            physical = store.resolve(collection)
            check_sweep(user, physical, log=get_audit_log())
            grid = Grid.of(ms, efcs, efs)
            remove_temporary(store)
            evalset = read_any(source) if source is not None else None  # a bad file is said at once

            def prepare(
                evalset=evalset, physical=physical, n=int(n_queries), noise=float(noise)
            ) -> tuple[QuerySet, StoredVectors | None]:
                """In the job: embed the eval set's questions, or read the vectors and sample them."""
                if evalset is not None:
                    return eval_queries(evalset, stack.embedder, store, physical), None
                points = StoredVectors.read(store, physical)
                return sample_queries(points, n, noise=noise), points

            start(SweepRequest(physical, None, grid, k), prepare)

    resumable = or_stop(lambda: [s for s in resumable_sweeps(log) if not sweep_running(jobs, s.collection)])
    if resumable:
        with st.expander(f"Resumable sweeps ({len(resumable)})", expanded=True), user_errors():
            st.caption(
                "Sweeps cancelled, failed or interrupted by a restart: a resume measures only the "
                "configurations not kept, on the same queries."
            )
            table(
                {
                    "sweep": s.sweep_id,
                    "collection": s.collection,
                    "state": s.state,
                    "measured": f"{s.measured}/{s.planned}",
                    "by": s.created_by,
                    "queries": s.query_source,
                    "error": s.error,
                }
                for s in resumable
            )
            cols = st.columns([3, 1, 1])
            picked = cols[0].selectbox(
                "Sweep to resume",
                resumable,
                format_func=lambda s: f"{s.collection}: {s.measured}/{s.planned} ({s.state}, {s.sweep_id})",
            )
            if cols[1].button("Resume sweep", type="primary"):
                check_sweep(user, picked.collection, log=get_audit_log())
                start(SweepRequest.resuming(load_sweep(log, picked.sweep_id)))
                st.session_state.pop("hnsw_sweep", None)
                st.rerun()
            sure = confirm_delete(
                f"sweep {picked.sweep_id}",
                key=f"discard-sure-{picked.sweep_id}",
                container=cols[2],
                detail=f"its {picked.measured} measured configuration(s) of {picked.collection}",
            )
            if cols[2].button("Discard", disabled=not sure, help="Needs the box ticked."):
                discard_sweep(user, picked, log, log=get_audit_log())
                st.rerun()

    job = sweep_job(jobs, st.session_state["hnsw_job"]) if "hnsw_job" in st.session_state else None
    if job is not None and not job.running and job.result is not None:
        st.session_state["hnsw_sweep"] = job.result  # finished or cancelled: the rows it measured
        st.session_state["hnsw_request"] = job.request
        st.session_state["hnsw_queries"] = (
            job.request.queries if job.request else None
        )  # for the live ef slider

    @st.fragment(run_every=1.0)
    def sweep_progress() -> None:
        """The sweep job's progress and its Cancel button; when it ends, the whole page shows its result."""
        running = job is not None and job.running
        if running:
            assert job is not None
            cols = st.columns([5, 1])
            cols[0].progress(job.fraction, text=f"{job.stage}: {job.done}/{job.total} configurations")
            if cols[1].button(
                "Cancel",
                key="hnsw-cancel",
                disabled=job.cancel.is_set(),
                help="Stops after the configuration being measured; keeps the ones measured (partial).",
            ):
                job.cancel.set()
        if not running and st.session_state.get("hnsw_watching"):
            st.session_state["hnsw_watching"] = False
            st.rerun()
        st.session_state["hnsw_watching"] = running

    sweep_progress()
    if job is not None and job.error:
        st.error(f"The sweep stopped: {job.error}", icon="⚠️")

    result: SweepResult | None = st.session_state.get("hnsw_sweep")
    if result is None:
        if job is not None and job.running:
            st.info("The sweep runs in the background: its results appear here when it ends.", icon="🎛️")
        else:
            st.info("Pick a collection and the values to try, then press Run sweep.", icon="🎛️")
        st.stop()

    busy = sweep_running(jobs, result.collection)
    if result.partial:
        st.warning(
            f"Partial sweep: cancelled after {len(result.rows)} of {result.planned} configurations; "
            "the chart and the table show the ones measured.",
            icon="⏸️",
        )
        request: SweepRequest | None = st.session_state.get("hnsw_request")
        if request is not None and st.button(
            "Resume", disabled=busy, help="Measures only the configurations not done, on the same queries."
        ):
            with user_errors():
                start(replace(request, previous=result))
                st.rerun()
    st.subheader(f"{result.collection}: {len(result.rows)} configurations")
    st.caption(
        f"Queries: {result.query_source}. Sweep time {result.total_s:.1f} s (the whole job: preparing the "
        f"queries, copies and measurements). Live index: m={result.live['m']}, "
        f"ef_construct={result.live['ef_construct']}."
    )
    cols = st.columns(4)
    target = cols[0].slider("Recall target", 0.5, 1.0, float(result.target), step=0.005)
    budget = cols[1].number_input(
        "Latency budget (ms, 0 = none)", 0.0, 10_000.0, float(result.budget_ms or 0.0)
    )
    has_gold = any(r.recall_gold is not None for r in result.rows)
    recall_key = cols[2].radio(
        "Recall against",
        ["recall_gold", "recall_exact"] if has_gold else ["recall_exact"],
        format_func=lambda key: result.gold_label if key == "recall_gold" else "exact search",
    )
    latency_key = cols[3].radio("Latency", ["p95_ms", "p50_ms"], format_func=lambda key: key[:3].upper())
    result = choose(result, target, budget or None, recall_key=recall_key, latency_key=latency_key)
    front = [i for i, r in enumerate(result.rows) if r.on_front]
    front.sort(key=lambda i: getattr(result.rows[i], latency_key))
    st.plotly_chart(
        pareto_figure(
            result.rows, front, result.recommendation.index, k=result.k, target=target,
            budget_ms=budget or None, recall_key=recall_key, latency_key=latency_key,
            recall_label=result.gold_label if recall_key == "recall_gold" else None,
        ),
        width="stretch",
    )  # fmt: skip
    for note in result.notes:
        st.info(note, icon=":material/info:")
    best = result.rows[result.recommendation.index] if result.recommendation.index is not None else None
    if best is not None:
        st.success(result.recommendation.sentence, icon=":material/star:")
    else:
        st.warning(result.recommendation.sentence, icon="⚠️")
    table([r.to_json() for r in result.rows])

    st.subheader("Apply")
    can_apply = allowed(user, "collection.hnsw")
    if not can_apply:
        st.caption(f"You are {user}; applying needs the operator role.")
    elif busy:  # a rebuild under a running sweep would change what it measures halfway
        st.caption(f"A sweep of {result.collection} is running: rebuild its index once the sweep ends.")
    policies = build_policies(settings)
    cols = st.columns([2, 1, 2])
    policy = cols[0].selectbox(
        "Policy", list(policies), help="Policies come from the settings ([policies.NAME])."
    )
    ef_value = cols[1].number_input(
        "Default ef", 1, 4096, best.ef if best is not None else (policies[policy].hnsw_ef or 64)
    )
    cols[2].caption(f"now: {policies[policy].hnsw_ef or 'engine default'}")
    if applied := st.session_state.pop("hnsw_applied", None):
        st.success(applied)
    if cols[2].button("Set policy ef", disabled=not can_apply):
        with user_errors():
            before, after = apply_policy_ef(
                settings,
                policy,
                int(ef_value),
                actor=user,
                overrides=get_policy_overrides(),
                log=get_audit_log(),
            )
            st.session_state["hnsw_applied"] = (
                f"Policy {policy}: default ef {before or 'engine default'} → {after} "
                "(every process picks it up)."
            )
            st.rerun()  # so that "now" above reads the value just applied
    if best is not None and best.index == "copy":
        label = f"Rebuild {result.collection} with m={best.m}, ef_construct={best.ef_construct}"
        if st.button(label, disabled=not can_apply or busy):
            with user_errors():
                bar = st.progress(0.0, text="rebuilding")
                old, new = apply_hnsw(
                    store,
                    result.collection,
                    best.m,
                    best.ef_construct,
                    actor=user,
                    log=get_audit_log(),
                    progress=progress_callback(bar),
                )
                st.success(
                    f"{result.collection}: m {old.m} → {new.m}, ef_construct {old.ef_construct} → "
                    f"{new.ef_construct}; searches kept working during the rebuild. Run the sweep again "
                    "to re-measure."
                )
    elif best is not None:
        st.caption(f"The recommended m / ef_construct are the live index's own: only ef changes ({best.ef}).")

    st.subheader("Live ef")
    queries: QuerySet | None = st.session_state.get("hnsw_queries")
    if queries is not None:
        cols = st.columns([3, 2])
        which = cols[0].selectbox(
            "Query", range(len(queries)), format_func=lambda i: queries.labels[i][:120], key="hnsw_live_query"
        )
        ef_live = cols[1].slider("ef", 1, 512, best.ef if best is not None else 64, key="hnsw_live_ef")
        with user_errors():
            live = live_search(store, result.collection, queries.vectors[which], int(ef_live), result.k)
            cols = st.columns(2)
            cols[0].metric("Search latency", f"{live.latency_ms:.2f} ms")
            cols[1].metric(f"Recall@{result.k} vs exact", f"{live.recall_exact:.2f}")
            table(live.hits)
