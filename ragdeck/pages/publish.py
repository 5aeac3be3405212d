"""Publish page: the labelled gold as a versioned eval set under eval_sets/, with its history and diffs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ragdeck.console import audit
from ragdeck.console.annotation import export_gold
from ragdeck.console.evalsets.publish import diff, gold_to_evalset, load_version, publish, versions
from ragdeck.console.roles import require
from ragdeck.console.settings import Settings
from ragdeck.ui import current_user, get_annotation_store, get_audit_log, user_errors

st.title("Publish")
settings = Settings()
store = get_annotation_store()
gold = export_gold(store)
directory = settings.eval_sets_dir
st.caption(f"Eval sets are written to `{directory}` (set `RAGDECK_EVAL_SETS_DIR`); review them in git.")

name = st.text_input(
    "Eval set name", value=st.session_state.get("publish_name", "demo_gold"), key="publish_name"
)
with user_errors():
    evalset = gold_to_evalset(name, gold)
    annotators = sorted({a for g in gold for a in g.annotators})
    stats = evalset.stats()
    cols = st.columns(4)
    cols[0].metric("Questions with gold", stats["records"])
    cols[1].metric("Gold chunks", stats["gold_ids"])
    cols[2].metric("With reference answers", stats["records_with_answers"])
    cols[3].metric("Annotators", len(annotators))
    flagged = [g.question for g in gold if g.flagged_by]
    if flagged:
        st.warning(
            f"{len(flagged)} question(s) are flagged for review; they are published only once they have gold."
        )
    st.caption(f"Content hash `{evalset.content_hash()[:16]}…`")
    with st.form("publish"):
        note = st.text_input("Note for this version", placeholder="what changed")
        if st.form_submit_button("Publish", type="primary", disabled=not evalset.records):
            user, log = current_user(), get_audit_log()
            require(user, "evalset.publish", target=name, log=log)
            before = versions(directory, name)
            version, new = publish(evalset, directory, annotators=annotators, note=note)
            if new:
                audit.record(
                    user, "evalset.publish", name,
                    before={"version": before[-1].version, "hash": before[-1].hash} if before else None,
                    after={"version": version.version, "hash": version.hash, **evalset.stats()},
                    reason=note, log=log,
                )  # fmt: skip
                st.success(f"Published {name} v{version.version} ({version.hash[:12]}).")
            else:
                st.info(f"Nothing changed since v{version.version}: no new version.")
    if not evalset.records:
        st.info("Nothing to publish yet: label gold chunks on the Annotate page first.", icon="🏷️")

    history = versions(directory, name)
    if history:
        st.subheader("Versions")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": v.version,
                        "hash": v.hash[:12],
                        "published": pd.Timestamp(v.created_at, unit="s"),
                        "questions": v.counts.get("records", 0),
                        "gold chunks": v.counts.get("gold_ids", 0),
                        "annotators": ", ".join(v.annotators),
                        "note": v.note,
                    }
                    for v in reversed(history)
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        if len(history) > 1:
            numbers = [v.version for v in history]
            left, right = st.columns(2)
            old = left.selectbox("From version", numbers, index=len(numbers) - 2)
            new = right.selectbox("To version", numbers, index=len(numbers) - 1)
            change = diff(load_version(directory, name, old), load_version(directory, name, new))
            if change.empty:
                st.caption("The two versions hold the same records.")
            for label, ids in (("Added", change.added), ("Removed", change.removed)):
                if ids:
                    st.markdown(f"**{label}:** " + ", ".join(f"`{i}`" for i in ids))
            if change.changed:
                st.dataframe(
                    pd.DataFrame(
                        [{"id": k, "changed fields": ", ".join(v)} for k, v in change.changed.items()]
                    ),
                    hide_index=True,
                )
