"""Compare-and-set alias moves (issue 18): concurrent swaps on the embedded store (threads and processes)
end with one winner and a true history; a rollback, restore or swap with a stale expectation is refused and
changes nothing; the Qdrant server adapter's compare-and-set on qdrant-client's local mode."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from qdrant_client import QdrantClient

from ragdeck.console import audit
from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_index_registry, build_store
from ragdeck.errors import AliasConflict
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig

OPERATOR = User("olga", Role.OPERATOR, "test")
ALIAS = "rag_chunks"
V1, V2, V3 = (f"{ALIAS}_v{n}" for n in (1, 2, 3))
DIM = 4


def _versions(store, names: tuple[str, ...]) -> None:
    for name in names:
        store.create_collection(name, DIM, HnswConfig(m=8))


@pytest.fixture
def ops(data_dir: Path) -> Iterator[IndexOps]:
    """Index operations on the embedded store: v1 live behind the alias, v2 and v3 next to it (empty)."""
    settings = Settings()
    store = build_store(settings)
    _versions(store, (V1, V2, V3))
    store.set_alias(ALIAS, V1)
    yield IndexOps(store, build_index_registry(settings), alias=ALIAS, log=build_audit_log(settings))
    store.close()


def _swaps(ops: IndexOps) -> list[tuple[str | None, str]]:
    return [(e["from_collection"], e["to_collection"]) for e in ops.history()]


def _race_two_swaps(ops: IndexOps) -> dict[str, object]:
    """Swap to V2 and to V3 at once from two threads, both expecting V1; each target's result or error."""
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def swap(target: str) -> None:
        start.wait()
        try:
            outcomes[target] = ops.swap(OPERATOR, target, reason="race", override=True, expected=V1)
        except AliasConflict as exc:
            outcomes[target] = exc

    threads = [threading.Thread(target=swap, args=(t,)) for t in (V2, V3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_swaps_in_threads_one_wins_and_the_history_is_true(ops: IndexOps) -> None:
    outcomes = _race_two_swaps(ops)
    conflicts = [o for o in outcomes.values() if isinstance(o, AliasConflict)]
    winners = [t for t, o in outcomes.items() if not isinstance(o, AliasConflict)]
    assert len(conflicts) == 1 and len(winners) == 1
    assert ops.live() == winners[0]
    assert conflicts[0].actual == winners[0] and conflicts[0].expected == V1
    assert f"now points at '{winners[0]}'" in str(conflicts[0]) and "reload" in str(conflicts[0])
    assert _swaps(ops) == [(V1, winners[0])]
    failed = audit.entries(outcome="failed", log=ops.log)
    assert [(e.action, e.after) for e in failed] == [("index.swap", {"collection": winners[0]})]


_RACER = """
import sys, time
from pathlib import Path
from ragdeck.console import audit
from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_index_registry, build_store
from ragdeck.errors import AliasConflict

target, go = sys.argv[1], Path(sys.argv[2])
settings = Settings()
ops = IndexOps(build_store(settings), build_index_registry(settings), alias="rag_chunks",
               log=build_audit_log(settings))
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    ops.swap(User(target, Role.OPERATOR, "test"), target, reason="race", override=True,
             expected="rag_chunks_v1")
    print("won", flush=True)
except AliasConflict as exc:
    print("conflict:", exc, flush=True)
"""


def test_concurrent_swaps_in_two_processes_one_wins_and_the_history_is_true(
    ops: IndexOps, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path])}
    racers = {
        t: subprocess.Popen(
            [sys.executable, "-c", _RACER, t, str(go)], stdout=subprocess.PIPE, text=True, env=env
        )
        for t in (V2, V3)
    }
    for proc in racers.values():  # both loaded and waiting: then start them together
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    said = {t: proc.communicate(timeout=120)[0].strip() for t, proc in racers.items()}
    assert all(proc.returncode == 0 for proc in racers.values()), said
    winners = [t for t, text in said.items() if text == "won"]
    losers = [t for t, text in said.items() if text.startswith("conflict:")]
    assert len(winners) == 1 and len(losers) == 1, said
    assert f"now points at '{winners[0]}'" in said[losers[0]]
    assert ops.live() == winners[0]
    assert _swaps(ops) == [(V1, winners[0])]


