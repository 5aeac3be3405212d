"""What Review and Publish show about a question: who said what on each chunk, the merged grade (the rule of
``gold``), each annotator's reference answer and status, the chunks' text from the vector store, and why a
question needs a reviewer (disputed chunks not decided yet, a flag)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ragdeck.console.annotation.agreement import question_agreement
from ragdeck.console.annotation.gold import chosen_answer, counted_labels, merge_grades
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.records import Adjudication, Answer
from ragdeck.console.interfaces import VectorSearch

__all__ = ["ChunkText", "ReviewItem", "chunk_texts", "first_lines", "preview", "review_items"]


@dataclass(frozen=True)
class ChunkText:
    """A chunk as the store holds it: its title, section and text (the body Annotate shows)."""

    chunk_id: str
    title: str
    section: str
    text: str


def chunk_texts(store: VectorSearch, collection: str, chunk_ids: Iterable[str]) -> dict[str, ChunkText]:
    """The chunks of ``chunk_ids`` found in ``collection`` (an alias or a collection), in one read; an id it
    does not hold is left out. The text is the payload's ``body``, else its ``text`` (as on Annotate)."""
    points = store.retrieve(collection, list(dict.fromkeys(chunk_ids)))
    return {
        p.id: ChunkText(
            chunk_id=p.id,
            title=str(p.payload.get("title") or ""),
            section=str(p.payload.get("section") or ""),
            text=str(p.payload.get("body") or p.payload.get("text") or ""),
        )
        for p in points
    }


def preview(text: str, max_lines: int = 3, max_chars: int = 300) -> str:
    """The start of ``text``: its first ``max_lines`` lines, at most ``max_chars`` characters (cut at a
    space when one is near). Equal to ``text`` when it is that short; else a prefix of it."""
    lines = text.split("\n")
    head = "\n".join(lines[:max_lines])
    if len(head) > max_chars:
        cut = head.rfind(" ", 0, max_chars)
        head = head[: cut if cut > max_chars * 2 // 3 else max_chars]
    return head


def first_lines(text: str, lines: int = 3, chars: int = 300) -> tuple[str, bool]:
    """``preview`` of ``text``'s non-blank lines, ending in " …" when it was cut, and whether it was."""
    short = preview("\n".join(line for line in text.splitlines() if line.strip()), lines, chars)
    cut = short != text.strip()
    return (short + " …" if cut else short), cut


@dataclass(frozen=True)
class ReviewItem:
    """One question as a reviewer sees it (read from one snapshot of the store).

    ``grades``: each counting annotator's grades (annotator -> chunk id -> 0/1/2; a chunk missing from an
    annotator's mapping was not graded by them and counts as 0). ``chunks``: every chunk anyone graded or a
    reviewer decided. ``merged``: the grade each chunk gets in the gold (``gold.merge_grades``).
    ``answers``: every annotator's answer record on the question (reference answer, status, note), counting
    or not; ``answer_by``: whose answer is the reference answer ("" when none). ``disputed``: chunks the
    counting annotators graded differently; ``flagged``: the answers whose status is flagged.
    """

    question_id: str
    question: str
    grades: dict[str, dict[str, int]]
    chunks: tuple[str, ...]
    merged: dict[str, int]
    decisions: dict[str, Adjudication]
    answers: tuple[Answer, ...]
    answer_by: str
    disputed: tuple[str, ...]
    flagged: tuple[Answer, ...]

    @property
    def open(self) -> tuple[str, ...]:
        """Disputed chunks no reviewer has decided yet."""
        return tuple(c for c in self.disputed if c not in self.decisions)

    @property
    def needs_review(self) -> bool:
        """An undecided disputed chunk, or a flag."""
        return bool(self.open or self.flagged)

    def reasons(self) -> list[str]:
        """Why the question is on Review, in words ("" parts left out)."""
        out = []
        if self.disputed:
            decided = len(self.disputed) - len(self.open)
            out.append(f"{len(self.disputed)} chunk(s) graded differently, {decided} decided")
        out.extend(
            f"flagged by {a.annotator}" + (f": {a.note}" if a.note.strip() else "") for a in self.flagged
        )
        return out


def review_items(repo: AnnotationRepository) -> list[ReviewItem]:
    """Every non-draft question that two or more annotators count on, or that someone flagged: first those
    that need a reviewer (an undecided disputed chunk, or a flag), then the rest, each in the order added."""
    snapshot = repo.snapshot()
    counted = counted_labels(snapshot, None)
    answers: dict[str, list[Answer]] = {}
    for answer in sorted(snapshot.answers, key=lambda a: (a.question_id, a.annotator)):
        answers.setdefault(answer.question_id, []).append(answer)
    decisions: dict[str, dict[str, Adjudication]] = {}
    for d in snapshot.adjudications:
        decisions.setdefault(d.question_id, {})[d.chunk_id] = d
    items = []
    for q in snapshot.questions:
        people = counted.get(q.id, {})
        flagged = tuple(a for a in answers.get(q.id, []) if a.status == "flagged")
        if q.draft or (len(people) < 2 and not flagged):
            continue
        decided = decisions.get(q.id, {})
        merged = merge_grades(people, decided.values())
        used = chosen_answer(answers.get(q.id, []), people)
        items.append(
            ReviewItem(
                question_id=q.id,
                question=q.question,
                grades={a: dict(labels) for a, labels in people.items()},
                chunks=tuple(merged),
                merged=merged,
                decisions=dict(decided),
                answers=tuple(answers.get(q.id, [])),
                answer_by=used.annotator if used else "",
                disputed=question_agreement(people).disagreements if len(people) >= 2 else (),
                flagged=flagged,
            )
        )
    return sorted(items, key=lambda item: not item.needs_review)
