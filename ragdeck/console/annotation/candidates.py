"""What the Annotate page needs beyond the store: candidate chunks for a question, keyword filtering,
a chunk's first lines (``preview``), its text as escaped HTML with the query terms marked (``highlight``),
and a chunk's neighbours in its document."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ragdeck.console.annotation.records import RELEVANCE
from ragdeck.console.annotation.review import chunk_texts
from ragdeck.console.evalsets.gold_mapping import SpanIndex
from ragdeck.console.interfaces import VectorSearch
from ragdeck.console.retrieval.pipeline import RetrievalParams, RetrievedChunk, Retriever

RELEVANCE_LABELS = RELEVANCE  # grade -> what the pages call it
CHUNK_STYLE = (
    "white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font-size: 0.9rem; line-height: 1.45"
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")


def query_terms(question: str) -> list[str]:
    """The question's words worth highlighting: lower-cased, no stop words, no one-letter words, unique."""
    from ragdeck.console.answering.extractive import STOP_WORDS

    seen: list[str] = []
    for word in _WORD.findall(question.casefold()):
        if len(word) > 1 and word not in STOP_WORDS and word not in seen:
            seen.append(word)
    return seen


def highlight(text: str, terms: list[str]) -> str:
    """``text`` as an HTML fragment that shows exactly its characters, each whole-word occurrence of
    ``terms`` (any case) wrapped in ``<mark>``.

    Every character of the chunk is escaped (``html.escape``), so Markdown, code fences, HTML tags,
    ``$math$`` or Streamlit directives in a chunk are shown as typed, never interpreted; line breaks and
    spaces are kept (``white-space: pre-wrap``). Draw it as HTML (``st.html``), not as Markdown.
    """
    parts, at = [], 0
    words = [re.escape(t) for t in sorted(set(terms), key=len, reverse=True) if t]
    if words:
        pattern = re.compile(r"(?<![\w])(" + "|".join(words) + r")(?![\w])", re.IGNORECASE)
        for match in pattern.finditer(text):
            parts.append(html.escape(text[at : match.start()]))
            parts.append(f"<mark>{html.escape(match.group(1))}</mark>")
            at = match.end()
    parts.append(html.escape(text[at:]))
    return f'<div class="chunk-text" style="{CHUNK_STYLE}">{"".join(parts)}</div>'


def candidates(
    retriever: Retriever, question: str, collection: str, *, k: int = 20, keyword: str = ""
) -> list[RetrievedChunk]:
    """Top-``k`` chunks by dense search, kept only when they contain ``keyword`` (any case) if one is given.

    With a keyword the search looks deeper (10x ``k`` candidates) so filtering still leaves enough to judge.
    """
    depth = k * 10 if keyword.strip() else k
    result = retriever.search(question, collection, RetrievalParams(top_k=depth, top_n=depth, rerank=False))
    hits = result.hits
    if keyword.strip():
        needle = keyword.strip().casefold()
        hits = [h for h in hits if needle in (h.body or h.text).casefold()]
    return hits[:k]


@dataclass(frozen=True)
class Neighbours:
    """The chunks just before and after one chunk in its document (None at either end)."""

    before: str | None
    after: str | None


def neighbours(index: SpanIndex, chunk_id: str) -> Neighbours:
    """The previous and next chunk ids of ``chunk_id`` in document order."""
    span = index.by_id.get(chunk_id)
    if span is None:
        return Neighbours(None, None)
    chunks = index.by_doc[span.doc_id]
    at = next(i for i, c in enumerate(chunks) if c.chunk_id == chunk_id)
    return Neighbours(
        chunks[at - 1].chunk_id if at > 0 else None,
        chunks[at + 1].chunk_id if at + 1 < len(chunks) else None,
    )


def neighbour_text(store: VectorSearch, collection: str, chunk_id: str | None) -> str | None:
    """The body of a neighbouring chunk, or None (read as Review reads chunks: ``review.chunk_texts``)."""
    if chunk_id is None:
        return None
    found = chunk_texts(store, collection, [chunk_id]).get(chunk_id)
    return found.text if found else None
