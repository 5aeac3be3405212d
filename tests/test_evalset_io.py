"""Eval set files: JSONL, CSV and TREC qrels round trips, every problem with its line, and fuzzed readers."""

from __future__ import annotations

import csv
import io
import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragdeck.console.evalsets.io import (
    EvalSetProblems,
    default_queries_path,
    format_of,
    lost_fields,
    read_any,
    read_csv,
    read_jsonl,
    read_qrels,
    write_any,
    write_csv,
    write_jsonl,
    write_qrels,
)
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, GoldSpan, normalize_question, validate
from ragdeck.errors import InputError

DATA = Path(__file__).parent / "data" / "evalsets"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def full_set() -> EvalSet:
    """Every field used, with text that stresses CSV quoting."""
    return EvalSet(
        name="full",
        records=[
            EvalRecord(
                id="q1",
                question='How are samples laid out on disk, "exactly"?',
                gold_context_ids=["storage#on-disk-layout:0", "storage#on-disk-layout:1"],
                reference_answer="In two-hour blocks;\nthe head stays in memory, protected by a WAL.",
                gold_spans=[GoldSpan("storage", 120, 900, "storage#on-disk-layout:0")],
                relevance={"storage#on-disk-layout:0": 2, "basics": 0},
                tags=["storage", "multi-line"],
            ),
            EvalRecord(
                id="q2", question="Größe? ✓", gold_context_ids=["tei/quick_tour"], reference_answer=""
            ),
            EvalRecord(
                id="q3", question="Tabs\tinside", gold_context_ids=["rules#t:3"], reference_answer="x\r\ny"
            ),
        ],
    )


def plain_set() -> EvalSet:
    """What every format carries: ids, questions, gold ids."""
    return EvalSet(
        name="plain",
        records=[
            EvalRecord(id="a1", question="What is a block?", gold_context_ids=["storage#top:0", "storage"]),
            EvalRecord(id="a2", question="What is the WAL?", gold_context_ids=["storage#wal:2"]),
        ],
    )


def problems(call, *args, **kwargs) -> list[tuple[int | None, str, str]]:
    with pytest.raises(EvalSetProblems) as info:
        call(*args, **kwargs)
    return [(p.line, p.field, str(p)) for p in info.value.problems]


def has(found: list[tuple[int | None, str, str]], line: int | None, field: str, needle: str) -> bool:
    return any(ln == line and f == field and needle in text for ln, f, text in found)


# ------------------------------------------------------------------ round trips


