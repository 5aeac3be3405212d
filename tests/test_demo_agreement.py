"""The second annotator's overlap sample of the demo gold set and the agreement figures recorded for it."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from ragdeck.console.annotation.agreement import overall_agreement
from ragdeck.console.evalsets.io import read_jsonl

SOURCES = Path(__file__).resolve().parent.parent / "eval_sets" / "sources"


def _load_script():
    spec = importlib.util.spec_from_file_location("demo_agreement", SOURCES / "demo_agreement.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


agreement_script = _load_script()


def test_the_sample_is_the_seeded_draw_and_every_pair_is_graded() -> None:
    records = {r.id: r for r in read_jsonl(agreement_script.GOLD).records}
    pairs = agreement_script.read_annotator_b()
    by_question: dict[str, list[str]] = {}
    for pair in pairs:
        assert set(pair) == {"record_id", "question", "chunk_id", "grade", "note"}
        assert pair["question"] == records[pair["record_id"]].question
        assert pair["grade"] in (0, 1, 2)
        assert bool(pair["note"].strip()) == (pair["grade"] >= 1)
        by_question.setdefault(pair["record_id"], []).append(pair["chunk_id"])
    assert sorted(by_question) == agreement_script.sample_ids(list(records))
    assert len(by_question) == agreement_script.SAMPLE_SIZE
    for chunks in by_question.values():
        assert len(chunks) == len(set(chunks)) == agreement_script.POOL_DEPTH


def test_the_figures_are_the_recorded_ones() -> None:
    figures = agreement_script.compute()
    assert figures.values.keys() == agreement_script.RECORDED.keys()
    for name, recorded in agreement_script.RECORDED.items():
        assert math.isclose(figures.values[name], recorded, rel_tol=0, abs_tol=1e-9), name
    assert len(figures.per_question) == agreement_script.SAMPLE_SIZE
    table = agreement_script.markdown(figures)
    assert "| Cohen's kappa, 3-level |" in table and "q-fbb716719b79" in table


def test_both_annotators_grade_the_same_pool_on_the_same_scale() -> None:
    labels, outside = agreement_script.labels_on_pool()
    records = {r.id: r for r in read_jsonl(agreement_script.GOLD).records}
    b_name = agreement_script.ANNOTATOR_B
    for qid, people in labels.items():
        a, b = people[agreement_script.ANNOTATOR_A], people[b_name]
        assert list(a) == list(b)
        assert all(a[c] == records[qid].grade(c) for c in a)
    missing = [c for qid in labels for c in records[qid].gold_context_ids if c not in labels[qid][b_name]]
    assert outside == len(missing)


def test_the_store_holds_the_same_comparison(tmp_path: Path) -> None:
    from ragdeck.console import annotation
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    state = tmp_path / "state.sqlite3"
    assert agreement_script.save_to_store(state) == 2 * agreement_script.RECORDED["n_pairs"]
    agreement_script.save_to_store(state)  # again: nothing doubles
    result = overall_agreement(annotation.labels_by_question(SqliteAnnotationStore(state)), level="ordinal")
    recorded = agreement_script.RECORDED
    assert (result.n_questions, result.n_items) == (recorded["n_questions"], recorded["n_pairs"])
    assert math.isclose(result.kappa, recorded["kappa_3"], rel_tol=0, abs_tol=1e-9)
    assert math.isclose(result.alpha, recorded["alpha_3_ordinal"], rel_tol=0, abs_tol=1e-9)
    assert math.isclose(result.mean_jaccard, recorded["mean_jaccard"], rel_tol=0, abs_tol=1e-9)


@pytest.mark.slow
def test_every_judged_chunk_exists_in_the_demo_collection(demo_snapshot: Path) -> None:
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

    with EmbeddedQdrantStore(demo_snapshot / "qdrant") as store:
        ids = {p.id for p in store.iter_points("rag_chunks")}
    judged = {p["chunk_id"] for p in agreement_script.read_annotator_b()}
    assert judged - ids == set()
