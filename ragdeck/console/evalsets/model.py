"""The eval set: records of question, gold context ids, reference answer; its content hash and its checks.

A gold id names a chunk (``doc#section:n``, see ``ragdeck.console.ingest.chunking``) or a whole document
(BEIR-style document-level qrels). ``relevance`` grades ids (0 = judged not relevant, 1 = relevant,
2+ = more relevant);
a gold id without an entry has grade 1, so ``gold_context_ids`` are the ids of grade >= 1 and grade-0 entries
are explicit non-relevant judgements. ``parse_record`` checks one record in its JSON form (the JSONL line,
or a CSV row / qrels query turned into that form); ``validate`` checks a whole set, optionally against the ids
of a collection. Every problem is collected; ``EvalSetProblems`` reports them together.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ragdeck.console.evalsets.fields import RELEVANCE_ALIASES, unknown_field_message
from ragdeck.errors import InputError
from ragdeck.services.text import json_type_name, normalize_question

__all__ = [
    "FIELDS",
    "EvalRecord",
    "EvalSet",
    "EvalSetProblems",
    "GoldSpan",
    "Problem",
    "cross_problems",
    "doc_id_of",
    "is_chunk_id",
    "normalize_question",
    "parse_record",
    "stable_id",
    "validate",
]

FIELDS = ("id", "question", "gold_context_ids", "reference_answer", "gold_spans", "relevance", "tags")
SPAN_FIELDS = ("doc_id", "start", "end", "chunk_id")
MAX_LISTED = 20  # problems spelled out in an error message; the exception carries all of them

# doc id, '#', section slug (word characters and '-'), ':', ordinal without leading zeros.
_CHUNK_ID = re.compile(r"(?P<doc>.+)#(?P<section>[\w-]+):(?P<ordinal>0|[1-9][0-9]*)")


def is_chunk_id(value: str) -> bool:
    """True for a chunk id ``doc_id#section-slug:ordinal`` (as ``chunk_document`` makes them)."""
    return _CHUNK_ID.fullmatch(value) is not None


def doc_id_of(gold_id: str) -> str:
    """The document a gold id belongs to: the part before the last ``#`` of a chunk id, else the id itself."""
    match = _CHUNK_ID.fullmatch(gold_id)
    return match.group("doc") if match else gold_id


def stable_id(question: str) -> str:
    """A record id for a question that has none: ``q-`` + the first 10 hex digits of the sha256 of the
    normalised question (the same question gets the same id in every file and on every run)."""
    digest = hashlib.sha256(normalize_question(question).encode("utf-8", "surrogatepass")).hexdigest()
    return f"q-{digest[:10]}"


@dataclass(frozen=True)
class GoldSpan:
    """Where a gold passage lies in its source document: ``text[start:end]`` of ``doc_id``; ``chunk_id`` is
    the chunk it was labelled on, when known. Spans let a set labelled on one chunking score another."""

    doc_id: str
    start: int
    end: int
    chunk_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The span as a JSON object (``chunk_id`` null when unknown)."""
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "chunk_id": self.chunk_id}


@dataclass
class EvalRecord:
    """One eval question with its gold context ids (chunk or document ids), graded relevance and tags."""

    id: str
    question: str
    gold_context_ids: list[str]
    reference_answer: str = ""
    gold_spans: list[GoldSpan] = field(default_factory=list)
    relevance: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    def grade(self, gold_id: str) -> int:
        """The relevance grade of an id: its ``relevance`` entry, else 1 for a gold id, else 0 (unjudged)."""
        if gold_id in self.relevance:
            return self.relevance[gold_id]
        return 1 if gold_id in self.gold_context_ids else 0

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON values, in model order (the JSONL line; what ``parse_record`` reads back)."""
        return {
            "id": self.id,
            "question": self.question,
            "gold_context_ids": list(self.gold_context_ids),
            "reference_answer": self.reference_answer,
            "gold_spans": [span.to_json() for span in self.gold_spans],
            "relevance": dict(self.relevance),
            "tags": list(self.tags),
        }

    def canonical(self) -> dict[str, Any]:
        """The form hashed: gold ids, tags and spans sorted (their order does not count), and relevance
        entries that only restate the default (grade 1 for a gold id) left out."""
        gold = set(self.gold_context_ids)
        return {
            "id": self.id,
            "question": self.question,
            "gold_context_ids": sorted(self.gold_context_ids),
            "reference_answer": self.reference_answer,
            "gold_spans": sorted(
                (s.to_json() for s in self.gold_spans),
                key=lambda s: (s["doc_id"], s["start"], s["end"], s["chunk_id"] or ""),
            ),
            "relevance": {k: v for k, v in self.relevance.items() if not (k in gold and v == 1)},
            "tags": sorted(self.tags),
        }


