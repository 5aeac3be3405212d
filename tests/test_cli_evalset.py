"""``ragdeck evalset validate`` and ``convert`` as a user runs them: output, exit codes, problem lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.console.evalset_io import read_any, read_jsonl
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint

DATA = Path(__file__).parent / "data" / "evalsets"
CHUNKS = {
    "storage#on-disk-layout:0": "storage",
    "storage#on-disk-layout:1": "storage",
    "storage#wal:0": "storage",
    "tei/quick_tour#top:0": "tei/quick_tour",
}


def write_lines(path: Path, *objs: object) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


@pytest.fixture
def kb(data_dir: Path) -> str:
    """A real embedded collection ``kb_v1`` (alias ``kb``) holding the chunks of ``CHUNKS``."""
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        store.create_collection("kb_v1", 4, HnswConfig())
        points = [
            VectorPoint(id=cid, vector=[1.0, float(i), 0.5, 0.0], payload={"chunk_id": cid, "doc_id": doc})
            for i, (cid, doc) in enumerate(CHUNKS.items())
        ]
        store.upsert("kb_v1", points)
        store.finish_indexing("kb_v1")
        store.set_alias("kb", "kb_v1")
    return "kb"


def test_validate_good_file_prints_counts_and_hash(tmp_path: Path, monkeypatch, capsys) -> None:
    path = write_lines(
        tmp_path / "set.jsonl",
        {
            "id": "q1",
            "question": "Where is the WAL?",
            "gold_context_ids": ["storage#wal:0"],
            "reference_answer": "x",
        },
        {
            "id": "q2",
            "question": "How to start TEI?",
            "gold_context_ids": ["tei/quick_tour"],
            "relevance": {"a": 0},
        },
    )
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "validate", str(path))
    assert code == 0, err
    assert (
        "ok, 2 records, 2 gold ids (1 chunk, 1 document), 1 graded, 0 with spans, 1 with reference answers"
        in out
    )
    assert f"content hash sha256:{read_jsonl(path).content_hash()}" in out


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "q1", "question": "Where is the WAL?", "gold_context_ids": ["storage#wal:0"]}\n'
        '{"id": "q1", "question": "Other", "gold_context_ids": []}\n'
        "not json\n"
        '{"question": "where is the wal", "gold_context_ids": ["x"], "relevance": {"x": -3}}\n',
        encoding="utf-8",
    )
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "validate", str(path))
    assert code == 1 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[:-1] == [
        f"{path}: line 2, field 'gold_context_ids': empty list: a question needs at least one gold id",
        f"{path}: line 2, field 'id': duplicate id 'q1', also used on line 1",
        f"{path}: line 3: not valid JSON: Expecting value at column 1",
        f"{path}: line 4, field 'relevance['x']': negative grade -3: grades are 0 (not relevant), "
        "1 (relevant) or more",
        f"{path}: line 4, field 'question': same question as line 1 (id 'q1') once case, spaces and end "
        "punctuation are ignored; merge the two or reword one",
    ]
    assert lines[-1].startswith("error:") and "5 problems (listed above)" in lines[-1]


def test_validate_against_a_collection(kb: str, tmp_path: Path, monkeypatch, capsys) -> None:
    good = write_lines(
        tmp_path / "good.jsonl",
        {"id": "q1", "question": "Where is the WAL?", "gold_context_ids": ["storage#wal:0", "storage"]},
        {"id": "q2", "question": "Start TEI?", "gold_context_ids": ["tei/quick_tour#top:0"]},
    )
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "validate", str(good), "--collection", kb)
    assert code == 0, err
    assert "every gold id is in collection kb" in out
    bad = write_lines(
        tmp_path / "bad.jsonl",
        {"id": "q1", "question": "Where is the WAL?", "gold_context_ids": ["storage#wal:7", "nowhere"]},
        {"id": "q2", "question": "Start TEI?", "gold_context_ids": ["tei/quick_tour#top:0"]},
        {
            "id": "q3",
            "question": "Layout?",
            "gold_context_ids": ["storage#on-disk-layout:1"],
            "gold_spans": [{"doc_id": "gone", "start": 0, "end": 5}],
        },
    )
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "validate", str(bad), "-c", kb)
    assert code == 1
    listed = err.strip().splitlines()[:-1]
    assert len(listed) == 3
    assert (
        "line 1, field 'gold_context_ids[0]': chunk id 'storage#wal:7' is not in collection 'kb'" in listed[0]
    )
    assert "chunked differently" in listed[0]
    assert "line 1, field 'gold_context_ids[1]': document id 'nowhere' has no chunks" in listed[1]
    assert "line 3, field 'gold_spans[0].doc_id': document id 'gone'" in listed[2]
    assert "3 problems" in err.strip().splitlines()[-1]


def test_validate_unknown_collection_is_one_line(data_dir: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "evalset", "validate", str(DATA / "runbook.csv"), "--collection", "nope"
    )
    assert_one_line_error(code, err, "nope")


def test_convert_between_formats_says_what_is_dropped(tmp_path: Path, monkeypatch, capsys) -> None:
    source = write_lines(
        tmp_path / "set.jsonl",
        {
            "id": "q1",
            "question": "Where is the WAL?",
            "gold_context_ids": ["storage#wal:0"],
            "reference_answer": "In wal/.",
            "relevance": {"storage#wal:0": 2, "storage#top:0": 0},
            "tags": ["storage"],
        },
    )
    code, out, err = run_cli(
        monkeypatch, capsys, "evalset", "convert", str(source), str(tmp_path / "set.qrels"),
        "--queries-out", str(tmp_path / "q.jsonl"),
    )  # fmt: skip
    assert code == 0, err
    assert "note: qrels has no place for reference_answer, tags" in err
    assert (tmp_path / "set.qrels").read_text() == "q1 0 storage#wal:0 2\nq1 0 storage#top:0 0\n"
    assert json.loads((tmp_path / "q.jsonl").read_text()) == {"_id": "q1", "text": "Where is the WAL?"}
    assert "wrote" in out and "(same as the input)" not in out
    code, out, err = run_cli(
        monkeypatch, capsys, "evalset", "convert", str(tmp_path / "set.qrels"), str(tmp_path / "back.jsonl"),
        "--queries", str(tmp_path / "q.jsonl"),
    )  # fmt: skip
    assert code == 0, err
    assert "(same as the input)" in out and err == ""
    assert read_jsonl(tmp_path / "back.jsonl").by_id()["q1"].grade("storage#wal:0") == 2
    code, out, err = run_cli(monkeypatch, capsys, "evalset", "convert", str(source), str(tmp_path / "s.csv"))
    assert code == 0 and "note: csv has no place for relevance" in err
    assert read_any(tmp_path / "s.csv").records[0].tags == ["storage"]


def test_convert_errors_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "evalset", "convert", str(DATA / "runbook.csv"), str(tmp_path / "x.xlsx")
    )
    assert_one_line_error(code, err, "unknown eval set format")
    (tmp_path / "lonely.qrels").write_text("q1 0 a 1\n")
    code, _, err = run_cli(
        monkeypatch, capsys, "evalset", "convert", str(tmp_path / "lonely.qrels"), str(tmp_path / "x.jsonl")
    )
    assert code == 1 and "give the queries file" in err and "Traceback" not in err
    assert not (tmp_path / "x.jsonl").exists()


def test_installed_command_validates_beir_qrels() -> None:
    ragdeck = Path(sys.executable).parent / "ragdeck"
    qrels, queries = DATA / "beir" / "qrels" / "test.tsv", DATA / "beir" / "queries.jsonl"
    done = subprocess.run(
        [str(ragdeck), "evalset", "validate", str(qrels), "--queries", str(queries), "--skip-unjudged"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ok, 2 records, 2 gold ids (0 chunk, 2 document), 1 graded" in done.stdout
    failed = subprocess.run(
        [str(ragdeck), "evalset", "validate", str(qrels), "--queries", str(queries)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "queries.jsonl, line 3: query '3' has no judgement" in failed.stderr
