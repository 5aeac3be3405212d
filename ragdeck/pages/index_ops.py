"""Index Ops page: versions behind the serving alias — rebuild, gate, swap, roll back, retention, snapshots,
and the audit log. Every change needs the operator role; a refused attempt is audited. A rebuild (or its
resume) and a gate run as background jobs: the page shows their progress and can cancel them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ragdeck.console.evalsets.files import listed_eval_sets
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evaluation.gate import parse_gate
from ragdeck.console.index_ops.outcomes import job_outcome
from ragdeck.console.index_ops.records import DEFAULT_MAX_REGRESSION, IndexVersion
from ragdeck.console.index_ops.snapshots import snapshot_rows
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.jobs import Job
from ragdeck.console.retrieval.policies import default_policy
from ragdeck.console.roles import Role
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_embedder, build_eval_runner_for, build_version_embedder
from ragdeck.services.types import HnswConfig
from ragdeck.ui import (
    current_user,
    finished_jobs,
    get_eval_runner,
    get_index_ops,
    get_jobs,
    get_stack,
    job_error,
    job_progress,
    or_stop,
    start_job,
    user_errors,
)
from ragdeck.widgets import audit_log_view, confirm_delete, job_button, table

st.title("Index Ops")
settings = Settings()
stack = get_stack()
user = current_user()
ops = get_index_ops()
jobs = get_jobs()
is_operator = user.can(Role.OPERATOR)
NEEDS_OPERATOR = "" if is_operator else " (needs the operator role: the attempt is refused and audited)"
REBUILD_JOB, GATE_JOB = f"index.rebuild:{ops.alias}", f"index.gate:{ops.alias}"  # one of each at a time


def done(message: str) -> None:
    """Show ``message`` after the rerun that redraws the page with the new state."""
    st.session_state["index_ops_done"] = message
    st.rerun()


def start(key: str, kind: str, label: str, work: Callable[[Job], Any]) -> None:
    """Run ``work`` as a background job; this session is told how it ended once it has."""
    start_job(key, work, kind=kind, label=label, scope="index_ops")
    st.rerun()


def collect_finished() -> bool:
    """Turn this session's jobs that ended into messages for the next draw; True if there were any."""
    ended = finished_jobs("index_ops")
    st.session_state.setdefault("index_ops_outcomes", []).extend(
        job_outcome(job, job_error(job)) for job in ended
    )
    return bool(ended)


SHOWN_LIVE = f"index_ops_live:{ops.alias}"  # the live version the last run showed: what a click expects
live = or_stop(ops.live)  # the vector store down: say so and stop (nothing below works without it)
shown_live = st.session_state.get(SHOWN_LIVE, live)
st.caption(
    f"Signed in as **{user.name}** ({user.role.label}) · alias `{ops.alias}` → `{live or 'none'}` · "
    f"store: {stack.store.capabilities.mode}"
)
collect_finished()
for level, text in st.session_state.pop("index_ops_outcomes", []):
    getattr(st, level)(text, icon={"success": "✅", "warning": "⏹️", "error": "⚠️"}[level])
if message := st.session_state.pop("index_ops_done", None):
    st.success(message, icon="✅")


@st.fragment(run_every=1.0)
def live_jobs() -> None:
    """Progress of the rebuild and the gate working in this process, with a cancel button each."""
    working = [job for job in (jobs.active(REBUILD_JOB), jobs.active(GATE_JOB)) if job is not None]
    for job in working:
        job_progress(job, can_cancel=user.can(Role.ENGINEER if job.kind == "index.gate" else Role.OPERATOR))
    if collect_finished() or (not working and st.session_state.get("index_ops_watching")):
        st.session_state["index_ops_watching"] = False
        st.rerun()  # the whole page: new versions, the outcome
    st.session_state["index_ops_watching"] = bool(working)


rebuilding = jobs.active(REBUILD_JOB) is not None
st.session_state["index_ops_watching"] = rebuilding or jobs.active(GATE_JOB) is not None  # drawn as they are
live_jobs()