def test_jsonl_round_trip_keeps_everything(tmp_path: Path) -> None:
    original = full_set()
    write_jsonl(original, tmp_path / "set.jsonl")
    back = read_jsonl(tmp_path / "set.jsonl")
    assert back.records == original.records
    assert back.content_hash() == original.content_hash()
    assert back.name == "set" and back.meta["format"] == "jsonl"
    assert back.source_lines == {"q1": 1, "q2": 2, "q3": 3}
    first = json.loads((tmp_path / "set.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert list(first)[:4] == ["id", "question", "gold_context_ids", "reference_answer"]
    second = json.loads((tmp_path / "set.jsonl").read_text(encoding="utf-8").splitlines()[1])
    assert "tags" not in second and "gold_spans" not in second  # empty optional fields are left out


def test_csv_round_trip_keeps_what_csv_carries(tmp_path: Path) -> None:
    original = full_set()
    assert lost_fields(original, "csv") == ["gold_spans", "relevance"]
    write_csv(original, tmp_path / "set.csv")
    back = read_csv(tmp_path / "set.csv")
    for got, want in zip(back.records, original.records, strict=True):
        assert (got.id, got.question, got.gold_context_ids, got.reference_answer, got.tags) == (
            want.id, want.question, want.gold_context_ids, want.reference_answer, want.tags,
        )  # fmt: skip
        assert got.gold_spans == [] and got.relevance == {}
    with open(tmp_path / "set.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == ["question", "gold_context_ids", "reference_answer", "id", "tags"]


def test_csv_without_carriage_returns_is_minimally_quoted(tmp_path: Path) -> None:
    write_csv(plain_set(), tmp_path / "p.csv")
    text = (tmp_path / "p.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "question,gold_context_ids,reference_answer,id"
    assert text.splitlines()[1] == 'What is a block?,"storage#top:0,storage",,a1'


def test_runbook_csv_gets_stable_ids(tmp_path: Path) -> None:
    first = read_csv(DATA / "runbook.csv")
    assert len(first.records) == 3
    assert first.records[1].gold_context_ids == ["tei/docs/source/en/quick_tour#re-rankers:0"]
    assert len(first.records[0].gold_context_ids) == 2
    assert all(r.id.startswith("q-") for r in first.records)
    # Same ids when the rows move and the questions change case or spacing.
    rows = (DATA / "runbook.csv").read_text(encoding="utf-8").splitlines()
    moved = [rows[0], rows[3], rows[1].replace("How long", "how  long"), rows[2]]
    (tmp_path / "moved.csv").write_text("\n".join(moved) + "\n", encoding="utf-8")
    second = read_csv(tmp_path / "moved.csv")
    assert {r.id for r in second.records} == {r.id for r in first.records}


def test_csv_header_is_lenient_about_order_case_and_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        '\ufeff ID , Gold_Context_IDs,Question,Tags\nx1,"a, b,",What?,one; two\n\n,,,\n', encoding="utf-8"
    )
    (record,) = read_csv(path).records
    assert (record.id, record.gold_context_ids, record.question, record.tags) == (
        "x1", ["a", "b"], "What?", ["one", "two"],
    )  # fmt: skip
    assert record.reference_answer == ""


def test_qrels_round_trip_is_lossless(tmp_path: Path) -> None:
    evalset = read_qrels(DATA / "graded.qrels")  # graded.queries.tsv found beside it
    q1 = evalset.by_id()["q1"]
    assert q1.gold_context_ids == [
        "prometheus-server/docs/storage#on-disk-layout:0",
        "prometheus-server/docs/storage#on-disk-layout:1",
    ]
    assert q1.relevance == {
        "prometheus-server/docs/storage#on-disk-layout:0": 2,
        "prometheus-server/docs/querying/basics#top:0": 0,
    }
    assert evalset.meta == {"format": "qrels", "queries": "graded.queries.tsv", "unjudged_queries": 0}
    queries = write_qrels(evalset, tmp_path / "out.qrels")
    assert queries == tmp_path / "out.queries.tsv" == default_queries_path(tmp_path / "out.qrels")

    def judgements(path: Path) -> list[tuple[str, str, int]]:
        return [(q, d, int(r)) for q, _, d, r in (line.split() for line in path.read_text().splitlines())]

    assert judgements(tmp_path / "out.qrels") == judgements(DATA / "graded.qrels")
    assert (tmp_path / "out.queries.tsv").read_text() == (DATA / "graded.queries.tsv").read_text()
    assert (tmp_path / "out.qrels").read_bytes() == (DATA / "graded.qrels").read_bytes()
    # Through JSONL and back: still the same judgements and the same hash.
    write_jsonl(evalset, tmp_path / "mid.jsonl")
    middle = read_jsonl(tmp_path / "mid.jsonl")
    write_qrels(middle, tmp_path / "again.qrels", tmp_path / "again.jsonl")
    again = read_qrels(tmp_path / "again.qrels", tmp_path / "again.jsonl")
    assert judgements(tmp_path / "again.qrels") == judgements(DATA / "graded.qrels")
    assert again.content_hash() == middle.content_hash() == evalset.content_hash()


def test_beir_qrels_with_header_and_unjudged_queries() -> None:
    qrels, queries = DATA / "beir" / "qrels" / "test.tsv", DATA / "beir" / "queries.jsonl"
    found = problems(read_qrels, qrels, queries)
    assert found == [(3, "", "queries.jsonl, line 3: query '3' has no judgement in test.tsv (BEIR queries of "
                      "other splits: skip them)")]  # fmt: skip
    evalset = read_any(qrels, queries, skip_unjudged=True)
    assert [r.id for r in evalset.records] == ["1", "2"]
    assert evalset.by_id()["2"].relevance == {
        "tei/docs/source/en/cli_arguments": 2,
        "tei/docs/source/en/quick_tour": 0,
    }
    assert evalset.meta["unjudged_queries"] == 1


def test_hash_is_the_same_across_formats(tmp_path: Path) -> None:
    plain = plain_set()
    hashes = {plain.content_hash()}
    for name in ("p.jsonl", "p.csv", "p.qrels", "p.tsv", "p.txt"):
        written = write_any(plain, tmp_path / name)
        back = read_any(tmp_path / name, written[1] if len(written) > 1 else None)
        hashes.add(back.content_hash())
    assert len(hashes) == 1
    # Answers and tags: JSONL and CSV agree; grades and non-relevant judgements: JSONL and qrels agree.
    answered = plain_set()
    answered.records[0].reference_answer, answered.records[0].tags = "Two hours of samples.", ["t"]
    write_any(answered, tmp_path / "a.csv")
    assert read_any(tmp_path / "a.csv").content_hash() == answered.content_hash()
    graded = plain_set()
    graded.records[1].relevance = {"storage#wal:2": 3, "storage#top:1": 0}
    write_any(graded, tmp_path / "g.qrels")
    assert read_any(tmp_path / "g.qrels").content_hash() == graded.content_hash()
    assert lost_fields(graded, "qrels") == [] and lost_fields(answered, "qrels") == [
        "reference_answer",
        "tags",
    ]


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sets" / "v1.jsonl"
    write_jsonl(full_set(), target)
    before = target.read_bytes()
    bad = EvalSet("bad", [EvalRecord("q", "Q", ["a,b"])])
    with pytest.raises(InputError, match="a,b"):
        write_csv(bad, tmp_path / "sets" / "v1.csv")
    with pytest.raises(InputError, match="whitespace"):
        write_qrels(EvalSet("x", [EvalRecord("q 1", "Q", ["a"])]), tmp_path / "sets" / "x.qrels")
    with pytest.raises(InputError, match="line break"):
        write_qrels(EvalSet("y", [EvalRecord("q", "Two\nlines", ["a"])]), tmp_path / "sets" / "y.qrels")
    assert sorted(os.listdir(tmp_path / "sets")) == ["v1.jsonl"]
    write_jsonl(plain_set(), target)
    assert target.read_bytes() != before and read_jsonl(target).records == plain_set().records


def test_format_of_and_read_any_pick_by_extension(tmp_path: Path) -> None:
    assert [format_of(f"x{s}") for s in (".jsonl", ".CSV", ".qrels", ".txt", ".tsv")] == [
        "jsonl", "csv", "qrels", "qrels", "qrels",
    ]  # fmt: skip
    found = problems(read_any, tmp_path / "set.json")
    assert "unknown eval set format" in found[0][2]
    with pytest.raises(InputError, match="queries file goes with TREC qrels only"):
        write_any(plain_set(), tmp_path / "x.jsonl", tmp_path / "q.tsv")


# ------------------------------------------------------------------ problems


def test_jsonl_problems_all_reported_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        '{"id": "q1", "question": "What is WAL?", "gold_context_ids": ["s#wal:0"]}',
        '{"id": "q2", "question": "what is  wal", "gold_context_ids": ["s#wal:1"]}',
        "",
        '{"id": "q1", "question": "Other?", "gold_context_ids": ["s"]}',
        '{"question": "Q", "gold_context_ids": ["a",]}',
        "[1, 2]",
        '{"id": "q5", "gold_context_ids": []}',
        '{"id": "q6", "question": "Graded?", "gold_context_ids": ["a"], "relevance": {"a": -1}}',
        json.dumps(
            {
                "id": "q7",
                "question": "Span?",
                "gold_context_ids": ["a"],
                "gold_spans": [{"doc_id": "a", "start": 5, "end": 2}],
            }
        ),
        "[" * 100_000,
        '{"id": ' + "1" * 10_000 + ', "question": "Long id?", "gold_context_ids": ["a"]}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = problems(read_jsonl, path)
    assert has(found, 2, "question", "same question as line 1 (id 'q1')")
    assert has(found, 4, "id", "duplicate id 'q1', also used on line 1")
    assert has(found, 5, "", "line 5: not valid JSON: Expecting value at column 44")
    assert has(found, 6, "", "expected a JSON object, got a list")
    assert has(found, 7, "question", "missing")
    assert has(found, 7, "gold_context_ids", "line 7, field 'gold_context_ids': empty list")
    assert has(found, 8, "relevance['a']", "negative grade -1")
    assert has(found, 9, "gold_spans[0]", "start 5 must be below end 2")
    assert has(found, 10, "", "not valid JSON: arrays or objects nested more than 64 levels deep")
    assert has(found, 10, "", "at column 65")
    assert has(found, 11, "", "a number of 10000 digits (over 4300: write long ids as strings")
    assert len(found) == 10
    assert [ln for ln, _, _ in found] == sorted(ln for ln, _, _ in found)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    for name in ("e.jsonl", "e.csv"):
        (tmp_path / name).write_bytes(content)
        found = problems(read_any, tmp_path / name)
        assert found and all(line is None for line, _, _ in found)
        assert any("empty" in text for _, _, text in found)
    (tmp_path / "e.qrels").write_bytes(content)
    (tmp_path / "e.queries.tsv").write_bytes(content)
    assert any("empty" in text for _, _, text in problems(read_any, tmp_path / "e.qrels"))


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "latin1.jsonl").write_bytes(
        b'{"question": "ok", "gold_context_ids": ["a"]}\n{"question": "Caf\xe9"}\n'
    )
    with pytest.raises(EvalSetProblems) as info:
        read_jsonl(tmp_path / "latin1.jsonl")
    assert "latin1.jsonl" in str(info.value) and "line 2: not UTF-8 text: byte 0xe9" in str(info.value)
    with pytest.raises(EvalSetProblems, match=r"(?s)missing.csv.*no such file"):
        read_csv(tmp_path / "missing.csv")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(EvalSetProblems, match=r"(?s)folder.jsonl.*is a folder"):
        read_jsonl(tmp_path / "folder.jsonl")
    locked = tmp_path / "locked.jsonl"
    locked.write_text("{}\n")
    locked.chmod(0)
    try:
        if not os.access(locked, os.R_OK):  # root reads anything
            with pytest.raises(EvalSetProblems, match=r"(?s)locked.jsonl.*cannot be read"):
                read_jsonl(locked)
    finally:
        locked.chmod(0o600)


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "set.jsonl"
    os.mkfifo(fifo)  # reading it would block until a writer came: it must not be opened at all
    for reader in (read_jsonl, read_csv, read_any):
        with pytest.raises(EvalSetProblems, match=r"(?s)set.jsonl.*is a named pipe \(FIFO\), not a file"):
            reader(fifo)
    with pytest.raises(EvalSetProblems, match=r"(?s)null.*is a character device"):
        read_jsonl(Path(os.devnull))


def test_deep_and_long_json_in_a_beir_queries_file(tmp_path: Path) -> None:
    (tmp_path / "s.qrels").write_text("q1 0 a 1\nq2 0 b 1\nq3 0 c " + "9" * 5000 + "\n")
    (tmp_path / "s.queries.jsonl").write_text(
        '{"_id": "q1", "text": ' + "[" * 5000 + "\n" + '{"_id": ' + "7" * 5000 + ', "text": "Q?"}\n'
    )
    found = problems(read_any, tmp_path / "s.qrels")
    assert has(found, 1, "", "nested more than 64 levels deep")
    assert has(found, 2, "", "a number of 5000 digits")
    assert has(found, 3, "rel", "grade of 5000 digits: use a small whole number")


def test_csv_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "question,gold_context_ids,reference_answer\n"
        "Good?,a,fine\n"
        "Too many,a,b,c\n"
        "No gold?,,answer\n"
        '"multi\nline question?",b,"x"\n'
        "good?,c,dup\n"
        '"bad "quote,d,e\n'
        ",e,no question\n",
        encoding="utf-8",
    )
    found = problems(read_csv, path)
    assert has(found, 3, "", "4 cells but the header has 3 columns")
    assert has(found, 4, "gold_context_ids", "empty list")
    assert has(found, 7, "question", "same question as line 2")
    assert has(found, 8, "", "not valid CSV")
    assert has(found, 9, "question", "empty")
    assert len(found) == 5
    path.write_text("question,gold,answer,question\nQ,a,b,c\n", encoding="utf-8")
    found = problems(read_csv, path)
    assert has(found, 1, "gold", "unknown column") and has(found, 1, "answer", "unknown column")
    assert has(found, 1, "question", "column appears twice") and has(
        found, 1, "gold_context_ids", "missing column"
    )


def test_qrels_problems(tmp_path: Path) -> None:
    qrels, queries = tmp_path / "bad.qrels", tmp_path / "bad.queries.tsv"
    qrels.write_text(
        "q1 0 a 1\nq1 0 b\nq1 0 c high\nq1 0 d -1\nq1 0 a 2\nq2 0 a 1\nq3 0 a 0\nq4 0 a 1.5\nq5 0 z 1 extra\n"
    )
    queries.write_text("q1\tFirst?\nq3\tThird?\nq9\tNever judged?\nno tab here\nq1\tAgain?\nq8\t \n")
    found = problems(read_qrels, qrels)
    assert has(found, 2, "", "expected 4 fields 'qid 0 docid rel', got 3")
    assert has(found, 3, "rel", "grade 'high' is not a whole number")
    assert has(found, 4, "rel", "negative grade -1")
    assert has(found, 5, "docid", "second judgement of 'a' for query 'q1' (first on line 1)")
    assert has(found, 6, "qid", "query 'q2' has no question in bad.queries.tsv")
    assert has(found, 7, "rel", "query 'q3' has only grade-0 judgements")
    assert has(found, 8, "rel", "grade '1.5' is not a whole number")
    assert has(found, 9, "", "got 5")
    assert has(found, 3, "", "bad.queries.tsv, line 3: query 'q9' has no judgement")
    assert has(found, 4, "", "bad.queries.tsv, line 4: expected 'qid<TAB>question'")
    assert has(found, 5, "qid", "query 'q1' appears twice (also line 1)")
    assert has(found, 6, "question", "missing or empty question for query 'q8'")
    assert len(found) == 12
    qrels.write_text("q1 0 a 1\n")
    queries.unlink()
    found = problems(read_qrels, qrels)
    assert has(found, None, "queries", "give the queries file") and "bad.queries.tsv" in found[0][2]


# ------------------------------------------------------------------ round trips of generated sets

ids = st.text(alphabet=string.ascii_letters + string.digits + "-_/#:.", min_size=1, max_size=12)
tag = st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=6)


