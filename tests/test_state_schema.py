"""The state database's schema version and migrations (services/state_schema.py), on real SQLite files.

The fixtures under tests/fixtures/ are state databases made by past releases (tests/fixtures/
make_state_fixture.py); each must open with this code, every record read back as that release read it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ragdeck.console import annotation
from ragdeck.errors import ConfigError, RagdeckError
from ragdeck.services import state_schema
from ragdeck.services.annotation_store import SqliteAnnotationStore
from ragdeck.services.audit_log import SqliteAuditLog
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.feedback_log import SqliteFeedbackLog
from ragdeck.services.hnsw_sweeps import SqliteSweepLog
from ragdeck.services.index_registry import SqliteIndexRegistry
from ragdeck.services.policy_overrides import PolicyOverrides, read_overrides
from ragdeck.services.routing_state import SqliteRoutingState
from ragdeck.services.sqlite_db import SqliteFile
from ragdeck.services.state_schema import (
    Migration,
    StateMigrationFailed,
    StateSchemaTooNew,
    latest_version,
    migrate,
    open_state,
)

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = ("0.1.0",)  # add each release's fixture here (make_state_fixture.py)
sys.path.insert(0, str(FIXTURES))
from make_state_fixture import dump_state  # noqa: E402

STORES = (
    SqliteAnnotationStore,
    EvalStore,
    SqliteAuditLog,
    SqliteFeedbackLog,
    SqliteIndexRegistry,
    SqliteRoutingState,
    PolicyOverrides,
    SqliteSweepLog,
)


def _open_all(path: Path) -> None:
    for store in STORES:
        obj = store(path)
        if isinstance(obj, SqliteFeedbackLog):
            obj.close()


def _version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def _tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _schema(path: Path) -> dict[str, object]:
    """Tables, their columns, indexes and foreign keys, and triggers, compared by meaning, not by DDL text."""
    out: dict[str, object] = {}
    with contextlib.closing(sqlite3.connect(path)) as db:
        for kind, name, table in db.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"):
            if kind == "table":
                indexes = db.execute(f"PRAGMA index_list('{name}')").fetchall()
                out[name] = {
                    "columns": db.execute(f"PRAGMA table_xinfo('{name}')").fetchall(),
                    "foreign_keys": db.execute(f"PRAGMA foreign_key_list('{name}')").fetchall(),
                    "indexes": sorted(
                        (i[1], i[2], i[3], db.execute(f"PRAGMA index_xinfo('{i[1]}')").fetchall())
                        for i in indexes
                    ),
                }
            elif kind == "trigger":
                out[name] = ("trigger", table)
    return out


@pytest.fixture(params=RELEASES)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A copy of a past release's state database (version 0 for 0.1.0) and what that release read from it."""
    release = request.param
    path = tmp_path / "data" / "ragdeck.sqlite3"
    path.parent.mkdir()
    shutil.copyfile(FIXTURES / f"state-{release}.sqlite", path)
    expected = json.loads((FIXTURES / f"state-{release}.json").read_text())
    return path, expected


def test_fixtures_are_small_single_files(old_db: tuple[Path, dict[str, object]]) -> None:
    path, _ = old_db  # copied alone, without any -wal beside it
    assert path.stat().st_size < 200_000
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # as a data directory holds it
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM ann_labels").fetchone() == (7,)