# ---------------------------------------------------------------- interrupted rebuilds
for item in ops.interrupted():
    with st.container(border=True):
        how = f"was interrupted (pid {item.pid} on {item.host}, stopped at {item.progress_text})"
        if item.status == "interrupted":  # by its Cancel button
            how = f"was cancelled at {item.progress_text}"
        st.warning(f"The rebuild of **{item.collection}** {how}. The live alias was not touched.", icon="⚠️")
        left, right = st.columns(2)
        sure = confirm_delete(f"{item.collection}'s partial points", key=f"cleanup-sure-{item.collection}",
                              container=right, detail="the version is marked abandoned")  # fmt: skip
        with user_errors():
            if left.button(f"Resume {item.collection}", key=f"resume-{item.collection}", disabled=rebuilding):

                def resume_work(job: Job, item: IndexVersion = item) -> IndexVersion:
                    embedder = build_version_embedder(stack, item)
                    return ops.resume(user, item.collection, embedder, progress=job.report, cancel=job.cancel)

                start(REBUILD_JOB, "index.resume", f"Resume of {item.collection}", resume_work)
            if right.button(
                f"Clean up {item.collection}", key=f"cleanup-{item.collection}", disabled=not sure,
                help="Needs the box ticked." + NEEDS_OPERATOR,
            ):  # fmt: skip
                ops.cleanup(user, item.collection)
                done(f"Cleaned up {item.collection}.")

# ---------------------------------------------------------------- versions
st.subheader("Versions")
versions = []
with user_errors():
    versions = ops.versions()
if versions:
    table([v.summary() for v in versions], width="stretch")
else:
    st.info("No versions yet: rebuild one below.", icon="📭")

# ---------------------------------------------------------------- rebuild
with st.expander("Rebuild a shadow version", expanded=not versions):
    corpus = st.text_input("Corpus folder", str(DEMO_CORPUS), help="Markdown/text files or a corpus.jsonl.")
    cols = st.columns(5)
    min_chars = cols[0].number_input("Min chunk chars", 50, 10_000, settings.chunk_min_chars, step=50)
    max_chars = cols[1].number_input("Max chunk chars", 100, 20_000, settings.chunk_max_chars, step=50)
    overlap = cols[2].number_input("Overlap", 0.0, 0.45, settings.chunk_overlap, step=0.05)
    m = cols[3].number_input("HNSW m", 2, 128, settings.hnsw_m)
    ef_construct = cols[4].number_input("HNSW ef_construct", 4, 2048, settings.hnsw_ef_construct)
    model_dir = st.text_input(
        "Embedding model directory (optional)",
        "",
        placeholder=f"blank: the serving model, {stack.embedder.model_name}",
        help="A local sentence-transformers model; a version embedded with another model can be gated, and "
        "goes live once the console and API embed queries with that model.",
    )
    st.caption(f"Next version: `{ops.next_name()}`.")
    if job_button(
        st,
        "Rebuild",
        busy=rebuilding,
        busy_label="Rebuilding…",
        key="index_rebuild",
        type="primary",
        help="Builds next to the live version in the background; the alias stays." + NEEDS_OPERATOR,
    ):
        chunking = ChunkingConfig(min_chars=int(min_chars), max_chars=int(max_chars), overlap=float(overlap))
        hnsw = HnswConfig(m=int(m), ef_construct=int(ef_construct))
        local_model = model_dir.strip()

        def rebuild_work(job: Job) -> IndexVersion:
            embedder = stack.embedder
            if local_model:
                embedder = build_embedder(settings.model_copy(update={"embedding_model": local_model}))
            return ops.rebuild(
                user,
                Path(corpus),
                embedder,
                chunking=chunking,
                hnsw=hnsw,
                batch_size=settings.embed_batch_size,
                progress=job.report,
                cancel=job.cancel,
            )

        start(REBUILD_JOB, "index.rebuild", f"Rebuild of {ops.next_name()}", rebuild_work)

live = ops.live()
st.session_state[SHOWN_LIVE] = live  # a swap, rollback or restore clicked on this run's page expects it
candidates = [v.collection for v in versions if v.exists and v.status == "ready" and not v.live]