@st.composite
def valid_sets(draw: st.DrawFn) -> EvalSet:
    """Sets that validate: distinct ids and questions, gold ids graded >= 1, other judged ids graded 0."""
    n = draw(st.integers(1, 4))
    qids = draw(st.lists(ids, min_size=n, max_size=n, unique=True))
    questions = draw(
        st.lists(
            st.text(min_size=1, max_size=25).filter(lambda q: q.strip() != ""),
            min_size=n,
            max_size=n,
            unique_by=normalize_question,
        )
    )
    records = []
    for qid, question in zip(qids, questions, strict=True):
        judged = draw(st.lists(ids, min_size=1, max_size=5, unique=True))
        cut = draw(st.integers(1, len(judged)))
        gold, others = judged[:cut], judged[cut:]
        grades = {g: draw(st.integers(1, 3)) for g in gold} | {o: 0 for o in others}
        spans = draw(
            st.lists(
                st.builds(
                    lambda doc, start, length, chunk: GoldSpan(doc, start, start + length, chunk),
                    ids.filter(lambda d: "#" not in d),
                    st.integers(0, 99),
                    st.integers(1, 50),
                    st.none(),
                ),
                max_size=2,
            )
        )
        records.append(
            EvalRecord(
                id=qid,
                question=question,
                gold_context_ids=gold,
                reference_answer=draw(st.text(max_size=30)),
                gold_spans=spans,
                relevance={k: v for k, v in grades.items() if v != 1 or draw(st.booleans())},
                tags=draw(st.lists(tag, max_size=2)),
            )
        )
    return EvalSet(name="gen", records=records)


