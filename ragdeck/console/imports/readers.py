"""Readers of test collections on disk: a BEIR folder, TREC topics and qrels beside a corpus, CSV tables.

Each checks that the files exist and parse, and reports every problem with its file, line and field, before
anything is embedded; each returns a ``TestCollection``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ragdeck.console.evalsets.io import read_judgements, read_queries
from ragdeck.console.imports.collection import (
    CollectionProblems,
    FieldMap,
    Judgement,
    Row,
    TestCollection,
    check_columns,
    documents_from_rows,
    judgements_from_rows,
    queries_from_rows,
)
from ragdeck.console.ingest.documents import Document
from ragdeck.console.ingest.loaders import load_documents
from ragdeck.errors import InputError

__all__ = ["read_beir", "read_corpus", "read_tables", "read_topics", "read_trec"]

Step = Callable[[int], None]  # called with 1, 2, 3 as the corpus, the queries and the qrels are read


def _file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise InputError(f"{path}: no {what} there; {hint}")
    return path


def _judgements(path: Path) -> list[Judgement]:
    return [
        Judgement(qid, doc_id, grade, f"{path}, line {line}")
        for qid, items in read_judgements(path).items()
        for doc_id, grade, line in items
    ]


def _queries(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    found = read_queries(path)
    return {q: text for q, (text, _) in found.items()}, {
        q: f"{path}, line {n}" for q, (_, n) in found.items()
    }


def read_corpus(path: Path) -> list[Document]:
    """A corpus: a BEIR ``corpus.jsonl`` (or a folder holding one), else what ``ragdeck ingest`` reads."""
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        path = path / "corpus.jsonl"
    if not path.exists():
        raise InputError(
            f"{path}: no corpus there; give a BEIR corpus.jsonl, a folder holding one, or Markdown"
        )
    return load_documents(path)


def read_beir(folder: Path, split: str = "test", step: Step | None = None) -> TestCollection:
    """A BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``)
    and ``qrels/{split}.tsv`` (header ``query-id corpus-id score``)."""
    if not folder.is_dir():
        raise InputError(
            f"{folder}: not a folder; give the BEIR folder holding corpus.jsonl, queries.jsonl, qrels/"
        )
    layout = "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/{split}.tsv"
    corpus = _file(folder / "corpus.jsonl", "corpus.jsonl", layout)
    queries_file = _file(folder / "queries.jsonl", "queries.jsonl", layout)
    qrels = folder / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        splits = (
            sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        )
        have = f"splits there: {', '.join(splits)}; pick one with --split" if splits else layout
        raise InputError(f"{qrels}: no qrels for split {split!r}; {have}")
    queries, where = _queries(queries_file)
    judgements = _judgements(qrels)
    documents = load_documents(corpus)
    if step:
        step(3)
    return TestCollection(str(folder), "beir", documents, queries, judgements, where)


_TOP = re.compile(r"<top>(.*?)</top>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<(num|title|desc|narr)>", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(Number|Topic|Description|Narrative)\s*:\s*", re.IGNORECASE)


def read_topics(path: Path, field: str = "title") -> tuple[dict[str, str], dict[str, str]]:
    """Queries from a TREC topics file: the SGML form (``<top> <num> Number: 301 <title> ... </top>``; the
    query is the ``field`` part: title, desc or narr) or TSV ``qid<TAB>text`` / BEIR ``queries.jsonl``."""
    _file(path, "topics file", "give the TREC topics (SGML <top> blocks, or TSV qid<TAB>text)")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if "<top>" not in text.lower():
        return _queries(path)
    queries: dict[str, str] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for block in _TOP.finditer(text):
        at = f"{path}, line {text.count(chr(10), 0, block.start()) + 1}"
        parts: dict[str, str] = {}
        tags = list(_TAG.finditer(block.group(1)))
        for i, tag in enumerate(tags):
            end = tags[i + 1].start() if i + 1 < len(tags) else len(block.group(1))
            parts[tag.group(1).lower()] = _LABEL.sub("", block.group(1)[tag.end() : end]).strip()
        qid, query = parts.get("num", ""), " ".join(parts.get(field, "").split())
        if not qid:
            problems.append(f"{at}, field 'num': a topic without a number")
        elif not query:
            problems.append(f"{at}, field '{field}': topic {qid} has no {field}")
        elif qid in queries:
            problems.append(f"{at}, field 'num': topic {qid} repeated (first at {where[qid]})")
        else:
            queries[qid], where[qid] = query, at
    if problems:
        raise CollectionProblems(problems)
    if not queries:
        raise InputError(f"{path}: no <top> ... </top> topic could be read")
    return queries, where


def read_trec(
    topics: Path, qrels: Path, corpus: Path, *, topic_field: str = "title", step: Step | None = None
) -> TestCollection:
    """TREC files: a topics file (see ``read_topics``), qrels ``qid 0 docid grade`` and a corpus (see
    ``read_corpus``)."""
    _file(qrels, "qrels file", "give TREC qrels lines 'qid 0 docid grade'")
    queries, where = read_topics(topics, topic_field)
    judgements = _judgements(qrels)
    documents = read_corpus(corpus)
    if step:
        step(3)
    return TestCollection(str(qrels), "trec", documents, queries, judgements, where)


def _csv_rows(path: Path, wanted: dict[str, str], problems: list[str]) -> Iterator[Row]:
    _file(path, "CSV file", "check the path")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = check_columns(reader.fieldnames or [], wanted, f"{path}, line 1")
        if missing:
            problems.extend(missing)
            return
        for row in reader:
            yield f"{path}, line {reader.line_num}", row


def read_tables(
    corpus: Path, queries: Path, qrels: Path, fields: FieldMap | None = None, step: Step | None = None
) -> TestCollection:
    """CSV tables with a header row: the corpus (id, title, text), the queries (id, text) and the qrels
    (query id, document id, grade); the columns are named by ``fields`` (BEIR's names by default)."""
    f = fields or FieldMap()
    problems: list[str] = []
    doc_cols = {"--doc-id-field": f.doc_id, "--text-field": f.text}
    documents = documents_from_rows(_csv_rows(corpus, doc_cols, problems), f, problems)
    query_cols = {"--query-id-field": f.query_id, "--query-text-field": f.query_text}
    found, where = queries_from_rows(_csv_rows(queries, query_cols, problems), f, problems)
    qrels_cols = {
        "--qrels-query-field": f.qrels_query,
        "--qrels-doc-field": f.qrels_doc,
        "--qrels-grade-field": f.qrels_grade,
    }
    judgements = judgements_from_rows(_csv_rows(qrels, qrels_cols, problems), f, problems)
    if problems:
        raise CollectionProblems(problems)
    if step:
        step(3)
    return TestCollection(str(qrels), "csv", documents, found, judgements, where)
