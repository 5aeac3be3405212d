"""From labels to gold: who counts on a question (``labels_by_question``, also the input of
``agreement``), the majority rule (``majority_grade``, ``merge_grades``), each question's gold
(``export_gold``) and the rule in plain words for the pages and docs (``MERGE_RULE``, ``MERGE_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.records import (
    RELEVANCE,
    Adjudication,
    AnnotationSnapshot,
    Answer,
    ChunkSpan,
    GoldQuestion,
)
from ragdeck.errors import InputError

__all__ = [
    "MERGE_EXAMPLES",
    "MERGE_RULE",
    "MERGE_SUMMARY",
    "chosen_answer",
    "counted_labels",
    "export_gold",
    "labels_by_question",
    "majority_grade",
    "merge_grades",
]

LabelsByQuestion = dict[str, dict[str, dict[str, int]]]

# Grades of several annotators on one chunk -> the merged grade; the rule text quotes these, and a test
# checks each against ``majority_grade`` (so the words and the code cannot drift apart).
MERGE_EXAMPLES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((2, 1), 1),
    ((2, 0), 0),
    ((2, 2, 0), 2),
    ((2, 1, 0), 1),
)


def _example(grades: tuple[int, ...], merged: int) -> str:
    return " + ".join(RELEVANCE[g] for g in grades) + f" → **{RELEVANCE[merged]}**"


MERGE_SUMMARY = (
    "Gold per chunk: the grade more than half of the annotators give (a tie is not a majority: with two "
    "annotators the lower grade stands); a reviewer's decision overrides it; the reference answer is the "
    "newest one given."
)

MERGE_RULE = "\n".join(
    [
        "**How the labels of several annotators become gold** (per question, per chunk):",
        "- **Who counts:** every annotator who graded a chunk on the question (whether they then saved, "
        "skipped or flagged it) or marked it done; one who skipped it without grading anything does not. "
        "A chunk an annotator did not grade counts as *not relevant* from them.",
        "- **Majority:** a chunk gets the highest grade that **more than half** of those annotators give "
        "(or exceed). A tie is not a majority, so the lower grade stands: with two annotators a chunk "
        "gets the lower of their two grades. E.g. "
        + "; ".join(_example(g, m) for g, m in MERGE_EXAMPLES)
        + ".",
        "- **Adjudication:** a reviewer's decision on a chunk replaces the annotators' grades, whichever "
        "way it goes.",
        "- **Gold chunks:** those that end up *partly relevant* or *relevant*, relevant ones first.",
        "- **Reference answer:** the most recently saved non-empty answer of an annotator who counts; "
        "answers are not merged (Review shows each one).",
        "- **Flagged questions** are held back from Publish until whoever flagged them marks them done "
        "(or skips them) on Annotate, unless you include them on purpose. A question with no gold chunk "
        "is left out.",
    ]
)


def majority_grade(grades: Sequence[int]) -> int:
    """The highest grade g that more than half of ``grades`` reach (≥ g), else 0.

    One annotator: their own grade. Two: the lower of the two (both must call a chunk relevant for it to be
    gold). [2, 2, 1] → 2; [2, 1, 0] → 1; [2, 0] → 0; no grades → 0.
    """
    for grade in (2, 1):
        if sum(1 for g in grades if g >= grade) * 2 > len(grades):
            return grade
    return 0


def merge_grades(people: Mapping[str, Mapping[str, int]], decided: Iterable[Adjudication]) -> dict[str, int]:
    """Chunk id -> merged grade on one question: an adjudicated grade wins, else ``majority_grade`` of the
    counting annotators' grades (``people``: annotator -> {chunk id: grade}; unjudged = 0)."""
    decisions = {d.chunk_id: d.relevance for d in decided}
    chunks = {c for labels in people.values() for c in labels} | set(decisions)
    return {
        c: decisions[c] if c in decisions else majority_grade([p.get(c, 0) for p in people.values()])
        for c in sorted(chunks)
    }


def chosen_answer(answers: Iterable[Answer], people: Iterable[str]) -> Answer | None:
    """The answer that becomes the reference answer: the newest non-empty one of a counting annotator."""
    counting = set(people)
    given = sorted(
        (a for a in answers if a.annotator in counting and a.reference_answer), key=lambda a: a.updated_at
    )
    return given[-1] if given else None