@dataclass
class EvalSet:
    """A named list of eval records. ``meta`` holds what a file or publisher adds (format, annotators, ...);
    ``source_lines`` maps record ids to the line they were read from, ``gold_lines`` (record id, gold id) to
    the line of that judgement where a file has one per line (qrels); ``file`` is the file read. All three
    are for messages and not compared."""

    name: str
    records: list[EvalRecord]
    meta: dict[str, Any] = field(default_factory=dict)
    source_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    # (record id, gold id) -> the line judging it, when each judgement has its own line (TREC qrels).
    gold_lines: dict[tuple[str, str], int] = field(default_factory=dict, compare=False, repr=False)
    file: str | None = field(default=None, compare=False, repr=False)  # the file it was read from

    def content_hash(self) -> str:
        """sha256 (64 hex digits) of the records' canonical JSON.

        Canonical JSON: the list of ``EvalRecord.canonical()`` objects sorted by (id, question), dumped with
        sorted keys, separators ``,`` and ``:``, non-ASCII kept, encoded as UTF-8. So the hash does not depend
        on record order, on the order of gold ids / tags / spans, on explicit grade-1 entries for gold ids, on
        the file format the set was read from, nor on ``name`` and ``meta``. Any change to a question,
        answer, id, gold id, grade, span or tag changes it.
        """
        records = sorted((r.canonical() for r in self.records), key=lambda r: (r["id"], r["question"]))
        text = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def by_id(self) -> dict[str, EvalRecord]:
        """Records by id (with duplicate ids, which ``validate`` reports, the last one wins)."""
        return {record.id: record for record in self.records}

    def gold_ids(self, record: EvalRecord | str, min_grade: int = 1) -> list[str]:
        """Ids of grade >= ``min_grade`` for a record (or record id): gold ids in order, then other graded
        ids. ``min_grade=2`` keeps only the highly relevant ones. Raises KeyError for an unknown record id."""
        rec = self.by_id()[record] if isinstance(record, str) else record
        ids = list(dict.fromkeys([*rec.gold_context_ids, *rec.relevance]))
        return [i for i in ids if rec.grade(i) >= min_grade]

    def stats(self) -> dict[str, int]:
        """Counts for reports: records, gold ids (chunk / document), graded records, records with spans."""
        gold = [g for r in self.records for g in r.gold_context_ids]
        chunks = sum(1 for g in gold if is_chunk_id(g))
        return {
            "records": len(self.records),
            "gold_ids": len(gold),
            "chunk_ids": chunks,
            "document_ids": len(gold) - chunks,
            "graded_records": sum(1 for r in self.records if any(v != 1 for v in r.relevance.values())),
            "records_with_spans": sum(1 for r in self.records if r.gold_spans),
            "records_with_answers": sum(1 for r in self.records if r.reference_answer.strip()),
        }