# ---------------------------------------------------------------- gate
st.subheader("Gate")
if not candidates:
    st.caption("Nothing to gate: every finished version is live.")
else:
    shadow = st.selectbox("Shadow version", candidates, key="gate_shadow")
    files = listed_eval_sets(settings.eval_sets_dir, settings.data_dir / "uploads")
    set_file = st.selectbox("Eval set", files, format_func=lambda f: f"{f.name} ({f.parent.name})")
    cols = st.columns(2)
    thresholds = cols[0].text_input("Thresholds (optional)", "", placeholder="doc_hit_rate@10>=0.8")
    max_regression = cols[1].number_input(
        "Max drop of a headline metric vs live", 0.0, 1.0, DEFAULT_MAX_REGRESSION, step=0.01
    )
    gating = jobs.active(GATE_JOB) is not None
    if job_button(
        st,
        "Run gate",
        busy=gating,
        busy_label="Gating…",
        key="index_gate",
        disabled=set_file is None,
        help="Evaluates the shadow and the live version in the background.",
    ):
        with user_errors():
            conditions = parse_gate(thresholds) if thresholds.strip() else ()
            evalset = read_any(set_file)
            runner = get_eval_runner(False, None)
            version = ops.version(shadow)

            def gate_work(job: Job) -> Any:
                return ops.gate(
                    user,
                    shadow,
                    evalset,
                    runner,
                    default_policy("gate", settings),
                    conditions=conditions,
                    max_regression=float(max_regression),
                    progress=job.report,
                    shadow_runner=build_eval_runner_for(stack, build_version_embedder(stack, version)),
                    cancel=job.cancel,
                )

            start(GATE_JOB, "index.gate", f"Gate of {shadow}", gate_work)
    gate = ops.version(shadow).gate
    if gate:
        if gate.get("passed"):
            st.success(f"Gate of {shadow} passed against {gate.get('live_collection')}.", icon="🟢")
        else:
            st.error(f"Gate of {shadow} failed: " + "; ".join(gate.get("failures") or []), icon="🔴")
        rows = [{"metric": k, **v} for k, v in (gate.get("metrics") or {}).items()]
        if rows:
            table(rows)
        if gate.get("comparison_md"):
            with st.expander("Paired comparison (live = A, shadow = B)"):
                st.markdown(gate["comparison_md"])

# ---------------------------------------------------------------- swap and rollback
st.subheader("Swap and roll back")
cols = st.columns(2)
with cols[0]:
    target = st.selectbox("Version to make live", candidates, key="swap_target") if candidates else None
    reason = st.text_area("Reason", key="swap_reason", placeholder="Why (kept in the history and audit log)")
    override = st.checkbox(
        "Override a failed or missing gate (operators; needs a reason)", key="swap_override"
    )
    if st.button(
        "Swap", type="primary", disabled=target is None, help="Moves the alias atomically." + NEEDS_OPERATOR
    ):
        with user_errors():
            move = ops.swap(user, target, reason=reason, override=override, expected=shown_live)
            done(f"{move.alias}: {move.before} → {move.after}.")
with cols[1]:
    previous = ops.rollback_target()
    st.caption(f"Live: `{live or 'none'}` · previous: `{previous or 'none'}`")
    rollback_reason = st.text_input(
        "Rollback reason", key="rollback_reason", placeholder="Why (required; kept in the history)"
    ).strip()
    rollback_sure = st.checkbox(
        f"Yes, point {ops.alias} back at {previous} now" if previous else "Yes, roll back",
        key="rollback_sure",
        disabled=previous is None,
    )
    if st.button(
        f"Roll back to {previous}" if previous else "Roll back",
        disabled=previous is None or not rollback_reason or not rollback_sure,
        help="Needs a reason and the box ticked." + NEEDS_OPERATOR,
    ):
        with user_errors():
            move = ops.rollback(user, reason=rollback_reason, expected=shown_live)
            done(f"Rolled back: {move.alias}: {move.before} → {move.after}.")

