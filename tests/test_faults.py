"""Fault suite: a process SIGKILLed in the middle of writing loses nothing it acknowledged, corrupts nothing,
and the retry succeeds.

Each child writes in a loop and prints one line after each write returns (its acknowledgement); the test
kills it with SIGKILL once enough lines came back (a condition, never a sleep), so the kill lands while a
write is under way or between two, at a point that varies from run to run. Then the state is reopened as a
new process would: every acknowledged write is there, whole, and one more write works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragdeck.console import annotation
from ragdeck.console.evalsets.io import read_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evalsets.publish import publish, versions
from ragdeck.console.roles import Role, User
from ragdeck.services.annotation_store import SqliteAnnotationStore

pytestmark = pytest.mark.slow

ACKS_BEFORE_KILL = 15


def _kill_after_acks(code: str, workdir: Path, acks: int = ACKS_BEFORE_KILL) -> list[str]:
    """Run ``code`` in a new Python, SIGKILL it after ``acks`` lines of output; every whole line it printed
    before the kill (those still in the pipe too: the child runs ahead of the reader, and each of its lines
    acknowledges a write that returned)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", textwrap.dedent(code)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if len(lines) >= acks:
                break
        assert len(lines) >= acks, f"the child stopped early: {proc.stderr.read() if proc.stderr else ''}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    rest = proc.stdout.read()
    whole = rest if rest.endswith("\n") else rest.rpartition("\n")[0]  # a line cut by the kill is no ack
    return lines + [line.strip() for line in whole.splitlines()]