@FUZZ
@given(evalset=valid_sets())
def test_generated_sets_round_trip_through_every_format(tmp_path: Path, evalset: EvalSet) -> None:
    assert validate(evalset) == []
    write_jsonl(evalset, tmp_path / "s.jsonl")
    assert read_jsonl(tmp_path / "s.jsonl").records == evalset.records
    write_csv(evalset, tmp_path / "s.csv")
    from_csv = read_csv(tmp_path / "s.csv")
    for got, want in zip(from_csv.records, evalset.records, strict=True):
        assert got == EvalRecord(
            want.id, want.question, want.gold_context_ids, want.reference_answer, tags=want.tags
        )
    write_qrels(evalset, tmp_path / "s.qrels", tmp_path / "s.queries.jsonl")
    from_qrels = read_qrels(tmp_path / "s.qrels")
    for got, want in zip(from_qrels.records, evalset.records, strict=True):
        assert (got.id, got.question, got.gold_context_ids) == (want.id, want.question, want.gold_context_ids)
        assert {i: got.grade(i) for i in got.relevance} == {
            i: want.grade(i) for i in want.relevance if want.grade(i) != 1
        }
    bare = [EvalRecord(r.id, r.question, r.gold_context_ids, relevance=r.relevance) for r in evalset.records]
    assert from_qrels.content_hash() == EvalSet("bare", bare).content_hash()


