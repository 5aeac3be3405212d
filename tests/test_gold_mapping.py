"""Gold labelled on one chunking, mapped by source span onto a collection built with another chunking."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdeck.console.evalsets.gold_mapping import ChunkSpan, SpanIndex, map_evalset, map_span
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, GoldSpan
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.demo import DEMO_CORPUS
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

CORPUS = DEMO_CORPUS / "tei"


@pytest.fixture(scope="module")
def two_chunkings(tmp_path_factory: pytest.TempPathFactory, local_embedder):
    root = tmp_path_factory.mktemp("mapping") / "qdrant"
    with EmbeddedQdrantStore(root) as store:
        ingest(CORPUS, store, local_embedder, collection="coarse")
        ingest(CORPUS, store, local_embedder, collection="fine", chunking=ChunkingConfig(300, 700, 0.1))
        yield store, SpanIndex.from_store(store, "coarse"), SpanIndex.from_store(store, "fine")


def body_text(store: EmbeddedQdrantStore, collection: str, chunk_id: str) -> str:
    [point] = store.retrieve(collection, [chunk_id])
    return str(point.payload["body"])


def test_every_gold_chunk_maps_onto_the_other_chunking(two_chunkings) -> None:
    store, coarse, fine = two_chunkings
    gold = sorted(coarse.by_id)[::5][:12]
    records = [
        EvalRecord(id=f"q{i}", question=f"question {i}?", gold_context_ids=[g], relevance={g: 2})
        for i, g in enumerate(gold)
    ]
    report = map_evalset(EvalSet("demo", records), fine, coarse)
    assert report.complete and report.mapped == len(gold)
    for before, after in zip(records, report.evalset.records, strict=True):
        [source] = before.gold_context_ids
        src = coarse.by_id[source]
        assert after.gold_context_ids, source
        for chunk_id in after.gold_context_ids:
            target = fine.by_id[chunk_id]
            assert target.doc_id == src.doc_id
            assert min(src.end, target.end) > max(src.start, target.start)  # they overlap
            assert after.relevance[chunk_id] == 2  # the grade follows the span
        # most of the coarse gold chunk's characters lie in the fine chunks it maps to
        covered = set()
        for chunk_id in after.gold_context_ids:
            target = fine.by_id[chunk_id]
            covered |= set(range(max(src.start, target.start), min(src.end, target.end)))
        assert len(covered) >= 0.5 * (src.end - src.start)
        # and the text agrees: the fine chunks hold words of the coarse chunk's middle
        middle = body_text(store, "coarse", source).split()
        mapped = " ".join(" ".join(body_text(store, "fine", c).split()) for c in after.gold_context_ids)
        probe = " ".join(middle[len(middle) // 2 : len(middle) // 2 + 4])
        assert probe in mapped


def test_unmappable_gold_is_reported_and_document_ids_are_kept(two_chunkings) -> None:
    _, coarse, fine = two_chunkings
    doc_id = next(iter(fine.by_doc))
    record = EvalRecord(
        id="q1",
        question="Where?",
        gold_context_ids=["tei/docs/nowhere#intro:0", doc_id],
        gold_spans=[GoldSpan("tei/docs/gone", 0, 50)],
    )
    report = map_evalset(EvalSet("s", [record]), fine, coarse)
    assert not report.complete
    assert report.unmapped["q1"] == ["tei/docs/nowhere#intro:0 (no span)", "tei/docs/gone[0:50]"]
    assert report.evalset.records[0].gold_context_ids == [doc_id]
    assert report.kept_document_ids == 1


def test_coverage_rule_on_hand_made_spans() -> None:
    index = SpanIndex.of(
        [
            ChunkSpan("d#a:0", "d", 0, 1000),
            ChunkSpan("d#a:1", "d", 900, 2000),
            ChunkSpan("d#a:2", "d", 1900, 3000),
        ]
    )
    assert map_span(GoldSpan("d", 100, 200), index) == ["d#a:0"]  # small passage inside one chunk
    assert map_span(GoldSpan("d", 0, 3000), index) == ["d#a:0", "d#a:1", "d#a:2"]  # large gold split up
    assert map_span(GoldSpan("d", 950, 1000), index) == ["d#a:0", "d#a:1"]  # on an overlap: both
    assert map_span(GoldSpan("e", 0, 10), index) == []


def test_spans_survive_a_round_trip_through_jsonl(two_chunkings, tmp_path: Path) -> None:
    from ragdeck.console.evalsets.io import read_jsonl, write_jsonl

    _, coarse, fine = two_chunkings
    gold = sorted(coarse.by_id)[3]
    report = map_evalset(EvalSet("s", [EvalRecord("q", "What?", [gold])]), fine, coarse)
    write_jsonl(report.evalset, tmp_path / "s.jsonl")
    again = read_jsonl(tmp_path / "s.jsonl")
    assert again.records[0].gold_spans == report.evalset.records[0].gold_spans
    assert map_evalset(again, coarse).evalset.records[0].gold_context_ids[0] == gold  # and back
