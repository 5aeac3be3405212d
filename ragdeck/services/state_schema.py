"""The state database's schema: its version and the named steps that migrate it forward, in one place.

Every store of the shared state database (``ragdeck.sqlite3``: annotations, eval runs, audit log, feedback,
index registry, routing state, policy overrides, HNSW sweeps) opens it with ``open_state``, which brings the
file to the newest version this code knows before the store touches it. Stores hold no DDL of their own: a
table, index or trigger changes only by a new step appended to ``MIGRATIONS``.

The version is SQLite's ``PRAGMA user_version`` (an integer in the file header), not a ``schema_migrations``
table, because:

- it is written in the same transaction as the step it records, so a step and its version number commit or
  roll back together, and no table can ever disagree with it;
- it can be read before any table exists, so the first question, "which schema is this?", has one answer on
  a new file (0), on a file made before versioning (0: SQLite's default, which ragdeck 0.1.0 never set) and on
  a file from a newer ragdeck (a number above ``latest_version()``);
- copies made with SQLite's backup API, ``.backup`` or ``VACUUM INTO`` keep it, as they keep the tables.

A table would add a table to the schema it describes (its own creation a migration, missing from older
files) and a second source of truth. The file is ragdeck's alone, so nothing else writes ``user_version``.

Rules for a step (``Migration``): version ``N`` is the list's ``N``-th entry; its ``name`` says what it does
and never changes; it runs only on a file at version ``N - 1``, inside one ``BEGIN IMMEDIATE`` transaction
together with ``PRAGMA user_version = N``, so it is applied once and entirely, or not at all (a failure leaves
the file at ``N - 1`` and raises ``StateMigrationFailed``). A released step is never edited: fix it with a
new one. Write DDL idempotently anyway (``IF NOT EXISTS``), as step 1 must. ``foreign_keys`` is off on these
connections, so a step may rebuild a table (create new, copy, drop old, rename) within its transaction.

Step 1, ``baseline_0_1_0``, is the schema ragdeck 0.1.0's stores created (the same tables, columns,
indexes and triggers; the tests compare them with a 0.1.0 file), each statement ``IF NOT EXISTS``: a new file
gets every table, and a file made before versioning (some or all of these tables, version 0) is adopted as
version 1 without touching a row, once each table it already has is found to hold every column the baseline
declares (else the step fails and nothing is written).

Step 2, ``add_hnsw_sweeps``, adds ``hnsw_sweeps`` (one row per sweep: its request and queries, status, owner)
and ``hnsw_sweep_points`` (one row per measured (m, ef_construct, ef)), so a partial sweep survives a restart.
Step 3 keeps the API's response ids (``kv_entries``) and one vote per response id. Step 4 gives alias moves a
``state`` ('pending' until the alias moved, then 'done') and the writing process (host, pid).

Several processes may open one file at once (console and API): the first to take the write lock migrates;
the others wait for it (up to the store's busy timeout), read the version again inside their own lock and
find nothing left to do. A file whose version is above ``latest_version()`` is refused with
``StateSchemaTooNew`` before anything is written.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragdeck import __version__
from ragdeck.errors import ConfigError, RagdeckError, ServiceUnavailable
from ragdeck.services.sqlite_db import SqliteFile

__all__ = [
    "MIGRATIONS",
    "Migration",
    "StateMigrationFailed",
    "StateSchemaTooNew",
    "check_not_newer",
    "latest_version",
    "migrate",
    "open_state",
    "schema_version",
]


class StateSchemaTooNew(ConfigError):
    """The state database was written by a newer ragdeck (its schema version is unknown to this one)."""


class StateMigrationFailed(ServiceUnavailable):
    """A migration step failed; it was rolled back and the file stays at the version before it."""


@dataclass(frozen=True)
class Migration:
    """One named step from version ``version - 1`` to ``version``: its SQL statements, then ``run`` (Python,
    for what SQL alone cannot do: data rewrites, checks), in the caller's transaction."""

    version: int
    name: str
    statements: tuple[str, ...] = ()
    run: Callable[[sqlite3.Connection], None] | None = None

    def apply(self, db: sqlite3.Connection) -> None:
        """Run the step on ``db`` (inside a transaction the caller commits or rolls back)."""
        for statement in self.statements:
            db.execute(statement)
        if self.run is not None:
            self.run(db)


# ---------------------------------------------------------------- step 1: the schema of ragdeck 0.1.0

