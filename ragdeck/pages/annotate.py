"""Annotate page: a queue of questions; for the current one, candidate chunks to judge (compact cards, the
text escaped with the query terms marked), a reference answer, skip / flag with a comment / undo, and the
project's guidelines. The sidebar lists the annotator's records with their status; Previous / Next and the
list open any of them, so a skipped or flagged question can be finished later. Every click is saved at once
in the annotation store (several annotators may work at the same time). The main actions have keyboard
shortcuts (Streamlit's own ``shortcut=``)."""

from __future__ import annotations

import streamlit as st

from ragdeck.console import annotation
from ragdeck.console.annotation.candidates import (
    RELEVANCE_LABELS,
    candidates,
    highlight,
    neighbour_text,
    neighbours,
    query_terms,
)
from ragdeck.console.annotation.drafts import draft_questions, pick_chunks
from ragdeck.console.annotation.guidelines import guidelines_file
from ragdeck.console.annotation.worklist import record_list, step
from ragdeck.console.evalsets.files import read_upload
from ragdeck.console.retrieval.collections import search_targets
from ragdeck.console.retrieval.pipeline import Retriever
from ragdeck.errors import InputError
from ragdeck.pages.annotate_parts import chunk_body, guidelines_panel, record_panel
from ragdeck.ui import (
    get_annotation_store,
    get_rag_service,
    get_span_index,
    get_stack,
    or_stop,
    person_name,
    user_errors,
)

CHOICES = ["unjudged", *RELEVANCE_LABELS.values()]
GRADE = {label: grade for grade, label in RELEVANCE_LABELS.items()}
# Letters and digits act only when no text box has the focus; Ctrl/Cmd+Enter also while typing the answer.
# None clashes with a browser shortcut (Streamlit reserves C and R).
KEYS = {"done": "Mod+Enter", "skipped": "S", "flagged": "F", "undo": "U", "previous": "P", "next": "N"}
GRADED_BY_KEY = 5  # the first candidates: their number marks "relevant", Shift+number "partly relevant"
LEGEND = (
    "⌨️ **Ctrl/⌘+Enter** save and next · **S** skip · **F** flag · **U** undo · **P** / **N** previous / "
    "next record · "
    f"**1–{GRADED_BY_KEY}** mark that candidate relevant, **Shift+1–{GRADED_BY_KEY}** partly relevant. "
    "Letters and digits work when no text box has the focus (click the page first)."
)

st.title("Annotate")
stack = get_stack()
store = get_annotation_store()

left, right = st.columns(2)
annotator = person_name(left, "Your name", key="annotator", help="Labels are saved under this name.")
targets = or_stop(lambda: search_targets(stack.store))
if not targets:
    st.info(
        "No collection to label against yet: build one with `ragdeck demo` or `ragdeck ingest`.", icon="📭"
    )
    st.stop()
default = targets.index(stack.settings.alias) if stack.settings.alias in targets else 0
collection = right.selectbox("Collection or alias to label against", targets, index=default)

adding = st.expander("Add questions", expanded=not store.questions())
with adding, st.form("add_questions", clear_on_submit=True):
    typed = st.text_area("One question per line", placeholder="How do I expose TEI metrics to Prometheus?")
    if st.form_submit_button("Add"):
        lines = [line.strip() for line in typed.splitlines() if line.strip()]
        with user_errors():
            if not annotator:
                st.error("Type your name first: questions are recorded with who added them.")
            elif lines:
                ids = annotation.add_questions(store, lines, source="typed", actor=annotator)
                st.toast(f"Added {len(set(ids))} question(s) (duplicates are merged).")
    uploaded = st.file_uploader(
        "…or import an eval set (JSONL or CSV; its questions join the queue)", ["jsonl", "csv"]
    )
    if st.form_submit_button("Import") and uploaded is not None:
        with user_errors():
            records = read_upload(uploaded.name, uploaded.getvalue()).records
            if not annotator:
                st.error("Type your name first: questions are recorded with who added them.")
            else:
                items = [{"question": r.question, "id": r.id, "tags": r.tags} for r in records]
                ids = annotation.add_questions(store, items, source="imported", actor=annotator)
                st.toast(f"Imported {len(set(ids))} question(s) from {uploaded.name}.")

if not annotator:
    st.info("Type your name to start labelling.", icon="✍️")
    st.stop()