@dataclass(frozen=True)
class Problem:
    """One problem: 1-based line (None for the whole file or set), field (``""`` for the whole line), what
    is wrong and what to do; ``source`` names another file than the one reported on (a queries file)."""

    line: int | None
    field: str
    message: str
    source: str | None = None

    def __str__(self) -> str:
        where = [self.source] if self.source else []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class EvalSetProblems(InputError):
    """Every problem of an eval set, reported together; ``problems`` in line order, ``file`` when read."""

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.file = file
        self.problems = sorted(problems, key=lambda p: (p.source or "", -1 if p.line is None else p.line))
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        head = f"{file}: {count}" if file else f"eval set: {count}"
        lines = [f"{head}; fix them and try again"]
        lines += [f"  {p}" for p in self.problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
        super().__init__("\n".join(lines))


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as UTF-8 text (an unpaired surrogate), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains an unpaired surrogate (\\u{ord(value[exc.start]):04x}); it is not valid text"
    return None


def _id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expected a string id, got {json_type_name(value)}"
    if not value.strip():
        return "empty id"
    if value != value.strip():
        return f"id {value!r} has leading or trailing whitespace"
    return text_problem(value)


class _Checker:
    """Collects the problems of one record in its JSON form."""

    def __init__(self, line: int | None) -> None:
        self.line = line
        self.problems: list[Problem] = []

    def bad(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.line, name, message))

    def text(self, obj: dict[str, Any], name: str, *, required: bool) -> str:
        if name not in obj:
            if required:
                self.bad(name, f"missing: every record needs a {name}")
            return ""
        value = obj[name]
        if not isinstance(value, str):
            self.bad(name, f"expected a string, got {json_type_name(value)}")
            return ""
        if required and not value.strip():
            self.bad(name, f"empty: write the {name}")
        elif (why := text_problem(value)) is not None:
            self.bad(name, why)
        return value

    def ids(self, value: object, name: str) -> list[str]:
        if isinstance(value, str):
            hint = json.dumps([part.strip() for part in value.split(",") if part.strip()], ensure_ascii=False)
            self.bad(name, f"expected a list of ids, got a string (write {hint})")
            return []
        if not isinstance(value, list):
            self.bad(name, f"expected a list of ids, got {json_type_name(value)}")
            return []
        ids: list[str] = []
        for i, item in enumerate(value):
            if (why := _id_problem(item)) is not None:
                self.bad(f"{name}[{i}]", why)
            elif item in ids:
                self.bad(f"{name}[{i}]", f"duplicate id {item!r}")
            else:
                ids.append(item)
        return ids

    def strings(self, value: object, name: str) -> list[str]:
        if not isinstance(value, list):
            self.bad(name, f"expected a list of strings, got {json_type_name(value)}")
            return []
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.bad(f"{name}[{i}]", f"expected a non-empty string, got {json_type_name(item)}")
            elif (why := text_problem(item)) is not None:
                self.bad(f"{name}[{i}]", why)
            else:
                out.append(item)
        return out

    def spans(self, value: object) -> list[GoldSpan]:
        if not isinstance(value, list):
            self.bad("gold_spans", f"expected a list of span objects, got {json_type_name(value)}")
            return []
        spans: list[GoldSpan] = []
        for i, item in enumerate(value):
            name = f"gold_spans[{i}]"
            if not isinstance(item, dict):
                self.bad(name, f'expected an object {{"doc_id", "start", "end"}}, got {json_type_name(item)}')
                continue
            if span := self._span(item, name):
                spans.append(span)
        return spans

    def _span(self, item: dict[str, Any], name: str) -> GoldSpan | None:
        before = len(self.problems)
        for key in item:
            if key not in SPAN_FIELDS:
                self.bad(f"{name}.{key}", f"unknown span field; expected {', '.join(SPAN_FIELDS)}")
        doc_id, chunk_id = item.get("doc_id"), item.get("chunk_id")
        if "doc_id" not in item:
            self.bad(f"{name}.doc_id", "missing: a span needs the document id")
        elif (why := _id_problem(doc_id)) is not None:
            self.bad(f"{name}.doc_id", why)
        if chunk_id is not None and (why := _id_problem(chunk_id)) is not None:
            self.bad(f"{name}.chunk_id", why)
        offsets = []
        for key in ("start", "end"):
            v = item.get(key)
            if key not in item:
                self.bad(f"{name}.{key}", "missing: a span needs start and end character offsets")
            elif isinstance(v, bool) or not isinstance(v, int):
                self.bad(f"{name}.{key}", f"expected a whole number, got {json_type_name(v)}")
            elif v < 0:
                self.bad(f"{name}.{key}", f"negative offset {v}")
            else:
                offsets.append(v)
        if len(offsets) == 2 and offsets[0] >= offsets[1]:
            self.bad(name, f"start {offsets[0]} must be below end {offsets[1]}")
        if len(self.problems) > before:
            return None
        if chunk_id is not None and is_chunk_id(chunk_id) and doc_id_of(chunk_id) != doc_id:
            self.bad(
                f"{name}.chunk_id", f"chunk {chunk_id!r} belongs to {doc_id_of(chunk_id)!r}, not {doc_id!r}"
            )
            return None
        return GoldSpan(doc_id, offsets[0], offsets[1], chunk_id)

    def grades(self, value: object, gold: list[str]) -> dict[str, int]:
        if not isinstance(value, dict):
            self.bad("relevance", f"expected an object of id -> grade, got {json_type_name(value)}")
            return {}
        grades: dict[str, int] = {}
        for key, grade in value.items():
            name = f"relevance[{key!r}]"
            if (why := _id_problem(key)) is not None:
                self.bad(name, why)
            elif isinstance(grade, bool) or not isinstance(grade, int):
                self.bad(name, f"expected a whole-number grade, got {json_type_name(grade)}")
            elif grade < 0:
                self.bad(name, f"negative grade {grade}: grades are 0 (not relevant), 1 (relevant) or more")
            elif grade == 0 and key in gold:
                self.bad(name, "grade 0 for a gold id: remove it from gold_context_ids or grade it 1 or more")
            elif grade > 0 and key not in gold:
                self.bad(name, f"grade {grade} but not in gold_context_ids: add it there or grade it 0")
            else:
                grades[key] = grade
        return grades