_ANNOTATIONS = (
    """CREATE TABLE IF NOT EXISTS ann_questions (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, question TEXT NOT NULL, norm TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL, draft INTEGER NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL,
        created_by TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ann_labels (
        question_id TEXT NOT NULL, annotator TEXT NOT NULL, chunk_id TEXT NOT NULL,
        relevance INTEGER NOT NULL CHECK (relevance IN (0, 1, 2)), doc_id TEXT, span_start INTEGER,
        span_end INTEGER, updated_at REAL NOT NULL, PRIMARY KEY (question_id, annotator, chunk_id))""",
    """CREATE TABLE IF NOT EXISTS ann_answers (
        question_id TEXT NOT NULL, annotator TEXT NOT NULL, reference_answer TEXT NOT NULL,
        status TEXT NOT NULL, note TEXT NOT NULL, updated_at REAL NOT NULL,
        PRIMARY KEY (question_id, annotator))""",
    """CREATE TABLE IF NOT EXISTS ann_assignments (
        question_id TEXT NOT NULL, annotator TEXT NOT NULL, assigned_by TEXT NOT NULL,
        assigned_at REAL NOT NULL, PRIMARY KEY (question_id, annotator))""",
    """CREATE TABLE IF NOT EXISTS ann_adjudications (
        question_id TEXT NOT NULL, chunk_id TEXT NOT NULL,
        relevance INTEGER NOT NULL CHECK (relevance IN (0, 1, 2)), doc_id TEXT, span_start INTEGER,
        span_end INTEGER, adjudicator TEXT NOT NULL, reason TEXT NOT NULL, ts REAL NOT NULL,
        PRIMARY KEY (question_id, chunk_id))""",
    """CREATE TABLE IF NOT EXISTS ann_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        undoes INTEGER)""",
    """CREATE TABLE IF NOT EXISTS ann_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, change_id INTEGER NOT NULL, tbl TEXT NOT NULL,
        key TEXT NOT NULL, question_id TEXT, before TEXT, after TEXT)""",
    "CREATE INDEX IF NOT EXISTS ann_labels_annotator ON ann_labels (annotator, question_id)",
    "CREATE INDEX IF NOT EXISTS ann_changes_actor ON ann_changes (actor, id)",
    "CREATE INDEX IF NOT EXISTS ann_changes_undoes ON ann_changes (undoes)",
    "CREATE INDEX IF NOT EXISTS ann_history_change ON ann_history (change_id)",
)

_EVAL_RUNS = (
    """CREATE TABLE IF NOT EXISTS eval_runs (
        run_id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL, status TEXT NOT NULL,
        set_name TEXT NOT NULL, set_hash TEXT NOT NULL, collection TEXT NOT NULL, total INTEGER NOT NULL,
        config TEXT NOT NULL, summary TEXT, error TEXT)""",
    """CREATE TABLE IF NOT EXISTS eval_results (
        run_id TEXT NOT NULL REFERENCES eval_runs(run_id) ON DELETE CASCADE, query_id TEXT NOT NULL,
        position INTEGER NOT NULL, ok INTEGER NOT NULL, result TEXT NOT NULL, saved_at REAL NOT NULL,
        PRIMARY KEY (run_id, query_id))""",
    "CREATE INDEX IF NOT EXISTS eval_runs_by_set ON eval_runs (set_name, created_at)",
)

_AUDIT = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, before TEXT, after TEXT, reason TEXT NOT NULL,
        outcome TEXT NOT NULL, digest TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be changed'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted'); END""",
    "CREATE INDEX IF NOT EXISTS audit_log_by_action ON audit_log (action, at)",
)

_FEEDBACK = (
    """CREATE TABLE IF NOT EXISTS feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, response_id TEXT NOT NULL,
        policy TEXT NOT NULL, vote TEXT NOT NULL CHECK (vote IN ('up', 'down')), comment TEXT)""",
    "CREATE INDEX IF NOT EXISTS feedback_policy ON feedback (policy, ts)",
)

_INDEX_REGISTRY = (
    """CREATE TABLE IF NOT EXISTS index_versions (
        collection TEXT PRIMARY KEY, alias TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL, created_by TEXT NOT NULL,
        spec TEXT NOT NULL, corpus_hash TEXT, points INTEGER, host TEXT, pid INTEGER, heartbeat_at REAL,
        progress TEXT, gate TEXT, cleared_by_run TEXT, error TEXT)""",
    """CREATE TABLE IF NOT EXISTS index_alias_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL,
        from_collection TEXT, to_collection TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS index_versions_by_alias ON index_versions (alias, version)",
    "CREATE INDEX IF NOT EXISTS index_alias_events_by_alias ON index_alias_events (alias, id)",
)