# ------------------------------------------------------------------ fuzzing: only EvalSetProblems, ever


def read_or_problems(reader, path: Path, *args) -> EvalSet | None:
    """Run a reader: it returns an EvalSet or raises EvalSetProblems with at least one problem."""
    try:
        evalset = reader(path, *args)
    except EvalSetProblems as exc:
        assert exc.problems and str(exc)
        return None
    assert evalset.records
    return evalset


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["id", "question", "gold_context_ids", "reference_answer", "gold_spans", "relevance", "tags", "other"]
)
record_like = st.dictionaries(field_names, json_values, max_size=7)
span_like = st.fixed_dictionaries(
    {"doc_id": st.text(max_size=4), "start": st.integers(-2, 5), "end": st.integers(-2, 5)},
    optional={"chunk_id": st.none() | st.text(max_size=6)},
)
near_valid = st.fixed_dictionaries(
    {"question": st.text(max_size=12), "gold_context_ids": st.lists(st.text(max_size=6), max_size=3)},
    optional={
        "id": st.text(max_size=4) | st.integers(),
        "relevance": st.dictionaries(st.text(max_size=6), st.integers(-2, 3), max_size=3),
        "gold_spans": st.lists(span_like, max_size=2),
        "tags": st.lists(st.text(max_size=4), max_size=2),
    },
)


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_all_readers_on_random_bytes(tmp_path: Path, data: bytes) -> None:
    for name in ("f.jsonl", "f.csv", "f.qrels", "f.queries.tsv"):
        (tmp_path / name).write_bytes(data)
    read_or_problems(read_jsonl, tmp_path / "f.jsonl")
    read_or_problems(read_csv, tmp_path / "f.csv")
    read_or_problems(read_qrels, tmp_path / "f.qrels")


