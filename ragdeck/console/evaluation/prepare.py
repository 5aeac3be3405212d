"""An eval set made ready to score on one collection: which of the ids it names the collection holds, gold
mapped by span when the set was labelled on another chunking, gold the collection lacks handled as the user
chose (``missing``), and each record's judgements (qrels).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ragdeck.console.evalsets.gold_mapping import SpanIndex, map_evalset
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, EvalSetProblems, doc_id_of, is_chunk_id
from ragdeck.console.evalsets.model import validate as validate_set
from ragdeck.console.evaluation.missing import (
    DEFAULT_MISSING_GOLD,
    MissingGold,
    drop_missing,
    find_missing,
    refuse,
)
from ragdeck.console.interfaces import VectorSearch


@dataclass
class CollectionIds:
    """What a collection holds of the ids an eval set names: chunk ids and document ids."""

    chunk_ids: set[str]
    doc_ids: set[str]

    @classmethod
    def of(cls, evalset: EvalSet, store: VectorSearch, collection: str) -> CollectionIds:
        """Look up only the ids the set names: its chunk ids by id, its documents by a one-point filtered
        search each. Costs a few milliseconds per document whatever the collection's size (no scroll)."""
        chunks: set[str] = set()
        docs: set[str] = set()
        for record in evalset.records:
            named = [
                *record.gold_context_ids,
                *record.relevance,
                *(s.chunk_id or "" for s in record.gold_spans),
            ]
            chunks.update(g for g in named if is_chunk_id(g))
            docs.update(g for g in named if g and not is_chunk_id(g))
            docs.update(s.doc_id for s in record.gold_spans)
        ordered = sorted(chunks)
        found: set[str] = set()
        for i in range(0, len(ordered), 256):
            found.update(p.id for p in store.retrieve(collection, ordered[i : i + 256]))
        confirmed = {doc_id_of(c) for c in found}
        docs |= {doc_id_of(c) for c in chunks - found}  # hints for missing chunks
        probe = [1.0] + [0.0] * (store.collection_info(collection).dimension - 1)
        present = confirmed | {
            d
            for d in sorted(docs - confirmed)
            if store.search(collection, probe, 1, payload_filter={"doc_id": d})
        }
        return cls(found, present)


def prepare_set(
    evalset: EvalSet, store: VectorSearch, collection: str, missing_gold: str = DEFAULT_MISSING_GOLD
) -> tuple[EvalSet, list[str], MissingGold]:
    """The set ready to score on ``collection``, notes on what was done to it, and the gold it lacks.

    A set with malformed records raises ``EvalSetProblems``. Gold chunk ids the collection does not have
    are mapped by their gold spans (the set was labelled on another chunking); gold that still names
    nothing in the collection is handled by ``missing_gold`` (``missing``: ``fail`` raises
    ``EvalSetProblems`` listing every id, ``skip`` drops them, ``keep`` keeps them), before the run starts.
    """
    problems = validate_set(evalset)
    if problems:
        raise EvalSetProblems(problems, evalset.file or evalset.name)
    known = CollectionIds.of(evalset, store, collection)
    missing = find_missing(evalset, known.chunk_ids, known.doc_ids, collection, missing_gold)
    notes: list[str] = []
    if missing.by_query and all(r.gold_spans for r in evalset.records):
        report = map_evalset(evalset, SpanIndex.from_store(store, collection))
        mapped = replace(report.evalset, source_lines=evalset.source_lines, file=evalset.file)
        known = CollectionIds.of(mapped, store, collection)
        remaining = find_missing(mapped, known.chunk_ids, known.doc_ids, collection, missing_gold)
        if report.complete and not remaining.by_query:
            notes.append(
                f"gold mapped onto {collection}'s chunks by span overlap ({report.mapped} spans): the set "
                "was labelled on another chunking"
            )
            return mapped, notes + remaining.notes(), remaining
    if missing.by_query and missing.choice == "fail":
        raise refuse(missing, evalset)
    if missing.choice == "skip" and (missing.by_query or missing.not_relevant):
        evalset = drop_missing(evalset, missing)
    return evalset, notes + missing.notes(), missing


def qrels_of(record: EvalRecord) -> dict[str, int]:
    """A record's judgements: every gold and graded id with its grade (grade-0 entries kept)."""
    ids = dict.fromkeys([*record.gold_context_ids, *record.relevance])
    return {i: record.grade(i) for i in ids}
