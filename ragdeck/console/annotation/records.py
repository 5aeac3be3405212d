"""The annotation records: what the store keeps (re-exported from ``ragdeck.services.types``, where the
adapter can build them without importing the domain) and what the domain derives from them (``Progress``,
``OverlapPlan``, ``GoldQuestion``), with the value sets of their fields.

Relevance: 0 = not relevant (judged "no"), 1 = partly relevant, 2 = relevant; a chunk with no label is
unjudged. Statuses per annotator and question: open, done, skipped, flagged. Sources of a question:
imported (from an eval set), typed (by a person), generated (an LLM draft, until a person accepts it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragdeck.services.types import (
    Adjudication,
    AnnotationSnapshot,
    Answer,
    Change,
    ChunkSpan,
    Label,
    NewQuestion,
    Question,
)

__all__ = [
    "RELEVANCE",
    "SOURCES",
    "STATUSES",
    "Adjudication",
    "AnnotationSnapshot",
    "Answer",
    "Change",
    "ChunkSpan",
    "GoldQuestion",
    "Label",
    "NewQuestion",
    "OverlapPlan",
    "Progress",
    "Question",
]

RELEVANCE = {0: "not relevant", 1: "partly relevant", 2: "relevant"}
SOURCES = ("imported", "typed", "generated")
STATUSES = ("open", "done", "skipped", "flagged")


@dataclass(frozen=True)
class Progress:
    """One annotator's counts over the non-draft questions (``open`` = total − done − skipped − flagged)."""

    annotator: str
    total: int
    done: int
    skipped: int
    flagged: int
    open: int
    labelled: int
    assigned: int
    assigned_open: int


@dataclass(frozen=True)
class OverlapPlan:
    """What ``overlap_sample`` assigned: the overlap questions and each annotator's new questions."""

    overlap: tuple[str, ...]
    assignments: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class GoldQuestion:
    """One question's gold as ``export_gold`` derives it (see there for the rules)."""

    question_id: str
    question: str
    gold_chunk_ids: tuple[str, ...]
    relevance: dict[str, int]
    spans: dict[str, ChunkSpan]
    reference_answer: str
    annotators: tuple[str, ...]
    adjudicated: tuple[str, ...]
    flagged_by: tuple[str, ...]
    tags: tuple[str, ...] = ()
    source: str = "typed"
    answers: dict[str, str] = field(default_factory=dict)
    answer_by: str = ""  # whose answer is ``reference_answer`` ("" when none)