def _project(got: object, expected: object) -> object:
    """``got`` cut down to the keys ``expected`` has, at every depth (rows may gain columns later)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return {key: _project(got.get(key), value) for key, value in expected.items()}
    if isinstance(expected, list) and isinstance(got, list) and len(got) == len(expected):
        return [_project(g, e) for g, e in zip(got, expected, strict=True)]
    return got


def test_old_database_opens_with_every_record_intact(old_db: tuple[Path, dict[str, object]]) -> None:
    path, expected = old_db
    assert _version(path) == 0  # made before versioning
    before = _tables(path)

    got = dump_state(path)  # opens every store: the file is adopted as version 1, then migrated on

    assert _version(path) == latest_version()
    assert before <= _tables(path)
    assert _project(got, expected) == expected  # dump_state and later steps may add keys and columns
    assert [e["state"] for e in got["alias_events"]] == ["done"]  # step 4: moves made before it happened
    # The same, spelled out, so the comparison cannot pass on two empty dumps.
    labels = {(x["annotator"], x["chunk_id"]): x["relevance"] for x in got["labels"]}
    assert labels[("ana", "prom-config#scrape#0")] == 2 and labels[("ben", "prom-config#scrape#1")] == 0
    assert {x["annotator"] for x in got["labels"]} == {"ana", "ben"} and len(got["labels"]) == 7
    assert got["gold"][0]["gold_chunk_ids"] == ["prom-config#scrape#0", "prom-config#scrape#1"]
    done = next(r for r in got["runs"] if r["run_id"] == "run-fixture-done")
    assert done["status"] == "done"
    assert done["summary"] == {"recall@10": 0.6667, "mrr": 0.5, "n": 3, "errors": 1}
    assert len(got["results"]["run-fixture-done"]) == 3
    assert got["results"]["run-fixture-done"][0]["scores"] == [0.91, 0.5, 0.125]
    assert got["audit_chain_breaks_at"] is None and len(got["audit"]) == 2
    assert got["feedback"] == {"dense/up": 1, "hybrid/down": 1, "hybrid/up": 1}
    assert [v["status"] for v in got["index_versions"]] == ["failed", "ready"]
    assert got["policy_overrides"] == {"hybrid": {"hnsw_ef": 96}}


def test_old_database_keeps_working_after_migration(old_db: tuple[Path, dict[str, object]]) -> None:
    path, _ = old_db
    ann = SqliteAnnotationStore(path)
    question_id = ann.questions()[0].id
    annotation.set_label(ann, question_id, "cleo", "prom-config#scrape#0", 1)
    assert {label.annotator for label in ann.labels(question_id)} == {"ana", "ben", "cleo"}
    audit = SqliteAuditLog(path)
    audit.append(actor="ops", role="operator", action="test", target="t")
    assert audit.verify() is None  # the chain goes on over the old rows (adopted when the key was made)
    with (
        contextlib.closing(sqlite3.connect(path)) as db,
        pytest.raises(sqlite3.IntegrityError, match="append"),
    ):
        db.execute("DELETE FROM audit_log")  # the adopted triggers still guard it


def test_baseline_is_the_schema_0_1_0_made(
    old_db: tuple[Path, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = old_db
    fresh = tmp_path / "fresh.sqlite3"
    monkeypatch.setattr(state_schema, "MIGRATIONS", state_schema.MIGRATIONS[:1])  # step 1 only
    open_state(fresh, "test")
    assert _version(fresh) == 1
    assert _schema(fresh) == _schema(path)


def test_later_steps_add_the_hnsw_sweep_tables(old_db: tuple[Path, dict[str, object]]) -> None:
    path, _ = old_db
    assert not {"hnsw_sweeps", "hnsw_sweep_points"} & _tables(path)
    log = SqliteSweepLog(path)  # adopts the old file as version 1, then applies step 2
    assert _version(path) == latest_version() >= 2
    assert state_schema.MIGRATIONS[1].name == "add_hnsw_sweeps"
    assert {"hnsw_sweeps", "hnsw_sweep_points"} <= _tables(path)
    log.create("s1", collection="c", request={"k": 10}, queries=b"\x00\x01", planned=2, created_by="ana")
    log.add_point("s1", 4, 32, 10, {"recall_exact": 0.5}, elapsed_s=1.5)
    got = log.get("s1")
    assert got is not None and got["queries"] == b"\x00\x01" and got["points"] == [{"recall_exact": 0.5}]
    assert (got["status"], got["measured"], got["elapsed_s"]) == ("running", 1, 1.5)


def test_step_3_keeps_the_latest_vote_per_response_and_adds_the_kv_table(tmp_path: Path) -> None:
    path = tmp_path / "ragdeck.sqlite3"
    file = SqliteFile(path, "test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state_schema, "MIGRATIONS", state_schema.MIGRATIONS[:1])
        migrate(file)
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # votes as 0.1.0 kept them: several per answer
        db.executemany(
            "INSERT INTO feedback (ts, response_id, policy, vote, comment) VALUES (?, ?, ?, ?, ?)",
            [
                (1.0, "r1", "A", "up", None),
                (2.0, "r1", "A", "down", "changed my mind"),
                (3.0, "r2", "B", "up", ""),
            ],
        )
    assert migrate(file) == (1, latest_version())
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT response_id, vote, comment FROM feedback ORDER BY response_id").fetchall()
        assert rows == [("r1", "down", "changed my mind"), ("r2", "up", "")]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute("INSERT INTO feedback (ts, response_id, policy, vote) VALUES (4, 'r2', 'B', 'down')")
    assert "kv_entries" in _tables(path)


def test_new_database_gets_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ragdeck.sqlite3"
    file = open_state(path, "test")
    assert _version(path) == latest_version() == len(state_schema.MIGRATIONS)
    assert state_schema.schema_version(file) == latest_version()
    assert {"ann_labels", "eval_runs", "audit_log", "feedback", "index_versions", "weights"} <= _tables(path)
    _open_all(path)  # every store finds its tables
    assert _version(path) == latest_version()


def test_opening_twice_is_a_no_op(old_db: tuple[Path, dict[str, object]]) -> None:
    path, _ = old_db
    assert migrate(SqliteFile(path, "test")) == (0, latest_version())
    with contextlib.closing(sqlite3.connect(path)) as watcher:
        schema = watcher.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        commits = watcher.execute("PRAGMA data_version").fetchone()  # changes when another connection commits
        assert migrate(SqliteFile(path, "test")) == (latest_version(), latest_version())
        _open_all(path)
        assert watcher.execute("PRAGMA data_version").fetchone() == commits
        assert watcher.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert _version(path) == latest_version()


def test_database_from_a_newer_ragdeck_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ragdeck.sqlite3"
    open_state(path, "test")
    newer = latest_version() + 3
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {newer}")
        db.execute("CREATE TABLE from_the_future (x)")
        db.commit()
    raw = path.read_bytes()
    for store in STORES:
        with pytest.raises(StateSchemaTooNew) as caught:
            store(path)
        message = str(caught.value)
        assert str(path) in message and f"schema version {newer}" in message
        assert f"up to {latest_version()}" in message and "Upgrade ragdeck" in message
    assert isinstance(caught.value, ConfigError)
    with pytest.raises(StateSchemaTooNew):
        read_overrides(path)  # the policy loader's read-only path refuses it too
    assert _version(path) == newer and path.read_bytes() == raw


@pytest.fixture
def baseline_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry cut to the baseline step: the tests of the machinery add their own steps 2, 3, ..."""
    monkeypatch.setattr(state_schema, "MIGRATIONS", state_schema.MIGRATIONS[:1])


