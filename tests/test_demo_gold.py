"""The shipped demo gold set: valid, answerable on the demo collection, and consistent with its history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragdeck.console.evalsets.io import read_csv, read_jsonl
from ragdeck.console.evalsets.model import validate
from ragdeck.console.evalsets.publish import versions

ROOT = Path(__file__).resolve().parent.parent
EVAL_SETS = ROOT / "ragdeck" / "demo_eval_sets"  # shipped as package data
SOURCES = ROOT / "eval_sets" / "sources"  # how it was made (not shipped)


def test_demo_gold_is_published_with_its_hash() -> None:
    evalset = read_jsonl(EVAL_SETS / "demo_gold.jsonl")
    assert len(evalset.records) >= 40
    assert all(r.reference_answer.strip() and r.gold_spans for r in evalset.records)
    assert versions(EVAL_SETS, "demo_gold")[-1].hash == evalset.content_hash()
    assert [r.question for r in read_csv(EVAL_SETS / "demo_gold.csv").records] == [
        r.question for r in evalset.records
    ]
    sources = [json.loads(line) for line in (SOURCES / "demo_gold_questions.jsonl").open()]
    assert {s["question"] for s in sources} == {r.question for r in evalset.records}


@pytest.mark.slow
def test_every_gold_id_and_span_exists_in_the_demo_collection(demo_snapshot: Path) -> None:
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    with EmbeddedQdrantStore(demo_snapshot / "qdrant") as store:
        points = {p.id: p.payload for p in store.iter_points("rag_chunks")}
    evalset = read_jsonl(EVAL_SETS / "demo_gold.jsonl")
    assert validate(evalset, set(points)) == []
    for record in evalset.records:
        for span in record.gold_spans:
            chunk = points[span.chunk_id]
            assert (chunk["doc_id"], chunk["start"], chunk["end"]) == (span.doc_id, span.start, span.end)