@FUZZ
@given(lines=st.lists(st.one_of(json_values, record_like, near_valid), min_size=0, max_size=6))
def test_fuzz_jsonl_with_random_json_values(tmp_path: Path, lines: list) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in lines), encoding="utf-8")
    evalset = read_or_problems(read_jsonl, path)
    if evalset is not None:  # what reads cleanly writes and reads back the same
        write_jsonl(evalset, tmp_path / "again.jsonl")
        assert read_jsonl(tmp_path / "again.jsonl").content_hash() == evalset.content_hash()


@FUZZ
@given(
    text=st.lists(st.text(alphabet=string.printable + "é✓\x00", max_size=40), max_size=6).map("\n".join),
    header=st.booleans(),
)
def test_fuzz_jsonl_with_random_text(tmp_path: Path, text: str, header: bool) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(
        ('{"question": "q", "gold_context_ids": ["a"]}\n' if header else "") + text, encoding="utf-8"
    )
    read_or_problems(read_jsonl, path)


cells = st.text(alphabet=st.sampled_from(list('abcdxyz ,;"\n\r\t#:é?')), max_size=10)
csv_headers = st.sampled_from(
    [["question", "gold_context_ids", "reference_answer"], ["id", "question", "tags", "gold_context_ids"]]
) | st.lists(
    st.sampled_from(["question", "gold_context_ids", "reference_answer", "id", "tags", "x", ""]), max_size=6
)


