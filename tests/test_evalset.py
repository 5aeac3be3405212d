"""The eval set model: chunk / document ids, the content hash, record checks and collection checks."""

from __future__ import annotations

import copy
import random

import pytest

from ragdeck.console.evalsets.model import (
    EvalRecord,
    EvalSet,
    EvalSetProblems,
    GoldSpan,
    Problem,
    doc_id_of,
    is_chunk_id,
    normalize_question,
    parse_record,
    stable_id,
    validate,
)
from ragdeck.console.ingest.chunking import ChunkingConfig, chunk_document
from ragdeck.console.ingest.documents import Document
from ragdeck.errors import InputError


def sample_set() -> EvalSet:
    return EvalSet(
        name="sample",
        records=[
            EvalRecord(
                id="q1",
                question="How are samples laid out on disk?",
                gold_context_ids=["storage#on-disk-layout:0", "storage#on-disk-layout:1"],
                reference_answer="In two-hour blocks.",
                gold_spans=[
                    GoldSpan("storage", 120, 900, "storage#on-disk-layout:0"),
                    GoldSpan("storage", 5, 50),
                ],
                relevance={"storage#on-disk-layout:0": 2, "basics": 0},
                tags=["storage", "easy"],
            ),
            EvalRecord(id="q2", question="How do I start TEI?", gold_context_ids=["tei/quick_tour"]),
            EvalRecord(id="q3", question="Can annotations use templates?", gold_context_ids=["rules#t:3"]),
        ],
    )


def problems_of(obj: object) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.message) for p in parse_record(obj, 7)[1]]


def test_chunk_ids_from_the_chunker_are_recognised_and_name_their_document() -> None:
    text = "# Storage\n\n" + "Prometheus stores samples in blocks. " * 60 + "\n\n## WAL\n\n" + "Log. " * 200
    doc = Document(doc_id="prometheus/docs/storage", title="Storage", text=text, source="storage.md")
    chunks = chunk_document(doc, ChunkingConfig())
    assert len(chunks) >= 2
    for chunk in chunks:
        assert is_chunk_id(chunk.chunk_id), chunk.chunk_id
        assert doc_id_of(chunk.chunk_id) == "prometheus/docs/storage"


@pytest.mark.parametrize(
    ("value", "chunk", "doc"),
    [
        ("a/b#intro:0", True, "a/b"),
        ("a#b#top:12", True, "a#b"),
        ("a/b#wal-2:3", True, "a/b"),
        ("a/b", False, "a/b"),
        ("a/b#intro", False, "a/b#intro"),
        ("a/b#intro:01", False, "a/b#intro:01"),
        ("#top:0", False, "#top:0"),
        ("a/b#in tro:0", False, "a/b#in tro:0"),
        ("MS-MARCO-12345", False, "MS-MARCO-12345"),
    ],
)
def test_is_chunk_id_and_doc_id_of(value: str, chunk: bool, doc: str) -> None:
    assert is_chunk_id(value) is chunk
    assert doc_id_of(value) == doc


def test_stable_id_ignores_case_spacing_and_end_punctuation() -> None:
    assert normalize_question("  What is   the WAL?? ") == "what is the wal"
    assert stable_id("What is the WAL?") == stable_id("what is  the wal")
    assert stable_id("What is the WAL?") != stable_id("What is a WAL?")
    assert stable_id("x").startswith("q-") and len(stable_id("x")) == 12


def test_grades_and_gold_ids() -> None:
    evalset = sample_set()
    q1 = evalset.by_id()["q1"]
    assert q1.grade("storage#on-disk-layout:0") == 2
    assert q1.grade("storage#on-disk-layout:1") == 1  # a gold id without an entry: grade 1
    assert q1.grade("basics") == 0 and q1.grade("never-judged") == 0
    assert evalset.gold_ids("q1") == ["storage#on-disk-layout:0", "storage#on-disk-layout:1"]
    assert evalset.gold_ids(q1, min_grade=2) == ["storage#on-disk-layout:0"]
    assert evalset.gold_ids(q1, min_grade=0) == [*q1.gold_context_ids, "basics"]
    with pytest.raises(KeyError):
        evalset.gold_ids("nope")
    stats = evalset.stats()
    assert stats == {
        "records": 3,
        "gold_ids": 4,
        "chunk_ids": 3,
        "document_ids": 1,
        "graded_records": 1,
        "records_with_spans": 1,
        "records_with_answers": 1,
    }