def parse_record(obj: object, line: int | None = None) -> tuple[EvalRecord | None, list[Problem]]:
    """Check one record in its JSON form and build it.

    Fields: ``question`` (required, non-blank), ``gold_context_ids`` (required, a non-empty list of distinct
    ids), ``id`` (string or integer; when absent, ``stable_id(question)``), optional ``reference_answer``,
    ``gold_spans`` (``{"doc_id", "start", "end", "chunk_id"?}``, 0 <= start < end), ``relevance`` (id ->
    grade >= 0; grade >= 1 only for gold ids, 0 only for others) and ``tags``. Ids are non-blank without
    outer whitespace. ``relevance`` may be named ``gold_grades``, ``qrels``,
    ``relevance_judgments`` or ``grades``; without ``gold_context_ids``, the ids it grades 1 or more are the
    gold ids (in its order). Unknown fields are problems, with a "did you mean" hint and the known fields.
    Returns the record (None when ``obj`` is not an object;
    otherwise built from the fields that could be read) and every problem found.
    """
    check = _Checker(line)
    if not isinstance(obj, dict):
        check.bad("", f"expected a JSON object, got {json_type_name(obj)}")
        return None, check.problems
    obj = _resolve_aliases(obj, check)
    question = check.text(obj, "question", required=True)
    derived = "gold_context_ids" not in obj and isinstance(obj.get("relevance"), dict)
    if derived:  # graded gold alone: the ids of grade >= 1 are the gold ids, in the order given
        grades = obj["relevance"]
        gold = [k for k, v in grades.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 1]
        if not gold:
            check.bad("relevance", "no id of grade 1 or more: a question needs at least one relevant id")
    elif "gold_context_ids" not in obj:
        message = "missing: list the gold chunk or document ids (or grade them in relevance)"
        check.bad("gold_context_ids", message)
        gold = []
    else:
        gold = check.ids(obj["gold_context_ids"], "gold_context_ids")
        if isinstance(obj["gold_context_ids"], list) and not obj["gold_context_ids"]:
            check.bad("gold_context_ids", "empty list: a question needs at least one gold id")
    record_id = obj.get("id")
    if "id" not in obj:
        record_id = stable_id(question) if question.strip() else ""
    elif isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    elif (why := _id_problem(record_id)) is not None:
        check.bad("id", why.replace("string id", "string or integer id"))
        record_id = ""
    record = EvalRecord(
        id=record_id,
        question=question,
        gold_context_ids=gold,
        reference_answer=check.text(obj, "reference_answer", required=False),
        gold_spans=check.spans(obj["gold_spans"]) if "gold_spans" in obj else [],
        relevance=check.grades(obj["relevance"], gold) if "relevance" in obj else {},
        tags=check.strings(obj["tags"], "tags") if "tags" in obj else [],
    )
    return record, check.problems


def _resolve_aliases(obj: dict[str, Any], check: _Checker) -> dict[str, Any]:
    """``obj`` with an alias of ``relevance`` (``gold_grades``, ``qrels``, ...) read as ``relevance``; unknown
    fields reported with a "did you mean" hint and the known fields."""
    resolved: dict[str, Any] = {}
    aliases = [k for k in obj if k in RELEVANCE_ALIASES]
    for key, value in obj.items():
        if key in FIELDS:
            resolved[key] = value
        elif key in RELEVANCE_ALIASES:
            if "relevance" in obj or len(aliases) > 1:
                names = ", ".join(repr(a) for a in (["relevance"] if "relevance" in obj else []) + aliases)
                check.bad(str(key), f"graded gold given twice ({names}): keep one, named 'relevance'")
            else:
                resolved["relevance"] = value
        else:
            check.bad(str(key), unknown_field_message(str(key), FIELDS))
    return resolved


