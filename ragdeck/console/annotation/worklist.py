"""One annotator's record list: every question with their status on it (open, done, skipped, flagged), whose
it is (assigned to them, to others only, or to nobody), their flag comment and label count; the filters the
Annotate page offers over it; and moving to the previous or next record of a filtered list."""

from __future__ import annotations

from dataclasses import dataclass

from ragdeck.console.annotation.checks import check_name
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.errors import InputError

__all__ = ["FILTERS", "WHOSE", "RecordRow", "keep", "record_list", "step"]

WHOSE = ("mine", "unassigned", "others'")  # also the order of the list
FILTERS = ("All", "Open", "Skipped", "Flagged", "Done", "Others'")


@dataclass(frozen=True)
class RecordRow:
    """One question as one annotator sees it in their record list."""

    question_id: str
    question: str
    status: str  # this annotator's: open, done, skipped, flagged
    whose: str  # mine (assigned to them), others' (assigned to others only), unassigned
    comment: str  # their note on it: why they flagged it
    labels: int  # how many chunks they labelled on it


def record_list(repo: AnnotationRepository, annotator: str) -> list[RecordRow]:
    """Every non-draft question with ``annotator``'s status: those assigned to them first, then unassigned
    ones, then those assigned to others only, each group in the order added. The order does not change as
    the annotator works (unlike ``queue``, which serves open questions nobody has done first), so Previous
    always leads back to the record just left."""
    annotator = check_name(annotator, "annotator")
    snapshot = repo.snapshot()
    mine = {a.question_id: a for a in snapshot.answers if a.annotator == annotator}
    counts: dict[str, int] = {}
    for label in snapshot.labels:
        if label.annotator == annotator:
            counts[label.question_id] = counts.get(label.question_id, 0) + 1
    questions = [q for q in snapshot.questions if not q.draft]
    added = {q.id: i for i, q in enumerate(questions)}

    def whose(qid: str) -> str:
        people = snapshot.assignments.get(qid, ())
        return "mine" if annotator in people else "others'" if people else "unassigned"

    rows = [
        RecordRow(
            question_id=q.id,
            question=q.question,
            status=mine[q.id].status if q.id in mine else "open",
            whose=whose(q.id),
            comment=mine[q.id].note if q.id in mine else "",
            labels=counts.get(q.id, 0),
        )
        for q in questions
    ]
    return sorted(rows, key=lambda r: (WHOSE.index(r.whose), added[r.question_id]))


def keep(rows: list[RecordRow], what: str) -> list[RecordRow]:
    """The rows a filter of ``FILTERS`` shows: All; by status (Open, Skipped, Flagged, Done); or Others'
    (questions assigned to other annotators only)."""
    if what not in FILTERS:
        raise InputError(f"filter must be one of {', '.join(FILTERS)}, got {what!r}")
    if what == "All":
        return list(rows)
    if what == "Others'":
        return [r for r in rows if r.whose == "others'"]
    return [r for r in rows if r.status == what.lower()]


def step(rows: list[RecordRow], current: str | None, by: int) -> str | None:
    """The id ``by`` records away from ``current`` (-1 previous, +1 next) in ``rows``; None past either end.

    When ``current`` is not in ``rows`` (nothing open, or filtered out), next is the first row and previous
    the last one.
    """
    ids = [r.question_id for r in rows]
    if not ids:
        return None
    if current not in ids:
        return ids[0] if by > 0 else ids[-1]
    at = ids.index(current) + by
    return ids[at] if 0 <= at < len(ids) else None