history = ops.history(50)
if history:
    columns = ["time", "action", "from_collection", "to_collection", "actor", "reason", "state"]
    table(pd.DataFrame(history)[columns], width="stretch")

# ---------------------------------------------------------------- retention
with st.expander("Retention"):
    keep = st.number_input("Keep the newest", 1, 100, settings.index_retention)
    plan = ops.retention_plan(int(keep))
    if not plan:
        st.caption("Nothing to delete (the live version and its rollback target are always kept).")
    else:
        sure = confirm_delete(f"{len(plan)} version(s)", key="retention_sure", detail=", ".join(plan))
        if st.button(
            "Delete", disabled=not sure, help="Deletes only after the box is ticked." + NEEDS_OPERATOR
        ):
            with user_errors():
                deleted = ops.prune(user, int(keep), confirm=True)
                done(f"Deleted {', '.join(deleted)}.")

# ---------------------------------------------------------------- snapshots
st.subheader("Snapshots")
existing = [v.collection for v in versions if v.exists]
deleted_ones = [v.collection for v in ops.versions(include_deleted=True) if not v.exists]
snap_target = st.selectbox(
    "Collection",
    existing + deleted_ones,
    index=existing.index(live) if live in existing else 0,
    key="snap_target",
)
if snap_target:
    if st.button("Create snapshot", help="Records the alias mapping with it." + NEEDS_OPERATOR):
        with user_errors():
            info = ops.create_snapshot(user, snap_target)
            done(f"Snapshot {info.name} of {info.collection}.")
    snaps = []
    with user_errors():
        snaps = ops.snapshots(snap_target)
    if snaps:
        table(snapshot_rows(snaps), width="stretch")
        picked = st.selectbox("Snapshot", [s.name for s in snaps], key="snap_pick")
        cols = st.columns(2)
        path = ops.local_snapshot(snap_target, picked)
        fetched = settings.data_dir / "downloads" / picked  # a server snapshot, once fetched
        if path is None and fetched.is_file():
            path = fetched
        if path is not None:
            with open(path, "rb") as fh:
                cols[0].download_button("Download", fh, file_name=path.name, mime="application/x-tar")
        elif cols[0].button("Fetch from the server", help="Streams it from Qdrant's snapshot API."):
            with user_errors():
                fetched.parent.mkdir(parents=True, exist_ok=True)
                ops.download_snapshot(snap_target, picked, fetched)
                done(f"Fetched {picked}: download it below.")
        restore_reason = (
            cols[1]
            .text_input(
                "Restore reason", key="restore_reason", placeholder="Why (required; kept in the audit log)"
            )
            .strip()
        )
        restore_sure = cols[1].checkbox(
            f"Yes, replace {snap_target}'s points with {picked} and put its recorded aliases back",
            key="restore_sure",
        )
        if cols[1].button(
            "Restore",
            disabled=not restore_reason or not restore_sure,
            help="Needs a reason and the box ticked." + NEEDS_OPERATOR,
        ):
            with user_errors():
                ops.restore_snapshot(user, snap_target, picked, expected=shown_live, reason=restore_reason)
                done(f"Restored {snap_target} from {picked}; {ops.alias} → {ops.live()}.")
    else:
        st.caption("No snapshots of this collection.")

# ---------------------------------------------------------------- cluster (a Qdrant server)
if stack.store.capabilities.cluster:
    st.subheader("Cluster")
    with user_errors():
        layout = ops.cluster()
        if layout is None:
            st.caption("No live collection: no cluster to show.")
        else:
            st.caption(
                f"`{layout['collection']}`: {layout['shard_number']} shard(s) × "
                f"{layout['replication_factor']} replica(s); cluster {layout['cluster']}; "
                f"this peer {layout['peer_id']}"
            )
            if layout["peers"]:
                table(layout["peers"])
            table(layout["shards"], width="stretch")

# ---------------------------------------------------------------- audit log
st.subheader("Audit log")
audit_log_view(ops.log, key="index_ops_audit")
