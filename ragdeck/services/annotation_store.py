"""Annotation store: questions, per-annotator labels and answers, assignments, adjudications and an
append-only change history, in the shared SQLite state database (WAL), every table prefixed ``ann_``.

Several annotators (threads or processes) may write at once: each call opens a short connection, writes take
the write lock up front (``BEGIN IMMEDIATE``, waiting up to ``busy_timeout_s``; past it ``StoreBusy``) and
commit with ``synchronous=FULL``, so a call that returned has its change on disk and survives a crash.

Every change is logged in ``ann_changes`` (who, what, when) and ``ann_history`` (one row per touched record,
with its value before and after); ``undo(actor)`` writes the "before" values of that actor's newest change
that is not yet undone, as a new change, so history stays append-only and repeated undos walk back.

Relevance: 0 = not relevant (judged "no"), 1 = partly relevant, 2 = relevant; a chunk with no label is
unjudged. Statuses per annotator and question: open, done, skipped, flagged (in ``ann_answers``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import random
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError, ServiceUnavailable, StoreBusy
from ragdeck.services.sqlite_db import SqliteFile
from ragdeck.services.text import normalize_question
from ragdeck.services.types import ComponentHealth

__all__ = [
    "RELEVANCE",
    "SOURCES",
    "STATUSES",
    "Adjudication",
    "AnnotationStore",
    "Answer",
    "Change",
    "ChunkSpan",
    "GoldQuestion",
    "Label",
    "OverlapPlan",
    "Progress",
    "Question",
    "majority_grade",
    "normalize_question",
]

RELEVANCE = {0: "not relevant", 1: "partly relevant", 2: "relevant"}
SOURCES = ("imported", "typed", "generated")
STATUSES = ("open", "done", "skipped", "flagged")
COMPONENT = "annotation store"

# Table -> (key columns, value columns). Every write goes through ``_Change.write`` with these.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ann_questions": (
        ("id",),
        ("seq", "question", "norm", "source", "draft", "tags", "created_at", "created_by"),
    ),
    "ann_labels": (
        ("question_id", "annotator", "chunk_id"),
        ("relevance", "doc_id", "span_start", "span_end", "updated_at"),
    ),
    "ann_answers": (("question_id", "annotator"), ("reference_answer", "status", "note", "updated_at")),
    "ann_assignments": (("question_id", "annotator"), ("assigned_by", "assigned_at")),
    "ann_adjudications": (
        ("question_id", "chunk_id"),
        ("relevance", "doc_id", "span_start", "span_end", "adjudicator", "reason", "ts"),
    ),
}
# Columns that change on every write; a write whose other values are unchanged is not a change.
VOLATILE = frozenset({"updated_at", "assigned_at", "ts"})

SCHEMA = (
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


def majority_grade(grades: Sequence[int]) -> int:
    """The highest grade g that more than half of ``grades`` reach (≥ g), else 0.

    One annotator: their own grade. Two: the lower of the two (both must call a chunk relevant for it to be
    gold). [2, 2, 1] → 2; [2, 1, 0] → 1; [2, 0] → 0; no grades → 0.
    """
    for grade in (2, 1):
        if sum(1 for g in grades if g >= grade) * 2 > len(grades):
            return grade
    return 0


@dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk's text lies in its source document: characters ``start:end`` of ``doc_id``."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    source: str
    draft: bool
    tags: tuple[str, ...]
    created_at: float
    created_by: str


@dataclass(frozen=True)
class Label:
    question_id: str
    annotator: str
    chunk_id: str
    relevance: int
    span: ChunkSpan | None
    updated_at: float


@dataclass(frozen=True)
class Answer:
    question_id: str
    annotator: str
    reference_answer: str
    status: str
    note: str
    updated_at: float


@dataclass(frozen=True)
class Adjudication:
    question_id: str
    chunk_id: str
    relevance: int
    adjudicator: str
    reason: str
    ts: float
    span: ChunkSpan | None


@dataclass(frozen=True)
class Progress:
    """One annotator's counts over the non-draft questions (``open`` = total − done − skipped − flagged)."""

    annotator: str
    total: int
    done: int
    skipped: int
    flagged: int
    open: int
    labelled: int
    assigned: int
    assigned_open: int


@dataclass(frozen=True)
class OverlapPlan:
    """What ``overlap_sample`` assigned: the overlap questions and each annotator's new questions."""

    overlap: tuple[str, ...]
    assignments: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Change:
    """One logged change: ``undoes`` names the change an undo reverted; ``question_ids`` it touched."""

    id: int
    ts: float
    actor: str
    action: str
    undoes: int | None
    question_ids: tuple[str, ...]


