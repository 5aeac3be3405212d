"""``ragdeck evalset validate``, ``convert`` and ``map`` as a user runs them: output, exit codes, problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.console.evalsets.gold_mapping import SpanIndex
from ragdeck.console.evalsets.io import read_any, read_jsonl, write_jsonl
from ragdeck.console.evalsets.model import EvalSet
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


# ------------------------------------------------------------------ map

DEMO_GOLD = Path(__file__).parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"
SMALL_DOCS = (
    "prometheus-docs/docs/practices/pushing",
    "prometheus-docs/docs/guides/basic-auth",
    "prometheus-docs/docs/visualization/perses",
    "prometheus-docs/docs/visualization/grafana",
)


@pytest.fixture
def two_chunkings(data_dir: Path, tmp_path: Path, local_embedder) -> tuple[SpanIndex, SpanIndex]:
    """Four small demo documents indexed twice: ``coarse_v1`` (the default chunking, alias ``coarse``) and
    ``fine_v1`` (300-700 characters, alias ``fine``); their span indexes."""
    from ragdeck.console.ingest.chunking import ChunkingConfig
    from ragdeck.console.ingest.demo import DEMO_CORPUS
    from ragdeck.console.ingest.pipeline import ingest

    corpus = tmp_path / "corpus"
    for doc_id in SMALL_DOCS:  # same relative paths: same document ids and offsets as the demo collection
        target = corpus / f"{doc_id}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((DEMO_CORPUS / f"{doc_id}.md").read_bytes())
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="coarse_v1", alias="coarse")
        fine = ChunkingConfig(300, 700, 0.1)
        ingest(corpus, store, local_embedder, collection="fine_v1", alias="fine", chunking=fine)
        return SpanIndex.from_store(store, "coarse"), SpanIndex.from_store(store, "fine")


@pytest.mark.slow
def test_map_demo_gold_onto_another_chunking(two_chunkings, tmp_path: Path, monkeypatch, capsys) -> None:
    _, fine = two_chunkings
    gold = read_jsonl(DEMO_GOLD)
    docs = set(SMALL_DOCS)
    coverable = [r for r in gold.records if {s.doc_id for s in r.gold_spans} <= docs]
    [partly] = [r for r in gold.records if r not in coverable and {s.doc_id for s in r.gold_spans} & docs]
    assert len(coverable) == 4 and len(gold.records) == 43

    # The whole set: 4 records lie on these documents, one in part; the other 38 have nowhere to go (exit 1).
    out = tmp_path / "mapped.jsonl"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "evalset", "map", str(DEMO_GOLD), "--collection", "fine", "--out", str(out)
    )
    assert code == 1, err
    assert "mapped onto fine: 4 records fully, 1 partly, 38 not at all" in stdout
    missed = [line.strip() for line in stdout.splitlines() if ": no chunk for " in line]
    assert len(missed) == 39 and sum(line.endswith("(record left out)") for line in missed) == 38
    lost = [s for s in partly.gold_spans if s.doc_id not in docs]
    assert f"{partly.id}: no chunk for " + ", ".join(
        f"{s.chunk_id}[{s.start}:{s.end}]" for s in lost
    ) + " (rest kept)" in missed  # fmt: skip
    mapped = read_jsonl(out)
    kept = [r for r in gold.records if r in coverable or r is partly]
    assert [r.id for r in mapped.records] == [r.id for r in kept]
    assert f"wrote {out}: 5 records, content hash sha256:{mapped.content_hash()}" in stdout
    for before, after in zip(kept, mapped.records, strict=True):
        assert after.question == before.question and after.reference_answer == before.reference_answer
        assert after.gold_context_ids and set(after.gold_context_ids) <= set(fine.by_id)
        for chunk_id in after.gold_context_ids:  # each mapped chunk overlaps one of the gold spans
            chunk = fine.by_id[chunk_id]
            assert any(s.doc_id == chunk.doc_id and min(s.end, chunk.end) > max(s.start, chunk.start)
                       for s in before.gold_spans)  # fmt: skip
        assert set(after.relevance.values()) <= set(before.relevance.values())  # grades follow the spans
    assert {fine.by_id[c].doc_id for c in mapped.by_id()[partly.id].gold_context_ids} <= docs

    # Only those 4 records, written as CSV: everything maps (exit 0).
    subset = tmp_path / "subset.jsonl"
    write_jsonl(EvalSet("subset", coverable), subset)
    code, stdout, err = run_cli(
        monkeypatch, capsys, "evalset", "map", str(subset), "-c", "fine_v1", "-o", str(tmp_path / "m.csv")
    )
    assert code == 0, err
    assert "mapped onto fine_v1: 4 records fully, 0 partly, 0 not at all" in stdout
    assert ": no chunk for " not in stdout
    assert [r.gold_context_ids for r in read_any(tmp_path / "m.csv").records] == [
        r.gold_context_ids for r in mapped.records if r.id != partly.id
    ]


@pytest.mark.slow
def test_map_chunk_ids_without_spans_through_the_source_collection(
    two_chunkings, tmp_path: Path, monkeypatch, capsys
) -> None:
    coarse, fine = two_chunkings
    pushing = next(c for c in coarse.by_id if c.startswith(SMALL_DOCS[0]))
    source = write_lines(
        tmp_path / "ids.jsonl",
        {"id": "a", "question": "Why not one Pushgateway for all?", "gold_context_ids": [pushing]},
        {
            "id": "b",
            "question": "Perses?",
            "gold_context_ids": ["prometheus-docs/docs/visualization/perses", "nowhere#top:0"],
        },
    )
    # Without --source the chunk ids have no span: record a is lost, b keeps its document id.
    code, stdout, _ = run_cli(monkeypatch, capsys, "evalset", "map", str(source), "-c", "fine")
    assert code == 1
    assert "0 records fully, 1 partly, 1 not at all" in stdout
    assert f"a: no chunk for {pushing} (no span) (record left out)" in stdout
    assert "b: no chunk for nowhere#top:0 (no span) (rest kept)" in stdout
    default_out = tmp_path / "ids.mapped-fine.jsonl"
    assert [r.id for r in read_jsonl(default_out).records] == ["b"]

    code, stdout, _ = run_cli(
        monkeypatch, capsys, "evalset", "map", str(source), "-c", "fine", "--source", "coarse",
        "--min-coverage", "0.9",
    )  # fmt: skip
    assert code == 1 and "1 records fully, 1 partly, 0 not at all" in stdout
    [a, b] = read_jsonl(default_out).records
    assert a.gold_context_ids and set(a.gold_context_ids) <= set(fine.by_id)
    assert all(c.startswith(SMALL_DOCS[0]) for c in a.gold_context_ids)
    assert b.gold_context_ids == ["prometheus-docs/docs/visualization/perses"]


def test_map_bad_input_exits_2(kb: str, tmp_path: Path, monkeypatch, capsys) -> None:
    good = write_lines(tmp_path / "s.jsonl", {"id": "q", "question": "Where?", "gold_context_ids": ["d#s:0"]})
    bad = write_lines(tmp_path / "bad.jsonl", {"id": "q", "question": "Where?", "gold_context_ids": []})
    cases = [
        ((str(tmp_path / "missing.jsonl"), "-c", kb), "no such file"),
        ((str(bad), "-c", kb), "bad.jsonl: 1 problem (listed above)"),
        ((str(good), "-c", "nope"), "nope"),
        ((str(good), "-c", kb), "has no chunks with source spans"),  # kb's points have no offsets
        ((str(good), "-c", kb, "--min-coverage", "0"), "--min-coverage 0.0 is out of range"),
        ((str(good), "-c", kb, "--out", str(tmp_path / "x.xlsx")), "unknown eval set format"),
    ]
    for args, needle in cases:
        code, out, err = run_cli(monkeypatch, capsys, "evalset", "map", *args)
        assert code == 2, (args, err)
        assert "Traceback" not in err and out == ""
        assert err.strip().splitlines()[-1].startswith("error:") and needle in err, (needle, err)
    assert not list(tmp_path.glob("*.mapped-*"))
    code, _, err = run_cli(monkeypatch, capsys, "evalset", "map", str(good))  # --collection is required
    assert code == 2 and "--collection" in err