def test_content_hash_ignores_order_name_meta_and_default_grades() -> None:
    base = sample_set()
    digest = base.content_hash()
    assert len(digest) == 64 and int(digest, 16) >= 0
    shuffled = copy.deepcopy(base)
    random.Random(3).shuffle(shuffled.records)
    q1 = shuffled.by_id()["q1"]
    q1.gold_context_ids.reverse()
    q1.tags.reverse()
    q1.gold_spans.reverse()
    q1.relevance = {"basics": 0, "storage#on-disk-layout:1": 1, "storage#on-disk-layout:0": 2}  # explicit 1
    shuffled.name, shuffled.meta = "other", {"annotators": ["ann"]}
    assert shuffled.content_hash() == digest


@pytest.mark.parametrize(
    "change",
    [
        lambda r: setattr(r, "question", r.question + " "),
        lambda r: setattr(r, "id", "q1b"),
        lambda r: setattr(r, "reference_answer", "Blocks."),
        lambda r: r.gold_context_ids.append("x#top:0"),
        lambda r: r.relevance.update({"storage#on-disk-layout:0": 3}),
        lambda r: r.relevance.pop("basics"),
        lambda r: r.tags.append("hard"),
        lambda r: r.gold_spans.pop(),
    ],
)
def test_content_hash_changes_with_any_content(change) -> None:
    base = sample_set()
    changed = copy.deepcopy(base)
    change(changed.by_id()["q1"])
    assert changed.content_hash() != base.content_hash()


def test_content_hash_of_non_ascii_text_is_stable() -> None:
    evalset = EvalSet("x", [EvalRecord("q", "Größe der Blöcke? 块", ["d"])])
    assert (
        evalset.content_hash()
        == EvalSet("y", [EvalRecord("q", "Größe der Blöcke? 块", ["d"])]).content_hash()
    )


def test_parse_record_builds_a_full_record() -> None:
    record, problems = parse_record(
        {
            "id": 17,
            "question": "Q?",
            "gold_context_ids": ["a#top:0", "b"],
            "reference_answer": "A.",
            "gold_spans": [
                {"doc_id": "a", "start": 0, "end": 10, "chunk_id": "a#top:0"},
                {"doc_id": "b", "start": 3, "end": 4},
            ],
            "relevance": {"b": 2, "c": 0},
            "tags": ["t"],
        }
    )
    assert problems == []
    assert record == EvalRecord(
        id="17",
        question="Q?",
        gold_context_ids=["a#top:0", "b"],
        reference_answer="A.",
        gold_spans=[GoldSpan("a", 0, 10, "a#top:0"), GoldSpan("b", 3, 4)],
        relevance={"b": 2, "c": 0},
        tags=["t"],
    )
    record, problems = parse_record({"question": "Q?", "gold_context_ids": ["a"]})
    assert problems == [] and record is not None and record.id == stable_id("Q?")


