"""Annotation store: the SQLite adapter of ``console.annotation.ports.AnnotationRepository``. Questions,
per-annotator labels and answers, assignments, adjudications and an append-only change history, in the
shared SQLite state database (WAL), every table prefixed ``ann_`` (their schema: ``state_schema``).

Persistence only: each method reads or writes in one transaction and takes or returns plain records
(``services.types``). What may be written, in which order questions are served and how gold is derived are
the domain's rules (``ragdeck.console.annotation``), which checks input before it calls a write here. What
stays here is what must hold inside the transaction: a question's id and dedupe key are unique; a label,
answer, assignment or adjudication names a stored question; an undo never overwrites a later change.

Several annotators (threads or processes) may write at once: each call opens a short connection, writes take
the write lock up front (``BEGIN IMMEDIATE``, waiting up to ``busy_timeout_s``; past it ``StoreBusy``) and
commit with ``synchronous=FULL``, so a call that returned has its change on disk and survives a crash.
Every write is logged with its before and after values (``annotation_log``), so ``undo_last`` can walk an
annotator's changes back.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError, ServiceUnavailable, StoreBusy
from ragdeck.services.annotation_log import TABLES, LoggedChange, change_of, read_record, revert_newest
from ragdeck.services.state_schema import open_state
from ragdeck.services.types import (
    Adjudication,
    AnnotationSnapshot,
    Answer,
    Change,
    ChunkSpan,
    ComponentHealth,
    Label,
    NewQuestion,
    Question,
)

__all__ = ["TABLES", "SqliteAnnotationStore"]

COMPONENT = "annotation store"


def _span_of(row: Mapping[str, Any]) -> ChunkSpan | None:
    if row["doc_id"] is None:
        return None
    return ChunkSpan(row["doc_id"], row["span_start"], row["span_end"])


def _span_columns(span: ChunkSpan | None) -> dict[str, Any]:
    if span is None:
        return {"doc_id": None, "span_start": None, "span_end": None}
    return {"doc_id": span.doc_id, "span_start": span.start, "span_end": span.end}


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


def _label(r: Mapping[str, Any]) -> Label:
    return Label(
        r["question_id"], r["annotator"], r["chunk_id"], r["relevance"], _span_of(r), r["updated_at"]
    )


def _adjudication(r: Mapping[str, Any]) -> Adjudication:
    return Adjudication(
        r["question_id"], r["chunk_id"], r["relevance"], r["adjudicator"], r["reason"], r["ts"], _span_of(r)
    )


_QUESTIONS = "SELECT * FROM ann_questions WHERE draft = 0 OR ?1 ORDER BY seq"
_LABELS = (
    "SELECT l.* FROM ann_labels l JOIN ann_questions q ON q.id = l.question_id "
    "WHERE (?1 IS NULL OR l.question_id = ?1) AND (?2 IS NULL OR l.annotator = ?2) "
    "ORDER BY q.seq, l.annotator, l.chunk_id"
)
_ANSWERS = (
    "SELECT a.question_id, a.annotator, a.reference_answer, a.status, a.note, a.updated_at "
    "FROM ann_answers a JOIN ann_questions q ON q.id = a.question_id "
    "WHERE (?1 IS NULL OR a.question_id = ?1) AND (?2 IS NULL OR a.annotator = ?2) "
    "ORDER BY q.seq, a.annotator"
)
_ASSIGNMENTS = (
    "SELECT s.question_id, s.annotator FROM ann_assignments s JOIN ann_questions q "
    "ON q.id = s.question_id WHERE ?1 IS NULL OR s.annotator = ?1 ORDER BY q.seq, s.annotator"
)
_ADJUDICATIONS = (
    "SELECT a.* FROM ann_adjudications a JOIN ann_questions q ON q.id = a.question_id "
    "WHERE ?1 IS NULL OR a.question_id = ?1 ORDER BY q.seq, a.chunk_id"
)


class SqliteAnnotationStore:
    """The annotation workspace in a SQLite file (usually ``Settings().state_db``, shared with other tables).

    Safe to share across threads and processes (one short connection per call). A write naming an unknown
    question or breaking a uniqueness rule raises InputError; a database locked past ``busy_timeout_s``
    raises StoreBusy; an unusable file raises ServiceUnavailable. Built by ``console.wiring``.
    """

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.file = open_state(path, COMPONENT, busy_timeout_s=busy_timeout_s)
        self.path = self.file.path
        self.busy_timeout_s = busy_timeout_s

    def _db(
        self, write: bool = False, read_tx: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection; ``write``: in BEGIN IMMEDIATE with synchronous=FULL; ``read_tx``: one snapshot."""
        return self.file.connect(write=write, read_tx=read_tx)

    @staticmethod
    def _require_question(db: sqlite3.Connection, question_id: object) -> dict[str, Any]:
        row = read_record(db, "ann_questions", {"id": question_id}) if isinstance(question_id, str) else None
        if row is None:
            raise InputError(f"unknown question id {question_id!r}: add the question first (add_questions)")
        return row

    # ------------------------------------------------------------------ reads

    def questions(self, *, include_drafts: bool = True) -> list[Question]:
        """Every question in the order it was added."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            return [_question(row) for row in db.execute(_QUESTIONS, (include_drafts,)).fetchall()]

    def question(self, question_id: str) -> Question:
        """One question; InputError when unknown."""
        with self._db() as db:
            row = self._require_question(db, question_id)
        return _question({"id": question_id, **row})

    def labels(self, question_id: str | None = None, annotator: str | None = None) -> list[Label]:
        """Labels, filtered by question and/or annotator; ordered by question, annotator, chunk id."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            return [_label(r) for r in db.execute(_LABELS, (question_id, annotator)).fetchall()]

    def answers(self, question_id: str | None = None, annotator: str | None = None) -> list[Answer]:
        """Answers and statuses, filtered by question and/or annotator; ordered by question, annotator."""
        with self._db() as db:
            return [Answer(*row) for row in db.execute(_ANSWERS, (question_id, annotator)).fetchall()]

    def assignments(self, annotator: str | None = None) -> dict[str, tuple[str, ...]]:
        """Question id -> the annotators it is assigned to (only ``annotator``'s when given)."""
        with self._db() as db:
            return self._assignments(db, annotator)

    @staticmethod
    def _assignments(db: sqlite3.Connection, annotator: str | None) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for qid, person in db.execute(_ASSIGNMENTS, (annotator,)).fetchall():
            out.setdefault(qid, []).append(person)
        return {qid: tuple(people) for qid, people in out.items()}

    def adjudications(self, question_id: str | None = None) -> list[Adjudication]:
        """Adjudicated labels, filtered by question; ordered by question, chunk id."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            return [_adjudication(r) for r in db.execute(_ADJUDICATIONS, (question_id,)).fetchall()]

    def snapshot(self) -> AnnotationSnapshot:
        """Every question, label, answer, assignment and adjudication, read in one transaction."""
        with self._db(read_tx=True) as db:
            assignments = self._assignments(db, None)
            db.row_factory = sqlite3.Row
            return AnnotationSnapshot(
                questions=[_question(r) for r in db.execute(_QUESTIONS, (True,)).fetchall()],
                labels=[_label(r) for r in db.execute(_LABELS, (None, None)).fetchall()],
                answers=[Answer(*r) for r in db.execute(_ANSWERS, (None, None)).fetchall()],
                assignments=assignments,
                adjudications=[_adjudication(r) for r in db.execute(_ADJUDICATIONS, (None,)).fetchall()],
            )

    def history(self, actor: str | None = None, limit: int = 50) -> list[Change]:
        """The newest ``limit`` changes (of ``actor`` when given), newest first."""
        with self._db(read_tx=True) as db:
            rows = db.execute(
                "SELECT id, ts, actor, action, undoes FROM ann_changes WHERE ?1 IS NULL OR actor = ?1 "
                "ORDER BY id DESC LIMIT ?2",
                (actor, max(0, limit)),
            ).fetchall()
            return [change_of(db, row) for row in rows]

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

    # ------------------------------------------------------------------ writes

    def insert_questions(self, items: Sequence[NewQuestion], actor: str) -> list[str]:
        """Store new questions after the last one (one change, "add_questions"); one id per item, in order.

        An item whose ``norm`` a stored question (or an earlier item) has returns that question's id and is
        not stored. InputError when an item's id names another question (nothing is stored then).
        """
        ids: list[str] = []
        with self._db(write=True) as db:
            change = LoggedChange(db, actor, "add_questions")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM ann_questions").fetchone()[0]
            for i, item in enumerate(items):
                row = db.execute("SELECT id FROM ann_questions WHERE norm = ?", (item.norm,)).fetchone()
                if row is not None:
                    ids.append(row[0])
                    continue
                if read_record(db, "ann_questions", {"id": item.id}) is not None:
                    raise InputError(
                        f"item {i}: id {item.id!r} already names another question; choose another id"
                    )
                seq += 1
                values = {
                    "seq": seq,
                    "question": item.question,
                    "norm": item.norm,
                    "source": item.source,
                    "draft": int(item.draft),
                    "tags": json.dumps(list(item.tags)),
                    "created_at": change.ts,
                    "created_by": actor,
                }
                change.write("ann_questions", {"id": item.id}, values)
                ids.append(item.id)
        return ids

    def accept_question(
        self, question_id: str, actor: str, *, text: str | None = None, norm: str | None = None
    ) -> Question:
        """Clear a question's draft flag ("accept_draft"), storing ``text`` with its dedupe key ``norm``
        when given; InputError when another question has that key."""
        with self._db(write=True) as db:
            row = self._require_question(db, question_id)
            if text is not None and norm is not None:
                other = db.execute(
                    "SELECT id FROM ann_questions WHERE norm = ? AND id != ?", (norm, question_id)
                ).fetchone()
                if other is not None:
                    raise InputError(f"question {other[0]!r} already asks this; discard the draft instead")
                row = {**row, "question": text, "norm": norm}
            row = {**row, "draft": 0}
            LoggedChange(db, actor, "accept_draft").write("ann_questions", {"id": question_id}, row)
        return _question({"id": question_id, **row})

    def delete_draft(self, question_id: str, actor: str) -> bool:
        """Delete a draft question and everything recorded on it ("discard_draft"; undo restores it all).
        False, and nothing deleted, when the question is not a draft."""
        with self._db(write=True) as db:
            if not self._require_question(db, question_id)["draft"]:
                return False
            change = LoggedChange(db, actor, "discard_draft")
            for table, (keys, _) in TABLES.items():
                if table == "ann_questions":
                    continue
                rows = db.execute(
                    f"SELECT {', '.join(keys)} FROM {table} WHERE question_id = ?", (question_id,)
                )
                for key in rows.fetchall():
                    change.write(table, dict(zip(keys, key, strict=True)), None)
            change.write("ann_questions", {"id": question_id}, None)
        return True

    def save_label(
        self, question_id: str, annotator: str, chunk_id: str, relevance: int, span: ChunkSpan | None
    ) -> Label:
        """Set one annotator's relevance for a chunk ("set_label"); ``span=None`` keeps a stored span."""
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator, "chunk_id": chunk_id}
            before = read_record(db, "ann_labels", key)
            spans = _span_columns(span)
            if span is None and before is not None:
                spans = {k: before[k] for k in ("doc_id", "span_start", "span_end")}
            change = LoggedChange(db, annotator, "set_label")
            values = {"relevance": relevance, **spans, "updated_at": change.ts}
            if not change.write("ann_labels", key, values) and before is not None:
                values["updated_at"] = before["updated_at"]  # unchanged: keeps its saved time
        return Label(question_id, annotator, chunk_id, relevance, _span_of(values), values["updated_at"])

    def delete_label(self, question_id: str, annotator: str, chunk_id: str) -> bool:
        """Remove a label ("clear_label"); False when there was none."""
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator, "chunk_id": chunk_id}
            return LoggedChange(db, annotator, "clear_label").write("ann_labels", key, None)

    def save_answer(
        self,
        question_id: str,
        annotator: str,
        text: str | None = None,
        status: str | None = None,
        note: str | None = None,
    ) -> Answer:
        """Set an annotator's reference answer, status and note ("set_answer"); a field left None keeps its
        stored value (a new record starts as "", "open", "")."""
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            key = {"question_id": question_id, "annotator": annotator}
            old = read_record(db, "ann_answers", key) or {
                "reference_answer": "",
                "status": "open",
                "note": "",
            }
            change = LoggedChange(db, annotator, "set_answer")
            values = {
                "reference_answer": old["reference_answer"] if text is None else text,
                "status": old["status"] if status is None else status,
                "note": old["note"] if note is None else note,
                "updated_at": change.ts,
            }
            if not change.write("ann_answers", key, values) and "updated_at" in old:
                values["updated_at"] = old["updated_at"]
        return Answer(question_id, annotator, **values)

    def add_assignments(self, pairs: Iterable[tuple[str, str]], actor: str, *, action: str = "assign") -> int:
        """Assign each (question id, annotator) pair not assigned yet, as one change named ``action``;
        returns how many are new. InputError, and nothing stored, when a question is unknown."""
        added = 0
        with self._db(write=True) as db:
            change = LoggedChange(db, actor, action)
            for qid, person in pairs:
                self._require_question(db, qid)
                key = {"question_id": qid, "annotator": person}
                if read_record(db, "ann_assignments", key) is None:
                    added += change.write(
                        "ann_assignments", key, {"assigned_by": actor, "assigned_at": change.ts}
                    )
        return added

    def save_adjudication(
        self,
        question_id: str,
        chunk_id: str,
        relevance: int,
        adjudicator: str,
        reason: str,
        span: ChunkSpan | None,
    ) -> Adjudication:
        """Set the decided relevance of a chunk on a question ("adjudicate")."""
        with self._db(write=True) as db:
            self._require_question(db, question_id)
            change = LoggedChange(db, adjudicator, "adjudicate")
            values = {
                "relevance": relevance,
                **_span_columns(span),
                "adjudicator": adjudicator,
                "reason": reason,
                "ts": change.ts,
            }
            change.write("ann_adjudications", {"question_id": question_id, "chunk_id": chunk_id}, values)
        return Adjudication(question_id, chunk_id, relevance, adjudicator, reason, change.ts, span)

    def undo_last(self, actor: str) -> Change | None:
        """Revert ``actor``'s newest change not yet undone (logged as "undo"); returns that change, or None
        when none is left. InputError, and nothing reverted, when a record it touched changed since."""
        with self._db(write=True) as db:
            return revert_newest(db, actor)
