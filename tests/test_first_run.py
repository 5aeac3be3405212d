"""A first start shows the product: after ``ragdeck demo`` (what ``ragdeck console`` runs first) the demo gold
set has been run once with dense and once with hybrid retrieval, from the package, in any working folder;
a second start adds nothing; and the Evaluate, Compare, Index Ops and SLO pages open on real content.

The demo collection comes from the session's ``demo_snapshot`` (built once); the record that a first build
writes (``record_demo_version``, a version built by "ragdeck demo") is written by the same function here.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli
from conftest import COMPONENT_ENV
from pages import open_page

import ragdeck
from ragdeck.console.evaluation.demo_runs import DEMO_CREATOR, DEMO_SET, is_demo_run, run_mode
from ragdeck.console.settings import Settings
from ragdeck.services.eval_store import EvalStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(
    demo_snapshot: Path, local_embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """A data directory after a first start (demo recorded, demo eval runs made by ``build_demo``, what
    ``ragdeck console`` and ``ragdeck demo`` run first) and what it printed (one line, spaces collapsed: rich
    wraps at 80 columns off a terminal), run from an empty folder that has no ``eval_sets/``."""
    import ragdeck.console.wiring as wiring
    from ragdeck.cli.ingest import build_demo, record_demo_version

    home = tmp_path_factory.mktemp("first-run")
    data = home / "data"
    subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(data)], check=True)
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in COMPONENT_ENV:
            patch.delenv(name, raising=False)
        patch.chdir(elsewhere)
        patch.setenv("RAGDECK_DATA_DIR", str(data))
        patch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
        stack = wiring.build_stack(Settings())
        try:
            record_demo_version(stack, "rag_chunks_v1")
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                build_demo(stack)
        finally:
            stack.close()
    assert not (elsewhere / "eval_sets").exists()  # nothing was read from (or written to) the folder
    yield data, " ".join(printed.getvalue().split())


@pytest.fixture
def first_run_dir(first_run: tuple[Path, str], data_dir: Path) -> Path:
    """A private copy of the first-run data directory as RAGDECK_DATA_DIR (cwd: an empty tmp folder)."""
    subprocess.run(["cp", "-a", "--sparse=always", str(first_run[0]), str(data_dir)], check=True)
    return data_dir


def test_the_first_start_runs_the_packaged_demo_set_dense_and_hybrid(first_run: tuple[Path, str]) -> None:
    data, printed = first_run
    assert DEMO_SET.parent.parent == Path(ragdeck.__file__).resolve().parent  # package data, not the repo's
    runs = EvalStore(data / "ragdeck.sqlite3").list_runs()
    assert sorted(run_mode(r) for r in runs) == ["dense", "hybrid"]
    for run in runs:
        assert is_demo_run(run) and run.config["created_by"] == DEMO_CREATOR
        assert run.status == "done" and run.set_name == "demo_gold" and run.total == 43
        assert run.collection == "rag_chunks_v1" and run.config["set_path"] == str(DEMO_SET)
        assert run.config["policy"]["name"] == f"demo-{run_mode(run)}"
        assert 0.5 < run.summary["metrics"]["recall@10"]["mean"] <= 1.0
    dense = next(r for r in runs if run_mode(r) == "dense")
    hybrid = next(r for r in runs if run_mode(r) == "hybrid")
    assert dense.created_at < hybrid.created_at  # dense first: Compare offers it as A
    for mode, run in (("dense", dense), ("hybrid", hybrid)):
        said = f"Demo eval ({mode}): run {run.run_id}, demo_gold (43 questions) on rag_chunks_v1 in "
        assert re.search(re.escape(said) + r"\d+\.\d s, done: recall@10 [01]\.\d{3}", printed), printed
    assert re.search(r"Demo eval runs of demo_gold.jsonl took \d+\.\d s in all", printed)


def test_a_second_start_adds_no_runs(first_run_dir: Path, local_embedder, monkeypatch, capsys) -> None:
    import ragdeck.console.wiring as wiring

    before = [r.run_id for r in EvalStore(Settings().state_db).list_runs()]
    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    code, out, err = run_cli(monkeypatch, capsys, "demo")
    assert code == 0, err
    assert [r.run_id for r in EvalStore(Settings().state_db).list_runs()] == before
    out = " ".join(out.split())
    assert "Demo eval (dense) already there" in out and "Demo eval (hybrid) already there" in out
    assert "in all" not in out


def test_a_fresh_start_shows_evaluate_compare_index_ops_and_slo(first_run_dir: Path) -> None:
    runs = EvalStore(Settings().state_db).list_runs()
    dense = next(r for r in runs if run_mode(r) == "dense")
    hybrid = next(r for r in runs if run_mode(r) == "hybrid")

    at = open_page("evaluate")
    assert not at.error and not any("No eval runs yet" in i.value for i in at.info)
    picker = next(s for s in at.selectbox if s.label == "Run")
    assert picker.value == hybrid.run_id  # the newest
    assert "by ragdeck demo" in picker.format_func(picker.value)
    recall = next(m for m in at.metric if m.label == "recall@10")
    assert 0.5 < float(recall.value) <= 1.0
    per_query = next(d.value for d in at.dataframe if "gold_found" in d.value.columns)
    assert len(per_query) == 43

    at = open_page("compare")
    assert not at.error
    assert next(s for s in at.selectbox if s.label == "Run A (baseline)").value == dense.run_id
    assert next(s for s in at.selectbox if s.label == "Run B (candidate)").value == hybrid.run_id
    table = next(d.value for d in at.dataframe if "B − A" in d.value.columns)
    assert "recall@10" in list(table["metric"]) and (table["n"] == 43).all()

    at = open_page("index_ops")
    assert not at.error
    versions = next(d.value for d in at.dataframe if "by" in d.value.columns and "state" in d.value.columns)
    row = versions.set_index("collection").loc["rag_chunks_v1"]
    assert row["by"] == "ragdeck demo" and row["state"] == "live" and row["points"] > 0

    at = open_page("slo")  # no PROMETHEUS_URL, no API running: the quality objectives, and how to get more
    assert not at.error and not at.warning
    recall = next(m for m in at.metric if m.label == "recall@10")
    assert recall.value == f"{hybrid.summary['metrics']['recall@10']['mean']:.3f}"
    assert next(m for m in at.metric if m.label == "availability").value == "no data"
    assert any("eval runs in the state database" in c.value for c in at.caption)
    hint = " ".join(i.value for i in at.info)
    assert "No request metrics" in hint and "Canary page" in hint and "PROMETHEUS_URL" in hint
    rows = next(d.value for d in at.dataframe if "objective" in d.value.columns).set_index("objective")
    assert rows.loc["recall@10", "state"] in ("green", "amber", "red")
    assert hybrid.run_id in rows.loc["recall@10", "note"]
    assert "no metrics source configured" in rows.loc["availability", "note"]


def test_batched_query_vectors_are_the_ones_a_query_gets(local_embedder) -> None:
    import numpy as np

    from ragdeck.console.evaluation.demo_runs import BatchedQueries

    questions = ["How do I write a recording rule?", "What does TEI /rerank return?", "short"]
    batched = BatchedQueries(local_embedder, [*questions, questions[0]])  # duplicates embedded once
    for question in questions:
        assert np.allclose(batched.embed_query(question), local_embedder.embed_query(question), atol=1e-5)
    other = "a question not in the batch"
    assert np.allclose(batched.embed_query(other), local_embedder.embed_query(other), atol=1e-6)
    assert batched.dimension == local_embedder.dimension and batched.model_name == local_embedder.model_name
    assert batched.note().startswith("3 questions embedded in one batch before the run in ")


def test_a_collection_not_built_by_the_demo_gets_no_demo_runs(first_run_dir: Path) -> None:
    from ragdeck.console.evaluation.demo_runs import ensure_demo_runs
    from ragdeck.console.wiring import build_eval_runner, build_stack

    settings = Settings()
    store = EvalStore(settings.state_db)
    for run in store.list_runs():
        store.delete_run(run.run_id)
    stack = build_stack(settings)
    try:
        outcomes = ensure_demo_runs(build_eval_runner(settings, stack), settings, lambda c: "operator ana")
    finally:
        stack.close()
    assert [o.outcome for o in outcomes] == ["skipped", "skipped"] and store.list_runs() == []
    assert "rag_chunks -> rag_chunks_v1 was not built by `ragdeck demo` (built by: operator ana)" in (
        outcomes[0].reason
    )
