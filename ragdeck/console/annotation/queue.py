"""Who labels what: each annotator's queue and progress, assignments, and the overlap sample that gives
some questions to several annotators so their agreement can be measured."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from ragdeck.console.annotation.checks import check_name
from ragdeck.console.annotation.ports import AnnotationRepository
from ragdeck.console.annotation.records import OverlapPlan, Progress, Question
from ragdeck.errors import InputError

__all__ = ["assign", "overlap_sample", "plan_overlap", "progress", "queue"]

_FINISHED = ("done", "skipped", "flagged")


def progress(repo: AnnotationRepository, annotator: str) -> Progress:
    """How far ``annotator`` is: counts over the non-draft questions."""
    counted = {q.id for q in repo.questions(include_drafts=False)}
    statuses = {
        a.question_id: a.status for a in repo.answers(annotator=annotator) if a.question_id in counted
    }
    labelled = {x.question_id for x in repo.labels(annotator=annotator) if x.question_id in counted}
    assigned = [qid for qid in repo.assignments(annotator) if qid in counted]
    done, skipped, flagged = (sum(s == status for s in statuses.values()) for status in _FINISHED)
    return Progress(
        annotator=annotator,
        total=len(counted),
        done=done,
        skipped=skipped,
        flagged=flagged,
        open=len(counted) - done - skipped - flagged,
        labelled=len(labelled),
        assigned=len(assigned),
        assigned_open=sum(statuses.get(qid, "open") == "open" for qid in assigned),
    )


def queue(
    repo: AnnotationRepository, annotator: str, limit: int | None = None, *, include_drafts: bool = False
) -> list[Question]:
    """The questions still open for ``annotator`` (no status yet, or "open"), next first.

    Order: questions assigned to them; then questions assigned to nobody and done by nobody; then the
    rest (assigned to others, or already done by someone); each group in the order added. Drafts only
    with ``include_drafts`` (for reviewing generated questions).
    """
    answers = repo.answers()
    mine = {a.question_id: a.status for a in answers if a.annotator == annotator}
    done_by_someone = {a.question_id for a in answers if a.status == "done"}
    assigned = repo.assignments()

    def group(question: Question) -> int:
        if annotator in assigned.get(question.id, ()):
            return 0
        if question.id not in assigned and question.id not in done_by_someone:
            return 1
        return 2

    open_ = [q for q in repo.questions(include_drafts=include_drafts) if mine.get(q.id, "open") == "open"]
    ordered = sorted(open_, key=group)  # stable: each group keeps the order added
    return ordered if limit is None else ordered[: max(0, limit)]


def assign(
    repo: AnnotationRepository,
    question_ids: Iterable[str],
    annotators: Iterable[str],
    *,
    actor: str = "system",
) -> int:
    """Assign every question to every annotator (kept if already assigned); returns how many are new."""
    qids = list(dict.fromkeys(question_ids))
    people = list(dict.fromkeys(check_name(a, "annotator") for a in annotators))
    actor = check_name(actor, "actor")
    _require_questions(repo, qids)
    return repo.add_assignments([(qid, person) for qid in qids for person in people], actor)


def plan_overlap(
    question_ids: Iterable[str],
    annotators: Iterable[str],
    k: int = 2,
    fraction: float = 0.2,
    seed: int | str = 0,
    *,
    assign_rest: bool = True,
) -> OverlapPlan:
    """The overlap plan of ``overlap_sample``, computed without storing it (see there for the rules)."""
    qids = sorted(set(question_ids))
    people = sorted({check_name(a, "annotator") for a in annotators})
    if not people:
        raise InputError("overlap_sample needs at least one annotator")
    if not isinstance(k, int) or not 1 <= k <= len(people):
        raise InputError(f"k must be between 1 and the number of annotators ({len(people)}), got {k!r}")
    if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction must be in [0, 1], got {fraction!r}")
    rng = random.Random(seed)
    overlap = rng.sample(qids, math.floor(fraction * len(qids) + 0.5))
    order = people[:]
    rng.shuffle(order)
    rank = {person: i for i, person in enumerate(order)}
    load = dict.fromkeys(people, 0)
    plan: dict[str, list[str]] = {person: [] for person in people}
    chosen = set(overlap)
    rest = [q for q in qids if q not in chosen] if assign_rest else []
    for qid, count in [(q, k) for q in overlap] + [(q, 1) for q in rest]:
        for person in sorted(people, key=lambda p: (load[p], rank[p]))[:count]:
            plan[person].append(qid)
            load[person] += 1
    return OverlapPlan(tuple(sorted(overlap)), {p: tuple(sorted(q)) for p, q in plan.items()})


def overlap_sample(
    repo: AnnotationRepository,
    question_ids: Iterable[str],
    annotators: Iterable[str],
    k: int = 2,
    fraction: float = 0.2,
    seed: int | str = 0,
    *,
    assign_rest: bool = True,
    actor: str = "system",
) -> OverlapPlan:
    """Assign round(fraction × n) of the questions to ``k`` annotators each, the rest to one each.

    The overlap questions are drawn with ``random.Random(seed)`` from the sorted ids, and each question
    goes to the least-loaded annotators (ties broken by a seeded order), so loads differ by at most one
    and the same ids, annotators and seed always give the same plan, whatever their input order.
    ``assign_rest=False`` leaves the other questions unassigned. Existing assignments are kept.
    """
    qids = sorted(set(question_ids))
    plan = plan_overlap(qids, annotators, k, fraction, seed, assign_rest=assign_rest)
    actor = check_name(actor, "actor")
    _require_questions(repo, qids)
    pairs = [(qid, person) for person, assigned in plan.assignments.items() for qid in assigned]
    repo.add_assignments(pairs, actor, action="overlap_sample")
    return plan


def _require_questions(repo: AnnotationRepository, question_ids: Iterable[str]) -> None:
    """InputError naming the first unknown question id, before anything is written."""
    known = {q.id for q in repo.questions()}
    for qid in question_ids:
        if qid not in known:
            repo.question(qid)  # raises the store's "unknown question id" InputError
