"""Eval set files: JSONL, CSV in the runbook's columns, TREC qrels with a queries file. Writes are atomic.

- JSONL (``.jsonl``): one record a line with the model's field names (see ``parse_record``); blank lines
  are skipped.
- CSV (``.csv``): header ``question,gold_context_ids,reference_answer`` (any order, case and spaces
  ignored; ``reference_answer`` may be left out) plus optional ``id`` and ``tags`` columns. Gold ids are
  comma-separated in one (quoted) cell, tags ``;``-separated. Rows without an id get ``stable_id(question)``.
  Entirely empty rows are skipped. CSV has no columns for spans or grades: ``lost_fields`` says what a
  write would drop.
- TREC qrels (``.qrels``, ``.txt``, ``.tsv``): ``qid 0 docid rel`` lines (whitespace-separated; the second
  field is ignored), or BEIR's three columns ``query-id corpus-id score`` (with or without that header,
  decided by the first line). Grades >= 1 make the gold ids (file order), grade-1 is the default and others
  go to ``relevance``; grade-0 lines are kept in ``relevance`` as judged non-relevant. The questions come
  from a queries file: TSV ``qid<TAB>question`` or BEIR ``queries.jsonl`` (``{"_id", "text"}``); by default
  ``NAME.queries.tsv`` / ``NAME.queries.jsonl`` next to ``NAME.qrels``. qrels -> EvalSet -> qrels keeps every
  judgement and grade.

Readers return an ``EvalSet`` or raise ``EvalSetProblems`` (an InputError) listing every problem with its
line and field, and nothing else, whatever the bytes in the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from ragdeck.console.evalsets.fields import did_you_mean
from ragdeck.console.evalsets.model import (
    EvalRecord,
    EvalSet,
    EvalSetProblems,
    Problem,
    cross_problems,
    parse_record,
    text_problem,
    validate,
)
from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic
from ragdeck.services.inputs import parse_json, special_file

__all__ = [
    "CSV_COLUMNS",
    "EvalSetProblems",
    "Problem",
    "default_queries_path",
    "format_of",
    "lost_fields",
    "read_any",
    "read_csv",
    "read_jsonl",
    "read_judgements",
    "read_qrels",
    "read_queries",
    "validate",
    "write_any",
    "write_csv",
    "write_jsonl",
    "write_qrels",
]

SUFFIX_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".qrels": "qrels", ".txt": "qrels", ".tsv": "qrels"}
CSV_COLUMNS = ("question", "gold_context_ids", "reference_answer", "id", "tags")
_CSV_REQUIRED = ("question", "gold_context_ids")
_BEIR_QRELS_HEADER = ["query-id", "corpus-id", "score"]


# ------------------------------------------------------------------ common


def format_of(path: Path | str) -> str:
    """``"jsonl"``, ``"csv"`` or ``"qrels"`` from the file extension; EvalSetProblems for any other."""
    fmt = SUFFIX_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        message = "unknown eval set format: name the file .jsonl, .csv, or .qrels/.txt/.tsv (TREC qrels)"
        raise EvalSetProblems([Problem(None, "", message)], str(path))
    return fmt


def _read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed); EvalSetProblems naming the file when it cannot be read or
    is a special file (a FIFO would block the read forever)."""
    kind = special_file(path)
    if kind is not None:
        problem = Problem(None, "", f"is {kind}, not a file; save the set to a file")
        raise EvalSetProblems([problem], str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problem = Problem(None, "", "no such file; check the path")
    except IsADirectoryError:
        problem = Problem(None, "", "is a folder, not an eval set file")
    except OSError as exc:
        problem = Problem(None, "", f"cannot be read ({exc.strerror or exc}); check its permissions")
    else:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}; save it as UTF-8"
            problem = Problem(line, "", message)
    raise EvalSetProblems([problem], str(path))


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based number, line) split at ``\\n`` only, a trailing ``\\r`` removed."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _finish(
    path: Path,
    records: list[EvalRecord],
    lines: list[int],
    problems: list[Problem],
    meta: dict,
    source: str | None = None,
    record_lines: list[int] | None = None,
    gold_lines: dict[tuple[str, str], int] | None = None,
) -> EvalSet:
    """The set read, or EvalSetProblems. ``lines`` locate the records for ``cross_problems`` (in ``source``
    when it is another file); ``record_lines`` / ``gold_lines`` locate them in ``path`` itself for later
    checks (a qrels set: each query's first judgement, and each judgement's own line)."""
    problems = problems + cross_problems(records, lines, source)
    if problems:
        raise EvalSetProblems(problems, str(path))
    at = record_lines if record_lines is not None else lines
    source_lines = {r.id: line for r, line in zip(records, at, strict=True)}
    return EvalSet(
        name=path.stem,
        records=records,
        meta=meta,
        source_lines=source_lines,
        gold_lines=gold_lines or {},
        file=str(path),
    )


