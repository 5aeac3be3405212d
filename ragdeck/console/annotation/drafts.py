"""Draft questions from chunks with the LLM: a person reviews every draft before it enters a queue.

Each draft names the chunk it came from (its ``tags`` carry ``from:<chunk id>``), so the annotator knows
where the answer should be and can check that retrieval finds it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragdeck.console.interfaces import ChatModel, VectorSearch
from ragdeck.services.types import ChatMessage, StoredPoint

PROMPT = (
    "Write one question that a user of this software might ask and that the passage below answers. "
    "The question must make sense without the passage (no 'this passage', no 'the text'). "
    "Reply with the question only, on one line, ending with a question mark.\n\nPassage:\n{passage}"
)
MIN_BODY_CHARS = 300
_QUESTION = re.compile(r"[^\n?]{10,300}\?")
_LEAKS = re.compile(
    r"\b(?:this|the above|the given|the following)\s+(?:passage|text|section|document)\b", re.I
)


@dataclass(frozen=True)
class Draft:
    """A generated question and the chunk it was drafted from."""

    question: str
    chunk_id: str


def clean_question(reply: str) -> str | None:
    """The first well-formed question in a model reply, or None.

    Quotes, list markers and a "Question:" label are removed; a question that refers to "the passage"
    (meaningless without it) or that is not 10-300 characters ending in "?" is refused.
    """
    text = reply.strip().strip("\"'`*").strip()
    text = re.sub(r"^(?:question\s*\d*\s*[:.)-]|[-*\d.)]+)\s*", "", text, flags=re.I)
    match = _QUESTION.search(text)
    if match is None:
        return None
    question = " ".join(match.group(0).strip().strip("\"'`*").split())
    return None if _LEAKS.search(question) else question


def pick_chunks(store: VectorSearch, collection: str, n: int, seed: int | None = None) -> list[StoredPoint]:
    """``n`` chunks with enough text to ask about, from distinct documents where possible, at random."""
    points = [
        p for p in store.iter_points(collection) if len(str(p.payload.get("body", ""))) >= MIN_BODY_CHARS
    ]
    rng = random.Random(seed)
    rng.shuffle(points)
    picked, docs = [], set()
    for point in points:  # one per document first, then fill up
        if point.payload.get("doc_id") not in docs:
            picked.append(point)
            docs.add(point.payload.get("doc_id"))
        if len(picked) == n:
            return picked
    rest = [p for p in points if p not in picked]
    return picked + rest[: n - len(picked)]


def draft_questions(
    chat_model: ChatModel, chunks: Sequence[StoredPoint], *, max_tokens: int = 60
) -> list[Draft]:
    """One draft per chunk the model managed to ask a clean question about (others are skipped)."""
    drafts = []
    for chunk in chunks:
        passage = str(chunk.payload.get("body") or chunk.payload.get("text", ""))[:2000]
        reply = chat_model.chat([ChatMessage("user", PROMPT.format(passage=passage))], max_tokens=max_tokens)
        question = clean_question(reply.text)
        if question:
            drafts.append(Draft(question, chunk.id))
    return drafts