chat_model = next((m for m in get_rag_service().chat_models.values() if m is not None), None)
drafts = [q for q in store.questions() if q.draft]
with st.expander(f"Draft questions with the LLM ({len(drafts)} to review)", expanded=bool(drafts)):
    if chat_model is None:
        st.caption("Needs an LLM: set LLM_BASE_URL or start the console with the local LLM.")
    else:
        how_many = st.number_input("Chunks to draft from", min_value=1, max_value=50, value=5)
        if st.button("Draft questions"):
            with user_errors(), st.spinner(f"Asking {chat_model.model_name} for questions…"):
                chunks = pick_chunks(stack.store, stack.store.resolve(collection), int(how_many))
                made = draft_questions(chat_model, chunks)
                items = [{"question": d.question, "tags": [f"from:{d.chunk_id}"]} for d in made]
                annotation.add_questions(store, items, source="generated", actor=annotator)
                st.rerun()
    for draft in drafts:
        with st.form(f"draft_{draft.id}", border=True):
            text = st.text_input("Draft", value=draft.question, label_visibility="collapsed")
            st.caption(" · ".join(draft.tags) or "generated")
            keep, drop = st.columns(2)
            if keep.form_submit_button("Accept", type="primary", width="stretch"):
                with user_errors():
                    annotation.accept_draft(store, draft.id, annotator, text)
                    st.rerun()
            if drop.form_submit_button("Discard", width="stretch"):
                with user_errors():
                    annotation.discard_draft(store, draft.id, annotator)
                    st.rerun()

with st.expander("Share questions between annotators"), st.form("overlap"):
    st.caption(
        "An overlap sample goes to several annotators so their agreement can be measured (Review page); "
        "the other questions go to one annotator each."
    )
    names = st.text_input("Annotators (comma-separated)", placeholder="alice, bob, carol")
    cols = st.columns(3)
    k = cols[0].number_input("Annotators per overlap question", min_value=2, max_value=10, value=2)
    fraction = cols[1].slider("Overlap share", 0.0, 1.0, 0.2, 0.05)
    seed = cols[2].number_input("Seed", min_value=0, value=0)
    if st.form_submit_button("Assign"):
        with user_errors():
            people = [n.strip() for n in names.split(",") if n.strip()]
            ids = [q.id for q in store.questions(include_drafts=False)]
            plan = annotation.overlap_sample(
                store, ids, people, k=int(k), fraction=fraction, seed=int(seed), actor=annotator
            )
            st.toast(f"{len(plan.overlap)} of {len(ids)} questions go to {int(k)} annotators each.")

progress = annotation.progress(store, annotator)
finished = progress.done + progress.skipped + progress.flagged
share = finished / progress.total if progress.total else 0.0
st.progress(
    share, text=f"{finished} of {progress.total} questions handled · {progress.labelled} labels by you"
)


def open_record(question_id: str | None) -> None:
    """Show ``question_id`` next (None: the next open question of the queue), keeping a typed answer."""
    keep_typed_answer()
    st.session_state["ann_current"] = question_id


def keep_typed_answer() -> None:
    """Save the reference answer typed on the record being left (its status unchanged)."""
    shown = st.session_state.get("ann_current")
    typed = st.session_state.get(f"answer_{shown}")
    if shown and typed is not None:
        saved = store.answers(shown, annotator)
        if typed != (saved[0].reference_answer if saved else ""):
            annotation.set_answer(store, shown, annotator, typed)


rows = record_list(store, annotator)
ids = [r.question_id for r in rows]
current = st.session_state.get("ann_current")
if current not in ids:
    queue = annotation.queue(store, annotator, limit=1)
    current = queue[0].id if queue else None
st.session_state["ann_current"] = current
shown = record_panel(rows, current, open_record)
back, forward, where = st.columns([1, 1, 4], vertical_alignment="center")
before, after = step(shown, current, -1), step(shown, current, +1)
back.button("◀ Previous", on_click=open_record, args=(before,), disabled=before is None, width="stretch",
            shortcut=KEYS["previous"])  # fmt: skip
forward.button("Next ▶", on_click=open_record, args=(after,), disabled=after is None, width="stretch",
               shortcut=KEYS["next"])  # fmt: skip
at = [r.question_id for r in shown]
where.caption(
    f"Record {at.index(current) + 1} of {len(at)} in the list" if current in at else f"{len(at)} in the list"
)
guidelines_panel(guidelines_file(stack.settings.data_dir), expanded=progress.labelled == 0)
if current is None:
    st.success("Nothing left in your queue. Add questions above, or publish the eval set.", icon="🎉")
    st.stop()
question = store.question(current)
row = rows[ids.index(current)]
st.subheader(question.question)
st.caption(
    f"`{question.id}` · {question.source}"
    + (" · draft" if question.draft else "")
    + f" · yours: **{row.status}**"
    + (f" · 🚩 {row.comment}" if row.comment else "")
)


def save_label(chunk_id: str, key: str, span: tuple[str, int, int] | None) -> None:
    """Persist the radio's value for one chunk (autosave)."""
    choice = st.session_state[key]
    if choice == "unjudged":
        annotation.clear_label(store, question.id, annotator, chunk_id)
    else:
        annotation.set_label(store, question.id, annotator, chunk_id, GRADE[choice], span)