def _has_grades(record: EvalRecord) -> bool:
    return any(not (k in record.gold_context_ids and v == 1) for k, v in record.relevance.items())


def lost_fields(evalset: EvalSet, fmt: str) -> list[str]:
    """Fields of ``evalset`` that a file of format ``fmt`` cannot carry (empty for JSONL)."""
    carried = {
        "jsonl": set(),
        "csv": {"gold_spans", "relevance"},
        "qrels": {"reference_answer", "gold_spans", "tags"},
    }[fmt]
    present = {
        "reference_answer": any(r.reference_answer for r in evalset.records),
        "gold_spans": any(r.gold_spans for r in evalset.records),
        "relevance": any(_has_grades(r) for r in evalset.records),
        "tags": any(r.tags for r in evalset.records),
    }
    return [name for name, used in present.items() if used and name in carried]


# ------------------------------------------------------------------ JSONL


def read_jsonl(path: Path | str) -> EvalSet:
    """An eval set from JSONL, one record a line (see ``parse_record``); EvalSetProblems lists every
    problem: lines that are not JSON (with the column), not objects, and every field problem."""
    path = Path(path)
    records: list[EvalRecord] = []
    lines: list[int] = []
    problems: list[Problem] = []
    for number, line in _lines(_read_text(path)):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except json.JSONDecodeError as exc:  # also deep nesting and numbers too long to convert
            problems.append(Problem(number, "", f"not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        record, found = parse_record(obj, number)
        problems += found
        if record is not None:
            records.append(record)
            lines.append(number)
    return _finish(path, records, lines, problems, {"format": "jsonl"})


def write_jsonl(evalset: EvalSet, path: Path | str) -> None:
    """One record a line (UTF-8, keys in model order); empty spans, grades and tags are left out."""
    out = []
    for record in evalset.records:
        obj = record.to_json()
        for key in ("gold_spans", "relevance", "tags"):
            if not obj[key]:
                del obj[key]
        for span in obj.get("gold_spans", []):
            if span["chunk_id"] is None:
                del span["chunk_id"]
        out.append(json.dumps(obj, ensure_ascii=False) + "\n")
    write_text_atomic(Path(path), "".join(out))


# ------------------------------------------------------------------ CSV


def _split(cell: str, sep: str) -> list[str]:
    return [part.strip() for part in cell.split(sep) if part.strip()]


def _csv_rows(text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each row; malformed rows become problems."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(previous + 1, "", f"not valid CSV: {exc}"))
            if reader.line_num <= previous:
                return
            previous = reader.line_num
            continue
        start, previous = previous + 1, reader.line_num
        yield start, row


def _csv_header(line: int, row: list[str], problems: list[Problem]) -> list[str] | None:
    columns = [cell.strip().lower() for cell in row]
    before = len(problems)
    expected = ",".join(CSV_COLUMNS[:3]) + " (optional: id, tags)"
    for i, name in enumerate(columns):
        if name not in CSV_COLUMNS:
            guess = did_you_mean(name, CSV_COLUMNS) if name else None
            hint = f"did you mean '{guess}'? " if guess else ""
            message = f"unknown column; {hint}expected {expected}"
            problems.append(Problem(line, name or f"column {i + 1}", message))
        elif name in columns[:i]:
            problems.append(Problem(line, name, "column appears twice"))
    for name in _CSV_REQUIRED:
        if name not in columns:
            problems.append(Problem(line, name, f"missing column; the header must be {expected}"))
    return None if len(problems) > before else columns


def read_csv(path: Path | str) -> EvalSet:
    """An eval set from CSV in the runbook's columns (see the module docstring); EvalSetProblems lists
    every problem: header, rows with a wrong column count, malformed quoting, every field problem."""
    path = Path(path)
    text = _read_text(path)
    problems: list[Problem] = []
    records: list[EvalRecord] = []
    lines: list[int] = []
    columns: list[str] | None = None
    header_seen = False
    for line, row in _csv_rows(text, problems):
        if not any(cell.strip() for cell in row):
            continue
        if not header_seen:
            header_seen = True
            columns = _csv_header(line, row, problems)
            continue
        if columns is None:
            continue  # the header is broken: its problems are reported, rows cannot be read
        if len(row) != len(columns):
            message = f"{len(row)} cells but the header has {len(columns)} columns; quote cells with commas"
            problems.append(Problem(line, "", message))
            continue
        cells = dict(zip(columns, row, strict=True))
        raw: dict[str, object] = {
            "question": cells["question"],
            "gold_context_ids": _split(cells["gold_context_ids"], ","),
        }
        if "reference_answer" in cells:
            raw["reference_answer"] = cells["reference_answer"]
        if cells.get("id", "").strip():
            raw["id"] = cells["id"].strip()
        if "tags" in cells:
            raw["tags"] = _split(cells["tags"], ";")
        record, found = parse_record(raw, line)
        problems += found
        if record is not None:
            records.append(record)
            lines.append(line)
    if not header_seen:
        problems.append(Problem(None, "", "empty file: expected a header question,gold_context_ids,..."))
    return _finish(path, records, lines, problems, {"format": "csv"})


def write_csv(evalset: EvalSet, path: Path | str) -> None:
    """CSV with columns question, gold_context_ids, reference_answer, id (and tags when any record has
    them). Spans and grades are not written (see ``lost_fields``). InputError when a gold id holds a comma
    or a tag a ``;`` (the cell could not be split back)."""
    bad = [f"{r.id}: gold id {g!r}" for r in evalset.records for g in r.gold_context_ids if "," in g]
    bad += [f"{r.id}: tag {t!r}" for r in evalset.records for t in r.tags if ";" in t]
    if bad:
        raise InputError(
            f"{path}: cannot write as CSV, gold ids may not hold ',' nor tags ';': {'; '.join(bad[:5])}; "
            "write JSONL instead"
        )
    columns = list(CSV_COLUMNS[:4]) + (["tags"] if any(r.tags for r in evalset.records) else [])
    rows = [columns]
    for r in evalset.records:
        row = [r.question, ",".join(r.gold_context_ids), r.reference_answer, r.id, ";".join(r.tags)]
        rows.append(row[: len(columns)])
    # "\n" line ends; a carriage return inside a cell is only kept when every cell is quoted.
    quote_all = any("\r" in cell for row in rows for cell in row)
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerows(rows)
    write_text_atomic(Path(path), buffer.getvalue())


# ------------------------------------------------------------------ TREC qrels


def default_queries_path(qrels_path: Path | str) -> Path:
    """``NAME.queries.tsv`` beside ``NAME.qrels``: where ``write_qrels`` puts the questions by default."""
    path = Path(qrels_path)
    return path.with_name(f"{path.stem}.queries.tsv")


def _find_queries(path: Path) -> Path | None:
    for suffix in (".queries.tsv", ".queries.jsonl"):
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_queries(path: Path, problems: list[Problem]) -> dict[str, tuple[str, int]]:
    """qid -> (question, line) from TSV ``qid<TAB>question`` or BEIR ``{"_id", "text"}`` JSONL."""
    name = path.name
    queries: dict[str, tuple[str, int]] = {}
    beir = path.suffix.lower() == ".jsonl"

    def bad(line: int, field: str, message: str) -> None:
        problems.append(Problem(line, field, message, name))

    for number, line in _lines(_read_text(path)):
        if not line.strip():
            continue
        if beir:
            try:
                obj = parse_json(line)
            except json.JSONDecodeError as exc:
                bad(number, "", f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(obj, dict):
                bad(number, "", 'expected a JSON object {"_id", "text"}')
                continue
            qid, question = obj.get("_id"), obj.get("text")
            if isinstance(qid, int) and not isinstance(qid, bool):
                qid = str(qid)
            if not isinstance(qid, str) or not qid.strip() or any(ch.isspace() for ch in qid):
                bad(number, "_id", "missing or not a query id (a string without spaces, or an integer)")
                continue
        else:
            qid, tab, question = line.partition("\t")
            qid = qid.strip()
            if not tab or not qid:
                bad(number, "", "expected 'qid<TAB>question'")
                continue
        field = "text" if beir else "question"
        if not isinstance(question, str) or not question.strip():
            bad(number, field, f"missing or empty question for query {qid!r}")
        elif (why := text_problem(question)) is not None:
            bad(number, field, why)
        elif qid in queries:
            bad(
                number, "_id" if beir else "qid", f"query {qid!r} appears twice (also line {queries[qid][1]})"
            )
        else:
            queries[qid] = (question, number)
    return queries


def _read_judgements(path: Path, problems: list[Problem]) -> dict[str, list[tuple[str, int, int]]]:
    """qid -> [(docid, grade, line)] in file order; malformed lines become problems."""
    judged: dict[str, list[tuple[str, int, int]]] = {}
    seen: dict[tuple[str, str], int] = {}
    width: int | None = None
    for number, line in _lines(_read_text(path)):
        fields = line.split()
        if not fields:
            continue
        if width is None:
            width = 3 if len(fields) == 3 else 4
            if [f.lower() for f in fields] == _BEIR_QRELS_HEADER:
                continue
        if len(fields) != width:
            shape = "'query-id corpus-id score'" if width == 3 else "'qid 0 docid rel'"
            problems.append(Problem(number, "", f"expected {width} fields {shape}, got {len(fields)}"))
            continue
        qid, docid, rel = fields[0], fields[-2], fields[-1]
        digits = rel.removeprefix("-").removeprefix("+")
        if not (digits.isascii() and digits.isdigit()):
            problems.append(Problem(number, "rel", f"grade {rel[:20]!r} is not a whole number"))
            continue
        if len(digits.lstrip("0")) > 9:
            message = f"grade of {len(digits)} digits: use a small whole number"
            problems.append(Problem(number, "rel", message))
            continue
        grade = int(rel)
        if grade < 0:
            problems.append(Problem(number, "rel", f"negative grade {grade}: use 0 for not relevant"))
            continue
        if (qid, docid) in seen:
            message = f"second judgement of {docid!r} for query {qid!r} (first on line {seen[qid, docid]})"
            problems.append(Problem(number, "docid", message))
            continue
        seen[qid, docid] = number
        judged.setdefault(qid, []).append((docid, grade, number))
    return judged


def read_qrels(
    path: Path | str, queries: Path | str | None = None, *, skip_unjudged: bool = False
) -> EvalSet:
    """An eval set from TREC (or BEIR) qrels plus a queries file (default: ``NAME.queries.tsv`` or
    ``NAME.queries.jsonl`` beside it). Problems: malformed lines, non-integer or negative grades, repeated
    judgements, a qid with no question, a qid with only grade-0 judgements, and a question with no
    judgement (unless ``skip_unjudged``, as for a BEIR queries.jsonl that holds every split; the count of
    skipped queries is in ``meta["unjudged_queries"]``)."""
    path = Path(path)
    problems: list[Problem] = []
    judged = _read_judgements(path, problems)
    queries_path = Path(queries) if queries is not None else _find_queries(path)
    if queries_path is None:
        message = (
            f"qrels carry no questions: give the queries file (TSV qid<TAB>question or BEIR queries.jsonl), "
            f"e.g. {default_queries_path(path).name}"
        )
        raise EvalSetProblems([*problems, Problem(None, "queries", message)], str(path))
    questions = _read_queries(queries_path, problems)
    records: list[EvalRecord] = []
    lines: list[int] = []
    first_lines: list[int] = []
    for qid, items in judged.items():
        first_line = items[0][2]
        if qid not in questions:
            problems.append(
                Problem(first_line, "qid", f"query {qid!r} has no question in {queries_path.name}")
            )
            continue
        gold = [docid for docid, grade, _ in items if grade >= 1]
        if not gold:
            message = f"query {qid!r} has only grade-0 judgements: at least one needs grade 1 or more"
            problems.append(Problem(first_line, "rel", message))
            continue
        relevance = {docid: grade for docid, grade, _ in items if grade != 1}
        question, line = questions[qid]
        records.append(EvalRecord(id=qid, question=question, gold_context_ids=gold, relevance=relevance))
        lines.append(line)
        first_lines.append(first_line)
    unjudged = [(qid, line) for qid, (_, line) in questions.items() if qid not in judged]
    if not skip_unjudged:
        for qid, line in unjudged:
            message = (
                f"query {qid!r} has no judgement in {path.name} (BEIR queries of other splits: skip them)"
            )
            problems.append(Problem(line, "", message, queries_path.name))
    meta = {"format": "qrels", "queries": queries_path.name, "unjudged_queries": len(unjudged)}
    if not judged and not problems:
        problems.append(Problem(None, "", "no judgements: the qrels file is empty"))
    gold_lines = {(qid, docid): line for qid, items in judged.items() for docid, _, line in items}
    source = queries_path.name
    return _finish(path, records, lines, problems, meta, source, first_lines, gold_lines)


def read_queries(path: Path | str) -> dict[str, tuple[str, int]]:
    """qid -> (question, line) of a queries file (TSV ``qid<TAB>question`` or BEIR ``{"_id", "text"}``
    JSONL); EvalSetProblems listing every bad line."""
    problems: list[Problem] = []
    queries = _read_queries(Path(path), problems)
    if problems:
        raise EvalSetProblems(problems, str(path))
    return queries


def read_judgements(path: Path | str) -> dict[str, list[tuple[str, int, int]]]:
    """qid -> [(docid, grade, line)] of TREC (``qid 0 docid grade``) or BEIR (``query-id corpus-id score``)
    qrels, in file order; EvalSetProblems listing every bad line."""
    problems: list[Problem] = []
    judged = _read_judgements(Path(path), problems)
    if problems:
        raise EvalSetProblems(problems, str(path))
    return judged


def write_qrels(evalset: EvalSet, path: Path | str, queries_path: Path | str | None = None) -> Path:
    """TREC qrels ``qid 0 docid grade`` (gold ids in order, then grade-0 judgements) and the questions in
    ``queries_path`` (default ``default_queries_path(path)``; BEIR JSONL when it ends in ``.jsonl``, else
    TSV). Returns the queries file. InputError when an id is empty or holds whitespace, or a question holds
    a line break for a TSV queries file (write ``.jsonl`` queries then)."""
    path = Path(path)
    qpath = Path(queries_path) if queries_path is not None else default_queries_path(path)
    beir = qpath.suffix.lower() == ".jsonl"
    bad: list[str] = []
    qrels: list[str] = []
    queries: list[str] = []
    for r in evalset.records:
        others = [k for k in r.relevance if k not in r.gold_context_ids]
        for some_id in [r.id, *r.gold_context_ids, *others]:
            if not some_id or any(ch.isspace() for ch in some_id):
                bad.append(f"id {some_id!r} of record {r.id!r} is empty or holds whitespace")
        if not beir and ("\n" in r.question or "\r" in r.question):
            bad.append(f"question of {r.id!r} holds a line break (use a .jsonl queries file)")
        qrels += [f"{r.id} 0 {g} {r.grade(g)}\n" for g in [*r.gold_context_ids, *others]]
        obj = {"_id": r.id, "text": r.question}
        queries.append(json.dumps(obj, ensure_ascii=False) + "\n" if beir else f"{r.id}\t{r.question}\n")
    if bad:
        raise InputError(f"{path}: cannot write as TREC qrels: {'; '.join(bad[:5])}")
    write_text_atomic(qpath, "".join(queries))
    write_text_atomic(path, "".join(qrels))
    return qpath


# ------------------------------------------------------------------ any format


def read_any(path: Path | str, queries: Path | str | None = None, *, skip_unjudged: bool = False) -> EvalSet:
    """Read by extension: ``.jsonl``, ``.csv``, or ``.qrels``/``.txt``/``.tsv`` (qrels with ``queries``)."""
    fmt = format_of(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path)
    return read_qrels(path, queries, skip_unjudged=skip_unjudged)


def write_any(evalset: EvalSet, path: Path | str, queries_out: Path | str | None = None) -> list[Path]:
    """Write by extension (as ``read_any``); returns the files written (qrels: the qrels and queries)."""
    fmt = format_of(path)
    if queries_out is not None and fmt != "qrels":
        raise InputError(f"a queries file goes with TREC qrels only, not with {Path(path).name}")
    if fmt == "jsonl":
        write_jsonl(evalset, path)
    elif fmt == "csv":
        write_csv(evalset, path)
    else:
        return [Path(path), write_qrels(evalset, path, queries_out)]
    return [Path(path)]
