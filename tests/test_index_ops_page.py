"""The Index Ops page in AppTest: rebuild, gate, swap and roll back as an operator; an engineer's swap is
refused on the page and audited (issue 8, reliability 4). A rebuild and a gate run as background jobs: the
page shows a rebuild's progress, cancels it (the shadow kept, interrupted) and resumes it (issue 17)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from index_helpers import small_corpus, small_evalset
from pages import open_page

from ragdeck.console import audit
from ragdeck.console.evalsets.io import write_jsonl
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.roles import os_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


@pytest.fixture
def small_stack(data_dir: Path, tmp_path: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """v1 of a small corpus live behind rag_chunks, an eval set published for it; returns the corpus."""
    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    corpus = small_corpus(tmp_path / "corpus")
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    write_jsonl(small_evalset(), Path("eval_sets") / "small.jsonl")
    return corpus


def _by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def _after_jobs(at) -> None:
    """Wait for the page's background jobs to end, then draw the page again (as its fragment would)."""
    import ragdeck.ui as ui

    for job in ui.get_jobs().running():
        assert job.wait(300), f"{job.label} still running at {job.progress_text}"
    at.run()
    assert not at.exception, at.exception


def _live() -> str:
    with EmbeddedQdrantStore(Settings().qdrant_dir) as store:
        return store.resolve("rag_chunks")


def test_rebuild_gate_swap_rollback_on_the_page(small_stack: Path) -> None:
    at = open_page("index_ops")
    assert "rag_chunks_v1" in at.dataframe[0].value["collection"].tolist()
    assert "operator" in at.caption[0].value

    _by_label(at.text_input, "Corpus folder").input(str(small_stack))
    _by_label(at.number_input, "Min chunk chars").set_value(250)
    _by_label(at.number_input, "Max chunk chars").set_value(700)
    _button(at, "Rebuild").click().run()
    assert not at.exception, at.exception
    _after_jobs(at)
    assert "Built rag_chunks_v2" in at.success[0].value and "redacted: nothing)" in at.success[0].value
    assert _live() == "rag_chunks_v1"

    _by_label(at.text_input, "Thresholds (optional)").input("doc_hit_rate@1>1")  # cannot pass
    _button(at, "Run gate").click().run()
    _after_jobs(at)
    failed = [e.value for e in at.error if "Gate of rag_chunks_v2 failed" in e.value]
    assert failed and "doc_hit_rate@1" in failed[0] and "gate again" in failed[0]  # red, with what to do
    assert not [s.value for s in at.success if "Gate of" in s.value]  # never in a green banner

    _by_label(at.text_input, "Thresholds (optional)").input("")
    _by_label(at.number_input, "Max drop of a headline metric vs live").set_value(1.0)
    _button(at, "Run gate").click().run()
    assert not at.exception, at.exception
    _after_jobs(at)
    assert "Gate of rag_chunks_v2 passed" in at.success[0].value

    at.text_area(key="swap_reason").input("smaller chunks")
    _button(at, "Swap").click().run()
    assert "rag_chunks_v1 → rag_chunks_v2" in at.success[0].value
    assert _live() == "rag_chunks_v2"

    assert _button(at, "Roll back to rag_chunks_v1").disabled  # no reason, no confirmation yet
    at.text_input(key="rollback_reason").input("answers got worse").run()
    assert _button(at, "Roll back to rag_chunks_v1").disabled  # the box is not ticked
    at.checkbox(key="rollback_sure").check().run()
    _button(at, "Roll back to rag_chunks_v1").click().run()
    assert "Rolled back" in at.success[0].value
    assert _live() == "rag_chunks_v1"
    actions = [e.action for e in audit.entries(log=build_audit_log(Settings()))]
    assert actions[:4] == ["index.rollback", "index.swap", "index.gate", "index.gate"]
    rollback = audit.entries(action="index.rollback", log=build_audit_log(Settings()))[0]
    assert (
        rollback.reason == "answers got worse" and rollback.actor == os_user() and rollback.role == "operator"
    )
    outcomes = [e.outcome for e in audit.entries(action="index.gate", log=build_audit_log(Settings()))]
    assert outcomes == ["ok", "failed"]
    assert "Export CSV" in [d.proto.label for d in at.get("download_button")]


