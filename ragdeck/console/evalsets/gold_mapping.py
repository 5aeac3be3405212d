"""Gold that survives re-chunking: map an eval set's gold to another collection's chunks by source span.

Every chunk keeps its source span (``doc_id``, ``start``, ``end`` in its payload). A gold chunk id of the
collection a set was labelled on is turned into its span (from the record's ``gold_spans`` or by looking the
chunk up in that collection); each span is then matched to the target collection's chunks of the same
document. A target chunk counts as gold for a span when it covers at least ``min_coverage`` of the span, or
when the span covers at least ``min_coverage`` of the chunk (a small gold passage inside a large chunk, or a
large gold chunk split into small ones). Document-level gold ids need no mapping and are kept as they are.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field, replace

from ragdeck.console.evalsets.model import EvalRecord, EvalSet, GoldSpan, is_chunk_id
from ragdeck.console.interfaces import VectorSearch

MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk of a collection came from."""

    chunk_id: str
    doc_id: str
    start: int
    end: int


@dataclass
class SpanIndex:
    """The chunks of one collection by document, sorted by start offset."""

    by_doc: dict[str, list[ChunkSpan]]
    by_id: dict[str, ChunkSpan]
    starts: dict[str, list[int]] = field(default_factory=dict)  # by_doc's start offsets, for bisect

    def __post_init__(self) -> None:
        self.starts = {doc: [c.start for c in chunks] for doc, chunks in self.by_doc.items()}

    @classmethod
    def of(cls, spans: list[ChunkSpan]) -> SpanIndex:
        """Index chunk spans (spans without offsets are left out)."""
        by_doc: dict[str, list[ChunkSpan]] = defaultdict(list)
        for span in spans:
            by_doc[span.doc_id].append(span)
        for chunks in by_doc.values():
            chunks.sort(key=lambda s: (s.start, s.end))
        return cls(dict(by_doc), {s.chunk_id: s for s in spans})

    @classmethod
    def from_store(cls, store: VectorSearch, collection: str) -> SpanIndex:
        """Read every chunk's span from a collection (or alias) of the vector store."""
        spans = []
        for point in store.iter_points(collection):
            payload = point.payload
            start, end = payload.get("start"), payload.get("end")
            if isinstance(start, int) and isinstance(end, int) and end > start:
                spans.append(ChunkSpan(point.id, str(payload.get("doc_id", "")), start, end))
        return cls.of(spans)

    def overlapping(self, doc_id: str, start: int, end: int) -> list[tuple[ChunkSpan, int]]:
        """Chunks of ``doc_id`` overlapping [start, end), with the overlap in characters."""
        chunks = self.by_doc.get(doc_id, [])
        # Chunks are at most a few thousand characters: scan from the first that could reach ``start``.
        first = bisect.bisect_left(self.starts.get(doc_id, []), start - 100_000)
        hits = []
        for chunk in chunks[first:]:
            if chunk.start >= end:
                break
            overlap = min(end, chunk.end) - max(start, chunk.start)
            if overlap > 0:
                hits.append((chunk, overlap))
        return hits


@dataclass
class MappingReport:
    """The mapped set and what could not be mapped (record id -> gold ids or spans that found no chunk)."""

    evalset: EvalSet
    mapped: int = 0
    kept_document_ids: int = 0
    unmapped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every gold id and span found a chunk."""
        return not self.unmapped


def spans_of(record: EvalRecord, source: SpanIndex | None) -> tuple[list[GoldSpan], list[str]]:
    """The record's gold as spans: its own ``gold_spans``, plus the spans of gold chunk ids found in
    ``source``; and the chunk ids that have neither (they cannot be mapped)."""
    spans = list(record.gold_spans)
    covered = {s.chunk_id for s in spans if s.chunk_id}
    missing = []
    for gold in record.gold_context_ids:
        if not is_chunk_id(gold) or gold in covered:
            continue
        chunk = source.by_id.get(gold) if source else None
        if chunk is None:
            missing.append(gold)
        else:
            spans.append(GoldSpan(chunk.doc_id, chunk.start, chunk.end, gold))
    return spans, missing


def map_span(span: GoldSpan, target: SpanIndex, min_coverage: float = MIN_COVERAGE) -> list[str]:
    """Target chunk ids that are gold for ``span`` (see the module docstring for the rule), best first."""
    length = span.end - span.start
    kept = []
    for chunk, overlap in target.overlapping(span.doc_id, span.start, span.end):
        of_span = overlap / length if length > 0 else 0.0
        of_chunk = overlap / (chunk.end - chunk.start)
        if max(of_span, of_chunk) >= min_coverage:
            kept.append((-max(of_span, of_chunk), chunk.chunk_id))
    return [chunk_id for _, chunk_id in sorted(kept)]


def map_evalset(
    evalset: EvalSet,
    target: SpanIndex,
    source: SpanIndex | None = None,
    *,
    min_coverage: float = MIN_COVERAGE,
) -> MappingReport:
    """``evalset`` with each record's chunk-level gold replaced by the target collection's chunks.

    Graded relevance follows the span: a target chunk takes the highest grade among the gold it maps from.
    Records keep their spans (with the target chunk ids) so the result can be mapped again.
    """
    report = MappingReport(evalset=evalset)
    records = []
    for record in evalset.records:
        spans, missing = spans_of(record, source)
        gold: list[str] = [g for g in record.gold_context_ids if not is_chunk_id(g)]
        report.kept_document_ids += len(gold)
        relevance: dict[str, int] = {g: record.relevance[g] for g in gold if g in record.relevance}
        new_spans = []
        lost = [f"{m} (no span)" for m in missing]
        for span in spans:
            targets = map_span(span, target, min_coverage)
            if not targets:
                lost.append(f"{span.chunk_id or span.doc_id}[{span.start}:{span.end}]")
                continue
            grade = record.relevance.get(span.chunk_id or "", 1)
            for chunk_id in targets:
                if chunk_id not in gold:
                    gold.append(chunk_id)
                relevance[chunk_id] = max(relevance.get(chunk_id, 0), grade)
            new_spans.append(replace(span, chunk_id=targets[0]))
            report.mapped += 1
        if lost:
            report.unmapped[record.id] = lost
        records.append(
            replace(
                record,
                gold_context_ids=gold,
                gold_spans=new_spans,
                relevance={k: v for k, v in relevance.items() if v != 1 or k in record.relevance},
            )
        )
    report.evalset = replace(evalset, records=records)
    return report