@dataclass(frozen=True)
class GoldQuestion:
    """One question's gold as ``export_gold`` derives it (see there for the rules)."""

    question_id: str
    question: str
    gold_chunk_ids: tuple[str, ...]
    relevance: dict[str, int]
    spans: dict[str, ChunkSpan]
    reference_answer: str
    annotators: tuple[str, ...]
    adjudicated: tuple[str, ...]
    flagged_by: tuple[str, ...]
    tags: tuple[str, ...] = ()
    source: str = "typed"
    answers: dict[str, str] = field(default_factory=dict)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _relevance(value: object) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        grade = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        grade = -1
    if grade not in RELEVANCE:
        raise InputError(
            f"relevance must be 0 (not relevant), 1 (partly relevant) or 2 (relevant), got {value!r}"
        )
    return grade


def _span(value: object) -> ChunkSpan | None:
    """A ChunkSpan from a ChunkSpan, a (doc_id, start, end) tuple or a mapping with those keys; or None."""
    if value is None or isinstance(value, ChunkSpan):
        span = value
    elif isinstance(value, Mapping):
        span = ChunkSpan(value.get("doc_id"), value.get("start"), value.get("end"))  # type: ignore[arg-type]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        span = ChunkSpan(*value)
    else:
        raise InputError(f"span must be (doc_id, start, end), got {value!r}")
    if span is None:
        return None
    ok = (
        isinstance(span.doc_id, str)
        and span.doc_id
        and all(isinstance(x, int) and not isinstance(x, bool) for x in (span.start, span.end))
    )
    if not ok or not 0 <= span.start <= span.end:
        raise InputError(f"span needs a document id and offsets 0 <= start <= end, got {value!r}")
    return span


def _span_of(row: Mapping[str, Any]) -> ChunkSpan | None:
    if row["doc_id"] is None:
        return None
    return ChunkSpan(row["doc_id"], row["span_start"], row["span_end"])


def _span_columns(span: ChunkSpan | None) -> dict[str, Any]:
    if span is None:
        return {"doc_id": None, "span_start": None, "span_end": None}
    return {"doc_id": span.doc_id, "span_start": span.start, "span_end": span.end}


def _same(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is b
    return {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }


def _get(db: sqlite3.Connection, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
    keys, values = TABLES[table]
    where = " AND ".join(f"{k} = ?" for k in keys)
    row = db.execute(
        f"SELECT {', '.join(values)} FROM {table} WHERE {where}", [key[k] for k in keys]
    ).fetchone()
    return None if row is None else dict(zip(values, row, strict=True))


def _put(
    db: sqlite3.Connection, table: str, key: Mapping[str, Any], values: Mapping[str, Any] | None
) -> None:
    keys, columns = TABLES[table]
    if values is None:
        db.execute(
            f"DELETE FROM {table} WHERE {' AND '.join(f'{k} = ?' for k in keys)}", [key[k] for k in keys]
        )
        return
    names = (*keys, *columns)
    db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns)}",
        [key[k] for k in keys] + [values[c] for c in columns],
    )


class _Change:
    """Writes of one call: the ``ann_changes`` row is created on the first real write (or by ``ensure``)."""

    def __init__(self, db: sqlite3.Connection, actor: str, action: str, undoes: int | None = None) -> None:
        self.db, self.actor, self.action, self.undoes = db, actor, action, undoes
        self.id: int | None = None
        self.ts = time.time()

    def ensure(self) -> int:
        if self.id is None:
            cursor = self.db.execute(
                "INSERT INTO ann_changes (ts, actor, action, undoes) VALUES (?, ?, ?, ?)",
                (self.ts, self.actor, self.action, self.undoes),
            )
            self.id = int(cursor.lastrowid or 0)
        return self.id

    def write(self, table: str, key: Mapping[str, Any], values: Mapping[str, Any] | None) -> bool:
        """Set one record (None deletes it) and log it; False when nothing but timestamps would change."""
        before = _get(self.db, table, key)
        if _same(before, values):
            return False
        _put(self.db, table, key, values)
        question_id = key.get("question_id", key.get("id"))
        self.db.execute(
            "INSERT INTO ann_history (change_id, tbl, key, question_id, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.ensure(),
                table,
                json.dumps(dict(key), sort_keys=True),
                question_id,
                None if before is None else json.dumps(before, sort_keys=True),
                None if values is None else json.dumps(dict(values), sort_keys=True),
            ),
        )
        return True