_ROUTING = (
    """CREATE TABLE IF NOT EXISTS weights (
        policy TEXT PRIMARY KEY, weight REAL NOT NULL, actor TEXT NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS thresholds (
        name TEXT PRIMARY KEY, value REAL NOT NULL, actor TEXT NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL)""",
)

_POLICY_OVERRIDES = (
    """CREATE TABLE IF NOT EXISTS policy_overrides (
        policy TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, actor TEXT NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (policy, field))""",
)

BASELINE = (
    *_ANNOTATIONS,
    *_EVAL_RUNS,
    *_AUDIT,
    *_FEEDBACK,
    *_INDEX_REGISTRY,
    *_ROUTING,
    *_POLICY_OVERRIDES,
)


def _columns(db: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in db.execute("SELECT * FROM pragma_table_info(?)", (t,))} for t in tables}


def _baseline(db: sqlite3.Connection) -> None:
    """Create what is missing of ``BASELINE``, after checking that the tables already there (a file made
    before versioning) have every column the baseline declares: such a file is adopted as it is."""
    with contextlib.closing(sqlite3.connect(":memory:")) as fresh:
        for statement in BASELINE:
            fresh.execute(statement)
        wanted = _columns(fresh)
    found = _columns(db)
    for table, columns in sorted(wanted.items()):
        missing = sorted(columns - found[table]) if table in found else []
        if missing:
            raise RagdeckError(
                f"table {table} lacks the columns {', '.join(missing)} of schema version 1: this file was "
                "not made by ragdeck 0.1.0 or later; move it out of the data directory (RAGDECK_DATA_DIR) "
                "and start with a new one"
            )
    for statement in BASELINE:
        db.execute(statement)


# ---------------------------------------------------------------- step 2: HNSW sweeps that survive a restart

_HNSW_SWEEPS = (
    """CREATE TABLE IF NOT EXISTS hnsw_sweeps (
        sweep_id TEXT PRIMARY KEY, collection TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, created_by TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
        planned INTEGER NOT NULL, elapsed_s REAL NOT NULL, request TEXT NOT NULL, queries BLOB NOT NULL,
        error TEXT)""",
    """CREATE TABLE IF NOT EXISTS hnsw_sweep_points (
        sweep_id TEXT NOT NULL REFERENCES hnsw_sweeps(sweep_id) ON DELETE CASCADE, m INTEGER NOT NULL,
        ef_construct INTEGER NOT NULL, ef INTEGER NOT NULL, result TEXT NOT NULL, measured_at REAL NOT NULL,
        PRIMARY KEY (sweep_id, m, ef_construct, ef))""",
    "CREATE INDEX IF NOT EXISTS hnsw_sweeps_by_collection ON hnsw_sweeps (collection, updated_at)",
)

# ---------------------------------------------------------------- step 3: durable response ids, one vote each

_RESPONSES_AND_ONE_VOTE = (
    # Values with an expiry that outlive a process (services.kv.SqliteKV): the API's issued response ids.
    """CREATE TABLE IF NOT EXISTS kv_entries (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)""",
    "CREATE INDEX IF NOT EXISTS kv_entries_expiry ON kv_entries (expires_at)",
    # One vote per response id: keep the latest of any earlier duplicates, then let the index hold the rule.
    "DELETE FROM feedback WHERE id NOT IN (SELECT MAX(id) FROM feedback GROUP BY response_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS feedback_one_vote ON feedback (response_id)",
    "CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (ts)",
)

# ---------------------------------------------------------------- step 4: alias moves noted before they move

_PENDING_ALIAS_MOVES = (
    # A move is written as 'pending' (with its process) before aliases change and marked 'done' after, so
    # a process killed between the two leaves a row the next move settles against the alias it finds.
    "ALTER TABLE index_alias_events ADD COLUMN state TEXT NOT NULL DEFAULT 'done'",
    "ALTER TABLE index_alias_events ADD COLUMN host TEXT",
    "ALTER TABLE index_alias_events ADD COLUMN pid INTEGER",
)

# ---------------------------------------------------------------- step 5: draft policies from studies

