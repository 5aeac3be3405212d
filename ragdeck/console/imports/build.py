"""The import: a test collection's eval set (document-level, graded gold), the vector collection built by
the ingest pipeline, the set published as a new version, and a report of what is odd in the collection."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evalsets.publish import check_evalset_name, publish
from ragdeck.console.imports.collection import TestCollection
from ragdeck.console.ingest.documents import Document
from ragdeck.console.ingest.pipeline import IngestReport, Progress
from ragdeck.errors import InputError

MissingGold = Literal["skip", "keep"]
MISSING_GOLD = ("skip", "keep")


@dataclass
class Findings:
    """What an eval set built from a collection leaves out or cannot find (ids in file order)."""

    empty_documents: list[str] = field(default_factory=list)  # no text: not indexed
    queries_without_judgements: list[str] = field(default_factory=list)
    queries_without_relevant: list[str] = field(default_factory=list)  # only grade-0 (or dropped) judgements
    judgements_for_unknown_queries: list[str] = field(default_factory=list)  # qids the queries file lacks
    missing_documents: list[str] = field(default_factory=list)  # judged, not in the corpus
    judged_empty_documents: list[str] = field(default_factory=list)  # judged, in the corpus but empty
    judgements: int = 0
    dropped_judgements: int = 0  # judgements of missing or empty documents left out (--missing-gold skip)


@dataclass
class ImportReport:
    """What an import did: the collection built, the eval set version written, and the findings."""

    source: str
    format: str
    collection: str
    alias: str | None
    eval_set: str
    eval_set_file: str
    version: int
    new_version: bool
    documents: int
    chunks: int
    queries: int
    set_queries: int
    missing_gold: str
    findings: Findings
    redactions: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values; the findings' lists in full."""
        data = {k: v for k, v in self.__dict__.items() if k != "findings"}
        return {**data, "indexed_documents": self.documents - len(self.findings.empty_documents),
                **self.findings.__dict__}  # fmt: skip


def evalset_from(
    collection: TestCollection, name: str, missing_gold: MissingGold = "skip"
) -> tuple[EvalSet, Findings]:
    """The eval set of ``collection``: one record per query with at least one judgement of grade >= 1, its
    gold the judged document ids of grade >= 1 (qrels order), grades other than 1 (0 included) in
    ``relevance``. Judged documents the corpus lacks or that are empty (never indexed) are dropped
    (``missing_gold="skip"``) or kept as unretrievable gold (``"keep"``); a query left with no relevant
    document is not in the set. Findings list every such case."""
    if missing_gold not in MISSING_GOLD:
        raise InputError(f"--missing-gold must be one of {', '.join(MISSING_GOLD)}, got {missing_gold!r}")
    check_evalset_name(name)
    found = Findings(judgements=len(collection.judgements))
    corpus = {d.doc_id for d in collection.documents}
    empty = [d.doc_id for d in collection.documents if not d.text.strip()]
    found.empty_documents = empty
    empty_set = set(empty)
    by_query: dict[str, list[tuple[str, int]]] = {}
    for j in collection.judgements:
        by_query.setdefault(j.qid, []).append((j.doc_id, j.grade))
    judged_docs = list(dict.fromkeys(j.doc_id for j in collection.judgements))
    found.missing_documents = [d for d in judged_docs if d not in corpus]
    found.judged_empty_documents = [d for d in judged_docs if d in empty_set]
    unusable = set(found.missing_documents) | set(found.judged_empty_documents)
    found.judgements_for_unknown_queries = [q for q in by_query if q not in collection.queries]
    records: list[EvalRecord] = []
    for qid, text in collection.queries.items():
        items = by_query.get(qid)
        if not items:
            found.queries_without_judgements.append(qid)
            continue
        if missing_gold == "skip":
            kept = [(d, g) for d, g in items if d not in unusable]
            found.dropped_judgements += len(items) - len(kept)
            items = kept
        gold = [d for d, g in items if g >= 1]
        if not gold:
            found.queries_without_relevant.append(qid)
            continue
        relevance = {d: g for d, g in items if g != 1}
        records.append(EvalRecord(id=qid, question=text, gold_context_ids=gold, relevance=relevance))
    if not records:
        raise InputError(
            f"no query of {collection.source} has a judged relevant document in the corpus "
            f"({len(collection.queries)} queries, {len(collection.judgements)} judgements): check that the "
            "qrels' query and document ids are the ones in the queries and the corpus"
        )
    meta = {"format": "imported", "source": collection.source, "source_format": collection.format}
    return EvalSet(name=name, records=records, meta=meta), found


def import_collection(
    collection: TestCollection,
    *,
    set_name: str,
    sets_dir: Path,
    build: Callable[[Sequence[Document]], IngestReport],
    missing_gold: MissingGold = "skip",
    progress: Progress | None = None,
) -> ImportReport:
    """Build the eval set (every check that needs no embedding first), then the vector collection with
    ``build`` (the ingest pipeline: chunking, journal, alias), then publish the set as a new version of
    ``set_name`` in ``sets_dir`` (the same content as the latest version makes no new one)."""
    started = time.perf_counter()
    evalset, found = evalset_from(collection, set_name, missing_gold)
    ingested = build(collection.documents)
    found.empty_documents = list(ingested.empty_documents)  # what the pipeline left out, after redaction
    if progress:
        progress("evalset", 0, 1)
    note = f"imported from {collection.format} {collection.source}; missing gold: {missing_gold}"
    version, new = publish(evalset, sets_dir, note=note)
    if progress:
        progress("evalset", 1, 1)
    return ImportReport(
        source=collection.source,
        format=collection.format,
        collection=ingested.collection,
        alias=ingested.alias,
        eval_set=set_name,
        eval_set_file=str(Path(sets_dir) / f"{set_name}.jsonl"),
        version=version.version,
        new_version=new,
        documents=len(collection.documents),
        chunks=ingested.chunks,
        queries=len(collection.queries),
        set_queries=len(evalset.records),
        missing_gold=missing_gold,
        findings=found,
        redactions=ingested.redactions,
        seconds={**ingested.seconds, "total": time.perf_counter() - started},
    )