def labels_by_question(
    repo: AnnotationRepository, question_ids: Iterable[str] | None = None
) -> LabelsByQuestion:
    """Question id -> annotator -> {chunk id: relevance}, for the annotators who count on each question.

    An annotator counts on a question when they labelled a chunk on it (whatever their status: open, done,
    skipped or flagged) or marked it done; one who marked it done with no labels appears with an empty
    mapping (judged nothing relevant). Skipping means "I leave this question", not "withdraw my labels":
    labels given before a skip stay, in agreement and in gold, because dropping the people who found a
    question hard would make agreement look better than it is. A label is withdrawn by setting it back to
    unjudged. A skip with no labels does not count (it judged nothing). Drafts are left out. This is the
    input of ``console.annotation.agreement`` and of ``export_gold``.
    """
    wanted = None if question_ids is None else set(question_ids)
    return counted_labels(repo.snapshot(), wanted)


def counted_labels(snapshot: AnnotationSnapshot, wanted: set[str] | None) -> LabelsByQuestion:
    """``labels_by_question`` on a snapshot already read (``wanted``: the question ids, None for all)."""
    out: LabelsByQuestion = {}
    statuses = {(a.question_id, a.annotator): a.status for a in snapshot.answers}
    for q in snapshot.questions:
        if not q.draft and (wanted is None or q.id in wanted):
            out[q.id] = {}
    for (qid, person), status in statuses.items():
        if qid in out and status == "done":
            out[qid].setdefault(person, {})
    for label in sorted(snapshot.labels, key=lambda x: x.chunk_id):
        qid, person = label.question_id, label.annotator
        if qid in out:
            out[qid].setdefault(person, {})[label.chunk_id] = label.relevance
    return {qid: dict(sorted(people.items())) for qid, people in out.items() if people}


def export_gold(
    repo: AnnotationRepository, min_relevance: int = 1, *, include_empty: bool = False
) -> list[GoldQuestion]:
    """Each non-draft question's gold, in the order added (read from one snapshot of the store).

    Rules, per chunk labelled on a question: an adjudicated relevance wins; otherwise the grade is
    ``majority_grade`` of the counting annotators' grades (see ``labels_by_question``), an unjudged
    chunk counting as 0. With one annotator that is their labels (the union); with several, a chunk is
    gold only when more than half of them call it at least ``min_relevance`` (with two, both must).
    Gold chunks: grade ≥ ``min_relevance``, highest grade first, then by chunk id. ``spans``: the
    adjudicated span, else the newest label span. ``reference_answer``: the newest non-empty answer of
    a counting annotator. Questions without gold are left out unless ``include_empty``.
    """
    if min_relevance not in (1, 2):
        raise InputError(f"min_relevance must be 1 (partly relevant) or 2 (relevant), got {min_relevance!r}")
    snapshot = repo.snapshot()
    counted = counted_labels(snapshot, None)
    adjudicated: dict[str, dict[str, Adjudication]] = {}
    for decision in snapshot.adjudications:
        adjudicated.setdefault(decision.question_id, {})[decision.chunk_id] = decision
    spans: dict[tuple[str, str], ChunkSpan] = {}
    for label in sorted(snapshot.labels, key=lambda x: x.updated_at):  # the newest span wins
        if label.span is not None:
            spans[(label.question_id, label.chunk_id)] = label.span
    answers = {}
    for answer in sorted(snapshot.answers, key=lambda a: a.updated_at):  # oldest first
        answers.setdefault(answer.question_id, []).append(answer)
    out = []
    for q in snapshot.questions:
        if q.draft:
            continue
        people = counted.get(q.id, {})
        decided = adjudicated.get(q.id, {})
        if not people and not decided:
            continue
        grades = merge_grades(people, decided.values())
        gold = sorted((c for c, g in grades.items() if g >= min_relevance), key=lambda c: (-grades[c], c))
        if not gold and not include_empty:
            continue
        chunk_spans = {c: (decided[c].span if c in decided else None) or spans.get((q.id, c)) for c in gold}
        mine = [a for a in answers.get(q.id, []) if a.annotator in people]
        used = chosen_answer(mine, people)
        out.append(
            GoldQuestion(
                question_id=q.id,
                question=q.question,
                gold_chunk_ids=tuple(gold),
                relevance={c: grades[c] for c in gold},
                spans={c: s for c, s in chunk_spans.items() if s is not None},
                reference_answer=used.reference_answer if used else "",
                annotators=tuple(people),
                adjudicated=tuple(sorted(decided)),
                flagged_by=tuple(sorted(a.annotator for a in answers.get(q.id, []) if a.status == "flagged")),
                tags=q.tags,
                source=q.source,
                answers={a.annotator: a.reference_answer for a in mine},
                answer_by=used.annotator if used else "",
            )
        )
    return out
