"""What the annotation domain needs from storage: ``AnnotationRepository``.

The SQLite adapter (``ragdeck.services.annotation_store.SqliteAnnotationStore``) satisfies it; the
composition root builds it (``ragdeck.console.wiring.build_annotation_store``) and fronts hand it to the
functions of this package. Writes take checked input (the functions here check it first) and log each
change under the acting person, so it can be undone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from ragdeck.console.annotation.records import (
    Adjudication,
    AnnotationSnapshot,
    Answer,
    Change,
    ChunkSpan,
    Label,
    NewQuestion,
    Question,
)
from ragdeck.services.types import ComponentHealth

__all__ = ["AnnotationRepository"]


@runtime_checkable
class AnnotationRepository(Protocol):
    """Questions, labels, answers, assignments, adjudications and their change history, durable when a
    write returns and safe to share between threads and processes. Every write is one transaction."""

    # ------------------------------------------------------------------ reads

    def questions(self, *, include_drafts: bool = True) -> list[Question]:
        """Every question in the order it was added."""
        ...

    def question(self, question_id: str) -> Question:
        """One question; InputError when unknown."""
        ...

    def labels(self, question_id: str | None = None, annotator: str | None = None) -> list[Label]:
        """Labels, filtered by question and/or annotator; ordered by question, annotator, chunk id."""
        ...

    def answers(self, question_id: str | None = None, annotator: str | None = None) -> list[Answer]:
        """Answers and statuses, filtered by question and/or annotator; ordered by question, annotator."""
        ...

    def assignments(self, annotator: str | None = None) -> dict[str, tuple[str, ...]]:
        """Question id -> the annotators it is assigned to (only ``annotator``'s when given)."""
        ...

    def adjudications(self, question_id: str | None = None) -> list[Adjudication]:
        """Adjudicated labels, filtered by question; ordered by question, chunk id."""
        ...

    def snapshot(self) -> AnnotationSnapshot:
        """Every question, label, answer, assignment and adjudication, read at one instant."""
        ...

    def history(self, actor: str | None = None, limit: int = 50) -> list[Change]:
        """The newest ``limit`` changes (of ``actor`` when given), newest first."""
        ...

    def health(self) -> ComponentHealth:
        """Whether the store can be read."""
        ...

    # ------------------------------------------------------------------ writes

    def insert_questions(self, items: Sequence[NewQuestion], actor: str) -> list[str]:
        """Store new questions in order; an item whose ``norm`` is already stored (or came earlier) returns
        that question's id instead. InputError, nothing stored, when an item's id names another question."""
        ...

    def accept_question(
        self, question_id: str, actor: str, *, text: str | None = None, norm: str | None = None
    ) -> Question:
        """Clear the draft flag (storing the edited ``text`` and its ``norm`` when given); InputError when
        another question has that ``norm``."""
        ...

    def delete_draft(self, question_id: str, actor: str) -> bool:
        """Delete a draft and everything recorded on it; False, nothing deleted, when it is not a draft."""
        ...

    def save_label(
        self, question_id: str, annotator: str, chunk_id: str, relevance: int, span: ChunkSpan | None
    ) -> Label:
        """Set one annotator's relevance for a chunk; ``span=None`` keeps a stored span."""
        ...

    def delete_label(self, question_id: str, annotator: str, chunk_id: str) -> bool:
        """Remove a label; False when there was none."""
        ...

    def save_answer(
        self,
        question_id: str,
        annotator: str,
        text: str | None = None,
        status: str | None = None,
        note: str | None = None,
    ) -> Answer:
        """Set a reference answer, status and note; a field left None keeps its stored value."""
        ...

    def add_assignments(self, pairs: Iterable[tuple[str, str]], actor: str, *, action: str = "assign") -> int:
        """Assign the (question id, annotator) pairs not assigned yet; returns how many are new."""
        ...

    def save_adjudication(
        self,
        question_id: str,
        chunk_id: str,
        relevance: int,
        adjudicator: str,
        reason: str,
        span: ChunkSpan | None,
    ) -> Adjudication:
        """Set the decided relevance of a chunk on a question."""
        ...

    def undo_last(self, actor: str) -> Change | None:
        """Revert ``actor``'s newest change not yet undone; None when none is left. InputError, nothing
        reverted, when a record it touched was changed after it."""
        ...