def grade_by_button(chunk_id: str, key: str, span: tuple[str, int, int] | None, choice: str) -> None:
    """Set one chunk's radio to ``choice`` and save it (the grade buttons and their shortcuts)."""
    st.session_state[key] = choice
    save_label(chunk_id, key, span)


def finish(status: str) -> None:
    """Save the reference answer with a status (a flag with its comment) and go to the next open question."""
    try:
        annotation.finish(
            store,
            question.id,
            annotator,
            status,
            st.session_state.get(f"answer_{question.id}", ""),
            comment=st.session_state.get(f"flag_{question.id}", "") if status == "flagged" else "",
        )
    except InputError as exc:
        st.session_state["ann_error"] = str(exc)
        return
    st.session_state["ann_current"] = None
    st.session_state.pop(f"flag_{question.id}", None)


keyword = st.text_input("Keyword filter", key=f"kw_{question.id}", placeholder="only chunks containing…")
with user_errors():
    hits = candidates(Retriever(stack.store, stack.embedder), question.question, collection, keyword=keyword)
    physical = stack.store.resolve(collection)
    saved = {label.chunk_id: label.relevance for label in store.labels(question.id, annotator)}
    terms = query_terms(question.question) + ([keyword.strip().casefold()] if keyword.strip() else [])
    if not hits:
        st.warning("No chunk matches: clear the keyword filter or rephrase the question.", icon="🔎")
    for position, hit in enumerate(hits, start=1):
        key = f"rel_{question.id}_{hit.chunk_id}"
        if key not in st.session_state:
            st.session_state[key] = RELEVANCE_LABELS.get(saved.get(hit.chunk_id, -1), "unjudged")
        span = (hit.doc_id, hit.start, hit.end) if hit.start is not None and hit.end is not None else None
        with st.container(border=True):
            top, choice = st.columns([3, 2])
            top.markdown(
                f"**{hit.rank}.** `{hit.score:.3f}` · {hit.title}"
                + (f" › {hit.section}" if hit.section else "")
            )
            top.caption(f"`{hit.chunk_id}`")
            choice.radio("Relevance", CHOICES, key=key, horizontal=True, label_visibility="collapsed",
                         on_change=save_label, args=(hit.chunk_id, key, span))  # fmt: skip
            if position <= GRADED_BY_KEY:
                row_ = choice.container(horizontal=True, gap="small")
                marks = (("relevant", str(position)), ("partly relevant", f"Shift+{position}"))
                for label, shortcut in marks:
                    row_.button(f"Mark {label}", key=f"mark_{label}_{question.id}_{hit.chunk_id}",
                                type="tertiary", shortcut=shortcut, on_click=grade_by_button,
                                args=(hit.chunk_id, key, span, label))  # fmt: skip
            chunk_body(hit, question.id, terms, keyword)
            with st.expander("Neighbours in the document"):
                around = neighbours(get_span_index(physical), hit.chunk_id)
                for label, chunk_id in (("Before", around.before), ("After", around.after)):
                    text = neighbour_text(stack.store, physical, chunk_id)
                    st.caption(
                        f"{label}: `{chunk_id}`" if chunk_id else f"{label}: start or end of the document"
                    )
                    if text:
                        st.html(highlight(text, terms))

    answers = {a.question_id: a for a in store.answers(question.id, annotator)}
    answer_key, flag_key = f"answer_{question.id}", f"flag_{question.id}"
    if answer_key not in st.session_state and question.id in answers:
        st.session_state[answer_key] = answers[question.id].reference_answer
    if flag_key not in st.session_state and question.id in answers:
        st.session_state[flag_key] = answers[question.id].note
    st.text_area(
        "Reference answer",
        key=answer_key,
        placeholder="The answer a person would accept, from the gold chunks.",
    )
    st.text_input(
        "Why flag it? (needed to flag; the reviewer reads it)",
        key=flag_key,
        placeholder="ambiguous, two questions in one, no chunk answers it…",
    )
    if error := st.session_state.pop("ann_error", None):
        st.error(error, icon="🚩")
    done, skip, flag, undo = st.columns(4)
    done.button("Save and next", type="primary", on_click=finish, args=("done",), width="stretch",
                shortcut=KEYS["done"])  # fmt: skip
    skip.button("Skip", on_click=finish, args=("skipped",), width="stretch", shortcut=KEYS["skipped"])
    flag.button("Flag for review", on_click=finish, args=("flagged",), width="stretch",
                shortcut=KEYS["flagged"])  # fmt: skip
    st.caption(LEGEND)
    if undo.button("Undo my last change", width="stretch", shortcut=KEYS["undo"]):
        change = annotation.undo(store, annotator)
        for key in [k for k in st.session_state if str(k).startswith(("rel_", "answer_", "flag_"))]:
            del st.session_state[key]  # reload what the store now holds
        st.session_state["ann_current"] = (
            change.question_ids[0] if change and change.question_ids else current
        )
        st.toast(f"Undid {change.action}." if change else "Nothing to undo.")
        st.rerun()
