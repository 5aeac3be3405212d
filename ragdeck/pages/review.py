"""Review page: agreement between annotators; for each disputed or flagged question, who said what on every
chunk with the chunk's text, each annotator's reference answer, and the adjudicated grade."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from ragdeck.console import annotation
from ragdeck.console.annotation.agreement import overall_agreement
from ragdeck.console.annotation.candidates import RELEVANCE_LABELS
from ragdeck.console.annotation.review import ReviewItem, review_items
from ragdeck.gold_view import EMPTY, chunk_block, merge_rule, plain, read_chunks, text_source
from ragdeck.ui import get_annotation_store, person_name, user_errors
from ragdeck.widgets import table

GRADE = {label: grade for grade, label in RELEVANCE_LABELS.items()}

st.title("Review")
store = get_annotation_store()
merge_rule(st)
items = {item.question_id: item for item in review_items(store)}
shared = {q: i.grades for q, i in items.items() if len(i.grades) >= 2}
if not items:
    st.info(
        "No question has labels from two annotators yet, and none is flagged. Give several people an overlap "
        "sample (the same questions) on the Annotate page; their agreement and disagreements appear here, "
        "with the questions annotators flag.",
        icon="👥",
    )
    st.stop()


def fmt(value: float) -> str:
    return EMPTY if math.isnan(value) else f"{value:.3f}"


overall = overall_agreement(shared)
cols = st.columns(4)
cols[0].metric("Questions labelled by 2+", overall.n_questions)
cols[1].metric(f"Kappa ({overall.kappa_method})", fmt(overall.kappa))
cols[2].metric(f"Krippendorff's alpha ({overall.alpha_level})", fmt(overall.alpha))
cols[3].metric("Mean Jaccard of gold sets", fmt(overall.mean_jaccard))
if overall.per_question:
    jaccards = pd.DataFrame({"jaccard": [qa.jaccard for qa in overall.per_question.values()]})
    st.plotly_chart(
        px.histogram(
            jaccards, x="jaccard", nbins=10, range_x=[0, 1], height=220, title="Jaccard per question"
        ),
        width="stretch",
    )


def jaccard(qid: str) -> str:
    return fmt(overall.per_question[qid].jaccard) if qid in overall.per_question else EMPTY


table(
    pd.DataFrame(
        [
            {
                "question": item.question,
                "annotators": ", ".join(item.grades) or EMPTY,
                "jaccard": jaccard(qid),
                "disputed chunks": len(item.disputed),
                "undecided": len(item.open),
                "why it is here": "; ".join(item.reasons()) or "all annotators agree",
            }
            for qid, item in items.items()
        ]
    ),
    hide_index=True,
    width="stretch",
)


# Keyed: the question stays chosen when a decision reorders the list (those needing review come first).
# The option labels carry no status: a kept choice would go on showing the status it had when picked.
qid = st.selectbox(
    "Question to review", list(items), format_func=lambda q: items[q].question, key="review_question"
)
item: ReviewItem = items[qid]
st.markdown("**Question**")
plain(st, item.question)
if item.needs_review:
    st.warning("Needs a reviewer: " + "; ".join(item.reasons()) + ".", icon="⚖️")
elif item.disputed:
    st.success("Every chunk the annotators graded differently has a decision.", icon="✅")


def grade_name(grade: int | None) -> str:
    return EMPTY if grade is None else RELEVANCE_LABELS[grade]


st.markdown("**Who said what**")
if item.chunks:
    who = pd.DataFrame(
        {
            **{a: [grade_name(item.grades[a].get(c)) for c in item.chunks] for a in item.grades},
            "gold (merged)": [grade_name(item.merged[c]) for c in item.chunks],
            "decided by": [
                item.decisions[c].adjudicator if c in item.decisions else EMPTY for c in item.chunks
            ],
        },
        index=list(item.chunks),
    )
    disputed = set(item.disputed)
    table(
        who.style.apply(
            lambda row: ["background-color: #fde2e1" if row.name in disputed else "" for _ in row], axis=1
        ),
        hide_index=False,
    )
    st.caption(
        f"{EMPTY}: not graded by that annotator (counts as not relevant). Highlighted: graded differently. "
        "Gold (merged): what the merge rule gives; a reviewer's decision overrides it."
    )
else:
    st.caption("Nobody has graded a chunk on this question yet.")

st.markdown("**Reference answers**")
if not item.answers:
    st.caption("No annotator has written an answer or set a status on this question.")
for answer in item.answers:
    with st.container(border=True):
        counts = answer.annotator in item.grades
        used = " · **used as the reference answer**" if answer.annotator == item.answer_by else ""
        st.markdown(
            f"**{answer.annotator}** · {answer.status}" + ("" if counts else " (does not count)") + used
        )
        if answer.reference_answer:
            plain(st, answer.reference_answer)
        else:
            st.caption("No answer written.")
        if answer.note.strip():
            plain(st, f"Note: {answer.note}", muted=True)

st.markdown("**Chunks**")
collection = text_source(st, key="review_text_source")
texts = read_chunks(collection, list(item.chunks))
decidable = set(item.chunks) if item.flagged else set(item.disputed)
for chunk_id in item.chunks:
    with st.container(border=True):
        said = " · ".join(f"{a}: {grade_name(g.get(chunk_id))}" for a, g in item.grades.items())
        st.markdown(f"`{chunk_id}` · gold: **{grade_name(item.merged[chunk_id])}**")
        if said:
            st.caption(said)
        chunk_block(st, chunk_id, texts.get(chunk_id), collection)
        current = item.decisions.get(chunk_id)
        if current is not None:
            st.caption(f"Decided by {current.adjudicator}: {RELEVANCE_LABELS[current.relevance]}")
            if current.reason:
                plain(st, f"Reason: {current.reason}", muted=True)
        if chunk_id not in decidable:
            continue
        with st.form(f"adjudicate_{qid}_{chunk_id}", border=False):
            options = list(RELEVANCE_LABELS.values())
            choice = st.radio(
                "Adjudicated grade", options, horizontal=True, key=f"grade_{qid}_{chunk_id}",
                index=options.index(RELEVANCE_LABELS[current.relevance]) if current else None,
            )  # fmt: skip
            reason = st.text_input(
                "Reason", value=current.reason if current else "", key=f"reason_{qid}_{chunk_id}"
            )
            reviewer = person_name(st, "Reviewer", key=f"reviewer_{qid}_{chunk_id}")
            if st.form_submit_button("Record decision"):
                with user_errors():
                    if choice is None or not reviewer.strip():
                        st.error("Pick a grade and give your name as reviewer.")
                    else:
                        annotation.adjudicate(store, qid, chunk_id, GRADE[choice], reviewer.strip(), reason)
                        st.toast(f"Recorded: {chunk_id} is {choice}.")
                        st.rerun()
