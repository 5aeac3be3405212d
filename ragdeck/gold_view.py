"""Page helpers shared by Review and Publish: text shown as the characters it holds (never as Markdown or
HTML), a chunk's first lines with the rest on demand, where chunk text is read from, and the merge rule."""

from __future__ import annotations

import html
from typing import Any

import streamlit as st

from ragdeck.console.annotation.gold import MERGE_RULE, MERGE_SUMMARY
from ragdeck.console.annotation.review import ChunkText, chunk_texts, first_lines
from ragdeck.console.retrieval.collections import search_targets
from ragdeck.errors import RagdeckError
from ragdeck.services.redact import redact_text
from ragdeck.ui import get_stack

EMPTY = "—"  # what a table cell shows for nothing (never "None")
_PLAIN = (
    '<div data-testid="ragdeck-plain" style="white-space: pre-wrap; overflow-wrap: anywhere; '
    'font-size: {size}; line-height: 1.45;{extra}">{text}</div>'
)


def plain(container: Any, text: str, *, muted: bool = False) -> None:
    """``text`` exactly as typed or stored: escaped, line breaks kept (raw HTML or Markdown in it shows as
    the characters it is); ``muted``: small and grey, like a caption."""
    extra = " opacity: 0.65;" if muted else ""
    container.html(_PLAIN.format(size="0.8rem" if muted else "0.9rem", extra=extra, text=html.escape(text)))


def merge_rule(container: Any) -> None:
    """The merge rule of ``console.annotation.gold``: one line, the whole rule one click away."""
    container.caption(MERGE_SUMMARY)
    with container.expander("Merge rule: how several annotators' labels become gold"):
        st.markdown(MERGE_RULE)


def text_source(container: Any, key: str) -> str | None:
    """The collection or alias chunk text is read from (the serving alias first); None, said on the page,
    when the store has none or cannot be read."""
    try:
        stack = get_stack()
        targets = search_targets(stack.store)
    except RagdeckError as exc:
        container.caption(f"Chunk text cannot be shown: {redact_text(str(exc))}")
        return None
    if not targets:
        container.caption(
            "Chunk text cannot be shown: the vector store has no collection yet (build one with "
            "`ragdeck demo` or `ragdeck ingest`)."
        )
        return None
    default = targets.index(stack.settings.alias) if stack.settings.alias in targets else 0
    return container.selectbox("Chunk text from", targets, index=default, key=key)


def read_chunks(collection: str | None, chunk_ids: list[str]) -> dict[str, ChunkText]:
    """The chunks of ``chunk_ids`` in ``collection`` (nothing when None); a store error is shown, not
    raised, since the page is still useful without the text."""
    if collection is None or not chunk_ids:
        return {}
    try:
        return chunk_texts(get_stack().store, collection, chunk_ids)
    except RagdeckError as exc:
        st.caption(f"Chunk text cannot be read from {collection}: {redact_text(str(exc))}")
        return {}


def chunk_block(container: Any, chunk_id: str, chunk: ChunkText | None, collection: str | None) -> None:
    """A chunk's title and first lines, the full text in an expander when longer."""
    if chunk is None:
        if collection is not None:
            container.caption(
                f"`{chunk_id}` is not in {collection}: no text to show (pick another collection)."
            )
        return
    where = " › ".join(part for part in (chunk.title, chunk.section) if part)
    if where:
        plain(container, where, muted=True)
    short, cut = first_lines(chunk.text)
    plain(container, short or "(empty chunk)")
    if cut:
        with container.expander("Full text"):
            plain(st, chunk.text)