@pytest.mark.parametrize(
    ("obj", "field", "needle"),
    [
        ([1, 2], "", "expected a JSON object, got a list"),
        ("text", "", "got a string"),
        ({"gold_context_ids": ["a"]}, "question", "missing"),
        ({"question": "  ", "gold_context_ids": ["a"]}, "question", "empty"),
        ({"question": 3, "gold_context_ids": ["a"]}, "question", "expected a string, got a number"),
        ({"question": "Q", "gold_context_ids": "a, b"}, "gold_context_ids", 'write ["a", "b"]'),
        ({"question": "Q"}, "gold_context_ids", "missing"),
        ({"question": "Q", "gold_context_ids": []}, "gold_context_ids", "empty list"),
        ({"question": "Q", "gold_context_ids": None}, "gold_context_ids", "got null"),
        ({"question": "Q", "gold_context_ids": ["a", 4]}, "gold_context_ids[1]", "got a number"),
        ({"question": "Q", "gold_context_ids": ["a", ""]}, "gold_context_ids[1]", "empty id"),
        ({"question": "Q", "gold_context_ids": [" a"]}, "gold_context_ids[0]", "whitespace"),
        ({"question": "Q", "gold_context_ids": ["a", "a"]}, "gold_context_ids[1]", "duplicate id 'a'"),
        ({"id": "", "question": "Q", "gold_context_ids": ["a"]}, "id", "empty id"),
        ({"id": True, "question": "Q", "gold_context_ids": ["a"]}, "id", "got a boolean"),
        (
            {"question": "Q", "gold_context_ids": ["a"], "reference_answer": 1},
            "reference_answer",
            "expected a string",
        ),
        ({"question": "Q", "gold_context_ids": ["a"], "tags": "t"}, "tags", "expected a list"),
        ({"question": "Q", "gold_context_ids": ["a"], "tags": [""]}, "tags[0]", "non-empty string"),
        ({"question": "Q", "gold_context_ids": ["a"], "gold": ["a"]}, "gold", "unknown field"),
        (
            {"question": "Q", "gold_context_ids": ["a"], "relevance": {"a": -1}},
            "relevance['a']",
            "negative grade -1",
        ),
        (
            {"question": "Q", "gold_context_ids": ["a"], "relevance": {"a": 1.5}},
            "relevance['a']",
            "whole-number",
        ),
        (
            {"question": "Q", "gold_context_ids": ["a"], "relevance": {"a": True}},
            "relevance['a']",
            "whole-number",
        ),
        (
            {"question": "Q", "gold_context_ids": ["a"], "relevance": {"a": 0}},
            "relevance['a']",
            "grade 0 for a gold",
        ),
        (
            {"question": "Q", "gold_context_ids": ["a"], "relevance": {"b": 2}},
            "relevance['b']",
            "not in gold",
        ),
        ({"question": "Q", "gold_context_ids": ["a"], "relevance": [1]}, "relevance", "id -> grade"),
        ({"question": "Q", "gold_context_ids": ["a"], "gold_spans": {}}, "gold_spans", "list of span"),
        (
            {"question": "Q", "gold_context_ids": ["a"], "gold_spans": [5]},
            "gold_spans[0]",
            "expected an object",
        ),
        (
            {
                "question": "Q",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": 9, "end": 9}],
            },
            "gold_spans[0]",
            "start 9 must be below end 9",
        ),
        (
            {
                "question": "Q",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": -1, "end": 9}],
            },
            "gold_spans[0].start",
            "negative offset -1",
        ),
        (
            {"question": "Q", "gold_context_ids": ["a"], "gold_spans": [{"start": 0, "end": 9}]},
            "gold_spans[0].doc_id",
            "missing",
        ),
        (
            {
                "question": "Q",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": "0", "end": 9}],
            },
            "gold_spans[0].start",
            "whole number",
        ),
        (
            {
                "question": "Q",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": 0, "end": 9, "x": 1}],
            },
            "gold_spans[0].x",
            "unknown span field",
        ),
        (
            {
                "question": "Q",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": 0, "end": 9, "chunk_id": "b#top:0"}],
            },
            "gold_spans[0].chunk_id",
            "belongs to 'b'",
        ),
        ({"question": "Q\ud800", "gold_context_ids": ["a"]}, "question", "unpaired surrogate"),
    ],
)
def test_each_record_problem_names_line_and_field(obj: object, field: str, needle: str) -> None:
    found = problems_of(obj)
    assert any(line == 7 and f == field and needle in message for line, f, message in found), found


def test_one_record_reports_all_of_its_problems() -> None:
    found = problems_of(
        {
            "question": "",
            "gold_context_ids": [],
            "relevance": {"a": -2},
            "gold_spans": [{"doc_id": "d", "start": 4, "end": 1}],
        }
    )
    fields = {f for _, f, _ in found}
    assert {"question", "gold_context_ids", "relevance['a']", "gold_spans[0]"} <= fields


def test_problem_text_and_error_message_lists_first_twenty() -> None:
    assert str(Problem(7, "gold_context_ids", "empty list")) == "line 7, field 'gold_context_ids': empty list"
    assert str(Problem(None, "", "no records")) == "no records"
    assert str(Problem(3, "", "x", "q.tsv")) == "q.tsv, line 3: x"
    problems = [Problem(n, "question", f"problem {n}") for n in range(25, 0, -1)]
    error = EvalSetProblems(problems, "set.jsonl")
    assert isinstance(error, InputError)
    assert [p.line for p in error.problems] == list(range(1, 26))
    text = str(error)
    assert text.startswith("set.jsonl: 25 problems")
    assert "line 20, field 'question': problem 20" in text and "line 21," not in text
    assert text.rstrip().endswith("... and 5 more")


