"""Lexical (BM25) sparse vectors for the chunks, made by Qdrant's own BM25 tokeniser (qdrant-edge's ``Bm25``).

Both vector-store adapters store them as the named sparse vector ``lexical`` with Qdrant's IDF modifier, so
the engine supplies the IDF and a point carries only its saturated term frequencies:
``tf * (k + 1) / (tf + k * (1 - b + b * length / avg_len))``. A query is its terms with weight 1, so a
point's score is the BM25 sum over the query terms it contains. The tokeniser splits on punctuation,
lowercases, folds accents, drops English stop words and stems (Snowball), so "Indexes" matches "index" and
"p95," matches "P95". Text is what the dense model embedded: the payload's ``text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qdrant_edge import Bm25, Bm25Config, SparseVector

from ragdeck.errors import InputError

LEXICAL_VECTOR = "lexical"  # the sparse vector's name in every collection ragdeck builds
LEXICAL_MODEL = "bm25-english-v1"  # recorded with each collection: documents and queries must match


@dataclass(frozen=True)
class SparseTerms:
    """A sparse vector: hashed term ids and their weights (same length)."""

    indices: list[int]
    values: list[float]

    def __len__(self) -> int:
        return len(self.indices)


class LexicalEncoder:
    """BM25 term weights for documents and queries (k=1.2, b=0.75, average length 256 tokens: Qdrant's
    defaults for its BM25 model)."""

    model_name = LEXICAL_MODEL

    def __init__(self) -> None:
        self._bm25 = Bm25(Bm25Config(language="english", lowercase=True, ascii_folding=True, k=1.2, b=0.75))

    def document(self, text: str) -> SparseTerms:
        """The weights of one chunk's text (empty for text with no indexable term)."""
        return _terms(self._bm25.embed_document(text))

    def query(self, text: str) -> SparseTerms:
        """The terms of a query, each with weight 1."""
        return _terms(self._bm25.embed_query(text))


def _terms(vector: SparseVector) -> SparseTerms:
    return SparseTerms(indices=[int(i) for i in vector.indices], values=[float(v) for v in vector.values])


def lexical_text(payload: Mapping[str, Any]) -> str:
    """The text a point's lexical vector is made from: its payload ``text``."""
    return str(payload.get("text") or "")


def no_lexical_index(collection: str) -> InputError:
    """The error for a lexical search of a collection built before ragdeck stored BM25 vectors."""
    return InputError(
        f"collection '{collection}' has no lexical (BM25) index: it was built without one. Search it with "
        f"retrieval 'dense', or rebuild it (ragdeck index rebuild, or the Index Ops page) to add one"
    )


_ENCODER: LexicalEncoder | None = None


def encoder() -> LexicalEncoder:
    """The process's one encoder (the tokeniser is stateless; building it loads stop words and stemmer)."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = LexicalEncoder()
    return _ENCODER
