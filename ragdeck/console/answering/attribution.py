"""Post-hoc attribution: which contexts an answer drew on, for models that answer without [n] markers.

Small models often answer correctly but cite nothing. Rather than report an answer with no evidence, ragdeck
attributes it to the contexts that contain most of its content words, and marks those citations as inferred.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragdeck.console.answering.extractive import STOP_WORDS

_WORD = re.compile(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]")
MIN_OVERLAP = 0.5  # share of the answer's content words a context must contain to be cited
MAX_CITATIONS = 2


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stop words and one-letter tokens (flags and numbers stay)."""
    return {w for w in _WORD.findall(text.casefold()) if len(w) > 1 and w not in STOP_WORDS}


def infer_citations(
    answer: str,
    contexts: Sequence[str],
    *,
    min_overlap: float = MIN_OVERLAP,
    max_citations: int = MAX_CITATIONS,
) -> list[int]:
    """1-based numbers of the contexts that best cover ``answer``, best first.

    Coverage of context i = |W(answer) ∩ W(context_i)| / |W(answer)| over content words W. Contexts at or
    above ``min_overlap`` are kept, at most ``max_citations`` of them. An answer with no content words, or no
    context covering enough of it, gets no citations (an empty list), never a guess.
    """
    words = content_words(answer)
    if not words:
        return []
    coverage = [(len(words & content_words(text)) / len(words), n) for n, text in enumerate(contexts, 1)]
    kept = sorted((c for c in coverage if c[0] >= min_overlap), key=lambda c: (-c[0], c[1]))
    return [n for _, n in kept[:max_citations]]
