"""A test collection as read from its files: documents, queries and judgements, each with where it came from
so that every problem names file, line (or row) and field; and tables mapped onto them by field names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ragdeck.console.evalsets.fields import did_you_mean
from ragdeck.console.ingest.documents import Document
from ragdeck.errors import InputError

MAX_LISTED = 20  # problems spelled out in one message


@dataclass(frozen=True)
class Judgement:
    """One qrels line: ``doc_id`` judged ``grade`` (0 = not relevant) for query ``qid``, read at ``where``."""

    qid: str
    doc_id: str
    grade: int
    where: str


@dataclass
class TestCollection:
    """Documents, queries (qid -> text, in file order) and judgements (in file order) of one collection."""

    __test__ = False  # not a pytest test class, whatever its name

    source: str
    format: str
    documents: list[Document]
    queries: dict[str, str]
    judgements: list[Judgement]
    query_where: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldMap:
    """Which column or field holds what, in tables (CSV) and datasets; defaults are BEIR's names."""

    doc_id: str = "_id"
    title: str = "title"
    text: str = "text"
    query_id: str = "_id"
    query_text: str = "text"
    qrels_query: str = "query-id"
    qrels_doc: str = "corpus-id"
    qrels_grade: str = "score"


class CollectionProblems(InputError):
    """Every problem found in a collection's files, each naming file, line or row, and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = [f"the test collection has {count}; fix them and import again"]
        lines += [f"  {p}" for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
        super().__init__("\n".join(lines))


Row = tuple[str, Mapping[str, Any]]  # (where: "file, line N" or "dataset row N", the row's fields)


# Names tables give the same column (a hint when the expected one is absent).
_SYNONYMS = (
    ("_id", "id", "doc_id", "docid", "document_id", "qid", "query_id", "pid"),
    ("text", "body", "content", "contents", "passage", "query", "question"),
    ("query-id", "qid", "query_id", "queryid", "topic", "topic_id"),
    ("corpus-id", "docid", "doc_id", "doc-id", "document_id", "pid", "passage_id"),
    ("score", "grade", "relevance", "rel", "label", "judgement", "judgment"),
)


def _guess(name: str, have: list[str]) -> str | None:
    for group in _SYNONYMS:
        if name in group:
            match = next((h for h in have if h.lower() in group and h != name), None)
            if match:
                return match
    return did_you_mean(name, have)


def check_columns(columns: Iterable[str], wanted: dict[str, str], where: str) -> list[str]:
    """Problems for each wanted column (flag -> column name) a table lacks, with a "did you mean"."""
    have = list(columns)
    problems = []
    for flag, name in wanted.items():
        if name not in have:
            guess = _guess(name, have)
            hint = f" (did you mean '{guess}'? name it with {flag} {guess})" if guess else ""
            problems.append(f"{where}: no column '{name}'{hint}; columns: {', '.join(have) or 'none'}")
    return problems


def _id(value: Any, where: str, name: str, problems: list[str]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}, field '{name}': expected a non-empty id, got {value!r}")
        return None
    return value.strip()


def _grade(value: Any, where: str, name: str, problems: list[str]) -> int | None:
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}, field '{name}': expected a whole-number grade >= 0, got {value!r}")
        return None
    return value


def _text(value: Any, where: str, name: str, problems: list[str], *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}, field '{name}': expected text, got {type(value).__name__}")
        return ""
    return value


def documents_from_rows(rows: Iterable[Row], fields: FieldMap, problems: list[str]) -> list[Document]:
    """Documents from table rows: id, optional title, text (empty text allowed: an empty document)."""
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        doc_id = _id(row.get(fields.doc_id), where, fields.doc_id, problems)
        title = _text(row.get(fields.title), where, fields.title, problems, required=False)
        text = _text(row.get(fields.text), where, fields.text, problems, required=True)
        if doc_id is None:
            continue
        if doc_id in seen:
            problems.append(
                f"{where}, field '{fields.doc_id}': duplicate id {doc_id!r} (first at {seen[doc_id]})"
            )
            continue
        seen[doc_id] = where
        docs.append(Document(doc_id=doc_id, title=title.strip(), text=text, source=where))
    return docs


def queries_from_rows(
    rows: Iterable[Row], fields: FieldMap, problems: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """qid -> text and qid -> where, from table rows; a blank or repeated query is a problem."""
    queries: dict[str, str] = {}
    where_of: dict[str, str] = {}
    for where, row in rows:
        qid = _id(row.get(fields.query_id), where, fields.query_id, problems)
        text = _text(row.get(fields.query_text), where, fields.query_text, problems, required=True)
        if qid is None:
            continue
        if not text.strip():
            problems.append(f"{where}, field '{fields.query_text}': empty query {qid!r}")
        elif qid in queries:
            problems.append(
                f"{where}, field '{fields.query_id}': query {qid!r} repeated (first at {where_of[qid]})"
            )
        else:
            queries[qid], where_of[qid] = text, where
    return queries, where_of


def judgements_from_rows(rows: Iterable[Row], fields: FieldMap, problems: list[str]) -> list[Judgement]:
    """Judgements from table rows: query id, document id, whole-number grade >= 0; a repeat is a problem."""
    found: list[Judgement] = []
    seen: dict[tuple[str, str], str] = {}
    for where, row in rows:
        qid = _id(row.get(fields.qrels_query), where, fields.qrels_query, problems)
        doc_id = _id(row.get(fields.qrels_doc), where, fields.qrels_doc, problems)
        grade = _grade(row.get(fields.qrels_grade), where, fields.qrels_grade, problems)
        if qid is None or doc_id is None or grade is None:
            continue
        if (qid, doc_id) in seen:
            first = seen[qid, doc_id]
            problems.append(f"{where}: second judgement of {doc_id!r} for query {qid!r} (first at {first})")
            continue
        seen[qid, doc_id] = where
        found.append(Judgement(qid, doc_id, grade, where))
    return found
