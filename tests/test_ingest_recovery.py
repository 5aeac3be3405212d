"""Crash-safe ingest and cleanup (issue 18): a ``ragdeck ingest`` SIGKILLed mid-way leaves a partial
collection that the next ingest clears by itself; ``ragdeck collection delete`` refuses a collection behind
an alias, deletes an unaliased one, is audited and needs the operator role."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.console import audit
from ragdeck.console.ingest import journal as ingest_journal
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import (
    Stack,
    build_audit_log,
    build_index_ops,
    build_ingest_journal,
    build_stack,
)
from ragdeck.services.types import HnswConfig

TOPICS = ("harbor", "glacier", "orchard", "lantern", "quarry", "meadow", "furnace", "canyon")


def _corpus(folder: Path, documents: int = 12) -> Path:
    """Generated Markdown: ``documents`` files of about 1.3 kB, each about one topic word and a number."""
    folder.mkdir(parents=True)
    for i in range(documents):
        topic = TOPICS[i % len(TOPICS)]
        paragraphs = [
            f"Section {s} of the {topic} report number {i} records how the {topic} crew measured load "
            f"{i * 7 + s} on day {s}, compared it with the plan for site {i} and wrote down what changed. "
            * 3
            for s in range(2)
        ]
        body = "\n\n".join(f"## Part {s}\n\n{p}" for s, p in enumerate(paragraphs))
        (folder / f"report_{i:03d}.md").write_text(f"# The {topic} report {i}\n\n{body}\n", encoding="utf-8")
    return folder


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def _ingest_cmd(corpus: Path, batch_size: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ragdeck.cli",
        "ingest",
        str(corpus),
        "--collection",
        "reports_v1",
        "--alias",
        "reports",
        "--batch-size",
        str(batch_size),
    ]


@pytest.mark.slow
def test_a_sigkilled_ingest_is_retried_with_no_manual_step(
    data_dir: Path, tmp_path: Path, local_embedder, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    corpus = _corpus(tmp_path / "corpus")
    env = _env(RAGDECK_USER="olga", RAGDECK_ROLES='{"olga": "operator"}')
    proc = subprocess.Popen(_ingest_cmd(corpus, 2), env=env, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait for a batch embedded and upserted, with more to come
            seen.append(line)
            words = line.split()
            if len(words) == 2 and words[0] == "embedding":
                done, total = (int(n) for n in words[1].split("/"))
                if 0 < done < total:
                    break
        else:
            pytest.fail(f"the ingest ended before it was half-way: {''.join(seen)}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    settings = Settings()
    marker = build_ingest_journal(settings).get("reports_v1")
    assert marker is not None and marker["pid"] == proc.pid and marker["created"]
    assert not ingest_journal.owner_alive(marker)
    stack = build_stack(settings)
    try:
        assert stack.store.collection_exists("reports_v1")  # the half collection that used to block
        assert "reports" not in stack.store.list_aliases()  # the alias never pointed at it
    finally:
        stack.close()

    retry = subprocess.run(_ingest_cmd(corpus, 32), env=env, capture_output=True, text=True, timeout=600)
    assert retry.returncode == 0, retry.stderr
    assert "cleared the partial collection reports_v1" in retry.stderr
    assert f"pid {proc.pid}" in retry.stderr
    assert "Indexed 12 documents" in retry.stdout
    assert build_ingest_journal(settings).get("reports_v1") is None

    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    code, out, err = run_cli(
        monkeypatch, capsys, "search", "glacier crew report 17", "--collection", "reports", "--json"
    )
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert hits and any("glacier" in h["text"] for h in hits)
    entries = audit.entries(action="ingest.alias", log=build_audit_log(Settings()))
    assert [(e.target, e.before, e.after) for e in entries] == [
        ("reports", {"collection": None}, {"collection": "reports_v1"})
    ]


@pytest.fixture
def stack(data_dir: Path) -> Iterator[Stack]:
    """Two empty collections: ``kept_v1`` behind the alias ``kept``, ``spare`` behind none."""
    stack = build_stack(Settings())
    for name in ("kept_v1", "spare"):
        stack.store.create_collection(name, 4, HnswConfig(m=8))
    stack.store.set_alias("kept", "kept_v1")
    yield stack
    stack.close()


def test_collection_delete_needs_the_operator_role_and_is_audited(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("RAGDECK_ROLES", '{"ed": "engineer", "olga": "operator"}')
    monkeypatch.setenv("RAGDECK_USER", "ed")
    code, _, err = run_cli(monkeypatch, capsys, "collection", "delete", "spare")
    assert_one_line_error(code, err, "ed has role engineer", "needs operator")
    assert stack.store.collection_exists("spare")
    denied = audit.entries(outcome="denied", log=build_audit_log(Settings()))
    assert [(e.actor, e.action, e.target) for e in denied] == [("ed", "collection.delete", "spare")]

    monkeypatch.setenv("RAGDECK_USER", "olga")
    code, _, err = run_cli(monkeypatch, capsys, "collection", "delete", "kept_v1")
    assert_one_line_error(code, err, "collection 'kept_v1' is behind alias 'kept'", "point the alias")
    assert stack.store.list_aliases() == {"kept": "kept_v1"} and stack.store.collection_exists("kept_v1")
    code, _, err = run_cli(monkeypatch, capsys, "collection", "delete", "kept")
    assert_one_line_error(code, err, "'kept' is an alias (of 'kept_v1'), not a collection")

    code, out, err = run_cli(monkeypatch, capsys, "collection", "delete", "spare")
    assert code == 0, err
    assert "deleted collection spare (0 points)" in out
    assert not stack.store.collection_exists("spare")
    done = audit.entries(action="collection.delete", outcome="ok", log=build_audit_log(Settings()))
    assert [(e.actor, e.role, e.target) for e in done] == [("olga", "operator", "spare")]


def test_collection_delete_refuses_while_an_ingest_builds_it_and_forgets_a_dead_ones_marker(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("RAGDECK_ROLES", '{"olga": "operator"}')
    monkeypatch.setenv("RAGDECK_USER", "olga")
    journal = build_ingest_journal(stack.settings)
    ingest_journal.begin(journal, "spare", created=True)  # this process: an ingest still running
    code, _, err = run_cli(monkeypatch, capsys, "collection", "delete", "spare")
    assert_one_line_error(code, err, "is being ingested by pid")
    assert stack.store.collection_exists("spare")

    journal.put("spare", {**(journal.get("spare") or {}), "pid": _dead_pid()})  # the ingest died
    code, out, err = run_cli(monkeypatch, capsys, "collection", "delete", "spare")
    assert code == 0 and "deleted collection spare" in out, err
    assert journal.get("spare") is None and not stack.store.collection_exists("spare")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stale_marker_never_deletes_a_collection_behind_an_alias(stack: Stack) -> None:
    journal = build_ingest_journal(stack.settings)
    for name in ("kept_v1", "spare"):
        ingest_journal.begin(journal, name, created=True)
        journal.put(name, {**(journal.get(name) or {}), "pid": _dead_pid()})
    assert ingest_journal.clear_stale(stack.store, journal, "kept_v1") is not None
    assert stack.store.collection_exists("kept_v1")  # it went live: it was complete
    cleared = ingest_journal.clear_stale(stack.store, journal, "spare")
    assert cleared is not None and cleared["collection"] == "spare"  # what `say_cleared` names
    assert not stack.store.collection_exists("spare")
    assert journal.get("kept_v1") is None and journal.get("spare") is None


@pytest.mark.slow
def test_a_killed_demo_build_is_cleared_and_built_again_under_the_same_name(
    data_dir: Path, local_embedder, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import ragdeck.console.wiring as wiring

    settings = Settings()
    stack = build_stack(settings)
    try:  # what a `ragdeck demo` killed mid-way leaves: a half-made first version and its marker
        stack.store.create_collection("rag_chunks_v1", local_embedder.dimension, HnswConfig(m=8))
    finally:
        stack.close()
    journal = build_ingest_journal(settings)
    ingest_journal.begin(journal, "rag_chunks_v1", created=True)
    journal.put("rag_chunks_v1", {**(journal.get("rag_chunks_v1") or {}), "pid": _dead_pid()})

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    code, out, err = run_cli(monkeypatch, capsys, "demo")

    assert code == 0, err
    assert "cleared the partial collection rag_chunks_v1" in err + out
    stack = build_stack(settings)
    try:
        assert stack.store.list_aliases() == {"rag_chunks": "rag_chunks_v1"}  # not a _v2 beside a half _v1
        assert not stack.store.collection_exists("rag_chunks_v2")
        assert stack.store.collection_info("rag_chunks_v1").points > 0
        # Index Ops lists it as a version ragdeck built, not "(not built by ragdeck)"
        version = build_index_ops(settings, stack).version("rag_chunks_v1")
        assert version.created_by == "ragdeck demo" and version.status == "ready"
        assert version.spec["embedding_model"] == local_embedder.model_name and version.spec["chunking"]
    finally:
        stack.close()
    assert journal.get("rag_chunks_v1") is None