@FUZZ
@given(
    header=csv_headers,
    rows=st.lists(st.lists(cells, min_size=3, max_size=4) | st.lists(cells, max_size=6), max_size=6),
    raw_tail=st.just("") | st.text(max_size=20),
)
def test_fuzz_csv_with_random_rows(
    tmp_path: Path, header: list[str], rows: list[list[str]], raw_tail: str
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    path = tmp_path / "f.csv"
    path.write_text(buffer.getvalue() + raw_tail, encoding="utf-8", errors="surrogatepass")
    evalset = read_or_problems(read_csv, path)
    if evalset is not None:
        write_csv(evalset, tmp_path / "again.csv")
        assert read_csv(tmp_path / "again.csv").records == evalset.records


token = st.text(alphabet=st.sampled_from(list("q1a2-#:0 \t")), min_size=0, max_size=5)
qrels_line = st.one_of(
    st.tuples(
        st.sampled_from(["q1", "q2", "q3"]),
        st.sampled_from(["0", "Q0"]),
        st.sampled_from(["a", "b#top:0", "c"]),
        st.sampled_from(["0", "1", "2", "-1", "x", "1.0"]),
    ).map(" ".join),
    st.lists(token, max_size=6).map(" ".join),
    st.text(max_size=15),
)


@FUZZ
@given(
    qrels=st.lists(qrels_line, max_size=8),
    queries=st.lists(
        st.tuples(st.sampled_from(["q1", "q2", "q3", "q4", ""]), st.text(max_size=10)).map("\t".join)
        | st.text(max_size=10),
        max_size=5,
    ),
    beir=st.booleans(),
    skip=st.booleans(),
)
def test_fuzz_qrels_with_random_lines(
    tmp_path: Path, qrels: list[str], queries: list[str], beir: bool, skip: bool
) -> None:
    (tmp_path / "f.qrels").write_text("\n".join(qrels), encoding="utf-8", errors="surrogatepass")
    if beir:
        qpath = tmp_path / "f.jsonl"
        objs = [{"_id": q.partition("\t")[0], "text": q.partition("\t")[2]} for q in queries]
        qpath.write_text("\n".join(json.dumps(o) for o in objs), encoding="utf-8")
    else:
        qpath = tmp_path / "f.tsv"
        qpath.write_text("\n".join(queries), encoding="utf-8", errors="surrogatepass")
    try:
        evalset = read_qrels(tmp_path / "f.qrels", qpath, skip_unjudged=skip)
    except EvalSetProblems as exc:
        assert exc.problems
        return
    out = tmp_path / "out.qrels"
    try:
        written_queries = write_qrels(evalset, out, tmp_path / "out.jsonl")
    except InputError:
        return  # an id the qrels format cannot hold (never from a qrels file; a question is free text)
    assert read_qrels(out, written_queries).content_hash() == evalset.content_hash()


def test_a_qrels_problem_names_the_qrels_file_and_the_judgement_line(tmp_path: Path) -> None:
    """Gold the collection lacks, in a qrels set: the qrels file and the line of that judgement, not the
    query's line in the queries file."""
    qrels = tmp_path / "set.qrels"
    qrels.write_text("7 0 d1 1\n7 0 d2 2\n8 0 d9 1\n8 0 d1 1\n")
    (tmp_path / "set.queries.tsv").write_text("8\tsecond question\n7\tfirst question\n")
    evalset = read_qrels(qrels)
    assert evalset.file == str(qrels)
    problems = validate(evalset, known_docs={"d1", "d2"})
    assert [(p.line, p.field) for p in problems] == [(3, "gold_context_ids[0]")]
    assert "'d9'" in problems[0].message


def test_an_unknown_csv_column_says_what_it_probably_means(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("question,gold_ids,reference_answer\nWhy?,d1,because\n")
    with pytest.raises(EvalSetProblems) as info:
        read_csv(path)
    text = str(info.value)
    assert (
        str(path) in text
        and "line 1, field 'gold_ids'" in text
        and "did you mean 'gold_context_ids'?" in text
    )


def test_a_bad_upload_is_named_as_the_user_knows_it_never_by_its_temporary_copy() -> None:
    from ragdeck.console.evalsets.files import read_upload

    with pytest.raises(InputError) as caught:
        good = b'{"id": "q1", "question": "What?", "gold_context_ids": ["a#s:0"]}\n'
        read_upload("my set.jsonl", good + b"{oops\n")
    message = str(caught.value)
    assert "my set.jsonl" in message and "line 2" in message
    assert "ragdeck-upload-" not in message and "/tmp" not in message
    assert read_upload("ok.csv", b"id,question,gold_context_ids\nq1,What?,a#s:0\n").records[0].id == "q1"
    with pytest.raises(InputError, match=r"\.jsonl or \.csv"):
        read_upload("set.txt", b"")