def _with_step(monkeypatch: pytest.MonkeyPatch, step: Migration) -> None:
    monkeypatch.setattr(state_schema, "MIGRATIONS", (*state_schema.MIGRATIONS, step))


def test_a_failing_step_leaves_the_previous_version(
    old_db: tuple[Path, dict[str, object]], monkeypatch: pytest.MonkeyPatch, baseline_registry: None
) -> None:
    path, expected = old_db

    def fail_midway(db: sqlite3.Connection) -> None:
        raise ValueError("disk on fire")

    step = Migration(
        latest_version() + 1,
        "add_label_comments",
        (
            "CREATE TABLE ann_label_comments (question_id TEXT, body TEXT)",
            "INSERT INTO ann_label_comments SELECT question_id, 'x' FROM ann_labels",
            "DELETE FROM ann_labels",
        ),
        fail_midway,
    )
    _with_step(monkeypatch, step)
    with pytest.raises(StateMigrationFailed) as caught:
        SqliteAnnotationStore(path)
    message = str(caught.value)
    failing, before = latest_version(), latest_version() - 1
    assert f"step {failing} (add_label_comments)" in message and f"schema version {before}" in message
    assert "disk on fire" in message and str(path) in message
    assert _version(path) == before  # the steps before committed; the failing one rolled back entirely
    assert "ann_label_comments" not in _tables(path)
    monkeypatch.undo()
    got = dump_state(path)  # no row lost; the code without the step opens it
    assert _project(got, expected) == expected


