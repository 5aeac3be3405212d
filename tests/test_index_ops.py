"""Index operations on the embedded store: shadow rebuild, gate, swap, rollback, retention, and the
reliability properties of issue 8 (queries during swaps, a killed rebuild, roles enforced and audited)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from index_helpers import small_corpus, small_evalset

from ragdeck.console import audit
from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.console.index_ops.records import GateBlocked, RebuildCancelled
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.jobs import Cancelled
from ragdeck.console.retrieval.policies import default_policy
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_audit_log, build_eval_runner, build_index_ops, build_stack
from ragdeck.errors import InputError, PermissionDenied
from ragdeck.services.types import HnswConfig

OPERATOR = User("olga", Role.OPERATOR, "test")
ENGINEER = User("ed", Role.ENGINEER, "test")
SMALLER = ChunkingConfig(min_chars=250, max_chars=700, overlap=0.15)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return small_corpus(tmp_path / "corpus")


@pytest.fixture
def stack(data_dir: Path, corpus: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A stack on a fresh data dir with v1 of the small corpus live behind rag_chunks."""
    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)  # the CLI's stacks too
    stack = build_stack(Settings())
    stack.use_embedder(local_embedder)
    ingest(corpus, stack.store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    yield stack
    stack.close()


@pytest.fixture
def ops(stack: Stack) -> IndexOps:
    return build_index_ops(stack.settings, stack)


def _rebuild(ops: IndexOps, stack: Stack, corpus: Path, chunking: ChunkingConfig = SMALLER, **kw):
    return ops.rebuild(OPERATOR, corpus, stack.embedder, chunking=chunking, hnsw=HnswConfig(m=8), **kw)


def test_rebuild_builds_a_shadow_next_to_the_live_version(ops: IndexOps, stack: Stack, corpus: Path) -> None:
    stages: list[str] = []
    version = _rebuild(ops, stack, corpus, progress=lambda stage, done, total: stages.append(stage))
    assert version.collection == "rag_chunks_v2" and version.status == "ready"
    assert ops.live() == "rag_chunks_v1"  # the alias did not move
    assert {"chunk", "embed", "index"} <= set(stages)
    assert version.points == stack.store.collection_info("rag_chunks_v2").points > 0
    assert version.spec["chunking"]["max_chars"] == 700 and version.spec["hnsw"]["m"] == 8
    assert (
        version.spec["embedding_model"] == stack.embedder.model_name and len(version.corpus_hash or "") == 64
    )
    rows = {v.collection: v for v in ops.versions()}
    assert rows["rag_chunks_v1"].live and not rows["rag_chunks_v2"].live
    assert [e.action for e in audit.entries(log=ops.log)] == ["index.rebuild", "index.rebuild.start"]


def test_a_rebuild_records_what_redaction_replaced_by_kind(
    ops: IndexOps, stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (corpus / "billing.md").write_text(
        "# Billing\n\nPaid with 4111 1111 1111 1111 from IBAN DE89370400440532013000; SSN 536-22-1234, "
        "NI number AB 12 34 56 C. Mail ann@example.org with the token 9f8e7d6c5b4a39281716ab.\n"
    )
    version = _rebuild(ops, stack, corpus)
    expected = {"CARD": 1, "EMAIL": 1, "IBAN": 1, "NATIONAL_ID": 2, "TOKEN": 1}
    assert version.redactions == expected
    assert version.redacted_text == "CARD 1, EMAIL 1, IBAN 1, NATIONAL_ID 2, TOKEN 1"
    assert ops.catalog.version(version.collection).redactions == expected  # kept in the registry
    assert audit.entries(action="index.rebuild", log=ops.log)[0].after["redactions"] == expected
    texts = " ".join(p.payload["text"] for p in stack.store.iter_points(version.collection))
    assert "[CARD]" in texts and "4111 1111" not in texts and "DE89" not in texts
    code, out, err = run_cli(monkeypatch, capsys, "index", "rebuild", str(corpus))
    assert code == 0, err
    assert "(redacted: CARD 1, EMAIL 1, IBAN 1, NATIONAL_ID 2, TOKEN 1)" in " ".join(out.split())


def test_a_failed_rebuild_leaves_nothing_and_is_recorded(ops: IndexOps, stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "a.md").parent.mkdir()
    (empty / "a.md").write_text("   ")
    with pytest.raises(InputError, match="no text"):
        _rebuild(ops, stack, empty)
    assert not stack.store.collection_exists("rag_chunks_v2")
    assert ops.registry.version("rag_chunks_v2")["status"] == "failed"
    assert ops.live() == "rag_chunks_v1"
    ingest(
        empty.parent / "corpus", stack.store, stack.embedder, collection="rag_chunks_v2"
    )  # same name, by hand
    with pytest.raises(InputError, match="failed, not ready"):
        ops.rollback(OPERATOR, to="rag_chunks_v2")
    with pytest.raises(InputError, match="failed, not ready"):
        ops.swap(OPERATOR, "rag_chunks_v2", override=True, reason="x")
    stack.store.delete_collection("rag_chunks_v2")
    assert audit.entries(action="index.rebuild", log=ops.log)[0].outcome == "failed"
    assert _rebuild(ops, stack, empty.parent / "corpus").collection == "rag_chunks_v3"  # no name reused


def test_swap_is_gated_and_an_override_needs_a_reason(ops: IndexOps, stack: Stack, corpus: Path) -> None:
    _rebuild(ops, stack, corpus)
    with pytest.raises(GateBlocked, match="has not been gated"):
        ops.swap(OPERATOR, "rag_chunks_v2")
    with pytest.raises(InputError, match="needs a written reason"):
        ops.swap(OPERATOR, "rag_chunks_v2", override=True)
    assert ops.live() == "rag_chunks_v1"
    move = ops.swap(OPERATOR, "rag_chunks_v2", override=True, reason="hotfix for a broken page")
    assert (move.before, move.after) == ("rag_chunks_v1", "rag_chunks_v2") and ops.live() == "rag_chunks_v2"
    entry = audit.entries(action="index.swap", log=ops.log)[0]
    assert entry.reason == "hotfix for a broken page" and entry.after["gate"] == "overridden"
    assert entry.before == {"collection": "rag_chunks_v1"}
    assert ops.version("rag_chunks_v2").summary()["gate"] == "overridden"


def test_gate_then_swap_then_rollback(ops: IndexOps, stack: Stack, corpus: Path) -> None:
    _rebuild(ops, stack, corpus)
    settings = stack.settings
    runner = build_eval_runner(settings, stack)
    policy = default_policy("gate", settings)
    failed = ops.gate(
        ENGINEER, "rag_chunks_v2", small_evalset(), runner, policy, conditions=_conditions("doc_hit_rate@1>1")
    )
    assert not failed.passed and "doc_hit_rate@1" in failed.failures[0]
    gates = audit.entries(action="index.gate", log=ops.log)
    assert [(e.outcome, e.after["passed"]) for e in gates] == [("failed", False)]  # never audited as ok
    with pytest.raises(GateBlocked, match="gate of 'rag_chunks_v2' failed"):
        ops.swap(OPERATOR, "rag_chunks_v2")

    result = ops.gate(ENGINEER, "rag_chunks_v2", small_evalset(), runner, policy, max_regression=1.0)
    assert result.passed and result.live_collection == "rag_chunks_v1" and result.live_run
    assert audit.entries(action="index.gate", log=ops.log)[0].outcome == "ok"
    assert "| metric |" in result.comparison_md  # the paired comparison, live (A) vs shadow (B)
    assert ops.version("rag_chunks_v2").cleared_by_run == result.shadow_run
    ops.swap(OPERATOR, "rag_chunks_v2", reason="smaller chunks")
    assert ops.live() == "rag_chunks_v2" and ops.rollback_target() == "rag_chunks_v1"

    move = ops.rollback(OPERATOR, reason="answers got worse")
    assert (move.before, move.after) == ("rag_chunks_v2", "rag_chunks_v1") and ops.live() == "rag_chunks_v1"
    history = ops.history()
    assert [(h["action"], h["to_collection"], h["actor"]) for h in history] == [
        ("index.rollback", "rag_chunks_v1", "olga"),
        ("index.swap", "rag_chunks_v2", "olga"),
    ]
    assert history[0]["reason"] == "answers got worse"
    # the gate was against v1, which is live again: still current, so the swap back needs no new gate
    ops.swap(OPERATOR, "rag_chunks_v2", reason="again")
    assert ops.live() == "rag_chunks_v2"


def test_a_cancelled_gate_keeps_nothing(ops: IndexOps, stack: Stack, corpus: Path) -> None:
    _rebuild(ops, stack, corpus)
    cancel = threading.Event()
    cancel.set()  # the Cancel button, pressed before the first query
    runner = build_eval_runner(stack.settings, stack)
    policy = default_policy("gate", stack.settings)
    with pytest.raises(Cancelled, match="gate of 'rag_chunks_v2' was cancelled at the shadow run"):
        ops.gate(ENGINEER, "rag_chunks_v2", small_evalset(), runner, policy, cancel=cancel)
    assert ops.version("rag_chunks_v2").gate is None
    assert audit.entries(action="index.gate", log=ops.log) == []


def test_a_cancelled_rebuild_is_kept_interrupted_then_resumed_or_cleaned_up(
    ops: IndexOps, stack: Stack, corpus: Path
) -> None:
    cancel = threading.Event()

    def press_cancel_after_the_first_batch(stage: str, done: int, total: int) -> None:
        if stage == "embed" and done > 0:
            cancel.set()

    def cancelled_rebuild() -> None:
        cancel.clear()
        with pytest.raises(RebuildCancelled, match="cancelled at embed 4/"):
            _rebuild(
                ops, stack, corpus, batch_size=4, progress=press_cancel_after_the_first_batch, cancel=cancel
            )

    cancelled_rebuild()
    assert ops.live() == "rag_chunks_v1"  # the alias never moved
    assert stack.store.collection_info("rag_chunks_v2").points == 4  # one batch, kept
    (item,) = ops.interrupted()
    assert (item.collection, item.status, item.progress["stage"]) == ("rag_chunks_v2", "interrupted", "embed")
    assert ops.retention_plan(keep=1) == []  # a rebuild someone may resume is not pruned
    entry = audit.entries(action="index.rebuild.cancel", log=ops.log)[0]
    assert entry.target == "rag_chunks_v2" and entry.after == {
        "status": "interrupted",
        "collection_kept": True,
    }
    with pytest.raises(InputError, match="interrupted, not ready"):
        ops.swap(OPERATOR, "rag_chunks_v2", override=True, reason="too early")

    version = ops.resume(OPERATOR, "rag_chunks_v2", stack.embedder)
    assert version.status == "ready" and version.error is None and ops.interrupted() == []
    assert version.points == _rebuild(ops, stack, corpus).points  # resumed = complete (v3 built fresh)

    cancelled_rebuild()  # v4, then cleaned up
    ops.cleanup(OPERATOR, "rag_chunks_v4")
    assert not stack.store.collection_exists("rag_chunks_v4") and ops.interrupted() == []
    assert ops.registry.version("rag_chunks_v4")["status"] == "abandoned"
    assert ops.live() == "rag_chunks_v1"


def _conditions(text: str):
    from ragdeck.console.evaluation.gate import parse_gate

    return parse_gate(text)


def test_retention_keeps_live_previous_and_newest(ops: IndexOps, stack: Stack, corpus: Path) -> None:
    for _ in range(3):  # v2, v3, v4
        _rebuild(ops, stack, corpus)
    ops.swap(OPERATOR, "rag_chunks_v3", override=True, reason="test")
    # live v3, previous v1, newest v4: v2 goes
    assert ops.retention_plan(keep=1) == ["rag_chunks_v2"]
    assert ops.prune(OPERATOR, keep=1) == ["rag_chunks_v2"]  # not confirmed: nothing deleted
    assert stack.store.collection_exists("rag_chunks_v2")
    with pytest.raises(PermissionDenied):
        ops.prune(ENGINEER, keep=1, confirm=True)
    assert ops.prune(OPERATOR, keep=1, confirm=True) == ["rag_chunks_v2"]
    assert not stack.store.collection_exists("rag_chunks_v2")
    assert [v.collection for v in ops.versions()] == ["rag_chunks_v4", "rag_chunks_v3", "rag_chunks_v1"]
    assert audit.entries(action="index.delete", log=ops.log)[0].target == "rag_chunks_v2"


# ---------------------------------------------------------------- reliability (1): queries during moves


def test_queries_during_swap_and_rollback_never_fail_nor_mix(
    ops: IndexOps, stack: Stack, corpus: Path
) -> None:
    _rebuild(ops, stack, corpus)
    store, embedder = stack.store, stack.embedder
    questions = [r.question for r in small_evalset().records]
    vectors = [embedder.embed_query(q).tolist() for q in questions]

    def answer(name: str, vector: list[float]) -> tuple:
        return tuple((h.id, h.payload.get("text")) for h in store.search(name, vector, 5))

    expected = {
        version: [answer(version, v) for v in vectors] for version in ("rag_chunks_v1", "rag_chunks_v2")
    }
    assert all(a != b for a, b in zip(*expected.values(), strict=True))  # each answer tells its version

    log: list[tuple[int, str | None, int, int]] = []  # query, version it matched, phase at start, at end
    errors: list[BaseException] = []
    phase = [0]  # 0: v1 live, 1: swapping, 2: v2 live, 3: rolling back, 4: v1 live again
    stop = threading.Event()
    lock = threading.Lock()

    def client(offset: int) -> None:
        i = offset
        while not stop.is_set():
            q = i % len(vectors)
            started = phase[0]
            try:
                got = answer("rag_chunks", vectors[q])
            except BaseException as exc:
                errors.append(exc)
                return
            matched = next((name for name, rows in expected.items() if rows[q] == got), None)
            with lock:
                log.append((q, matched, started, phase[0]))
            i += 1

    def wait_for(n: int) -> None:
        target = len(log) + n
        while len(log) < target and not errors:
            threading.Event().wait(0.01)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(30)
        phase[0] = 1
        ops.swap(OPERATOR, "rag_chunks_v2", override=True, reason="reliability test")
        phase[0] = 2
        wait_for(30)
        phase[0] = 3
        ops.rollback(OPERATOR, reason="reliability test")
        phase[0] = 4
        wait_for(30)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert all(matched is not None for _, matched, _, _ in log)  # every answer is wholly v1's or v2's
    steady = {0: "rag_chunks_v1", 2: "rag_chunks_v2", 4: "rag_chunks_v1"}
    for _, matched, started, ended in log:
        if started == ended and started in steady:
            assert matched == steady[started]
    assert {m for _, m, s, e in log if s == e == 2} == {"rag_chunks_v2"}


# ---------------------------------------------------------------- reliability (2): a killed rebuild


def _interrupted_rebuild(corpus: Path, tmp_path: Path) -> None:
    """Run a rebuild in another process, wait until it has upserted a batch, SIGKILL it."""
    marker = tmp_path / "half-built"
    script = Path(__file__).parent / "data" / "rebuild_until_killed.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(marker)], env=env)
    try:
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the rebuild process exited ({proc.returncode}) before it was half-built")
            threading.Event().wait(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_killed_rebuild_is_reported_and_resumed(
    ops: IndexOps, stack: Stack, corpus: Path, tmp_path: Path, local_embedder
) -> None:
    query = local_embedder.embed_query("run TEI on a CPU").tolist()
    before = [h.id for h in stack.store.search("rag_chunks", query, 5)]
    _interrupted_rebuild(corpus, tmp_path)

    assert ops.live() == "rag_chunks_v1"  # the alias never moved, and it still serves
    assert [h.id for h in stack.store.search("rag_chunks", query, 5)] == before
    (item,) = ops.interrupted()
    assert item.collection == "rag_chunks_v2" and item.progress["stage"] == "embed"
    partial = stack.store.collection_info("rag_chunks_v2").points
    assert partial > 0

    with pytest.raises(PermissionDenied):
        ops.resume(ENGINEER, "rag_chunks_v2", local_embedder)
    version = ops.resume(OPERATOR, "rag_chunks_v2", local_embedder)
    assert version.status == "ready" and ops.interrupted() == []
    fresh = _rebuild(ops, stack, corpus, chunking=ChunkingConfig(min_chars=250, max_chars=700, overlap=0.15))
    assert version.points == fresh.points > partial  # resumed = complete, no duplicates
    assert ops.live() == "rag_chunks_v1"


@pytest.mark.slow
def test_the_next_start_reports_a_killed_rebuild_and_cleans_it_up(
    stack: Stack, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _interrupted_rebuild(corpus, tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "index", "versions")
    assert code == 0 and "interrupted rebuild: rag_chunks_v2" in err and "recover" in err
    code, _out, err = run_cli(monkeypatch, capsys, "index", "recover", "--cleanup", "rag_chunks_v2")
    assert code == 0, err
    assert not stack.store.collection_exists("rag_chunks_v2")
    ops = build_index_ops(stack.settings, stack)
    assert ops.interrupted() == [] and ops.registry.version("rag_chunks_v2")["status"] == "abandoned"
    assert ops.live() == "rag_chunks_v1"
    code, _, err = run_cli(monkeypatch, capsys, "index", "versions")
    assert "interrupted" not in err


# ---------------------------------------------------------------- reliability (4): roles


def test_an_engineer_cannot_swap_from_the_cli_and_the_attempt_is_audited(
    ops: IndexOps, stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _rebuild(ops, stack, corpus)
    monkeypatch.setenv("RAGDECK_USER", "ed")
    monkeypatch.setenv("RAGDECK_ROLES", '{"ed": "engineer", "olga": "operator"}')
    code, _, err = run_cli(
        monkeypatch, capsys, "index", "swap", "rag_chunks_v2", "--override", "--reason", "let me"
    )
    assert_one_line_error(code, err, "ed has role engineer", "needs operator")
    code, _, err = run_cli(monkeypatch, capsys, "index", "rollback")
    assert_one_line_error(code, err, "needs operator")
    assert ops.live() == "rag_chunks_v1"
    denied = audit.entries(outcome="denied", log=ops.log)
    assert [(e.actor, e.role, e.action) for e in denied] == [
        ("ed", "engineer", "index.rollback"),
        ("ed", "engineer", "index.swap"),
    ]
    monkeypatch.setenv("RAGDECK_USER", "olga")
    code, out, err = run_cli(
        monkeypatch, capsys, "index", "swap", "rag_chunks_v2", "--override", "--reason", "ok by me"
    )
    assert code == 0, err
    assert "rag_chunks_v1 -> rag_chunks_v2" in out
    code, out, _ = run_cli(monkeypatch, capsys, "audit", "--action", "index.swap")
    assert "olga" in out and "ed" in out and "denied" in out
    export = Path("audit.csv")
    code, _, _ = run_cli(monkeypatch, capsys, "audit", "--csv", str(export))
    assert code == 0 and "index.swap" in export.read_text()


def test_cli_versions_rebuild_history(
    stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, out, err = run_cli(
        monkeypatch, capsys, "index", "rebuild", str(corpus), "--min-chars", "250", "--max-chars", "700"
    )
    assert code == 0, err
    assert "built rag_chunks_v2" in out and "unchanged" in out
    code, out, _ = run_cli(monkeypatch, capsys, "index", "versions", "--json")
    assert '"rag_chunks_v2"' in out and '"live"' in out
    code, _, err = run_cli(monkeypatch, capsys, "index", "swap", "rag_chunks_v2")
    assert_one_line_error(code, err, "has not been gated", "override")
    code, out, err = run_cli(monkeypatch, capsys, "index", "swap", "rag_chunks_v2", "--override", "-r", "cli")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "index", "rollback", "-r", "back")
    assert code == 0 and "rag_chunks_v2 -> rag_chunks_v1" in out
    code, out, _ = run_cli(monkeypatch, capsys, "index", "history", "--json")
    assert '"index.rollback"' in out and '"back"' in out


# ---------------------------------------------------------------- reliability (3): snapshot, delete, restore


def test_snapshot_delete_restore_gives_identical_results_and_the_alias_back(
    ops: IndexOps, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    store, embedder = stack.store, stack.embedder
    vectors = [embedder.embed_query(r.question).tolist() for r in small_evalset().records]

    def results() -> list[list[tuple]]:
        return [
            [(h.id, round(h.score, 6), h.payload) for h in store.search("rag_chunks", v, 5)] for v in vectors
        ]

    before = results()
    with pytest.raises(PermissionDenied):
        ops.create_snapshot(ENGINEER)
    code, out, err = run_cli(monkeypatch, capsys, "index", "snapshot")
    assert code == 0, err
    (snap,) = ops.snapshots("rag_chunks_v1")
    assert snap.name in out and snap.aliases == {"rag_chunks": "rag_chunks_v1"}
    assert store.snapshot_path("rag_chunks_v1", snap.name).is_file()  # what the page offers for download
    code, out, err = run_cli(monkeypatch, capsys, "index", "download", "rag_chunks_v1", snap.name)
    assert code == 0, err
    tar = Path(f"{snap.name}.tar")
    assert tar.read_bytes() == store.snapshot_path("rag_chunks_v1", snap.name).read_bytes()
    Path("downloads").mkdir()  # --out a folder: into it under the snapshot's own name, as cp does
    code, out, err = run_cli(
        monkeypatch, capsys, "index", "download", "rag_chunks_v1", snap.name, "-o", "downloads"
    )
    assert code == 0, err
    assert (Path("downloads") / tar.name).read_bytes() == tar.read_bytes()
    code, out, err = run_cli(
        monkeypatch, capsys, "index", "download", "rag_chunks_v1", snap.name, "-o", "no/x.tar"
    )
    assert_one_line_error(code, err, "cannot write no/x.tar: folder no does not exist; create it first")

    store.delete_collection("rag_chunks_v1")  # the alias goes with it
    assert ops.live() is None
    code, out, _ = run_cli(monkeypatch, capsys, "index", "snapshots", "rag_chunks_v1", "--json")
    assert snap.name in out  # a deleted collection's snapshots are still listed
    code, out, err = run_cli(monkeypatch, capsys, "index", "restore", "rag_chunks_v1", snap.name)
    assert code == 0, err
    assert "rag_chunks -> rag_chunks_v1" in out
    assert ops.live() == "rag_chunks_v1" and store.list_aliases() == {"rag_chunks": "rag_chunks_v1"}
    assert results() == before
    entry = audit.entries(action="snapshot.restore", log=ops.log)[0]
    assert entry.before == {"aliases": {}} and entry.after["aliases"] == {"rag_chunks": "rag_chunks_v1"}


@pytest.mark.slow
def test_rag_api_queries_during_swap_and_rollback_each_come_from_one_version(
    ops: IndexOps, stack: Stack, corpus: Path, local_embedder
) -> None:
    from fastapi.testclient import TestClient

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever

    _rebuild(ops, stack, corpus)
    settings = Settings()
    questions = [r.question for r in small_evalset().records]
    retriever = Retriever(stack.store, local_embedder, None)
    params = RetrievalParams(top_k=settings.top_k, top_n=settings.top_n)
    expected = {
        (q, v): [h.chunk_id for h in retriever.search(q, v, params).hits]
        for q in questions
        for v in ("rag_chunks_v1", "rag_chunks_v2")
    }
    runtime = build_runtime(settings, embedder=local_embedder)
    responses: list[tuple[str, dict]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        with TestClient(create_app(runtime)) as api:
            i = 0
            while not stop.is_set():
                question = questions[i % len(questions)]
                try:
                    response = api.post("/query", json={"question": question, "user_id": f"u{i}"})
                    assert response.status_code == 200, response.text
                except BaseException as exc:
                    errors.append(exc)
                    return
                responses.append((question, response.json()))
                i += 1

    def wait_for(n: int) -> None:
        target = len(responses) + n
        while len(responses) < target and not errors:
            threading.Event().wait(0.01)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        wait_for(8)
        ops.swap(OPERATOR, "rag_chunks_v2", override=True, reason="API reliability test")
        wait_for(8)
        ops.rollback(OPERATOR, reason="API reliability test")
        wait_for(8)
    finally:
        stop.set()
        thread.join()
        runtime.close()
    assert not errors, errors
    versions = {body["index_version"] for _, body in responses}
    assert versions == {"rag_chunks_v1", "rag_chunks_v2"}
    for question, body in responses:
        got = [c["chunk_id"] for c in body["contexts"]]
        want = expected[(question, body["index_version"])]
        assert got and got == want[: len(got)], (question, body["index_version"])


def test_a_version_embedded_with_another_model_is_gated_with_it(
    ops: IndexOps, stack: Stack, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragdeck.console.wiring as wiring
    from ragdeck.services.embedders import LocalEmbedder, packaged_model_path

    serving = stack.embedder
    monkeypatch.setattr(
        wiring, "build_embedder", lambda s: LocalEmbedder(s.embedding_model) if s.embedding_model else serving
    )

    other_dir = tmp_path / "minilm-copy"  # the same weights under another name: a stand-in for a new model
    other_dir.symlink_to(packaged_model_path(), target_is_directory=True)
    version = ops.rebuild(
        OPERATOR, corpus, LocalEmbedder(str(other_dir)), chunking=SMALLER, hnsw=HnswConfig()
    )
    assert version.spec["embedding_model"] == "minilm-copy"
    embedder = wiring.build_version_embedder(stack, version)
    assert embedder.model_name == "minilm-copy" and embedder is not stack.embedder
    assert wiring.build_version_embedder(stack, ops.version("rag_chunks_v1")) is stack.embedder
    result = ops.gate(
        ENGINEER,
        "rag_chunks_v2",
        small_evalset(),
        build_eval_runner(stack.settings, stack),
        default_policy("gate", stack.settings),
        max_regression=1.0,
        shadow_runner=wiring.build_eval_runner_for(stack, embedder),
    )
    assert result.passed
    with pytest.raises(InputError, match="embedded with 'minilm-copy'"):
        ops.swap(OPERATOR, "rag_chunks_v2")  # queries are still embedded with the serving model
    assert ops.live() == "rag_chunks_v1"


def test_ingest_that_moves_an_alias_needs_the_operator_role(
    stack: Stack, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("RAGDECK_USER", "ed")
    monkeypatch.setenv("RAGDECK_ROLES", '{"ed": "engineer"}')
    args = ("ingest", str(corpus), "-c", "rag_chunks_v9", "--alias", "rag_chunks")
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "needs operator")
    assert not stack.store.collection_exists("rag_chunks_v9")
    code, _, err = run_cli(
        monkeypatch, capsys, "ingest", str(corpus), "-c", "rag_chunks_v9"
    )  # no alias: fine
    assert code == 0, err
    monkeypatch.setenv("RAGDECK_USER", "olga")
    code, _, err = run_cli(
        monkeypatch, capsys, "ingest", str(corpus), "-c", "rag_chunks_v10", "--alias", "rag_chunks"
    )
    assert code == 0, err
    assert stack.store.resolve("rag_chunks") == "rag_chunks_v10"
    moved, denied = audit.entries(action="ingest.alias", log=build_audit_log(Settings()))  # newest first
    assert (denied.actor, denied.outcome) == ("ed", "denied")
    assert (moved.actor, moved.outcome, moved.before) == ("olga", "ok", {"collection": "rag_chunks_v1"})
    assert moved.after == {"collection": "rag_chunks_v10"}


def test_rebuild_refuses_a_local_model_when_tei_embeds(
    stack: Stack, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("TEI_URL", "http://127.0.0.1:9")  # never called: the check comes first
    code, _, err = run_cli(
        monkeypatch, capsys, "index", "rebuild", str(corpus), "--embedding-model", str(tmp_path)
    )
    assert_one_line_error(code, err, "TEI_URL is set")
    monkeypatch.delenv("TEI_URL")
    code, _, err = run_cli(monkeypatch, capsys, "index", "rebuild", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "does not exist")
    assert not stack.store.collection_exists("rag_chunks_v2")
