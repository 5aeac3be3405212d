"""The eval run store (SQLite): runs, results in order, resume bookkeeping, clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ragdeck.errors import InputError
from ragdeck.services.eval_store import EvalStore
from ragdeck.services.types import RunRow


def row(run_id: str, created: float = 1.0, set_name: str = "demo") -> RunRow:
    return RunRow(
        run_id,
        created,
        created,
        "running",
        set_name,
        "ab" * 32,
        "rag_chunks_v1",
        3,
        {"policy": {"name": "A"}, "ks": [10]},
    )


def test_runs_round_trip_newest_first_and_by_set(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "state.sqlite3")
    store.create_run(row("r1", 1.0))
    store.create_run(row("r2", 2.0, "other"))
    assert [r.run_id for r in store.list_runs()] == ["r2", "r1"]
    assert [r.run_id for r in store.list_runs(set_name="demo")] == ["r1"]
    assert store.get_run("r1") == row("r1", 1.0)
    store.update_run("r1", status="done", summary={"metrics": {"recall@10": {"mean": 0.5}}})
    got = store.get_run("r1")
    assert got.status == "done" and got.summary == {"metrics": {"recall@10": {"mean": 0.5}}}
    assert got.updated_at > 1.0
    with pytest.raises(InputError, match="exists already"):
        store.create_run(row("r1"))
    with pytest.raises(InputError, match=r"unknown eval run 'nope'; latest runs: r2, r1"):
        store.get_run("nope")
    with pytest.raises(InputError, match="run status must be one of"):
        store.update_run("r1", status="weird")


def test_results_keep_set_order_and_resume_skips_only_finished(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "state.sqlite3")
    store.create_run(row("r1"))
    store.save_result("r1", "q3", 2, True, {"query_id": "q3"})
    store.save_result("r1", "q1", 0, True, {"query_id": "q1"})
    store.save_result("r1", "q2", 1, False, {"query_id": "q2", "error": "retrieval: boom"})
    assert [r["query_id"] for r in store.results("r1")] == ["q1", "q2", "q3"]
    assert store.finished_ids("r1") == {"q1", "q3"}  # the failed one is tried again on resume
    store.save_result("r1", "q2", 1, True, {"query_id": "q2", "error": None})
    assert store.finished_ids("r1") == {"q1", "q2", "q3"} and len(store.results("r1")) == 3
    store.delete_run("r1")
    assert store.list_runs() == [] and store.results("r1") == []


def test_threads_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "state.sqlite3")
    store.create_run(row("r1"))

    def save(worker: int) -> None:
        for i in range(50):
            store.save_result("r1", f"q{worker}-{i}", worker * 50 + i, True, {"n": i})

    threads = [threading.Thread(target=save, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.finished_ids("r1")) == 200
    assert store.health().ok and "1 runs" in store.health().detail