_POLICY_DRAFTS = (
    # A configuration a retrieval study chose, kept by name until someone tries it as the canary.
    """CREATE TABLE IF NOT EXISTS policy_drafts (
        name TEXT PRIMARY KEY, knobs TEXT NOT NULL, study_id TEXT, summary TEXT NOT NULL,
        created_by TEXT NOT NULL, created_at REAL NOT NULL)""",
    # Each time a draft's knobs became a policy's overrides: what those fields held before, for the undo.
    """CREATE TABLE IF NOT EXISTS policy_draft_applications (
        id INTEGER PRIMARY KEY AUTOINCREMENT, draft TEXT NOT NULL, study_id TEXT, policy TEXT NOT NULL,
        knobs TEXT NOT NULL, previous TEXT NOT NULL, applied_by TEXT NOT NULL, applied_at REAL NOT NULL,
        undone_by TEXT, undone_at REAL)""",
    "CREATE INDEX IF NOT EXISTS policy_draft_applications_by_policy "
    "ON policy_draft_applications (policy, id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline_0_1_0", run=_baseline),
    Migration(2, "add_hnsw_sweeps", _HNSW_SWEEPS),
    Migration(3, "add_kv_entries_and_one_vote_per_response", _RESPONSES_AND_ONE_VOTE),
    Migration(4, "add_pending_alias_moves", _PENDING_ALIAS_MOVES),
    Migration(5, "add_policy_drafts", _POLICY_DRAFTS),
    # Append new steps here: Migration(6, "verb_what", ("ALTER TABLE ...",)); never edit a released one.
)

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _steps() -> tuple[Migration, ...]:
    """``MIGRATIONS``, checked: versions 1, 2, ... in order, names unique snake_case (else a bug)."""
    steps = MIGRATIONS
    names = [step.name for step in steps]
    if [step.version for step in steps] != list(range(1, len(steps) + 1)) or len(set(names)) != len(names):
        raise RuntimeError(f"state migrations must be numbered 1, 2, ... with unique names, got {steps!r}")
    bad = [name for name in names if not _NAME.fullmatch(name)]
    if bad:
        raise RuntimeError(f"state migration names must be snake_case, got {bad}")
    return steps


def latest_version() -> int:
    """The newest schema version this code knows."""
    return len(_steps())


def check_not_newer(path: Path | str, found: int) -> None:
    """StateSchemaTooNew when ``found`` (the file's version) is above ``latest_version()``."""
    latest = latest_version()
    if found > latest:
        raise StateSchemaTooNew(
            f"state database {path} has schema version {found}, but this ragdeck ({__version__}) knows "
            f"versions up to {latest}: a newer ragdeck wrote it. Upgrade ragdeck to use this data directory "
            "(or point RAGDECK_DATA_DIR at another one); nothing in the file was changed"
        )


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def schema_version(file: SqliteFile) -> int:
    """The file's schema version as recorded (0: new, or made before versioning)."""
    with file.connect() as db:
        return _version(db)


def migrate(file: SqliteFile) -> tuple[int, int]:
    """Bring ``file`` to ``latest_version()``, one step per transaction; returns (version found, version now).

    A file already at the latest version costs one header read. StateSchemaTooNew for a newer file;
    StateMigrationFailed (the failed step rolled back) when a step raises; StoreBusy when another writer
    holds the lock past the busy timeout.
    """
    steps = _steps()
    found = schema_version(file)
    check_not_newer(file.path, found)
    current = found
    while current < len(steps):
        with file.connect(write=True) as db:  # BEGIN IMMEDIATE: one migrator at a time
            current = _version(db)  # another process may have migrated while this one waited
            check_not_newer(file.path, current)
            if current >= len(steps):
                break
            step = steps[current]
            try:
                step.apply(db)
            except Exception as exc:
                raise StateMigrationFailed(
                    f"state database {file.path}: migration step {step.version} ({step.name}) failed and was "
                    f"rolled back, the file stays at schema version {current}: {exc}"
                ) from exc
            db.execute(f"PRAGMA user_version = {step.version:d}")
            current = step.version
    return found, current


def open_state(path: Path | str, component: str, *, busy_timeout_s: float = 10.0) -> SqliteFile:
    """The state database at ``path`` for ``component`` (named in errors), migrated to the latest version."""
    file = SqliteFile(path, component, busy_timeout_s=busy_timeout_s)
    migrate(file)
    return file
