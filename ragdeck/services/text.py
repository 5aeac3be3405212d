"""Text the adapters and the domain share: the one form questions are compared in (``normalize_question``),
and how messages name the type of a JSON value (``json_type_name``).

Two questions are the same question when their normal forms are equal. The answer cache keys answers by it,
the annotation store deduplicates its queue by it (and stores it), eval sets report duplicate questions and
derive the ids of records that have none from it. It lives among the adapters because the annotation
store, an adapter, needs it too; the domain imports it from here.

Imports nothing from ragdeck.
"""

from __future__ import annotations

import unicodedata

__all__ = ["json_type_name", "normalize_question"]

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}


def normalize_question(question: str) -> str:
    """NFKC, case-folded, whitespace runs made one space, then whitespace, quotes and punctuation stripped
    from both ends. Brackets are kept unless one pair encloses everything, so inner punctuation and a final
    ``(ms)`` or ``irate()`` stay.

    ``"  What is   TEI?"``, ``"what is tei"``, ``"«What is TEI»"`` and ``"(What is TEI?)"`` all give
    ``"what is tei"``; ``"?!"`` gives ``""`` (no question at all).
    """
    text = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    while True:
        start, end = 0, len(text)
        while start < end and _is_edge(text[start]):
            start += 1
        while end > start and _is_edge(text[end - 1]):
            end -= 1
        text = text[start:end]
        if not _enclosed(text):
            return text
        text = text[1:-1]


def _enclosed(text: str) -> bool:
    """True when the bracket opening ``text`` is closed by its last character (and not before)."""
    if len(text) < 2 or _PAIRS.get(text[0]) != text[-1]:
        return False
    depth = 0
    for i, char in enumerate(text):
        depth += (char == text[0]) - (char == text[-1])
        if depth == 0:
            return i == len(text) - 1
    return False


def _is_edge(char: str) -> bool:
    """Whitespace, or punctuation that is not a bracket (quotes included)."""
    return char.isspace() or (unicodedata.category(char).startswith("P") and char not in "()[]{}")


def json_type_name(value: object) -> str:
    """A parsed JSON value's type as a message says it: "an object", "a list", "a string", "a boolean",
    "null", else "a number"."""
    return _JSON_TYPES.get(type(value), "a number")
