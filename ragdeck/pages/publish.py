"""Publish page: the labelled gold as a versioned eval set under eval_sets/, with its history and diffs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ragdeck.console import audit
from ragdeck.console.annotation import export_gold
from ragdeck.console.evalsets.publish import (
    EvalSetDiff,
    diff,
    gold_to_evalset,
    load_version,
    publish,
    versions,
)
from ragdeck.console.roles import require
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.ui import current_user, get_annotation_store, get_audit_log, user_errors


def show_diff(change: EvalSetDiff) -> None:
    """Records added, removed and changed between two versions of a set."""
    if change.empty:
        st.caption("The same records.")
    for label, ids in (("Added", change.added), ("Removed", change.removed)):
        if ids:
            st.markdown(f"**{label} ({len(ids)}):** " + ", ".join(f"`{i}`" for i in ids))
    if change.changed:
        st.dataframe(
            pd.DataFrame([{"id": k, "changed fields": ", ".join(v)} for k, v in change.changed.items()]),
            hide_index=True,
        )


st.title("Publish")
settings = Settings()
store = get_annotation_store()
gold = export_gold(store)
directory = settings.eval_sets_dir
st.caption(f"Eval sets are written to `{directory}` (set `RAGDECK_EVAL_SETS_DIR`); review them in git.")

name = st.text_input(
    "Eval set name",
    key="publish_name",
    placeholder="e.g. team_gold",
    help="A new name makes a new set; an existing one gets a new version, after you see what changes.",
).strip()
flagged = [g for g in gold if g.flagged_by]
include_flagged = st.checkbox(
    f"Include flagged questions ({len(flagged)})",
    False,
    disabled=not flagged,
    help="Flagged questions are held back until someone resolves them, unless you include them on purpose.",
)
chosen = gold if include_flagged else [g for g in gold if not g.flagged_by]
if not name:
    st.info("Name the eval set to publish: a new name makes a new set.", icon="🏷️")
    st.stop()
with user_errors():
    evalset = gold_to_evalset(name, chosen)
    annotators = sorted({a for g in chosen for a in g.annotators})
    stats = evalset.stats()
    cols = st.columns(4)
    cols[0].metric("Questions with gold", stats["records"])
    cols[1].metric("Gold chunks", stats["gold_ids"])
    cols[2].metric("With reference answers", stats["records_with_answers"])
    cols[3].metric("Annotators", len(annotators))
    if flagged and not include_flagged:
        st.warning(
            f"{len(flagged)} flagged question(s) held back: "
            + "; ".join(g.question for g in flagged[:5])
            + (" …" if len(flagged) > 5 else "")
            + ". Resolve them on Annotate, or include them on purpose."
        )
    st.caption(f"Content hash `{evalset.content_hash()[:16]}…`")
    existing = versions(directory, name)
    confirmed = True
    if existing and evalset.records:
        latest = existing[-1]
        change = diff(load_version(directory, name, latest.version), evalset)
        st.warning(
            f"**{name}** exists: v{latest.version} holds {latest.counts.get('records', 0)} questions. "
            f"Publishing makes v{latest.version + 1} with {stats['records']}, and that becomes the set runs "
            "use. What would change:",
            icon="✋",
        )
        show_diff(change)
        confirmed = st.checkbox(
            f"Replace {name} v{latest.version} with these {stats['records']} questions", key="publish_confirm"
        )
    with st.form("publish"):
        note = st.text_input(
            "Note for this version" + (" (required: why replace it)" if existing else ""),
            placeholder="what changed",
        )
        if st.form_submit_button("Publish", type="primary", disabled=not evalset.records or not confirmed):
            user, log = current_user(), get_audit_log()
            require(user, "evalset.publish", target=name, log=log)
            if existing and not note.strip():
                raise InputError(f"say why {name} gets a new version (the note is kept with it)")
            version, new = publish(evalset, directory, annotators=annotators, note=note)
            if new:
                audit.record(
                    user, "evalset.publish", name,
                    before={"version": existing[-1].version, "hash": existing[-1].hash} if existing else None,
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
            show_diff(diff(load_version(directory, name, old), load_version(directory, name, new)))