def test_validate_reports_duplicates_with_both_lines() -> None:
    evalset = sample_set()
    evalset.records.append(EvalRecord(id="q2", question="Something else?", gold_context_ids=["d"]))
    evalset.records.append(EvalRecord(id="q9", question="how do i start  TEI", gold_context_ids=["d"]))
    evalset.records.append(EvalRecord(id="q10", question="", gold_context_ids=[]))
    evalset.source_lines = {"q1": 1, "q2": 2, "q3": 3, "q9": 5, "q10": 6}
    found = {(p.line, p.field): p.message for p in validate(evalset)}
    assert "duplicate id 'q2'" in found[(2, "id")]
    assert "same question as line 2 (id 'q2')" in found[(5, "question")]
    assert "empty" in found[(6, "question")] and "empty list" in found[(6, "gold_context_ids")]
    assert validate(sample_set()) == []
    assert [p.message for p in validate(EvalSet("e", []))] == ["no records: the eval set is empty"]


def test_validate_against_a_collection_checks_chunk_and_document_ids() -> None:
    evalset = sample_set()
    evalset.source_lines = {"q1": 1, "q2": 2, "q3": 3}
    known_ids = {"storage#on-disk-layout:0", "tei/quick_tour#top:0", "rules#t:0"}
    known_docs = {"storage", "tei/quick_tour", "rules"}
    found = {(p.line, p.field): p.message for p in validate(evalset, known_ids, known_docs, collection="kb")}
    assert set(found) == {(1, "gold_context_ids[1]"), (1, "relevance['basics']"), (3, "gold_context_ids[0]")}
    assert (
        "chunk id 'storage#on-disk-layout:1' is not in collection 'kb'" in found[(1, "gold_context_ids[1]")]
    )
    assert "chunked differently" in found[(1, "gold_context_ids[1]")]
    assert "document id 'basics' has no chunks" in found[(1, "relevance['basics']")]
    # Documents derived from the chunk ids when not given: the same verdicts.
    assert {(p.line, p.field) for p in validate(evalset, known_ids)} == set(found)
    # Only documents known: chunk ids are checked by their document.
    only_docs = validate(evalset, known_docs={"storage", "tei/quick_tour"})
    assert {(p.line, p.field) for p in only_docs} == {(1, "relevance['basics']"), (3, "gold_context_ids[0]")}
    # A span's document is checked too.
    evalset.records[1].gold_spans = [GoldSpan("elsewhere", 0, 5)]
    spans = validate(evalset, known_ids | {"storage#on-disk-layout:1", "rules#t:3", "basics"})
    assert [(p.line, p.field) for p in spans] == [(2, "gold_spans[0].doc_id")]


def test_graded_gold_aliases_are_read_as_relevance() -> None:
    from ragdeck.console.evalsets.model import parse_record

    for alias in ("gold_grades", "qrels", "relevance_judgments"):
        record, problems = parse_record({"question": "Why?", alias: {"d1": 2, "d2": 1, "d3": 0}}, line=3)
        assert problems == [], alias
        assert record is not None
        assert record.gold_context_ids == ["d1", "d2"]  # the ids graded 1 or more, in the order given
        assert record.relevance == {"d1": 2, "d2": 1, "d3": 0}
    _, twice = parse_record({"question": "Why?", "gold_grades": {"d1": 1}, "relevance": {"d1": 1}}, line=4)
    assert [(p.line, p.field) for p in twice] == [(4, "gold_grades")]
    assert "graded gold given twice" in twice[0].message


def test_unknown_fields_say_what_they_probably_mean() -> None:
    from ragdeck.console.evalsets.model import FIELDS, parse_record

    _, problems = parse_record({"question": "Why?", "gold_context_ids": ["d1"], "answer": "x", "tagz": []}, 7)
    by_field = {p.field: p for p in problems}
    assert set(by_field) == {"answer", "tagz"}
    assert "did you mean 'reference_answer'?" in by_field["answer"].message
    assert "did you mean 'tags'?" in by_field["tagz"].message
    assert all(by_field["answer"].line == 7 and name in by_field["answer"].message for name in FIELDS)
    _, far = parse_record({"question": "Why?", "gold_context_ids": ["d1"], "zzz": 1})
    assert "did you mean" not in far[0].message and "known fields: id, question" in far[0].message
