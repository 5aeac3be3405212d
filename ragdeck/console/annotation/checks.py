"""Input checks of the annotation rules: names, relevance grades and source spans (InputError when bad)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

from ragdeck.console.annotation.records import RELEVANCE, ChunkSpan
from ragdeck.errors import InputError

__all__ = ["check_name", "check_relevance", "check_span"]


def check_name(value: object, what: str) -> str:
    """A non-empty name (annotator, actor, chunk id), stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def check_relevance(value: object) -> int:
    """A relevance grade: the integer 0, 1 or 2 (not a bool, float or string)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        grade = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        grade = -1
    if grade not in RELEVANCE:
        raise InputError(
            f"relevance must be 0 (not relevant), 1 (partly relevant) or 2 (relevant), got {value!r}"
        )
    return grade


def check_span(value: object) -> ChunkSpan | None:
    """A ChunkSpan from a ChunkSpan, a (doc_id, start, end) tuple or a mapping with those keys; or None."""
    if value is None or isinstance(value, ChunkSpan):
        span = value
    elif isinstance(value, Mapping):
        span = ChunkSpan(value.get("doc_id"), value.get("start"), value.get("end"))  # type: ignore[arg-type]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        span = ChunkSpan(*value)
    else:
        raise InputError(f"span must be (doc_id, start, end), got {value!r}")
    if span is None:
        return None
    ok = (
        isinstance(span.doc_id, str)
        and span.doc_id
        and all(isinstance(x, int) and not isinstance(x, bool) for x in (span.start, span.end))
    )
    if not ok or not 0 <= span.start <= span.end:
        raise InputError(f"span needs a document id and offsets 0 <= start <= end, got {value!r}")
    return span
