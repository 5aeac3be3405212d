"""The audit log proves itself: every way of altering it outside ragdeck fails ``ragdeck audit verify``.

Each case writes five entries through ragdeck, alters the state database (or the files beside it) as someone
with write access to the data directory but not the key could, and runs the real command in a new process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ragdeck.console import audit
from ragdeck.console.settings import Settings
from ragdeck.services.audit_log import SqliteAuditLog

COLUMNS = "at, actor, role, action, target, before, after, reason, outcome"


def _sha_chain(previous: str, row: tuple) -> str:
    return hashlib.sha256((previous + json.dumps(list(row), default=str)).encode()).hexdigest()


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAGDECK_DATA_DIR": str(data_dir)}
    code = "from ragdeck.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
    )


@contextlib.contextmanager
def _raw(path: Path):
    """A plain SQLite connection with the append-only triggers dropped, as a tamperer would."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        db.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        yield db
    finally:
        db.close()


@pytest.fixture
def written(data_dir: Path) -> Path:
    settings = Settings()
    log = SqliteAuditLog(settings.state_db, key_file=settings.audit_key_path)
    for n in range(5):
        audit.record("olga", "index.swap", f"rag_chunks_v{n}", {"n": n}, {"n": n + 1}, log=log)
    return settings.state_db


def _cut_tail(db_path: Path) -> None:
    with _raw(db_path) as db:
        db.execute("DELETE FROM audit_log WHERE id >= 4")


def _delete_rows(db_path: Path) -> None:
    with _raw(db_path) as db:
        db.execute("DELETE FROM audit_log")


def _delete_file(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def _edit_row(db_path: Path) -> None:
    with _raw(db_path) as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 2")


def _recompute_chain(db_path: Path) -> None:
    """Edit row 2, then re-chain every digest from it on (SHA-256, as the unkeyed chain was made)."""
    with _raw(db_path) as db:
        db.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2")
        previous = db.execute("SELECT digest FROM audit_log WHERE id = 1").fetchone()[0]
        for row_id, *values in db.execute(f"SELECT id, {COLUMNS} FROM audit_log WHERE id >= 2 ORDER BY id"):
            previous = _sha_chain(previous, tuple(values))
            db.execute("UPDATE audit_log SET digest = ? WHERE id = ?", (previous, row_id))


def _append_forged(db_path: Path) -> None:
    with _raw(db_path) as db:
        previous = db.execute("SELECT digest FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0]
        values = (1.0e9, "mallory", "operator", "index.swap", "rag_chunks", None, None, "", "ok")
        db.execute(
            f"INSERT INTO audit_log ({COLUMNS}, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, _sha_chain(previous, values)),
        )


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (_cut_tail, "entry 4: rows 4 to 5 are missing"),
        (_delete_rows, "entry 1: rows 1 to 5 are missing"),
        (_delete_file, "entry 1: rows 1 to 5 are missing"),
        (_edit_row, "entry 2: its digest does not match"),
        (_recompute_chain, "entry 2: its digest does not match"),
        (_append_forged, "entry 6: its digest does not match"),
    ],
    ids=["tail-cut", "rows-deleted", "file-deleted", "row-edited", "chain-recomputed", "row-appended"],
)
def test_every_tamper_fails_verify(written: Path, tamper: Callable[[Path], None], needle: str) -> None:
    intact = _verify(written.parent)
    assert intact.returncode == 0 and "audit log intact: 5 entries" in intact.stdout, intact.stderr
    tamper(written)
    result = _verify(written.parent)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("error: the audit log was altered outside ragdeck: ")
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_a_missing_key_or_head_fails_verify_and_a_missing_key_stops_new_entries(written: Path) -> None:
    settings = Settings()
    head = settings.audit_key_path.with_suffix(".head")
    saved = head.read_text()
    head.unlink()
    result = _verify(written.parent)
    assert result.returncode == 1 and "head record" in result.stderr
    head.write_text(saved.replace('"id": 5', '"id": 3'))  # an edited head fails its own seal
    assert "head record" in _verify(written.parent).stderr
    head.write_text(saved)
    assert _verify(written.parent).returncode == 0
    settings.audit_key_path.unlink()
    result = _verify(written.parent)
    assert result.returncode == 1 and "audit key file" in result.stderr
    with pytest.raises(Exception, match="restore it from your backup"):
        SqliteAuditLog(settings.state_db, key_file=settings.audit_key_path).append(
            actor="x", role="", action="a", target="t"
        )


def test_rows_from_before_the_key_are_adopted_and_still_guarded(tmp_path: Path) -> None:
    """A log written by a ragdeck that chained rows with plain SHA-256 is sealed as it is when the key is
    made; re-chaining those rows afterwards is caught too (at the last adopted row, which the head seals)."""
    db_path = tmp_path / "ragdeck.sqlite3"
    SqliteAuditLog(db_path, key_file=tmp_path / "other" / "audit.key")  # makes the table; key elsewhere
    previous = "0" * 64
    with _raw(db_path) as db:
        for n in range(3):
            values = (1.0e9 + n, "old", "operator", "index.swap", f"t{n}", None, None, "", "ok")
            previous = _sha_chain(previous, values)
            db.execute(f"INSERT INTO audit_log ({COLUMNS}, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (*values, previous))  # fmt: skip
    log = SqliteAuditLog(db_path)  # the first open with this key adopts rows 1-3
    log.append(actor="new", role="operator", action="index.swap", target="t3")
    assert log.verify() is None
    _recompute_chain(db_path)
    broken = log.verify()
    assert broken is not None and broken.row == 3 and "sealed head record" in broken.problem
