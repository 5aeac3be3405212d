"""``ragdeck eval``: Markdown summary, --json export, gates that pass and fail, baselines, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from ragdeck.console.evalsets.io import read_jsonl, write_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    write_jsonl(EvalSet("small", read_jsonl(DEMO_GOLD).records[:12]), path)
    return path


def test_eval_prints_markdown_and_writes_json(
    demo_data_dir, small_set, tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "run.json"
    code, stdout, _ = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--set",
        str(small_set),
        "--alias",
        "rag_chunks",
        "--k",
        "20",
        "--no-rerank",
        "--json",
        str(out),
    )
    assert code == 0
    assert stdout.startswith("## Eval run `run-") and "(done)" in stdout
    assert "| recall@20 |" in stdout and "| mrr@20 |" in stdout and "| stage | P50 ms | P95 ms |" in stdout
    data = json.loads(out.read_text())
    assert data["status"] == "done" and data["eval_set"]["hash"] == read_jsonl(small_set).content_hash()
    assert data["config"]["ks"] == [1, 3, 5, 10, 20]
    assert set(data["summary"]) >= {"recall@1", "recall@20", "ndcg@10", "map@20", "doc_hit_rate@5"}
    assert len(data["queries"]) == 12
    first = data["queries"][0]
    assert first["id"] == read_jsonl(small_set).records[0].id
    assert len(first["retrieved_chunk_ids"]) >= 20 and len(first["retrieved_doc_ids"]) == 20  # 20 documents
    assert first["level"] == "chunk" and first["depth"]["filled"] and first["question"]
    assert set(first["metrics"]) >= {"recall@20", "doc_mrr@20"} and first["error"] is None


def test_a_gate_that_fails_exits_1_with_the_reason(demo_data_dir, small_set, monkeypatch, capsys) -> None:
    code, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--set",
        str(small_set),
        "--no-rerank",
        "--gate",
        "recall@10>=1.01,hit_rate@10>=0.1",
    )
    assert code == 1
    assert "**Gate failed:**" in stdout and "recall@10 = " in stdout
    assert "gate failed:" in err and "the gate wants >= 1.01" in err and "hit_rate" not in err


def test_a_gate_that_passes_and_a_baseline_comparison(
    demo_data_dir, small_set, tmp_path, monkeypatch, capsys
) -> None:
    base = tmp_path / "base.json"
    code, _, _ = run_cli(
        monkeypatch, capsys, "eval", "--set", str(small_set), "--no-rerank", "--json", str(base)
    )
    assert code == 0
    code, stdout, _ = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--set",
        str(small_set),
        "--no-rerank",
        "--gate",
        "hit_rate@10>=0.5",
        "--baseline",
        str(base),
        "--max-regression",
        "0.02",
    )
    assert code == 0 and "**Gate passed**" in stdout
    # the same policy again, against the baseline by run id: retrieval is deterministic, nothing drops
    baseline_run = json.loads(base.read_text())["run_id"]
    code, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--set",
        str(small_set),
        "--no-rerank",
        "--baseline",
        baseline_run,
        "--max-regression",
        "0",
    )
    assert code == 0, err
    # a baseline that was better than this run by more than allowed fails, naming the metric and the drop
    data = json.loads(base.read_text())
    data["summary"]["recall@10"] = data["summary"]["recall@10"] + 0.1
    better = tmp_path / "better.json"
    better.write_text(json.dumps(data))
    code, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--set",
        str(small_set),
        "--no-rerank",
        "--baseline",
        str(better),
        "--max-regression",
        "0.05",
    )
    assert code == 1
    assert "recall@10 fell from" in err and "more than the allowed 0.05" in err


def test_baseline_on_another_set_version_is_refused(
    demo_data_dir, small_set, tmp_path, monkeypatch, capsys
) -> None:
    other = tmp_path / "other.jsonl"
    write_jsonl(EvalSet("small", read_jsonl(DEMO_GOLD).records[:5]), other)
    base = tmp_path / "base.json"
    assert (
        run_cli(monkeypatch, capsys, "eval", "--set", str(other), "--no-rerank", "--json", str(base))[0] == 0
    )
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(small_set), "--no-rerank", "--baseline", str(base)
    )
    assert_one_line_error(code, err, "another version of the eval set", "re-run the baseline")


def test_unknown_gold_ids_are_listed_before_anything_runs(
    demo_data_dir, tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "bad.jsonl"
    records = [
        *read_jsonl(DEMO_GOLD).records[:2],
        EvalRecord("q-bad", "Where is the missing chunk?", ["prometheus-docs/nope.md#x:3"]),
    ]
    write_jsonl(EvalSet("bad", records), path)
    code, stdout, err = run_cli(monkeypatch, capsys, "eval", "--set", str(path), "--no-rerank")
    assert code == 1 and stdout == ""
    assert "'prometheus-docs/nope.md#x:3'" in err and "line 3" in err
    assert "1 of " in err and "--missing-gold skip" in err and "--missing-gold keep" in err
    # skip: the id is dropped, the query left without gold excluded, both said before the run
    code, stdout, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(path), "--no-rerank", "--missing-gold", "skip"
    )
    assert code == 0, err
    assert "note: missing gold (skip): 1 of" in err and "excluded: q-bad" in err
    assert "2 of 2 queries scored" in stdout and "missing gold (skip)" in stdout
    code, stdout, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(path), "--no-rerank", "--missing-gold", "keep"
    )
    assert code == 0, err
    assert "3 of 3 queries scored" in stdout and "kept as never retrievable" in stdout
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--set", str(path), "--missing-gold", "maybe")
    assert_one_line_error(code, err, "missing gold must be one of fail, skip, keep")


def test_bad_gate_and_unknown_policy_are_one_line_errors(
    demo_data_dir, small_set, monkeypatch, capsys
) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--set", str(small_set), "--gate", "recall@10=>0.8")
    assert_one_line_error(code, err, "is not 'metric OP number'")
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--set", str(small_set), "--policy", "nope")
    assert_one_line_error(code, err, "unknown policy 'nope'", "A, B")


def test_a_bad_baseline_file_is_one_line_error_before_anything_runs(
    demo_data_dir, small_set, tmp_path, monkeypatch, capsys
) -> None:
    import os

    bad = tmp_path / "bad.json"
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # reading it would block forever
    cases = [
        ("[" * 100_000, "nested more than 64 levels deep"),
        ('{"eval_set": {"hash": ' + "1" * 10_000 + '}, "summary": {}}', "a number of 10000 digits"),
        ('{"eval_set": {"hash": "x"}, "summary": {"recall@10": "high"}}', "could not convert"),
        ('{"eval_set": {"hash": "x"}, "summary": [1]}', "not a `ragdeck eval --json` file"),
    ]
    for text, needle in cases:
        bad.write_text(text)
        code, out, err = run_cli(
            monkeypatch, capsys, "eval", "--set", str(small_set), "--no-rerank", "--baseline", str(bad)
        )
        assert_one_line_error(code, err, f"baseline {bad}", needle)
        assert out == ""
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(small_set), "--no-rerank", "--baseline", str(fifo)
    )
    assert_one_line_error(code, err, "pipe.json is a named pipe (FIFO), not a file")
