"""``ragdeck hnsw sweep`` and ``apply``: table, JSON rows, progress on stderr, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from hnsw_data import build_collection

from ragdeck.console.evalsets.io import read_jsonl, write_jsonl
from ragdeck.console.evalsets.model import EvalSet
from ragdeck.console.hnsw import TEMP_PREFIX
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


@pytest.fixture
def vecs(data_dir: Path) -> Path:
    """The clustered collection ``vecs`` (1,500 points, m=4) in the test's data directory."""
    build_collection(data_dir / "qdrant", n=1500).close()
    return data_dir


def test_sweep_prints_the_table_and_writes_json_rows(vecs: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "sweep.json"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "hnsw", "sweep", "--collection", "vecs", "--m", "4,16", "--ef-construct", "32",
        "--ef", "10,40", "--queries", "30", "--target", "0.5", "--json", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "queries: 30 stored vectors sampled with seed 7, perturbed (noise 0.1)" in stderr
    assert "recommendation:" in stdout and "P95 ms" in stdout
    data = json.loads(out.read_text())
    assert data["collection"] == "vecs" and data["queries"] == 30 and data["recall_key"] == "recall_exact"
    rows = data["rows"]
    assert [(r["m"], r["ef_construct"], r["ef"], r["index"]) for r in rows] == [
        (4, 32, 10, "live"), (4, 32, 40, "live"), (16, 32, 10, "copy"), (16, 32, 40, "copy"),
    ]  # fmt: skip
    assert sum(r["recommended"] for r in rows) == 1 and rows[data["recommended"]]["recommended"]
    for row in rows:
        assert 0 <= row["recall_exact"] <= 1 and row["recall_gold"] is None
        assert row["p50_ms"] <= row["p95_ms"] and row["index_bytes"] > 0
    with EmbeddedQdrantStore(vecs / "qdrant") as store:
        assert [c.name for c in store.list_collections()] == ["vecs"]


def test_apply_sets_a_policy_ef_and_rebuilds_an_index(vecs: Path, monkeypatch, capsys) -> None:
    code, stdout, stderr = run_cli(monkeypatch, capsys, "hnsw", "apply", "--policy", "A", "--ef", "96")
    assert code == 0, stderr
    assert "policy A: hnsw_ef None -> 96" in stdout
    assert build_policies(Settings())["A"].hnsw_ef == 96
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "hnsw", "apply", "-c", "vecs", "--m", "16", "--ef-construct", "64"
    )
    assert code == 0, stderr
    assert "collection vecs: m 4 -> 16, ef_construct 32 -> 64" in stdout
    with EmbeddedQdrantStore(vecs / "qdrant") as store:
        hnsw = store.collection_info("vecs").hnsw
        assert (hnsw.m, hnsw.ef_construct) == (16, 64)


def test_errors_are_one_line(vecs: Path, monkeypatch, capsys) -> None:
    cases = [
        (("sweep", "-c", "nope"), "no collection or alias named 'nope'"),
        (("sweep", "-c", "vecs", "--ef", "8,x"), "--ef must be comma-separated integers"),
        (("sweep", "-c", "vecs", "--recall", "recall_gold"), "needs gold"),
        (("sweep", "-c", "vecs", "--latency", "p99"), "--latency must be one of"),
        (("apply", "--policy", "A"), "--policy and --ef go together"),
        (("apply",), "nothing to apply"),
        (("apply", "--policy", "Z", "--ef", "8"), "unknown policy 'Z'"),
        (("apply", "-c", "nope", "--m", "8"), "no collection or alias named 'nope'"),
    ]
    for args, needle in cases:
        code, _, stderr = run_cli(monkeypatch, capsys, "hnsw", *args)
        assert_one_line_error(code, stderr, needle)


def test_apply_needs_the_operator_role(vecs: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RAGDECK_USER", "eve")
    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "engineer")
    code, _, stderr = run_cli(monkeypatch, capsys, "hnsw", "apply", "-c", "vecs", "--m", "8")
    assert_one_line_error(code, stderr, "eve has role engineer", "needs operator")
    code, _, stderr = run_cli(monkeypatch, capsys, "hnsw", "sweep", "-c", "vecs", "--m", "4", "--ef", "16")
    assert code == 0, stderr
    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "annotator")
    code, _, stderr = run_cli(monkeypatch, capsys, "hnsw", "sweep", "-c", "vecs", "--m", "4", "--ef", "16")
    assert_one_line_error(code, stderr, "needs engineer")


@pytest.mark.slow
def test_sweep_with_an_eval_set_measures_gold_recall(
    demo_data_dir: Path, tmp_path, monkeypatch, capsys
) -> None:
    small = tmp_path / "small.jsonl"
    write_jsonl(EvalSet("small", read_jsonl(DEMO_GOLD).records[:10]), small)
    out = tmp_path / "sweep.json"
    code, _, stderr = run_cli(
        monkeypatch, capsys, "hnsw", "sweep", "--m", "4,16", "--ef", "10,64", "--set", str(small),
        "--target", "0.1", "--json", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "queries: 10 questions of eval set small embedded by" in stderr
    data = json.loads(out.read_text())
    assert data["collection"] == "rag_chunks_v1" and data["recall_key"] == "recall_gold"
    assert len(data["rows"]) == 4 and all(0 < r["recall_gold"] <= 1 for r in data["rows"])
    assert data["recommended"] is not None
    # 1,383 chunks x 384-d = 2 MB, under the default full_scan_threshold (10 MB): searched exactly.
    assert any("under its full_scan_threshold" in n for n in data["notes"])
    assert all(r["recall_exact"] == 1.0 for r in data["rows"])
    leftovers = [
        p.name for p in (demo_data_dir / "qdrant" / "collections").iterdir() if TEMP_PREFIX in p.name
    ]
    assert not leftovers
