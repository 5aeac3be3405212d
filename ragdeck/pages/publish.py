"""Publish page: the labelled gold as a versioned eval set under eval_sets/, with its history and diffs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ragdeck.console import audit
from ragdeck.console.annotation import RELEVANCE, GoldQuestion, export_gold
from ragdeck.console.annotation.review import review_items
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
from ragdeck.gold_view import EMPTY, chunk_block, merge_rule, read_chunks, text_source
from ragdeck.ui import current_user, get_annotation_store, get_audit_log, user_errors
from ragdeck.widgets import table


def show_diff(change: EvalSetDiff) -> None:
    """Records added, removed and changed between two versions of a set."""
    if change.empty:
        st.caption("The same records.")
    for label, ids in (("Added", change.added), ("Removed", change.removed)):
        if ids:
            st.markdown(f"**{label} ({len(ids)}):** " + ", ".join(f"`{i}`" for i in ids))
    if change.changed:
        table(
            pd.DataFrame([{"id": k, "changed fields": ", ".join(v)} for k, v in change.changed.items()]),
            hide_index=True,
        )


def preview(chosen: list[GoldQuestion]) -> None:
    """What will be published, one row per question: gold chunks, reference answer and who contributed."""
    review = {item.question_id: item for item in review_items(store)}
    rows = []
    for g in chosen:
        item = review.get(g.question_id)
        deciders = sorted({d.adjudicator for d in item.decisions.values()}) if item else []
        rows.append(
            {
                "question": g.question,
                "gold chunks": ", ".join(f"{c} ({RELEVANCE[g.relevance[c]]})" for c in g.gold_chunk_ids),
                "reference answer": g.reference_answer or EMPTY,
                "answer by": g.answer_by or EMPTY,
                "annotators": ", ".join(g.annotators) or EMPTY,
                "decided by": ", ".join(deciders) or EMPTY,
                "undecided disputes": len(item.open) if item else 0,
                "flagged by": ", ".join(g.flagged_by) or EMPTY,
            }
        )
    st.subheader("What will be published")
    table(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        "Undecided disputes: chunks the annotators graded differently that no reviewer has decided on "
        "Review; they are published with the grade the merge rule gives."
    )
    by_id = {g.question_id: g for g in chosen}
    picked = st.selectbox(
        "Read the gold chunks of",
        list(by_id),
        index=None,
        format_func=lambda q: by_id[q].question,
        placeholder="pick a question to read its gold chunks",
        key="publish_read_chunks",
    )
    if picked is not None:
        collection = text_source(st, key="publish_text_source")
        texts = read_chunks(collection, list(by_id[picked].gold_chunk_ids))
        for chunk_id in by_id[picked].gold_chunk_ids:
            with st.container(border=True):
                st.markdown(f"`{chunk_id}` · {RELEVANCE[by_id[picked].relevance[chunk_id]]}")
                chunk_block(st, chunk_id, texts.get(chunk_id), collection)


def held_back(flagged: list[GoldQuestion], empty: list[GoldQuestion]) -> None:
    """The labelled questions that will not be published, each with why."""
    notes = {(a.question_id, a.annotator): a.note.strip() for a in store.answers() if a.status == "flagged"}

    def who(g: GoldQuestion) -> str:
        return ", ".join(
            f"{a} ({notes[(g.question_id, a)]})" if notes.get((g.question_id, a)) else a for a in g.flagged_by
        )

    rows = [
        {"question": g.question, "why": f"flagged by {who(g)}; include flagged questions to publish it"}
        for g in flagged
    ]
    rows += [
        {
            "question": g.question,
            "why": "no gold chunk: none is partly relevant or relevant by the merge rule",
        }
        for g in empty
    ]
    if rows:
        st.subheader("Held back")
        table(pd.DataFrame(rows), hide_index=True, width="stretch")


st.title("Publish")
settings = Settings()
store = get_annotation_store()
labelled = export_gold(store, include_empty=True)
gold = [g for g in labelled if g.gold_chunk_ids]
directory = settings.eval_sets_dir
st.caption(f"Eval sets are written to `{directory}` (set `RAGDECK_EVAL_SETS_DIR`); review them in git.")
merge_rule(st)

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
    if chosen:
        preview(chosen)
    held_back([] if include_flagged else flagged, [g for g in labelled if not g.gold_chunk_ids])
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
        table(
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