def test_a_swap_expecting_a_version_no_longer_live_is_refused(ops: IndexOps) -> None:
    ops.swap(OPERATOR, V2, reason="first", override=True, expected=V1)
    with pytest.raises(AliasConflict, match=f"now points at '{V2}', not '{V1}'"):
        ops.swap(OPERATOR, V3, reason="stale page", override=True, expected=V1)
    assert ops.live() == V2 and _swaps(ops) == [(V1, V2)]


def test_a_rollback_with_a_stale_expectation_is_refused(ops: IndexOps) -> None:
    ops.swap(OPERATOR, V2, reason="up", override=True)
    ops.swap(OPERATOR, V3, reason="up again", override=True)
    with pytest.raises(AliasConflict, match=f"now points at '{V3}', not '{V2}'"):
        ops.rollback(OPERATOR, reason="back", expected=V2)  # the page still showed v2 live
    assert ops.live() == V3 and len(ops.history()) == 2
    move = ops.rollback(OPERATOR, reason="back", expected=V3)
    assert (move.before, move.after) == (V3, V2) and ops.live() == V2
    assert _swaps(ops)[0] == (V3, V2)


def test_a_restore_with_a_stale_expectation_is_refused_and_a_current_one_is_kept_in_the_history(
    ops: IndexOps,
) -> None:
    snap = ops.create_snapshot(OPERATOR, V1)  # records rag_chunks -> v1
    ops.swap(OPERATOR, V2, reason="up", override=True)
    with pytest.raises(AliasConflict, match=f"now points at '{V2}', not '{V1}'"):
        ops.restore_snapshot(OPERATOR, V1, snap.name, expected=V1)
    assert ops.live() == V2 and _swaps(ops) == [(V1, V2)]
    ops.restore_snapshot(OPERATOR, V1, snap.name, expected=V2)
    assert ops.live() == V1
    assert _swaps(ops) == [(V2, V1), (V1, V2)]
    assert ops.history()[0]["action"] == "snapshot.restore"
    assert ops.rollback_target() == V2  # the restore is the last move: rollback undoes it


def test_embedded_compare_and_set_and_a_failed_history_write_puts_the_alias_back(ops: IndexOps) -> None:
    store = ops.store
    with pytest.raises(AliasConflict, match=f"now points at '{V1}', not '{V2}'"):
        store.compare_and_set_alias(ALIAS, V3, expected=V2)
    with pytest.raises(AliasConflict, match="not no alias"):
        store.compare_and_set_alias(ALIAS, V3, expected=None)
    store.compare_and_set_alias("fresh", V2, expected=None)

    def broken() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.compare_and_set_alias(ALIAS, V2, expected=V1, on_moved=broken)
    assert store.list_aliases() == {ALIAS: V1, "fresh": V2}


