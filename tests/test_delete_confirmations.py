"""Deletes on the pages are deliberate (AppTest, real stores): the page says what goes and the button waits
for a ticked box; a kept HNSW sweep's discard and an interrupted rebuild's clean-up are audited."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hnsw_data import build_collection
from index_helpers import small_corpus, small_evalset
from pages import open_page
from test_index_ops_page import HeldEmbedder

from ragdeck.console import audit, hnsw
from ragdeck.console.evalsets.io import write_jsonl
from ragdeck.console.hnsw.saved import SweepRecorder
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.roles import os_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_sweep_log
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_discarding_a_kept_sweep_needs_the_tick_and_is_audited(data_dir: Path) -> None:
    with build_collection(data_dir / "qdrant", n=400) as store:
        queries = hnsw.sample_queries(hnsw.StoredVectors.read(store, "vecs"), 10, seed=3)
        grid = hnsw.Grid.of((4, 16), (32,), (16,))
        recorder = SweepRecorder.begin(
            build_sweep_log(Settings()), store, "sweep-1", "vecs", queries, grid, 10
        )
        cancel = threading.Event()
        cancel.set()  # cancelled before its first configuration: partial, resumable
        recorder.end(hnsw.run_sweep(store, "vecs", queries, ms=grid.ms, ef_constructs=grid.ef_constructs,
                                    efs=grid.efs, cancel=cancel, on_row=recorder.row))  # fmt: skip

    at = open_page("tune")
    assert any("Deletes sweep sweep-1 for good" in c.value and "of vecs" in c.value for c in at.caption)
    assert _button(at, "Discard").disabled
    assert [row["sweep_id"] for row in build_sweep_log(Settings()).sweeps()] == ["sweep-1"]
    at.checkbox(key="discard-sure-sweep-1").check().run()
    _button(at, "Discard").click().run()
    assert not at.exception, at.exception
    assert build_sweep_log(Settings()).sweeps() == []
    (entry,) = audit.entries(action="hnsw.sweep.discard", log=build_audit_log(Settings()))
    assert (entry.actor, entry.target, entry.before["sweep"]) == (os_user(), "collection:vecs", "sweep-1")


@pytest.fixture
def small_stack(data_dir: Path, tmp_path: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """v1 of a small corpus live behind rag_chunks; a rebuild's embedder holds its second batch."""
    corpus = small_corpus(tmp_path / "corpus")
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    write_jsonl(small_evalset(), Path("eval_sets") / "small.jsonl")
    return corpus


def test_cleaning_up_an_interrupted_rebuild_needs_the_tick(
    small_stack: Path, local_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragdeck.console.wiring as wiring
    import ragdeck.ui as ui

    held = HeldEmbedder(local_embedder)
    monkeypatch.setattr(wiring, "build_embedder", lambda settings: held)
    monkeypatch.setenv("RAGDECK_EMBED_BATCH_SIZE", "4")
    at = open_page("index_ops")
    next(t for t in at.text_input if t.label == "Corpus folder").input(str(small_stack))
    next(b for b in at.button if b.label == "Rebuild").click().run()
    job = ui.get_jobs().get("index.rebuild:rag_chunks")
    assert job is not None and held.held.wait(120)
    at.run()
    assert _button(at, "Rebuilding…").disabled  # the button follows the job
    job.cancel.set()
    held.release.set()
    assert job.wait(300)
    at.run()
    assert _button(at, "Rebuild").disabled is False
    assert any("Deletes rag_chunks_v2's partial points for good" in c.value for c in at.caption)
    clean = _button(at, "Clean up rag_chunks_v2")
    assert clean.disabled
    at.checkbox(key="cleanup-sure-rag_chunks_v2").check().run()
    _button(at, "Clean up rag_chunks_v2").click().run()
    assert not at.exception, at.exception
    assert "Cleaned up rag_chunks_v2." in at.success[0].value
    (entry,) = audit.entries(action="index.rebuild.cleanup", log=build_audit_log(Settings()))
    assert entry.target == "rag_chunks_v2" and entry.after == {"status": "abandoned"}
    with EmbeddedQdrantStore(Settings().qdrant_dir) as store:
        assert not store.collection_exists("rag_chunks_v2")