class AnnotationStore:
    """The annotation workspace in a SQLite file (usually ``Settings().state_db``, shared with other tables).

    Safe to share across threads and processes (one short connection per call). Bad input raises
    InputError; a database locked past ``busy_timeout_s`` raises StoreBusy; an unusable file raises
    ServiceUnavailable.
    """

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.file = SqliteFile(path, COMPONENT, busy_timeout_s=busy_timeout_s)
        self.path = self.file.path
        self.busy_timeout_s = busy_timeout_s
        with self._db(write=True) as db:
            for statement in SCHEMA:
                db.execute(statement)

    # ------------------------------------------------------------------ connections

    def _db(
        self, write: bool = False, read_tx: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection; ``write``: in BEGIN IMMEDIATE with synchronous=FULL; ``read_tx``: one snapshot."""
        return self.file.connect(write=write, read_tx=read_tx)

    @staticmethod
    def _require_question(db: sqlite3.Connection, question_id: object) -> dict[str, Any]:
        row = _get(db, "ann_questions", {"id": question_id}) if isinstance(question_id, str) else None
        if row is None:
            raise InputError(f"unknown question id {question_id!r}: add the question first (add_questions)")
        return row

    # ------------------------------------------------------------------ questions

    def add_questions(self, items: Iterable[str | Mapping[str, Any]], source: str, actor: str) -> list[str]:
        """Add questions; returns one id per item, in order. Deduped by ``normalize_question``.

        An item is the question text or a mapping with ``question`` and optional ``id``, ``tags`` and
        ``draft``. A question already in the store (or earlier in ``items``) returns the existing id and is
        not added again. Ids default to ``q-`` + 12 hex digits of the normalised text's SHA-256. Questions
        from ``source="generated"`` are drafts until a person accepts them (``accept_draft``).
        """
        if source not in SOURCES:
            raise InputError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        actor = _name(actor, "actor")
        if isinstance(items, str | Mapping):
            raise InputError("add_questions takes a list of questions, not a single one: wrap it in a list")
        parsed = []
        for i, item in enumerate(items):
            data = {"question": item} if isinstance(item, str) else dict(item)
            text = data.get("question")
            if not isinstance(text, str) or not normalize_question(text):
                raise InputError(f"item {i}: question must be non-empty text, got {text!r}")
            tags = data.get("tags") or ()
            if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
                raise InputError(f"item {i}: tags must be a list of strings, got {tags!r}")
            given = data.get("id")
            if given is not None:
                _name(given, f"item {i}: id")
            parsed.append((text.strip(), given, tuple(tags), bool(data.get("draft", source == "generated"))))
        ids: list[str] = []
        with self._db(write=True) as db:
            change = _Change(db, actor, "add_questions")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM ann_questions").fetchone()[0]
            for i, (text, given, tags, draft) in enumerate(parsed):
                norm = normalize_question(text)
                row = db.execute("SELECT id FROM ann_questions WHERE norm = ?", (norm,)).fetchone()
                if row is not None:
                    ids.append(row[0])
                    continue
                qid = given.strip() if given else "q-" + hashlib.sha256(norm.encode()).hexdigest()[:12]
                if _get(db, "ann_questions", {"id": qid}) is not None:
                    raise InputError(
                        f"item {i}: id {qid!r} already names another question; choose another id"
                    )
                seq += 1
                values = {
                    "seq": seq,
                    "question": text,
                    "norm": norm,
                    "source": source,
                    "draft": int(draft),
                    "tags": json.dumps(list(tags)),
                    "created_at": change.ts,
                    "created_by": actor,
                }
                change.write("ann_questions", {"id": qid}, values)
                ids.append(qid)
        return ids

    @staticmethod
    def _question(row: Mapping[str, Any]) -> Question:
        return Question(
            id=row["id"],
            question=row["question"],
            source=row["source"],
            draft=bool(row["draft"]),
            tags=tuple(json.loads(row["tags"])),
            created_at=row["created_at"],
            created_by=row["created_by"],
        )

    def questions(self, *, include_drafts: bool = True) -> list[Question]:
        """Every question in the order it was added."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM ann_questions WHERE draft = 0 OR ? ORDER BY seq", (include_drafts,)
            ).fetchall()
        return [self._question(row) for row in rows]

    def question(self, question_id: str) -> Question:
        """One question; InputError when unknown."""
        with self._db() as db:
            row = self._require_question(db, question_id)
        return self._question({"id": question_id, **row})

    def accept_draft(self, question_id: str, actor: str, question: str | None = None) -> Question:
        """A person accepts a generated draft (optionally edited); it then enters queues and exports."""
        actor = _name(actor, "actor")
        with self._db(write=True) as db:
            row = self._require_question(db, question_id)
            if question is not None:
                norm = normalize_question(question)
                if not norm:
                    raise InputError(
                        "the accepted question text is empty: type the question or discard the draft"
                    )
                other = db.execute(
                    "SELECT id FROM ann_questions WHERE norm = ? AND id != ?", (norm, question_id)
                ).fetchone()
                if other is not None:
                    raise InputError(f"question {other[0]!r} already asks this; discard the draft instead")
                row = {**row, "question": question.strip(), "norm": norm}
            _Change(db, actor, "accept_draft").write(
                "ann_questions", {"id": question_id}, {**row, "draft": 0}
            )
        return self.question(question_id)

    def discard_draft(self, question_id: str, actor: str) -> None:
        """Delete a draft question and anything recorded on it (undo restores all of it)."""
        actor = _name(actor, "actor")
        with self._db(write=True) as db:
            if not self._require_question(db, question_id)["draft"]:
                raise InputError(f"question {question_id!r} is not a draft: only drafts can be discarded")
            change = _Change(db, actor, "discard_draft")
            for table, (keys, _) in TABLES.items():
                if table == "ann_questions":
                    continue
                rows = db.execute(
                    f"SELECT {', '.join(keys)} FROM {table} WHERE question_id = ?", (question_id,)
                )
                for key in rows.fetchall():
                    change.write(table, dict(zip(keys, key, strict=True)), None)
            change.write("ann_questions", {"id": question_id}, None)

    # ------------------------------------------------------------------ labels and answers

    def set_label(
        self,
        question_id: str,
        annotator: str,
        chunk_id: str,
        relevance: int,
        span: ChunkSpan | tuple[str, int, int] | Mapping[str, Any] | None = None,
    ) -> Label:
        """Save one annotator's relevance (0/1/2) for a chunk on a question, with the chunk's source span.

        Durable when it returns. ``span=None`` keeps a span saved earlier for the same label.
        """
        annotator, chunk_id = _name(annotator, "annotator"), _name(chunk_id, "chunk id")
        grade, chunk_span = _relevance(relevance), _span(span)
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator, "chunk_id": chunk_id}
            before = _get(db, "ann_labels", key)
            spans = _span_columns(chunk_span)
            if chunk_span is None and before is not None:
                spans = {k: before[k] for k in ("doc_id", "span_start", "span_end")}
            change = _Change(db, annotator, "set_label")
            values = {"relevance": grade, **spans, "updated_at": change.ts}
            if not change.write("ann_labels", key, values) and before is not None:
                values["updated_at"] = before["updated_at"]  # unchanged: keeps its saved time
        return Label(question_id, annotator, chunk_id, grade, _span_of(values), values["updated_at"])

    def clear_label(self, question_id: str, annotator: str, chunk_id: str) -> bool:
        """Remove a label (the chunk becomes unjudged); False when there was none."""
        annotator = _name(annotator, "annotator")
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator, "chunk_id": chunk_id}
            return _Change(db, annotator, "clear_label").write("ann_labels", key, None)

    def labels(self, question_id: str | None = None, annotator: str | None = None) -> list[Label]:
        """Labels, filtered by question and/or annotator; ordered by question, annotator, chunk id."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT l.* FROM ann_labels l JOIN ann_questions q ON q.id = l.question_id "
                "WHERE (?1 IS NULL OR l.question_id = ?1) AND (?2 IS NULL OR l.annotator = ?2) "
                "ORDER BY q.seq, l.annotator, l.chunk_id",
                (question_id, annotator),
            ).fetchall()
        return [
            Label(
                r["question_id"], r["annotator"], r["chunk_id"], r["relevance"], _span_of(r), r["updated_at"]
            )
            for r in rows
        ]

    def set_answer(
        self,
        question_id: str,
        annotator: str,
        text: str | None = None,
        status: str | None = None,
        note: str | None = None,
    ) -> Answer:
        """Save an annotator's reference answer, status (open/done/skipped/flagged) and note.

        A field left None keeps its saved value (a new record starts as "", "open", ""), so skipping or
        flagging never erases a typed answer.
        """
        annotator = _name(annotator, "annotator")
        if status is not None and status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        for what, value in (("answer", text), ("note", note)):
            if value is not None and not isinstance(value, str):
                raise InputError(f"{what} must be text, got {value!r}")
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator}
            old = _get(db, "ann_answers", key) or {"reference_answer": "", "status": "open", "note": ""}
            change = _Change(db, annotator, "set_answer")
            values = {
                "reference_answer": old["reference_answer"] if text is None else text,
                "status": old["status"] if status is None else status,
                "note": old["note"] if note is None else note,
                "updated_at": change.ts,
            }
            if not change.write("ann_answers", key, values) and "updated_at" in old:
                values["updated_at"] = old["updated_at"]
        return Answer(question_id, annotator, **values)

    def answers(self, question_id: str | None = None, annotator: str | None = None) -> list[Answer]:
        """Answers and statuses, filtered by question and/or annotator."""
        with self._db() as db:
            rows = db.execute(
                "SELECT a.question_id, a.annotator, a.reference_answer, a.status, a.note, a.updated_at "
                "FROM ann_answers a JOIN ann_questions q ON q.id = a.question_id "
                "WHERE (?1 IS NULL OR a.question_id = ?1) AND (?2 IS NULL OR a.annotator = ?2) "
                "ORDER BY q.seq, a.annotator",
                (question_id, annotator),
            ).fetchall()
        return [Answer(*row) for row in rows]

    def progress(self, annotator: str) -> Progress:
        """How far ``annotator`` is: counts over the non-draft questions."""
        with self._db(read_tx=True) as db:
            total = db.execute("SELECT COUNT(*) FROM ann_questions WHERE draft = 0").fetchone()[0]
            statuses = dict(
                db.execute(
                    "SELECT a.status, COUNT(*) FROM ann_answers a JOIN ann_questions q "
                    "ON q.id = a.question_id WHERE a.annotator = ? AND q.draft = 0 GROUP BY a.status",
                    (annotator,),
                ).fetchall()
            )
            labelled = db.execute(
                "SELECT COUNT(DISTINCT l.question_id) FROM ann_labels l JOIN ann_questions q "
                "ON q.id = l.question_id WHERE l.annotator = ? AND q.draft = 0",
                (annotator,),
            ).fetchone()[0]
            assigned, assigned_open = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(a.status IS NULL OR a.status = 'open'), 0) "
                "FROM ann_assignments s JOIN ann_questions q ON q.id = s.question_id "
                "LEFT JOIN ann_answers a ON a.question_id = s.question_id AND a.annotator = s.annotator "
                "WHERE s.annotator = ? AND q.draft = 0",
                (annotator,),
            ).fetchone()
        done, skipped, flagged = (statuses.get(s, 0) for s in ("done", "skipped", "flagged"))
        return Progress(
            annotator=annotator,
            total=total,
            done=done,
            skipped=skipped,
            flagged=flagged,
            open=total - done - skipped - flagged,
            labelled=labelled,
            assigned=assigned,
            assigned_open=assigned_open,
        )

    # ------------------------------------------------------------------ assignments and queues

    def assign(self, question_ids: Iterable[str], annotators: Iterable[str], *, actor: str = "system") -> int:
        """Assign every question to every annotator (kept if already assigned); returns how many are new."""
        qids, people = list(dict.fromkeys(question_ids)), [_name(a, "annotator") for a in annotators]
        actor = _name(actor, "actor")
        added = 0
        with self._db(write=True) as db:
            change = _Change(db, actor, "assign")
            for qid in qids:
                self._require_question(db, qid)
                for person in dict.fromkeys(people):
                    key = {"question_id": qid, "annotator": person}
                    if _get(db, "ann_assignments", key) is None:
                        added += change.write(
                            "ann_assignments", key, {"assigned_by": actor, "assigned_at": change.ts}
                        )
        return added

    def assignments(self, annotator: str | None = None) -> dict[str, tuple[str, ...]]:
        """Question id -> the annotators it is assigned to (only ``annotator``'s when given)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT s.question_id, s.annotator FROM ann_assignments s JOIN ann_questions q "
                "ON q.id = s.question_id WHERE ?1 IS NULL OR s.annotator = ?1 ORDER BY q.seq, s.annotator",
                (annotator,),
            ).fetchall()
        out: dict[str, list[str]] = {}
        for qid, person in rows:
            out.setdefault(qid, []).append(person)
        return {qid: tuple(people) for qid, people in out.items()}

    def queue(
        self, annotator: str, limit: int | None = None, *, include_drafts: bool = False
    ) -> list[Question]:
        """The questions still open for ``annotator`` (no status yet, or "open"), next first.

        Order: questions assigned to them; then questions assigned to nobody and done by nobody; then the
        rest (assigned to others, or already done by someone); each group in the order added. Drafts only
        with ``include_drafts`` (for reviewing generated questions).
        """
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                """SELECT q.* FROM ann_questions q
                LEFT JOIN ann_answers mine ON mine.question_id = q.id AND mine.annotator = ?1
                WHERE (mine.status IS NULL OR mine.status = 'open') AND (q.draft = 0 OR ?2)
                ORDER BY CASE
                    WHEN EXISTS (SELECT 1 FROM ann_assignments s
                                 WHERE s.question_id = q.id AND s.annotator = ?1) THEN 0
                    WHEN NOT EXISTS (SELECT 1 FROM ann_assignments s WHERE s.question_id = q.id)
                        AND NOT EXISTS (SELECT 1 FROM ann_answers a
                                        WHERE a.question_id = q.id AND a.status = 'done') THEN 1
                    ELSE 2 END, q.seq
                LIMIT ?3""",
                (annotator, include_drafts, -1 if limit is None else max(0, limit)),
            ).fetchall()
        return [self._question(row) for row in rows]

    def overlap_sample(
        self,
        question_ids: Iterable[str],
        annotators: Iterable[str],
        k: int = 2,
        fraction: float = 0.2,
        seed: int | str = 0,
        *,
        assign_rest: bool = True,
        actor: str = "system",
    ) -> OverlapPlan:
        """Assign round(fraction × n) of the questions to ``k`` annotators each, the rest to one each.

        The overlap questions are drawn with ``random.Random(seed)`` from the sorted ids, and each question
        goes to the least-loaded annotators (ties broken by a seeded order), so loads differ by at most one
        and the same ids, annotators and seed always give the same plan, whatever their input order.
        ``assign_rest=False`` leaves the other questions unassigned. Existing assignments are kept.
        """
        qids = sorted(set(question_ids))
        people = sorted({_name(a, "annotator") for a in annotators})
        if not people:
            raise InputError("overlap_sample needs at least one annotator")
        if not isinstance(k, int) or not 1 <= k <= len(people):
            raise InputError(f"k must be between 1 and the number of annotators ({len(people)}), got {k!r}")
        if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
            raise InputError(f"fraction must be in [0, 1], got {fraction!r}")
        rng = random.Random(seed)
        overlap = rng.sample(qids, math.floor(fraction * len(qids) + 0.5))
        order = people[:]
        rng.shuffle(order)
        rank = {person: i for i, person in enumerate(order)}
        load = dict.fromkeys(people, 0)
        plan: dict[str, list[str]] = {person: [] for person in people}
        chosen = set(overlap)
        rest = [q for q in qids if q not in chosen] if assign_rest else []
        for qid, count in [(q, k) for q in overlap] + [(q, 1) for q in rest]:
            for person in sorted(people, key=lambda p: (load[p], rank[p]))[:count]:
                plan[person].append(qid)
                load[person] += 1
        with self._db(write=True) as db:
            change = _Change(db, _name(actor, "actor"), "overlap_sample")
            for qid in qids:
                self._require_question(db, qid)
            for person, assigned in plan.items():
                for qid in assigned:
                    key = {"question_id": qid, "annotator": person}
                    if _get(db, "ann_assignments", key) is None:
                        change.write(
                            "ann_assignments", key, {"assigned_by": change.actor, "assigned_at": change.ts}
                        )
        return OverlapPlan(tuple(sorted(overlap)), {p: tuple(sorted(q)) for p, q in plan.items()})

    # ------------------------------------------------------------------ adjudication

    def adjudicate(
        self,
        question_id: str,
        chunk_id: str,
        relevance: int,
        adjudicator: str,
        reason: str = "",
        span: ChunkSpan | tuple[str, int, int] | Mapping[str, Any] | None = None,
    ) -> Adjudication:
        """Record the decided relevance of a chunk on a question; it overrides the annotators' labels."""
        adjudicator, chunk_id = _name(adjudicator, "adjudicator"), _name(chunk_id, "chunk id")
        grade, chunk_span = _relevance(relevance), _span(span)
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            change = _Change(db, adjudicator, "adjudicate")
            values = {
                "relevance": grade,
                **_span_columns(chunk_span),
                "adjudicator": adjudicator,
                "reason": str(reason),
                "ts": change.ts,
            }
            change.write("ann_adjudications", {"question_id": question_id, "chunk_id": chunk_id}, values)
        return Adjudication(question_id, chunk_id, grade, adjudicator, str(reason), change.ts, chunk_span)

    def adjudications(self, question_id: str | None = None) -> list[Adjudication]:
        """Adjudicated labels, filtered by question."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT a.* FROM ann_adjudications a JOIN ann_questions q ON q.id = a.question_id "
                "WHERE ?1 IS NULL OR a.question_id = ?1 ORDER BY q.seq, a.chunk_id",
                (question_id,),
            ).fetchall()
        return [
            Adjudication(
                r["question_id"],
                r["chunk_id"],
                r["relevance"],
                r["adjudicator"],
                r["reason"],
                r["ts"],
                _span_of(r),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ history and undo

    @staticmethod
    def _change_row(db: sqlite3.Connection, row: Sequence[Any]) -> Change:
        qids = db.execute(
            "SELECT DISTINCT question_id FROM ann_history WHERE change_id = ? ORDER BY id", (row[0],)
        ).fetchall()
        return Change(row[0], row[1], row[2], row[3], row[4], tuple(q for (q,) in qids if q is not None))

    def history(self, actor: str | None = None, limit: int = 50) -> list[Change]:
        """The newest ``limit`` changes (of ``actor`` when given), newest first."""
        with self._db(read_tx=True) as db:
            rows = db.execute(
                "SELECT id, ts, actor, action, undoes FROM ann_changes WHERE ?1 IS NULL OR actor = ?1 "
                "ORDER BY id DESC LIMIT ?2",
                (actor, max(0, limit)),
            ).fetchall()
            return [self._change_row(db, row) for row in rows]

    def undo(self, annotator: str) -> Change | None:
        """Revert ``annotator``'s newest change not yet undone; returns that change, or None if none is left.

        The revert is itself logged (action "undo"). If a record it touched was changed since by someone
        else, nothing is reverted and InputError says so.
        """
        annotator = _name(annotator, "annotator")
        with self._db(write=True) as db:
            row = db.execute(
                "SELECT id, ts, actor, action, undoes FROM ann_changes c WHERE actor = ? AND undoes IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM ann_changes u WHERE u.undoes = c.id) ORDER BY id DESC LIMIT 1",
                (annotator,),
            ).fetchone()
            if row is None:
                return None
            target = self._change_row(db, row)
            change = _Change(db, annotator, "undo", undoes=target.id)
            change.ensure()
            steps = db.execute(
                "SELECT tbl, key, before, after FROM ann_history WHERE change_id = ? ORDER BY id DESC",
                (target.id,),
            ).fetchall()
            for table, key_json, before, after in steps:
                key = json.loads(key_json)
                if not _same(_get(db, table, key), None if after is None else json.loads(after)):
                    raise InputError(
                        f"cannot undo {target.action} by {annotator}: {table} {key} was changed after it; "
                        "change it back by hand"
                    )
                try:
                    change.write(table, key, None if before is None else json.loads(before))
                except sqlite3.IntegrityError as exc:
                    raise InputError(f"cannot undo {target.action} by {annotator}: {exc}") from exc
            return target

    # ------------------------------------------------------------------ agreement input and gold export

    def labels_by_question(
        self, question_ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, dict[str, int]]]:
        """Question id -> annotator -> {chunk id: relevance}, for the annotators who count on each question.

        An annotator counts on a question when they labelled a chunk on it or marked it done, and did not
        mark it skipped; one who marked it done with no labels appears with an empty mapping (judged
        nothing relevant). Drafts are left out. This is the input of ``console.annotation.agreement``.
        """
        wanted = None if question_ids is None else set(question_ids)
        with self._db(read_tx=True) as db:
            return self._labels_by_question(db, wanted)

    @staticmethod
    def _labels_by_question(
        db: sqlite3.Connection, wanted: set[str] | None
    ) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {}
        order = [qid for (qid,) in db.execute("SELECT id FROM ann_questions WHERE draft = 0 ORDER BY seq")]
        statuses = {
            (q, a): s for q, a, s in db.execute("SELECT question_id, annotator, status FROM ann_answers")
        }
        for qid in order:
            if wanted is None or qid in wanted:
                out[qid] = {}
        for (qid, person), status in statuses.items():
            if qid in out and status == "done":
                out[qid].setdefault(person, {})
        for qid, person, chunk, grade in db.execute(
            "SELECT question_id, annotator, chunk_id, relevance FROM ann_labels ORDER BY chunk_id"
        ):
            if qid in out and statuses.get((qid, person)) != "skipped":
                out[qid].setdefault(person, {})[chunk] = grade
        return {qid: dict(sorted(people.items())) for qid, people in out.items() if people}

    def export_gold(self, min_relevance: int = 1, *, include_empty: bool = False) -> list[GoldQuestion]:
        """Each non-draft question's gold, in the order added.

        Rules, per chunk labelled on a question: an adjudicated relevance wins; otherwise the grade is
        ``majority_grade`` of the counting annotators' grades (see ``labels_by_question``), an unjudged
        chunk counting as 0. With one annotator that is their labels (the union); with several, a chunk is
        gold only when more than half of them call it at least ``min_relevance`` (with two, both must).
        Gold chunks: grade ≥ ``min_relevance``, highest grade first, then by chunk id. ``spans``: the
        adjudicated span, else the newest label span. ``reference_answer``: the newest non-empty answer of
        a counting annotator. Questions without gold are left out unless ``include_empty``.
        """
        if min_relevance not in (1, 2):
            raise InputError(
                f"min_relevance must be 1 (partly relevant) or 2 (relevant), got {min_relevance!r}"
            )
        with self._db(read_tx=True) as db:
            db.row_factory = sqlite3.Row
            questions = db.execute("SELECT * FROM ann_questions WHERE draft = 0 ORDER BY seq").fetchall()
            counted = self._labels_by_question(db, None)
            adjudicated: dict[str, dict[str, sqlite3.Row]] = {}
            for row in db.execute("SELECT * FROM ann_adjudications"):
                adjudicated.setdefault(row["question_id"], {})[row["chunk_id"]] = row
            spans: dict[tuple[str, str], ChunkSpan] = {}
            for row in db.execute("SELECT * FROM ann_labels WHERE doc_id IS NOT NULL ORDER BY updated_at"):
                spans[(row["question_id"], row["chunk_id"])] = _span_of(row)  # type: ignore[assignment]
            answers: dict[str, list[sqlite3.Row]] = {}
            for row in db.execute("SELECT * FROM ann_answers ORDER BY updated_at"):
                answers.setdefault(row["question_id"], []).append(row)
        out = []
        for q in questions:
            qid = q["id"]
            people = counted.get(qid, {})
            decided = adjudicated.get(qid, {})
            if not people and not decided:
                continue
            chunks = {c for labels in people.values() for c in labels} | set(decided)
            grades = {
                c: decided[c]["relevance"]
                if c in decided
                else majority_grade([p.get(c, 0) for p in people.values()])
                for c in chunks
            }
            gold = sorted((c for c, g in grades.items() if g >= min_relevance), key=lambda c: (-grades[c], c))
            if not gold and not include_empty:
                continue
            chunk_spans = {
                c: (_span_of(decided[c]) if c in decided else None) or spans.get((qid, c)) for c in gold
            }
            mine = answers.get(qid, [])
            texts = {a["annotator"]: a["reference_answer"] for a in mine if a["annotator"] in people}
            newest = [
                a["reference_answer"] for a in mine if a["annotator"] in people and a["reference_answer"]
            ]
            out.append(
                GoldQuestion(
                    question_id=qid,
                    question=q["question"],
                    gold_chunk_ids=tuple(gold),
                    relevance={c: grades[c] for c in gold},
                    spans={c: s for c, s in chunk_spans.items() if s is not None},
                    reference_answer=newest[-1] if newest else "",
                    annotators=tuple(people),
                    adjudicated=tuple(sorted(decided)),
                    flagged_by=tuple(sorted(a["annotator"] for a in mine if a["status"] == "flagged")),
                    tags=tuple(json.loads(q["tags"])),
                    source=q["source"],
                    answers=texts,
                )
            )
        return out

    def health(self) -> ComponentHealth:
        """Whether the store can be read."""
        try:
            with self._db() as db:
                db.execute("SELECT COUNT(*) FROM ann_questions").fetchone()
        except (ServiceUnavailable, StoreBusy) as exc:
            return ComponentHealth(COMPONENT, "sqlite", False, str(exc), endpoint=str(self.path))
        return ComponentHealth(
            COMPONENT, "sqlite", True, "SQLite (WAL)", version=sqlite3.sqlite_version, endpoint=str(self.path)
        )
