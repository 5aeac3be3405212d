"""Canary page: the share of users on policy B, both policies' live figures, the guard and its rollbacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ragdeck.charts.ab import latency_bars, p95_history, rate_bars
from ragdeck.console.evalsets.files import listed_eval_sets
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.online.panel import (
    ScrapeHistory,
    active_rollback,
    event_rows,
    figures_from_prometheus,
    guard_rollbacks,
    promote_canary,
    roll_back_canary,
    set_canary_weight,
    set_guard_thresholds,
)
from ragdeck.console.online.replay import ReplayJob, ReplayPlan, check_target
from ragdeck.console.online.replay_state import replay_outcome, replay_progress
from ragdeck.console.roles import Role
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_metrics_query, build_replay_sender
from ragdeck.errors import RagdeckError
from ragdeck.pages.canary_drafts import drafts_panel
from ragdeck.ui import (
    current_user,
    get_audit_log,
    get_replay_jobs,
    get_routing_admin,
    start_hosted_api,
    user_errors,
)
from ragdeck.widgets import job_button, table

st.title("Canary")
st.caption(
    "Route a share of users to the canary policy, watch both policies side by side, and let the guard roll "
    "the canary back when its latency or error rate crosses a threshold."
)
settings = Settings()
user = current_user()
can_operate = user.can(Role.OPERATOR)

admin = get_routing_admin()
if admin is None:
    st.info(
        "No RAG API to drive: set `RAGDECK_API_URL` (and `RAGDECK_ADMIN_TOKEN`, the API's admin token) to "
        "the API you run with `ragdeck api serve`, or serve it from this console over the same stack "
        f"(loopback, port {settings.api_port} or a free one)."
    )
    if st.button("Start the RAG API in this console", type="primary"):
        with user_errors():
            start_hosted_api()
            st.rerun()
    st.stop()

try:
    routing = admin.routing()
except RagdeckError as exc:
    st.error(f"{exc}", icon="⚠️")
    st.stop()

control, canary = str(routing["control"]), str(routing["canary"])
weights = {k: float(v) for k, v in (routing.get("weights") or {}).items()}
thresholds = routing.get("thresholds") or {}
events = routing.get("events") or []
trips = guard_rollbacks(events)
active = active_rollback(events, canary)
if active is not None:
    when = time.strftime("%H:%M:%S", time.gmtime(float(active.get("ts", 0))))
    st.error(
        f"The guard rolled {canary} back to 0 % at {when} UTC: {active.get('reason', '')}. Fix the cause, "
        "then raise its weight again.",
        icon="🛑",
    )

top = st.columns(4)
top[0].metric("Control", control)
top[1].metric("Canary", canary)
top[2].metric(f"Users on {canary}", f"{weights.get(canary, 0.0):.0%}")
top[3].metric("Guard rollbacks", len(trips), help="In the API's recent routing events.")
st.caption(f"RAG API: {admin.shown_url} · you are {user.name} ({user.role.label})")

# ---------------------------------------------------------------------- routing controls

st.subheader("Routing")
if not can_operate:
    st.info(f"Changing the routing needs the operator role; you are {user.role.label}.")
reason = st.text_input("Reason for a change (kept in the audit log)", key="canary_reason")
left, right = st.columns([2, 3])
with left.form("canary_weight", border=False):
    percent = st.number_input(
        f"Share of users on {canary} (%)",
        min_value=0,
        max_value=100,
        value=round(weights.get(canary, 0.0) * 100),
        step=5,
        key="canary_percent",
    )
    apply = st.form_submit_button("Apply weight", type="primary", disabled=not can_operate)
buttons = right.columns(2)
promote = buttons[0].button(f"Promote {canary} (100 %)", disabled=not can_operate, key="canary_promote")
rollback = buttons[1].button(f"Roll back to {control} (0 %)", disabled=not can_operate, key="canary_rollback")
with user_errors():
    changed = None
    if apply:
        changed = set_canary_weight(admin, user, percent / 100, reason, log=get_audit_log())
    elif promote:
        changed = promote_canary(admin, user, reason, log=get_audit_log())
    elif rollback:
        changed = roll_back_canary(admin, user, reason, log=get_audit_log())
    if changed is not None:
        st.toast(f"{canary} now gets {changed['weights'][canary]:.0%} of users")
        st.rerun()

probe = st.text_input("Which policy does a user get? (user id)", key="canary_probe")
if probe.strip():
    with user_errors():
        st.write(f"`{probe.strip()}` → policy **{admin.assign(probe.strip())}**")

drafts_panel(canary, weights.get(canary, 0.0), user, remote_api=bool(settings.api_url))

# ---------------------------------------------------------------------- live figures

st.subheader("Live")
metrics_query = build_metrics_query(settings)
controls = st.columns(3)
window_min = controls[0].selectbox("Window", [1, 5, 15, 60], index=1, format_func=lambda m: f"last {m} min")
refresh = controls[1].selectbox(
    "Refresh", [0, 5, 15, 60], index=1, format_func=lambda s: "off" if not s else f"every {s} s"
)
controls[2].caption(
    "Source: Prometheus at PROMETHEUS_URL (every replica)"
    if metrics_query
    else "Source: the API's /metrics (this API process only; set PROMETHEUS_URL for every replica)"
)


@st.fragment(run_every=refresh or None)
def live_panel() -> None:
    """Per-policy figures, refreshed on a timer."""
    figures = None
    if metrics_query is not None:
        try:
            figures = figures_from_prometheus(metrics_query, window_min * 60, weights=weights)
        except RagdeckError as exc:
            st.warning(f"{exc}. Showing the API's own /metrics instead.", icon="📉")
    if figures is None:
        history: ScrapeHistory = st.session_state.setdefault("canary_scrapes", ScrapeHistory())
        try:
            history.add(admin.metrics())
        except RagdeckError as exc:
            st.error(str(exc), icon="⚠️")
            return
        figures = history.figures(window_min * 60, weights=weights)
    shown = st.session_state.setdefault("canary_history", [])
    shown.append(figures)
    del shown[:-360]
    if not any(p.served for p in figures.policies):
        st.info(
            f"No requests {figures.window}. Send some with `ragdeck replay --set eval_sets/demo_gold.jsonl "
            f"--target {admin.shown_url}` or with Replay below."
        )
    st.caption(f"Figures updated at {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    table(figures.rows(), width="stretch")
    guard_p95 = thresholds.get("p95_ms")
    charts = st.columns(2)
    charts[0].plotly_chart(latency_bars(figures, guard_p95), width="stretch")
    charts[1].plotly_chart(rate_bars(figures), width="stretch")
    if len(shown) > 1:
        st.plotly_chart(p95_history(shown, guard_p95), width="stretch")
    st.download_button(
        "Download figures (JSON)",
        json.dumps(figures.to_json(), indent=2),
        file_name="canary-figures.json",
        mime="application/json",
        key=f"canary_figures_{len(shown)}",
    )


live_panel()

# ---------------------------------------------------------------------- guard

st.subheader("Guard")
st.caption(
    f"The guard sets {canary}'s weight to 0 when, over the window and with at least the minimum of requests, "
    "its P95 latency or its error rate crosses a threshold. Changes apply to every API replica."
)
with st.form("guard_thresholds"):
    cols = st.columns(4)
    p95_ms = cols[0].number_input("P95 ms", min_value=1.0, value=float(thresholds.get("p95_ms", 2500.0)))
    error_pct = cols[1].number_input(
        "Error rate (%)",
        min_value=0.0,
        max_value=100.0,
        value=float(thresholds.get("error_rate", 0.05)) * 100,
    )
    min_samples = cols[2].number_input(
        "Minimum requests", min_value=1, value=int(thresholds.get("min_samples", 100)), step=10
    )
    window_s = cols[3].number_input(
        "Window (s)", min_value=1.0, value=float(thresholds.get("window_s", 300.0))
    )
    if st.form_submit_button("Save thresholds", disabled=not can_operate):
        with user_errors():
            values = {
                "p95_ms": p95_ms,
                "error_rate": error_pct / 100,
                "min_samples": int(min_samples),
                "window_s": window_s,
            }
            set_guard_thresholds(admin, user, values, reason, log=get_audit_log())
            st.toast("Guard thresholds saved")
            st.rerun()

st.markdown("**Routing events** (newest first; guard rollbacks included)")
rows = event_rows(events)
if rows:
    frame = pd.DataFrame(rows)
    table(
        frame.style.apply(
            lambda r: ["background-color: #fde2e1" if r["event"] == "guard rollback" else ""] * len(r), axis=1
        ),
        width="stretch",
    )
    st.download_button("Download events (CSV)", frame.to_csv(index=False), "routing-events.csv", "text/csv")
else:
    st.caption("No weight change, threshold change or guard rollback yet.")

# ---------------------------------------------------------------------- replay


def replay_controls(plan_inputs: tuple[Path, float, float, int] | None) -> None:
    """Start and Stop, the running replay's progress and how the last one ended. Redrawn every second
    while a replay runs (only this part: an open dropdown elsewhere stays open), so the buttons follow it.
    """
    jobs = get_replay_jobs()
    job = jobs.get(admin.base_url)
    running = job is not None and job.running
    start, stop = st.columns(2)
    if job_button(
        start, "Start replay", busy=running, busy_label="Replaying…", key="replay_start",
        disabled=plan_inputs is None,
    ):  # fmt: skip
        with user_errors():
            assert plan_inputs is not None
            chosen, qps, duration, users = plan_inputs
            target = check_target(admin.base_url)
            plan = ReplayPlan([r.question for r in read_any(chosen).records], qps, duration, users)
            jobs[admin.base_url] = ReplayJob(
                plan, lambda: build_replay_sender(target, plan.max_in_flight), target
            ).start()
            st.rerun()  # the whole page, so this part refreshes while the replay runs
    if stop.button("Stop replay", disabled=not running, key="replay_stop"):
        assert job is not None
        job.stop()  # it ends within a moment: the next refresh shows how it went
        st.rerun(scope="fragment")
    if job is None:
        return
    if running:
        progress = replay_progress(job)
        st.progress(progress.fraction, text=f"Replaying to {job.target}: {progress.text}")
    else:
        level, message = replay_outcome(job)
        getattr(st, level)(message, icon={"success": "✅", "warning": "⚠️", "error": "🛑"}[level])
    if job.summary is not None:
        st.code("\n".join(job.summary.lines()), language=None)


with st.expander("Replay eval-set questions against this API (demo traffic)"):
    files = listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
    replaying = (job := get_replay_jobs().get(admin.base_url)) is not None and job.running
    inputs = None
    if not files:
        st.caption(f"No eval set in {settings.eval_sets_dir}: publish one first (Publish page).")
    else:
        cols = st.columns(4)
        chosen = cols[0].selectbox("Eval set", files, format_func=lambda p: p.name, key="replay_set")
        qps = cols[1].number_input("Requests per second", min_value=0.1, max_value=50.0, value=2.0, step=0.5)
        duration = cols[2].number_input("Duration (s)", min_value=1, max_value=3600, value=60, step=10)
        users = cols[3].number_input("Distinct users", min_value=1, max_value=10_000, value=50, step=10)
        inputs = (chosen, float(qps), float(duration), int(users))
# Outside the expander, so a replay's state shows with it closed (and the expander is drawn as before).
st.fragment(run_every=1.0 if replaying else None)(replay_controls)(inputs)