def test_named_steps_run_in_order_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline_registry: None
) -> None:
    path = tmp_path / "ragdeck.sqlite3"
    open_state(path, "test")
    ran: list[str] = []
    n = latest_version()
    _with_step(monkeypatch, Migration(n + 1, "add_notes", ("CREATE TABLE IF NOT EXISTS notes (body TEXT)",)))
    _with_step(monkeypatch, Migration(n + 2, "seed_notes", run=lambda db: ran.append("seed_notes")))
    assert migrate(SqliteFile(path, "test")) == (n, n + 2)
    assert migrate(SqliteFile(path, "test")) == (n + 2, n + 2)
    assert ran == ["seed_notes"] and _version(path) == n + 2 and "notes" in _tables(path)


_NEXT = len(state_schema.MIGRATIONS) + 1


@pytest.mark.parametrize(
    "extra",
    [
        (Migration(_NEXT + 1, "skips_one"),),
        (Migration(_NEXT, "add_notes"), Migration(_NEXT, "add_more_notes")),
        (Migration(_NEXT, "baseline_0_1_0"),),
        (Migration(_NEXT, "Not Snake"),),
    ],
)
def test_a_malformed_registry_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, baseline_registry: None, extra: tuple[Migration, ...]
) -> None:
    monkeypatch.setattr(state_schema, "MIGRATIONS", (*state_schema.MIGRATIONS, *extra))
    with pytest.raises(RuntimeError, match="state migration"):
        latest_version()


def test_adopting_a_foreign_table_of_the_same_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ragdeck.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE eval_runs (run_id TEXT PRIMARY KEY, status TEXT)")
        db.execute("INSERT INTO eval_runs VALUES ('r1', 'done')")
        db.commit()
    with pytest.raises(StateMigrationFailed, match=r"eval_runs lacks the columns .*created_at") as caught:
        EvalStore(path)
    assert isinstance(caught.value, RagdeckError)
    assert _version(path) == 0 and _tables(path) == {"eval_runs"}  # nothing created, nothing lost


def test_concurrent_openers_migrate_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline_registry: None
) -> None:
    path = tmp_path / "ragdeck.sqlite3"
    open_state(path, "test")  # the latest version
    n = latest_version() + 1
    # Step n fails if it ever runs twice (the table exists the second time) and counts its runs.
    runs: list[int] = []
    gate = threading.Barrier(8)

    def count(db: sqlite3.Connection) -> None:
        runs.append(1)

    _with_step(monkeypatch, Migration(n, "add_counter", ("CREATE TABLE counter (n INTEGER)",), count))
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            gate.wait()
            open_state(path, "test", busy_timeout_s=30)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and runs == [1] and _version(path) == n


def test_concurrent_processes_adopt_an_old_database(old_db: tuple[Path, dict[str, object]]) -> None:
    path, expected = old_db
    code = textwrap.dedent(
        f"""
        import sys
        from ragdeck.services.annotation_store import SqliteAnnotationStore
        from ragdeck.services.eval_store import EvalStore
        store = (SqliteAnnotationStore, EvalStore)[int(sys.argv[1]) % 2]({str(path)!r}, busy_timeout_s=30)
        print(len(store.labels()) if isinstance(store, SqliteAnnotationStore) else len(store.list_runs()))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(4)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    assert sorted(int(out) for out, _ in outputs) == [2, 2, 7, 7]
    assert _version(path) == latest_version()
    got = dump_state(path)
    assert _project(got, expected) == expected
