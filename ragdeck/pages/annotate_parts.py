"""Pieces of the Annotate page: the record list (sidebar), the guidelines panel and a compact chunk card.
Not a page itself (``app.py`` lists the pages); the rules they show live in ``console.annotation``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from ragdeck.console.annotation.candidates import highlight
from ragdeck.console.annotation.guidelines import read_guidelines, save_guidelines
from ragdeck.console.annotation.review import preview
from ragdeck.console.annotation.worklist import FILTERS, RecordRow, keep
from ragdeck.console.retrieval.pipeline import RetrievedChunk
from ragdeck.errors import InputError
from ragdeck.widgets import table

ICONS = {"open": "⚪ open", "done": "✅ done", "skipped": "⏭️ skipped", "flagged": "🚩 flagged"}


def record_panel(
    rows: list[RecordRow], current: str | None, open_record: Callable[[str], None]
) -> list[RecordRow]:
    """The annotator's records in the sidebar: counts, a filter, a compact table and a picker that opens
    any record. Returns the filtered rows (Previous / Next move through them)."""
    with st.sidebar:
        st.subheader("Your records")
        counts = Counter(r.status for r in rows)
        st.caption(" · ".join(f"{counts.get(s, 0)} {s}" for s in ("open", "done", "skipped", "flagged")))
        what = st.selectbox("Show", FILTERS, key="ann_filter")
        shown = keep(rows, what)
        listed = [
            {
                "": "▶" if r.question_id == current else "",
                "Status": ICONS.get(r.status, r.status),
                "Question": r.question,
                "Whose": r.whose,
                "Comment": r.comment,
                "Labels": r.labels,
            }
            for r in shown
        ]
        if listed:
            table(listed, height=min(38 + 35 * len(listed), 320))
        else:
            st.caption(f"No {what.lower()} records.")
        names = {r.question_id: f"{ICONS.get(r.status, r.status)} · {r.question}" for r in shown}

        def picked() -> None:
            choice = st.session_state.get("ann_pick")
            st.session_state["ann_pick"] = None
            if choice:
                open_record(choice)

        st.selectbox("Open a record", list(names), index=None, format_func=names.__getitem__,
                     key="ann_pick", on_change=picked, placeholder="Choose a question…")  # fmt: skip
    return shown


def guidelines_panel(path: Path, expanded: bool) -> None:
    """The project's labelling guidelines (Markdown), with an editor to change them for everyone."""

    def save() -> None:
        try:
            save_guidelines(path, st.session_state.get("ann_guidelines_text", ""))
        except InputError as exc:
            st.session_state["ann_guidelines_error"] = str(exc)
            return
        st.session_state["ann_edit_guidelines"] = False
        st.toast("Guidelines saved.")

    with st.expander("📖 Guidelines", expanded=expanded):
        text = read_guidelines(path)
        st.markdown(text)
        if error := st.session_state.pop("ann_guidelines_error", None):
            st.error(error)
        if st.toggle("Edit the guidelines", key="ann_edit_guidelines"):
            with st.form("guidelines"):
                st.text_area("Guidelines (Markdown, shared by every annotator)", value=text, height=300,
                             key="ann_guidelines_text")  # fmt: skip
                st.caption("Save with an empty box to restore the default text.")
                st.form_submit_button("Save guidelines", on_click=save)


def chunk_body(hit: RetrievedChunk, question_id: str, terms: list[str], keyword: str = "") -> None:
    """A candidate's text: its first lines, all of it on demand (from the start when the keyword filter
    matches past the first lines); escaped, with the query terms marked."""
    text = hit.body or hit.text
    head = preview(text)
    if head == text:
        st.html(highlight(text, terms))
        return
    needle = keyword.strip().casefold()
    whole = st.toggle(
        f"Show all ({len(text):,} characters)",
        key=f"all_{question_id}_{hit.chunk_id}",
        value=bool(needle) and needle not in head.casefold(),
    )
    more = "" if whole else '<div style="opacity: 0.6">…</div>'
    st.html(highlight(text if whole else head, terms) + more)