def test_cli_swap_with_a_stale_expect_is_one_error_line(
    ops: IndexOps, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("RAGDECK_USER", "olga")
    monkeypatch.setenv("RAGDECK_ROLES", '{"olga": "operator"}')
    ops.swap(OPERATOR, V2, reason="someone else", override=True)
    code, _, err = run_cli(
        monkeypatch, capsys, "index", "swap", V3, "--override", "--reason", "x", "--expect", V1
    )
    assert_one_line_error(code, err, f"alias '{ALIAS}' now points at '{V2}'", "reload", "retry")
    code, _, err = run_cli(monkeypatch, capsys, "index", "rollback", "--expect", V1)
    assert_one_line_error(code, err, f"now points at '{V2}'")
    assert ops.live() == V2
    code, out, err = run_cli(monkeypatch, capsys, "index", "rollback", "--expect", V2, "--reason", "ok")
    assert f"{V2} -> {V1}" in out
    assert code == 0, err
    assert ops.live() == V1


# ---------------------------------------------------------------- the Qdrant server adapter (local mode)


@pytest.fixture
def server_ops(data_dir: Path, tmp_path: Path) -> Iterator[IndexOps]:
    settings = Settings()
    with QdrantServerStore(QdrantClient(":memory:"), meta_dir=tmp_path / "meta") as store:
        _versions(store, (V1, V2, V3))
        store.set_alias(ALIAS, V1)
        yield IndexOps(store, build_index_registry(settings), alias=ALIAS, log=build_audit_log(settings))


def test_server_compare_and_set_moves_only_from_the_expected_target(server_ops: IndexOps) -> None:
    store = server_ops.store
    with pytest.raises(AliasConflict, match=f"now points at '{V1}', not '{V2}'"):
        store.compare_and_set_alias(ALIAS, V3, expected=V2)
    assert store.list_aliases() == {ALIAS: V1}
    with pytest.raises(AliasConflict, match="not no alias"):
        store.compare_and_set_alias(ALIAS, V3, expected=None)
    store.compare_and_set_alias("fresh", V2, expected=None)
    assert store.list_aliases() == {ALIAS: V1, "fresh": V2}

    def broken() -> None:
        raise RuntimeError("registry down")

    with pytest.raises(RuntimeError):
        store.compare_and_set_alias(ALIAS, V2, expected=V1, on_moved=broken)
    with pytest.raises(RuntimeError):
        store.compare_and_set_alias("new", V2, expected=None, on_moved=broken)
    assert store.list_aliases() == {ALIAS: V1, "fresh": V2}  # both put back


def test_server_concurrent_swaps_one_wins_and_the_history_is_true(server_ops: IndexOps) -> None:
    outcomes = _race_two_swaps(server_ops)
    winners = [t for t, o in outcomes.items() if not isinstance(o, AliasConflict)]
    assert len(winners) == 1 and sum(isinstance(o, AliasConflict) for o in outcomes.values()) == 1
    assert server_ops.live() == winners[0]
    assert _swaps(server_ops) == [(V1, winners[0])]
    with pytest.raises(AliasConflict):
        server_ops.rollback(OPERATOR, reason="stale", expected=V1)
    assert server_ops.live() == winners[0]


def test_a_gate_during_which_the_alias_moved_does_not_clear_a_swap(
    data_dir: Path, tmp_path: Path, local_embedder
) -> None:
    from index_helpers import small_corpus, small_evalset

    from ragdeck.console.ingest.pipeline import ingest
    from ragdeck.console.retrieval.policies import default_policy
    from ragdeck.console.wiring import build_eval_runner, build_stack
    from ragdeck.errors import InputError

    corpus = small_corpus(tmp_path / "corpus")
    stack = build_stack(Settings())
    stack.use_embedder(local_embedder)
    try:
        ingest(corpus, stack.store, local_embedder, collection=V1, alias=ALIAS)
        ingest(corpus, stack.store, local_embedder, collection=V2)
        stack.store.create_collection(V3, local_embedder.dimension, HnswConfig())
        ops = IndexOps(
            stack.store,
            build_index_registry(stack.settings),
            alias=ALIAS,
            log=build_audit_log(stack.settings),
        )
        moved: list[str] = []

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "shadow" and not moved:  # another operator swaps while the gate runs
                moved.append(ops.swap(OPERATOR, V3, reason="meanwhile", override=True).after)

        runner = build_eval_runner(stack.settings, stack)
        policy = default_policy("gate", stack.settings)
        evalset = small_evalset()
        result = ops.gate(OPERATOR, V2, evalset, runner, policy, max_regression=1.0, progress=progress)
        assert moved == [V3] and result.live_collection == V1
        assert not result.passed
        assert f"the alias moved from '{V1}' to '{V3}' during the gate" in result.failures[-1]
        with pytest.raises(InputError, match="gate it again"):
            ops.swap(OPERATOR, V2, reason="stale gate")
        assert ops.live() == V3
    finally:
        stack.close()