def cross_problems(
    records: Sequence[EvalRecord], lines: Sequence[int | None] | None = None, source: str | None = None
) -> list[Problem]:
    """Problems between records: no records at all, duplicate ids, duplicate questions (normalised).

    ``lines[i]`` is the source line of ``records[i]``; a repeated id whose questions are the same is reported
    once, as a duplicate question. ``source`` is set on problems that point at a line of another file.
    """
    at = list(lines) if lines is not None else [None] * len(records)
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    seen_questions: dict[str, int] = {}

    def where(i: int) -> str:
        return f"line {at[i]}" if at[i] is not None else f"record {i + 1}"

    for i, record in enumerate(records):
        key = normalize_question(record.question) if isinstance(record.question, str) else ""
        if key and key in seen_questions:
            first = seen_questions[key]
            message = (
                f"same question as {where(first)} (id {records[first].id!r}) once case, spaces and end "
                "punctuation are ignored; merge the two or reword one"
            )
            problems.append(Problem(at[i], "question", message, source))
        elif record.id and record.id in seen_ids:
            message = f"duplicate id {record.id!r}, also used on {where(seen_ids[record.id])}"
            problems.append(Problem(at[i], "id", message, source))
        if key:
            seen_questions.setdefault(key, i)
        seen_ids.setdefault(record.id, i)
    if not records:
        problems.append(Problem(None, "", "no records: the eval set is empty"))
    return problems


def _unknown(
    gold_id: str, kind: str, known_ids: set[str] | None, known_docs: set[str], where: str
) -> str | None:
    """Why an id is not in the collection, or None. ``kind``: "doc" for a span's document id, else "gold"."""
    if kind == "gold" and is_chunk_id(gold_id) and gold_id not in known_docs:
        if known_ids is None:
            doc = doc_id_of(gold_id)
            return (
                None if doc in known_docs else f"chunk id {gold_id!r}: its document has no chunks in {where}"
            )
        if gold_id in known_ids:
            return None
        hint = ""
        if doc_id_of(gold_id) in known_docs:
            hint = " (its document is there: was it chunked differently? map the set by its gold spans)"
        return f"chunk id {gold_id!r} is not in {where}{hint}"
    if gold_id in known_docs:
        return None
    return f"document id {gold_id!r} has no chunks in {where}"


def validate(
    evalset: EvalSet,
    known_ids: set[str] | None = None,
    known_docs: set[str] | None = None,
    *,
    collection: str | None = None,
) -> list[Problem]:
    """Every problem of ``evalset``: each record's (as ``parse_record``), then ``cross_problems``, then, when
    ``known_ids`` or ``known_docs`` is given, ids unknown to the collection.

    Chunk ids are looked up in ``known_ids`` (the collection's chunk ids), document ids in ``known_docs``
    (its ``doc_id`` payloads; derived from ``known_ids`` when not given). With only ``known_docs``, a chunk id
    is checked by its document. Gold ids, other graded ids and span ids are all checked. Lines come from
    ``evalset.source_lines``. An empty list means the set is good.
    """
    lines = [evalset.source_lines.get(r.id) if isinstance(r.id, str) else None for r in evalset.records]
    problems: list[Problem] = []
    for record, line in zip(evalset.records, lines, strict=True):
        problems += parse_record(record.to_json(), line)[1]
    problems += cross_problems(evalset.records, lines)
    if known_ids is None and known_docs is None:
        return problems
    docs = known_docs if known_docs is not None else {doc_id_of(i) for i in known_ids or ()}
    where = f"collection {collection!r}" if collection else "the collection"
    for record, line in zip(evalset.records, lines, strict=True):
        named = [(f"gold_context_ids[{i}]", g, "gold") for i, g in enumerate(record.gold_context_ids)]
        named += [
            (f"relevance[{k!r}]", k, "gold") for k in record.relevance if k not in record.gold_context_ids
        ]
        for i, span in enumerate(record.gold_spans):
            named.append((f"gold_spans[{i}].doc_id", span.doc_id, "doc"))
            if span.chunk_id is not None:
                named.append((f"gold_spans[{i}].chunk_id", span.chunk_id, "gold"))
        for name, gold_id, kind in named:
            if isinstance(gold_id, str) and (why := _unknown(gold_id, kind, known_ids, docs, where)):
                problems.append(Problem(evalset.gold_lines.get((record.id, gold_id), line), name, why))
    return problems