def test_sigkill_during_label_saves_loses_no_acknowledged_label(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    repo = SqliteAnnotationStore(db)
    (question_id,) = annotation.add_questions(repo, ["How is the scrape interval set?"], "typed", "ana")
    acked = _kill_after_acks(
        f"""
        from ragdeck.console import annotation
        from ragdeck.services.annotation_store import SqliteAnnotationStore
        repo = SqliteAnnotationStore({str(db)!r})
        for n in range(100000):
            annotation.set_label(repo, {question_id!r}, "ana", f"doc#s:{{n}}", 1 + n % 2)
            print(n)
        """,
        tmp_path,
    )
    repo = SqliteAnnotationStore(db)  # reopened as the next process would
    saved = {label.chunk_id: label.relevance for label in repo.labels(question_id)}
    for n in map(int, acked):
        assert saved[f"doc#s:{n}"] == 1 + n % 2
    annotation.set_label(repo, question_id, "ana", "retry#s:0", 2)
    assert {label.chunk_id for label in repo.labels(question_id)} >= {"retry#s:0"}


def test_sigkill_during_publish_leaves_every_listed_version_whole(tmp_path: Path) -> None:
    folder = tmp_path / "eval_sets"
    folder.mkdir()
    acked = _kill_after_acks(
        f"""
        from pathlib import Path
        from ragdeck.console.evalsets.model import EvalRecord, EvalSet
        from ragdeck.console.evalsets.publish import publish
        for n in range(100000):
            gold = lambda i: [f"d{{i}}#s:{{n}}"]
            records = [EvalRecord(id=f"q{{i}}", question=f"question {{i}}?", gold_context_ids=gold(i))
                       for i in range(50)]
            version, _ = publish(EvalSet("faults", records), Path({str(folder)!r}), note=str(n))
            print(version.version)
        """,
        tmp_path,
    )
    listed = versions(folder, "faults")
    assert [v.version for v in listed] == list(range(1, len(listed) + 1))
    assert len(listed) >= int(acked[-1])  # every acknowledged version is listed
    for version in listed:  # and each listed one reads back whole, with the content it was listed with
        history = read_jsonl(folder / "history" / "faults" / f"v{version.version}.jsonl")
        assert history.content_hash() == version.hash and len(history.records) == 50
    latest = read_jsonl(folder / "faults.jsonl")
    assert len(latest.records) == 50
    retry = EvalSet("faults", [EvalRecord(id="q0", question="question 0?", gold_context_ids=["retry#s:0"])])
    version, new = publish(retry, folder, note="retry")
    assert new and version.version == len(listed) + 1


def test_sigkill_during_feedback_writes_loses_no_acknowledged_vote(tmp_path: Path) -> None:
    from ragdeck.services.feedback_log import SqliteFeedbackLog

    db = tmp_path / "state.sqlite3"
    acked = _kill_after_acks(
        f"""
        from pathlib import Path
        from ragdeck.services.feedback_log import SqliteFeedbackLog
        log = SqliteFeedbackLog(Path({str(db)!r}))
        for n in range(100000):
            log.add(f"r{{n % 40}}", "A", "up" if n % 3 else "down", comment=str(n))  # votes replace votes
            print(n)
        """,
        tmp_path,
        acks=100,  # each of the 40 ids voted on more than once
    )
    log = SqliteFeedbackLog(db)
    last = int(acked[-1])

    def vote_of(n: int) -> str:
        return "up" if n % 3 else "down"

    for n in range(max(0, last - 39), last + 1):  # the latest acknowledged vote of each response id ...
        # ... or the one written after it, acknowledged or not when the kill came
        assert log.vote(f"r{n % 40}") in {vote_of(n), vote_of(n + 40) if n + 40 == last + 1 else vote_of(n)}
    assert sum(log.counts().values()) == 40  # one vote per response id
    assert log.add("retry", "A", "up") is None and log.vote("retry") == "up"


_SWAP_CHILD = """
import os, signal
from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_index_registry, build_store
settings = Settings()
store = build_store(settings)
ops = IndexOps(store, build_index_registry(settings), alias="rag_chunks", log=build_audit_log(settings))
user = User("olga", Role.OPERATOR, "test")
"""
_SWAP_VERSIONS = ("rag_chunks_v1", "rag_chunks_v2", "rag_chunks_v3")


@pytest.fixture
def swap_ops(data_dir: Path):
    """Index operations on the embedded store: v1 live behind rag_chunks, v2 and v3 beside it (empty)."""
    from ragdeck.console.index_ops.operations import IndexOps
    from ragdeck.console.settings import Settings
    from ragdeck.console.wiring import build_audit_log, build_index_registry, build_store
    from ragdeck.services.types import HnswConfig

    settings = Settings()
    store = build_store(settings)
    for name in _SWAP_VERSIONS:
        store.create_collection(name, 4, HnswConfig(m=8))
    store.set_alias("rag_chunks", _SWAP_VERSIONS[0])
    yield IndexOps(store, build_index_registry(settings), alias="rag_chunks", log=build_audit_log(settings))
    store.close()


def _run_child(code: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", "-c", textwrap.dedent(code)],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )


def _moves(ops) -> list[tuple[str | None, str, str]]:
    """The alias history oldest first: (from, to, state)."""
    return [(e["from_collection"], e["to_collection"], e["state"]) for e in reversed(ops.history(None))]


@pytest.mark.parametrize("killed", ["after the alias moved", "before the alias moved"])
def test_sigkill_during_a_swap_is_settled_by_the_next_one_and_the_history_stays_true(
    swap_ops, tmp_path: Path, killed: str
) -> None:
    from ragdeck.console import audit

    v1, v2, v3 = _SWAP_VERSIONS
    # The kill lands exactly in the window: the alias file written and its history row not yet marked done,
    # or the pending row written and the alias file not yet.
    hook = (
        "ops.catalog.registry.settle_event = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
        if killed == "after the alias moved"
        else "store._write_aliases = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)"
    )
    child = _run_child(
        _SWAP_CHILD + f"{hook}\nops.swap(user, {v2!r}, reason='go', override=True)\nprint('survived')\n",
        tmp_path,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    moved = killed == "after the alias moved"
    assert swap_ops.live() == (v2 if moved else v1)
    assert _moves(swap_ops) == [(v1, v2, "pending")]  # shown as what it is until settled

    retry = swap_ops.swap(User("olga", Role.OPERATOR, "test"), v3, reason="retry", override=True)

    assert retry.after == swap_ops.live() == v3
    if moved:
        assert _moves(swap_ops) == [(v1, v2, "done"), (v2, v3, "done")]
        recovered = [e for e in audit.entries(log=swap_ops.log) if e.after.get("recorded_after")]
        assert [(e.action, e.before, e.after["collection"]) for e in recovered] == [
            ("index.swap", {"collection": v1}, v2)
        ]
    else:
        assert _moves(swap_ops) == [(v1, v3, "done")]
    assert swap_ops.rollback_target() == (v2 if moved else v1)


def test_sigkill_at_any_point_of_repeated_swaps_leaves_a_history_that_chains_to_the_live_alias(
    swap_ops, tmp_path: Path
) -> None:
    v1, v2, _ = _SWAP_VERSIONS
    acked = _kill_after_acks(
        _SWAP_CHILD
        + f"""
for n in range(100000):
    ops.swap(user, ({v2!r}, {v1!r})[n % 2], reason=str(n), override=True)
    print(n)
""",
        tmp_path,
    )
    swap_ops.swap(User("olga", Role.OPERATOR, "test"), _SWAP_VERSIONS[2], reason="retry", override=True)

    moves = _moves(swap_ops)
    assert all(state == "done" for *_, state in moves)
    assert len(moves) >= len(acked) + 1  # every acknowledged swap, and the retry
    chain = [v1] + [to for _, to, _ in moves]
    assert [frm for frm, _, _ in moves] == chain[:-1]  # each move starts where the one before ended
    assert chain[-1] == swap_ops.live() == _SWAP_VERSIONS[2]
