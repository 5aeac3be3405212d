"""Gold the collection lacks: found before a run starts, listed with counts, and handled as the user chose.

A gold id (grade >= 1) that names no chunk or document of the collection can never be retrieved. What to do
with it is ``--missing-gold`` (``MISSING_GOLD``):

- ``fail`` (the default) refuses the run and lists every such id, naming the other two choices;
- ``skip`` drops those ids from the gold; queries left with no relevant gold are excluded from the run and
  listed;
- ``keep`` scores the set as it is: the ids count in each query's number of relevant ids (recall's
  denominator) and are never found, as trec_eval and ranx count judged documents a run never returned.

Why ``fail`` by default: a missing id is far more often a mistake (the wrong collection or alias, a set
labelled on another chunking, a typo) than a deliberate judgement, and both other choices change the numbers
silently (``keep`` lowers them, ``skip`` scores another set). Refusing, with the list and the two flags in
the message, costs one re-run when the ids are expected, as with a public test collection whose qrels name
documents its corpus lacks. The choice and the default are written into the run (``MissingGold.to_json``).
Ids judged not relevant (grade 0) that the collection lacks change no metric; they are counted, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ragdeck.console.evalsets.model import EvalSet, EvalSetProblems, Problem, is_chunk_id
from ragdeck.errors import InputError

MISSING_GOLD = ("fail", "skip", "keep")
DEFAULT_MISSING_GOLD = "fail"
LISTED = 20  # queries spelled out in a note


def check_choice(choice: str) -> str:
    """``choice`` when it is one of ``MISSING_GOLD``; InputError naming them otherwise."""
    if choice not in MISSING_GOLD:
        raise InputError(f"missing gold must be one of {', '.join(MISSING_GOLD)}, got {choice!r}")
    return choice


@dataclass
class MissingGold:
    """What a set names that the collection lacks: per query, its relevant ids (``by_query``) and its
    grade-0 ids (``not_relevant``); ``excluded`` the queries ``skip`` left without gold."""

    collection: str
    choice: str = DEFAULT_MISSING_GOLD
    by_query: dict[str, list[str]] = field(default_factory=dict)
    not_relevant: dict[str, list[str]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    gold_ids: int = 0  # relevant ids the set names, all queries together

    @property
    def count(self) -> int:
        """Relevant ids the collection lacks, all queries together."""
        return sum(map(len, self.by_query.values()))

    def summary(self) -> str:
        """One line with the counts: "3 of 120 gold ids (in 2 of 40 queries) are not in collection 'x'"."""
        return (
            f"{self.count} of {self.gold_ids} gold ids (in {len(self.by_query)} queries) are not in "
            f"collection {self.collection!r}"
        )

    def notes(self) -> list[str]:
        """What the run says about it, for its header (empty when nothing is missing)."""
        notes = []
        if self.by_query:
            listed = "; ".join(
                f"{q}: {', '.join(ids)}" for q, ids in list(self.by_query.items())[:LISTED]
            ) + (f"; … and {len(self.by_query) - LISTED} more queries" if len(self.by_query) > LISTED else "")
            done = {
                "skip": "dropped from the gold",
                "keep": "kept as never retrievable (they count in recall's denominator)",
                "fail": "refused",
            }[self.choice]
            notes.append(f"missing gold ({self.choice}): {self.summary()}, {done}: {listed}")
        if self.excluded:
            notes.append(
                f"missing gold (skip): {len(self.excluded)} queries had no gold left and are excluded: "
                + ", ".join(self.excluded[:LISTED])
                + (f" … and {len(self.excluded) - LISTED} more" if len(self.excluded) > LISTED else "")
            )
        ignored = sum(map(len, self.not_relevant.values()))
        if ignored:
            notes.append(
                f"{ignored} ids judged not relevant (grade 0) are not in collection {self.collection!r}: "
                "they change no metric"
            )
        return notes

    def to_json(self) -> dict[str, Any]:
        """What the run records: the choice, the default, the counts and every id by query."""
        return {
            "choice": self.choice,
            "default": DEFAULT_MISSING_GOLD,
            "gold_ids": self.gold_ids,
            "missing": self.count,
            "queries": dict(self.by_query),
            "excluded_queries": list(self.excluded),
            "not_relevant_missing": sum(map(len, self.not_relevant.values())),
        }


def find_missing(
    evalset: EvalSet, chunk_ids: set[str], doc_ids: set[str], collection: str, choice: str
) -> MissingGold:
    """Every judged id of ``evalset`` that names nothing in the collection (chunk ids looked up in
    ``chunk_ids``, document ids in ``doc_ids``), by query and grade."""
    found = MissingGold(collection, check_choice(choice))
    for record in evalset.records:
        judged = dict.fromkeys([*record.gold_context_ids, *record.relevance])
        for gold_id in judged:
            grade = record.grade(gold_id)
            found.gold_ids += grade >= 1
            known = gold_id in chunk_ids if is_chunk_id(gold_id) else gold_id in doc_ids
            if not known:
                target = found.by_query if grade >= 1 else found.not_relevant
                target.setdefault(record.id, []).append(gold_id)
    return found


def refuse(missing: MissingGold, evalset: EvalSet) -> EvalSetProblems:
    """The ``fail`` error: every missing gold id at its line and field, and the way on."""
    problems = []
    for record in evalset.records:
        for gold_id in missing.by_query.get(record.id, []):
            name = (
                f"gold_context_ids[{record.gold_context_ids.index(gold_id)}]"
                if gold_id in record.gold_context_ids
                else f"relevance[{gold_id!r}]"
            )
            what = "chunk" if is_chunk_id(gold_id) else "document"
            message = f"{what} id {gold_id!r} is not in collection {missing.collection!r}"
            line = evalset.gold_lines.get((record.id, gold_id), evalset.source_lines.get(record.id))
            problems.append(Problem(line, name, message))  # a qrels judgement at its own line
    error = EvalSetProblems(problems, evalset.file or evalset.name)
    error.args = (
        f"{missing.summary()}: evaluate with --missing-gold skip (drop them; queries left without gold are "
        "excluded) or --missing-gold keep (count them as never retrieved), or search the collection the set "
        f"was labelled on\n{error}",
    )
    return error


def drop_missing(evalset: EvalSet, missing: MissingGold) -> EvalSet:
    """``skip``: the set without the ids the collection lacks (and the spans naming them); queries left
    without relevant gold are excluded (recorded in ``missing.excluded``). InputError when none is left."""
    records = []
    for record in evalset.records:
        gone = set(missing.by_query.get(record.id, [])) | set(missing.not_relevant.get(record.id, []))
        if not gone:
            records.append(record)
            continue
        kept = replace(
            record,
            gold_context_ids=[g for g in record.gold_context_ids if g not in gone],
            relevance={g: v for g, v in record.relevance.items() if g not in gone},
            gold_spans=[s for s in record.gold_spans if s.chunk_id not in gone and s.doc_id not in gone],
        )
        ids = dict.fromkeys([*kept.gold_context_ids, *kept.relevance])
        if any(kept.grade(g) >= 1 for g in ids):
            records.append(kept)
        else:
            missing.excluded.append(record.id)
    if not records:
        raise InputError(
            f"{missing.summary()}: with --missing-gold skip no query keeps any gold, so there is nothing to "
            "evaluate; search the collection the set was labelled on"
        )
    return replace(evalset, records=records, source_lines=evalset.source_lines)
