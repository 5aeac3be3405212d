"""Review page: agreement between annotators, disagreements side by side, and the adjudicated label."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from ragdeck.console import annotation
from ragdeck.console.annotation.agreement import overall_agreement
from ragdeck.console.annotation.candidates import RELEVANCE_LABELS
from ragdeck.ui import get_annotation_store, person_name, user_errors

st.title("Review")
store = get_annotation_store()
labels = annotation.labels_by_question(store)
shared = {qid: by_annotator for qid, by_annotator in labels.items() if len(by_annotator) >= 2}
if not shared:
    st.info(
        "No question has labels from two annotators yet. Give several people an overlap sample (the same "
        "questions) on the Annotate page; their agreement and disagreements appear here.",
        icon="👥",
    )
    st.stop()


def fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


overall = overall_agreement(shared)
cols = st.columns(4)
cols[0].metric("Questions labelled by 2+", overall.n_questions)
cols[1].metric(f"Kappa ({overall.kappa_method})", fmt(overall.kappa))
cols[2].metric(f"Krippendorff's alpha ({overall.alpha_level})", fmt(overall.alpha))
cols[3].metric("Mean Jaccard of gold sets", fmt(overall.mean_jaccard))

questions = {q.id: q.question for q in store.questions()}
adjudicated = {(a.question_id, a.chunk_id) for a in store.adjudications()}
rows = [
    {
        "question": questions.get(qid, qid),
        "id": qid,
        "annotators": ", ".join(agreement.annotators),
        "jaccard": agreement.jaccard,
        "kappa": agreement.kappa,
        "disagreements": len(agreement.disagreements),
        "open": sum((qid, c) not in adjudicated for c in agreement.disagreements),
    }
    for qid, agreement in overall.per_question.items()
]
table = pd.DataFrame(rows).sort_values(["open", "jaccard"], ascending=[False, True])
st.plotly_chart(
    px.histogram(table, x="jaccard", nbins=10, range_x=[0, 1], height=220, title="Jaccard per question"),
    width="stretch",
)
st.dataframe(table, hide_index=True, width="stretch", column_config={"id": None})

choices = table["id"].tolist()
qid = st.selectbox("Question to review", choices, format_func=lambda q: questions.get(q, q))
agreement = overall.per_question[qid]
grades = pd.DataFrame(
    {
        a: [RELEVANCE_LABELS.get(shared[qid][a].get(c, 0), "") for c in agreement.chunks]
        for a in agreement.annotators
    },
    index=list(agreement.chunks),
)
st.caption(
    "Each annotator's grade per chunk (unjudged counts as not relevant); rows that differ need a decision."
)
st.dataframe(
    grades.style.apply(
        lambda row: ["background-color: #fde2e1" if len(set(row)) > 1 else "" for _ in row], axis=1
    )
)

decided = {a.chunk_id: a for a in store.adjudications(qid)}
for chunk_id in agreement.disagreements:
    with st.form(f"adjudicate_{qid}_{chunk_id}", border=True):
        st.markdown(f"`{chunk_id}`")
        current = decided.get(chunk_id)
        options = list(RELEVANCE_LABELS.values())
        choice = st.radio(
            "Adjudicated grade", options, horizontal=True,
            index=options.index(RELEVANCE_LABELS[current.relevance]) if current else None,
        )  # fmt: skip
        reason = st.text_input("Reason", value=current.reason if current else "")
        reviewer = person_name(st, "Reviewer", key=f"reviewer_{qid}_{chunk_id}")
        if st.form_submit_button("Record decision"):
            with user_errors():
                grade = {v: k for k, v in RELEVANCE_LABELS.items()}[choice] if choice else None
                if grade is None or not reviewer.strip():
                    st.error("Pick a grade and give your name as reviewer.")
                else:
                    annotation.adjudicate(store, qid, chunk_id, grade, reviewer.strip(), reason)
                    st.toast(f"Recorded: {chunk_id} is {choice}.")
                    st.rerun()
    if chunk_id in decided:
        st.caption(
            f"Decided by {decided[chunk_id].adjudicator}: {RELEVANCE_LABELS[decided[chunk_id].relevance]}"
        )