def test_an_engineer_cannot_swap_on_the_page(small_stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDECK_USER", "ed")
    monkeypatch.setenv("RAGDECK_ROLES", '{"ed": "engineer"}')
    with EmbeddedQdrantStore(Settings().qdrant_dir) as store:
        ingest(small_stack, store, _embedder(), collection="rag_chunks_v2")
    at = open_page("index_ops")
    assert "engineer" in at.caption[0].value
    at.text_area(key="swap_reason").input("let me")
    at.checkbox(key="swap_override").check()
    _button(at, "Swap").click().run()
    assert not at.exception
    assert "ed has role engineer" in at.error[0].value and "needs operator" in at.error[0].value
    assert _live() == "rag_chunks_v1"
    (entry,) = audit.entries(outcome="denied", log=build_audit_log(Settings()))
    assert (entry.actor, entry.role, entry.action, entry.target) == (
        "ed",
        "engineer",
        "index.swap",
        "rag_chunks",
    )
    assert _button(at, "Roll back").disabled  # nothing to roll back to yet


def _embedder():
    import ragdeck.console.wiring as wiring

    return wiring.build_embedder(Settings())


class HeldEmbedder:
    """The real embedder, held before its second batch of documents until ``release`` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.held = threading.Event()  # set while a batch waits
        self.release = threading.Event()

    def embed_documents(self, texts: list[str]) -> Any:
        self.calls += 1
        if self.calls == 2:
            self.held.set()
            assert self.release.wait(300), "never released"
        return self.inner.embed_documents(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_rebuild_job_shows_progress_is_cancelled_and_resumed_on_the_page(
    small_stack: Path, local_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragdeck.console.wiring as wiring
    import ragdeck.ui as ui

    held = HeldEmbedder(local_embedder)
    monkeypatch.setattr(wiring, "build_embedder", lambda settings: held)
    monkeypatch.setenv("RAGDECK_EMBED_BATCH_SIZE", "4")
    at = open_page("index_ops")
    _by_label(at.text_input, "Corpus folder").input(str(small_stack))
    _by_label(at.number_input, "Min chunk chars").set_value(250)
    _by_label(at.number_input, "Max chunk chars").set_value(700)
    _button(at, "Rebuild").click().run()
    assert not at.exception, at.exception

    job = ui.get_jobs().get("index.rebuild:rag_chunks")
    assert job is not None and held.held.wait(120)  # the job works in its thread: one batch in, held
    at.run()  # what the page's fragment draws each second
    (bar,) = at.get("progress")
    assert bar.text.startswith("Rebuild of rag_chunks_v2: embed 4/") and 0 < bar.value < 100
    assert _button(at, "Rebuild").disabled  # one rebuild at a time
    _button(at, "Cancel").click().run()
    assert not at.exception, at.exception
    assert job.cancel.is_set()
    held.release.set()
    _after_jobs(at)
    assert job.state == "cancelled" and _live() == "rag_chunks_v1"
    assert "Rebuild of rag_chunks_v2 cancelled" in at.warning[0].value
    assert "rag_chunks_v2** was cancelled at embed 8/" in at.warning[1].value  # the interrupted rebuild
    assert not at.get("progress")

    _button(at, "Resume rag_chunks_v2").click().run()
    assert not at.exception, at.exception
    _after_jobs(at)
    assert at.success[0].value == "Resumed rag_chunks_v2 (redacted: nothing): ready to gate."
    versions = at.dataframe[0].value.set_index("collection")
    assert versions.loc["rag_chunks_v2", "status"] == "ready" and versions.loc["rag_chunks_v2", "points"] > 8
    assert not any("was cancelled" in w.value for w in at.warning)
    assert _live() == "rag_chunks_v1"
    actions = [e.action for e in audit.entries(log=build_audit_log(Settings()))][:4]
    assert actions == ["index.rebuild", "index.rebuild.resume", "index.rebuild.cancel", "index.rebuild.start"]
