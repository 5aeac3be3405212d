"""Field names of eval set files: the aliases accepted for graded gold, and "did you mean" hints for the
rest, so an unknown field or column says which known one it probably is."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["RELEVANCE_ALIASES", "did_you_mean", "unknown_field_message"]

# Read as ``relevance`` (id -> grade): the names qrels, BEIR and other tools give graded judgements.
RELEVANCE_ALIASES = ("qrels", "gold_grades", "relevance_judgments", "relevance_judgements", "grades")
# Names other tools use for a field; named in the hint, not read (their shapes differ too often).
_HINTS = {
    "query": "question",
    "text": "question",
    "query_text": "question",
    "gold": "gold_context_ids",
    "gold_ids": "gold_context_ids",
    "gold_doc_ids": "gold_context_ids",
    "context_ids": "gold_context_ids",
    "contexts": "gold_context_ids",
    "relevant_docs": "gold_context_ids",
    "corpus_ids": "gold_context_ids",
    "answer": "reference_answer",
    "ground_truth": "reference_answer",
    "reference": "reference_answer",
    "_id": "id",
    "qid": "id",
    "query_id": "id",
    "query-id": "id",
    "spans": "gold_spans",
    "labels": "tags",
}


def did_you_mean(name: str, known: Sequence[str]) -> str | None:
    """The known field ``name`` most probably means: a common alias of it, else the closest spelling."""
    key = name.strip().lower().replace(" ", "_")
    if key in known:
        return key
    if key in _HINTS and _HINTS[key] in known:
        return _HINTS[key]
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_field_message(name: str, known: Sequence[str], kind: str = "field") -> str:
    """``unknown field; did you mean 'x'? known fields: a, b, c`` (the hint only when one is likely)."""
    guess = did_you_mean(name, known)
    hint = f"did you mean '{guess}'? " if guess else ""
    return f"unknown {kind}; {hint}known {kind}s: {', '.join(known)}"
