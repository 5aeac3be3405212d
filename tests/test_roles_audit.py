"""Roles, the permission check, the append-only audit log, and who the console's user is."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
from pathlib import Path

import pytest
from pages import open_page
from streamlit.testing.v1 import AppTest

from ragdeck.console import audit
from ragdeck.console.roles import PERMISSIONS, Role, User, allowed, cli_user, require, role_for
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log
from ragdeck.errors import ConfigError, PermissionDenied
from ragdeck.login import login_role
from ragdeck.services.audit_log import SqliteAuditLog


@pytest.fixture
def log(tmp_path: Path) -> SqliteAuditLog:
    return SqliteAuditLog(tmp_path / "state.sqlite3")


def test_roles_are_ordered_and_parsed() -> None:
    assert Role.ANNOTATOR < Role.ENGINEER < Role.OPERATOR
    assert Role.parse(" Operator ") is Role.OPERATOR
    assert User("a", Role.OPERATOR).can(Role.ENGINEER)
    assert not User("a", Role.ANNOTATOR).can(Role.ENGINEER)
    with pytest.raises(ConfigError, match="annotator, engineer, operator"):
        Role.parse("admin")


def test_role_for_uses_the_mapping_then_the_default() -> None:
    settings = Settings(roles={"alice": "engineer"}, default_role="annotator")
    assert role_for("alice", settings) is Role.ENGINEER
    assert role_for("bob", settings) is Role.ANNOTATOR
    assert role_for("bob", Settings()) is Role.OPERATOR  # the single-user default
    assert role_for("bob", settings, default="operator") is Role.OPERATOR


def test_cli_user_from_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDECK_USER", "alice")
    monkeypatch.setenv("RAGDECK_ROLES", '{"alice": "engineer"}')
    user = cli_user()
    assert (user.name, user.role, user.source) == ("alice", Role.ENGINEER, "cli")


def test_login_role_prefers_settings_then_file_then_default() -> None:
    settings = Settings(roles={"carol": "annotator"})
    assert login_role("carol", settings, ["operator"]) is Role.ANNOTATOR
    assert login_role("dave", settings, ["engineer", "operator"]) is Role.OPERATOR
    assert login_role("dave", settings, "engineer") is Role.ENGINEER
    assert login_role("erin", settings, None) is Role.ANNOTATOR


def test_record_and_query(log: SqliteAuditLog) -> None:
    op = User("olga", Role.OPERATOR)
    first = audit.record(op, "index.swap", "rag_chunks", {"to": "v1"}, {"to": "v2"}, " gate passed ", log=log)
    audit.record("ci-bot", "snapshot.create", "rag_chunks_v2", log=log)
    assert first.role == "operator" and first.reason == "gate passed" and first.after == {"to": "v2"}
    assert [e.action for e in audit.entries(log=log)] == ["snapshot.create", "index.swap"]
    assert [e.id for e in audit.entries(actor="olga", log=log)] == [first.id]
    assert audit.entries(target="nothing", log=log) == []
    with pytest.raises(ValueError, match="outcome"):
        audit.record(op, "x", "y", outcome="maybe", log=log)


def test_log_is_append_only(log: SqliteAuditLog, tmp_path: Path) -> None:
    audit.record("olga", "index.swap", "rag_chunks", log=log)
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log")
    db.close()
    assert audit.entries(log=log)[0].actor == "olga"


def test_verify_finds_an_edit_made_around_the_triggers(log: SqliteAuditLog, tmp_path: Path) -> None:
    for n in range(3):
        audit.record("olga", "index.swap", f"t{n}", log=log)
    assert audit.verify(log=log) is None
    db = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE target = 't1'")
    db.close()
    broken = audit.verify(log=log)
    assert broken is not None and broken.row == 2 and "changed" in broken.problem


def test_concurrent_appends_keep_the_chain(log: SqliteAuditLog) -> None:
    def work(n: int) -> None:
        for i in range(10):
            audit.record(f"u{n}", "a", str(i), log=log)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(audit.entries(limit=None, log=log)) == 40
    assert audit.verify(log=log) is None


def test_require_denies_and_audits(log: SqliteAuditLog) -> None:
    require(User("olga", Role.OPERATOR), "index.swap", target="rag_chunks", log=log)
    assert audit.entries(log=log) == []
    with pytest.raises(PermissionDenied, match="needs operator"):
        require(User("eve", Role.ENGINEER), "index.swap", target="rag_chunks", log=log)
    (entry,) = audit.entries(log=log)
    assert (entry.actor, entry.role, entry.outcome) == ("eve", "engineer", "denied")
    assert entry.action == "index.swap" and entry.target == "rag_chunks"


def test_csv_and_jsonl_export(log: SqliteAuditLog) -> None:
    audit.record("olga", "index.swap", "rag_chunks", {"a": 1}, {"a": 2}, 'with "quotes", commas', log=log)
    rows = list(csv.DictReader(io.StringIO(audit.to_csv(audit.entries(log=log)))))
    assert rows[0]["before"] == '{"a": 1}' and rows[0]["reason"] == 'with "quotes", commas'
    assert tuple(rows[0]) == audit.CSV_COLUMNS
    assert audit.to_jsonl(audit.entries(log=log)).count("\n") == 1


def test_the_wired_log_is_in_the_state_db_sealed_by_a_key_apart(data_dir: Path) -> None:
    log = build_audit_log(Settings())
    assert build_audit_log(Settings()) is log  # once per process
    audit.record("olga", "x", "y", log=log)
    assert Settings().state_db.is_file()
    assert audit.entries(log=log)[0].actor == "olga"
    key = Settings().audit_key_path
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().strip() not in Settings().state_db.read_bytes().decode("latin-1")


def test_one_permission_table_covers_every_checked_action() -> None:
    """Every action the code checks is in PERMISSIONS (require raises KeyError otherwise)."""
    import re

    root = Path(__file__).parents[1] / "ragdeck"
    checked = set()
    for path in root.rglob("*.py"):
        checked |= set(re.findall(r'require\(\s*\w+,\s*"([a-z_.]+)"', path.read_text()))
    assert checked and checked <= set(PERMISSIONS), checked - set(PERMISSIONS)
    assert PERMISSIONS["eval.run"] is Role.ENGINEER and PERMISSIONS["index.swap"] is Role.OPERATOR
    assert not allowed(User("ann", Role.ANNOTATOR), "eval.run")
    assert allowed(User("eve", Role.ENGINEER), "eval.run")


# ---------------------------------------------------------------- the console's user


LOGIN_APP = str(Path(__file__).parent / "data" / "login_app.py")


def _who(at) -> str:
    return " ".join(m.value for m in at.markdown if m.value.startswith("user="))


def test_console_local_user_has_the_default_role(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDECK_USER", "solo")
    at = open_page()  # the whole console: app.py resolves the user before any page
    at.run()
    assert not at.exception
    caption = " ".join(c.value for c in at.sidebar.caption)
    assert "solo" in caption and "operator" in caption


def test_console_trusted_header(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ragdeck.login

    monkeypatch.setenv("RAGDECK_USER", "solo")
    monkeypatch.setenv("RAGDECK_AUTH_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("RAGDECK_ROLES", '{"ann": "annotator"}')
    monkeypatch.setattr(ragdeck.login, "request_header", lambda name: "ann")
    at = AppTest.from_file(LOGIN_APP, default_timeout=60).run()
    assert _who(at) == "user=solo role=operator source=local"  # the header is not trusted yet
    monkeypatch.setenv("RAGDECK_AUTH_TRUST_HEADER", "true")
    at.run()
    assert _who(at) == "user=ann role=annotator source=header"
    monkeypatch.setattr(ragdeck.login, "request_header", lambda name: "newcomer")
    at.run()
    assert _who(at) == "user=newcomer role=annotator source=header"  # login_default_role
    monkeypatch.setattr(ragdeck.login, "request_header", lambda name: "")
    at.run()
    assert "X-Forwarded-User" in at.error[0].value and _who(at) == ""  # no header: refused


def test_console_login(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit_authenticator as stauth

    hashed = stauth.Hasher.hash("s3cret-pw")
    creds = tmp_path / "users.yaml"
    creds.write_text(
        "credentials:\n  usernames:\n"
        f"    olga:\n      name: Olga\n      password: '{hashed}'\n      roles: [operator]\n"
        f"    ed:\n      name: Ed\n      password: '{hashed}'\n      roles: [engineer]\n"
    )
    monkeypatch.setenv("RAGDECK_AUTH_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("RAGDECK_AUTH_COOKIE_KEY", "k" * 40)
    at = AppTest.from_file(LOGIN_APP, default_timeout=60).run()
    assert not at.exception
    assert [t.label for t in at.text_input][:2] == ["Username", "Password"]
    assert "Sign in" in at.info[0].value and _who(at) == ""
    at.text_input[0].input("ed")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert "Wrong user name or password" in at.error[0].value and _who(at) == ""
    at.text_input[0].input("ed")
    at.text_input[1].input("s3cret-pw")
    at.button[0].click().run()
    assert not at.exception
    assert _who(at) == "user=ed role=engineer source=login"
    at.sidebar.button[0].click().run()  # Log out
    assert _who(at) == "" and [t.label for t in at.text_input][:2] == ["Username", "Password"]


def test_login_without_cookie_key_says_what_to_set(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    creds = tmp_path / "users.yaml"
    creds.write_text("credentials:\n  usernames:\n    ed:\n      password: x\n")
    monkeypatch.setenv("RAGDECK_AUTH_CREDENTIALS_FILE", str(creds))
    at = AppTest.from_file(LOGIN_APP, default_timeout=60).run()
    assert "RAGDECK_AUTH_COOKIE_KEY" in str(at.exception[0].value)


def test_an_annotator_cannot_start_an_eval_run_and_the_attempt_is_audited(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from cli_runner import assert_one_line_error, run_cli

    monkeypatch.setenv("RAGDECK_USER", "ann")
    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "annotator")
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--set", "demo_gold.jsonl")
    assert_one_line_error(code, err, "ann has role annotator", "'eval.run' needs engineer")
    (entry,) = audit.entries(log=build_audit_log(Settings()))
    assert (entry.actor, entry.action, entry.outcome) == ("ann", "eval.run", "denied")
    assert entry.target == "demo_gold.jsonl"
