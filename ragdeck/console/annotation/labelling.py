"""What annotators and reviewers record on a question: relevance labels with their source spans, the
reference answer and status, the adjudicated label, and undo. Each call checks its input and saves at once
(durable when it returns)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragdeck.console.annotation.checks import check_name, check_relevance, check_span
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.records import STATUSES, Adjudication, Answer, Change, ChunkSpan, Label
from ragdeck.errors import InputError

__all__ = ["SpanInput", "adjudicate", "clear_label", "finish", "set_answer", "set_label", "undo"]

SpanInput = ChunkSpan | tuple[str, int, int] | Mapping[str, Any] | None


def set_label(
    repo: AnnotationRepository,
    question_id: str,
    annotator: str,
    chunk_id: str,
    relevance: int,
    span: SpanInput = None,
) -> Label:
    """Save one annotator's relevance (0/1/2) for a chunk on a question, with the chunk's source span.

    ``span`` is a ChunkSpan, a (doc_id, start, end) tuple or a mapping with those keys; ``None`` keeps a
    span saved earlier for the same label. Saving the same grade again is no change (not logged).
    """
    annotator, chunk_id = check_name(annotator, "annotator"), check_name(chunk_id, "chunk id")
    grade, chunk_span = check_relevance(relevance), check_span(span)
    return repo.save_label(question_id, annotator, chunk_id, grade, chunk_span)


def clear_label(repo: AnnotationRepository, question_id: str, annotator: str, chunk_id: str) -> bool:
    """Remove a label (the chunk becomes unjudged); False when there was none."""
    return repo.delete_label(question_id, check_name(annotator, "annotator"), chunk_id)


def set_answer(
    repo: AnnotationRepository,
    question_id: str,
    annotator: str,
    text: str | None = None,
    status: str | None = None,
    note: str | None = None,
) -> Answer:
    """Save an annotator's reference answer, status (open/done/skipped/flagged) and note.

    A field left None keeps its saved value (a new record starts as "", "open", ""), so skipping or
    flagging never erases a typed answer.
    """
    annotator = check_name(annotator, "annotator")
    if status is not None and status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    for what, value in (("answer", text), ("note", note)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{what} must be text, got {value!r}")
    return repo.save_answer(question_id, annotator, text, status, note)


def finish(
    repo: AnnotationRepository,
    question_id: str,
    annotator: str,
    status: str,
    text: str | None = None,
    comment: str = "",
) -> Answer:
    """Close a question for ``annotator`` as done, skipped or flagged, with their reference answer.

    Flagging needs a ``comment`` saying why (InputError without one); it is kept in ``Answer.note`` for the
    reviewer. Saving with another status clears the note: the flag, and its reason, are resolved. A
    skipped or flagged question can be finished again later; its status is the newest one saved.
    """
    if status not in ("done", "skipped", "flagged"):
        raise InputError(f"a question is finished as done, skipped or flagged, got {status!r}")
    if not isinstance(comment, str):
        raise InputError(f"comment must be text, got {comment!r}")
    note = " ".join(comment.split())
    if status == "flagged" and not note:
        raise InputError("say why you flag this question (a short comment for the reviewer), then flag it")
    return set_answer(repo, question_id, annotator, text, status, note if status == "flagged" else "")


def adjudicate(
    repo: AnnotationRepository,
    question_id: str,
    chunk_id: str,
    relevance: int,
    adjudicator: str,
    reason: str = "",
    span: SpanInput = None,
) -> Adjudication:
    """Record the decided relevance of a chunk on a question; it overrides the annotators' labels in
    ``export_gold`` (whichever way it goes)."""
    adjudicator, chunk_id = check_name(adjudicator, "adjudicator"), check_name(chunk_id, "chunk id")
    grade, chunk_span = check_relevance(relevance), check_span(span)
    return repo.save_adjudication(question_id, chunk_id, grade, adjudicator, str(reason), chunk_span)


def undo(repo: AnnotationRepository, annotator: str) -> Change | None:
    """Revert ``annotator``'s newest change not yet undone; returns that change, or None if none is left.

    Each person undoes only their own changes, newest first; repeated undos walk back. The revert is itself
    logged (action "undo"). If a record it touched was changed since by someone else, nothing is reverted
    and InputError says so.
    """
    return repo.undo_last(check_name(annotator, "annotator"))
