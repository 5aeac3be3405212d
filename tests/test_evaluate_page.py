"""The Evaluate page through AppTest: run a policy over an eval set, then read the results."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from pages import open_page

DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


def test_run_from_the_page_then_summary_table_drilldown_and_downloads(demo_data_dir: Path) -> None:
    sets = Path("eval_sets")  # the data_dir fixture runs each test in its own working directory
    sets.mkdir()
    shutil.copy(DEMO_GOLD, sets / "demo_gold.jsonl")
    at = open_page("evaluate")
    assert any("No eval runs yet" in i.value for i in at.info)
    missing = next(s for s in at.selectbox if s.label == "Gold the collection lacks")
    assert missing.value == "fail" and missing.options == ["fail", "skip", "keep"]

    run_button = next(b for b in at.button if b.label == "Run")
    run_button.click().run()
    assert not at.exception, at.exception

    import ragdeck.ui as ui

    jobs = ui.get_eval_jobs()
    deadline = time.monotonic() + 120
    while jobs.running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not jobs.running()
    at.run()
    assert not at.exception, at.exception

    labels = [m.label for m in at.metric]
    assert "recall@10" in labels and "mrr@10" in labels
    recall = next(m for m in at.metric if m.label == "recall@10")
    assert 0.0 < float(recall.value) <= 1.0
    assert any(s.value.startswith("Per query") for s in at.subheader)
    per_query = next(d.value for d in at.dataframe if "gold_found" in d.value.columns)
    assert len(per_query) == 43 and {"query_id", "recall@10", "gold_found"} <= set(per_query.columns)
    drill = next(s for s in at.selectbox if s.label == "Drill down")
    assert drill.value == per_query["query_id"].iloc[0]
    assert any("gold chunk" in c.value for c in at.caption)
    ranked = next(d.value for d in at.dataframe if "hit" in d.value.columns)
    assert len(ranked) >= 10 and list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    cut_offs = next(d.value for d in at.dataframe if "k counts" in d.value.columns)
    assert {"@1", "@3", "@5", "@10"} <= set(cut_offs.columns)  # every k, not only the largest
    assert set(cut_offs["k counts"]) == {"chunks", "documents"}
    runs = ui.get_eval_store().list_runs(limit=1)
    assert runs[0].config["missing_gold"] == "fail" and runs[0].config["missing"]["missing"] == 0
    assert any("reranker:" in m.value and "level:" in m.value for m in at.markdown)
    downloads = [d.label for d in at.get("download_button")]
    assert downloads == ["CSV", "JSON", "HTML report"]
    # the sample-size panel, from this run's spread with the paired one assumed (ρ = 0.5 by default)
    sizing = next(m.value for m in at.markdown if "questions needed to detect" in m.value)
    assert "Δ = 0.02 in recall@10" in sizing and "this set has 43" in sizing
    assert any("assumption: one run" in c.value and "ρ = 0.5" in c.value for c in at.caption)
    at.number_input(key="power_run_rho").set_value(0.9).run()  # policies that agree need fewer questions
    closer = next(m.value for m in at.markdown if "questions needed to detect" in m.value)
    assert int(closer.split()[0].strip("*")) < int(sizing.split()[0].strip("*"))


def test_run_in_hybrid_mode_stores_the_policy_and_shows_ranks(demo_data_dir: Path) -> None:
    sets = Path("eval_sets")
    sets.mkdir()
    shutil.copy(DEMO_GOLD, sets / "demo_gold.jsonl")
    at = open_page("evaluate")
    mode = next(r for r in at.radio if r.label == "Retrieval")
    assert mode.value == "dense"  # the policy's own mode
    assert not any(r.label == "Fusion" for r in at.radio)
    mode.set_value("hybrid").run()
    assert not at.exception, at.exception
    assert next(r for r in at.radio if r.label == "Fusion").value == "rrf"
    next(n for n in at.number_input if n.label == "RRF k").set_value(30).run()

    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception, at.exception
    import ragdeck.ui as ui

    jobs = ui.get_eval_jobs()
    deadline = time.monotonic() + 180
    while jobs.running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not jobs.running()
    at.run()
    assert not at.exception, at.exception

    runs = ui.get_eval_store().list_runs(limit=10)
    assert len(runs) == 1 and runs[0].status == "done"
    policy = runs[0].config["policy"]
    assert policy["name"] == "A"  # the chosen policy, its retrieval fields overridden
    assert (policy["retrieval"], policy["fusion"], policy["rrf_k"]) == ("hybrid", "rrf", 30)
    picker = next(s for s in at.selectbox if s.label == "Run")
    assert "hybrid RRF k=30" in picker.options[0]

    results = ui.get_eval_store().results(runs[0].run_id)
    stored = results[0]["retrieved"]
    assert all(h["fused_score"] is not None for h in stored)
    assert all(h["dense_rank"] is not None or h["lexical_rank"] is not None for h in stored)
    drill = next(s for s in at.selectbox if s.label == "Drill down")
    assert drill.value == results[0]["query_id"]
    ranked = next(d.value for d in at.dataframe if "hit" in d.value.columns)
    assert len(ranked) >= 10 and list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert {"dense_rank", "lexical_rank", "fused_score"} <= set(ranked.columns)
    assert list(ranked["chunk"]) == [h["chunk_id"] for h in stored]
    for key in ("dense_rank", "lexical_rank"):
        shown = [None if pd.isna(v) else int(v) for v in ranked[key]]
        assert shown == [h[key] for h in stored], key
    assert list(ranked["fused_score"]) == pytest.approx([h["fused_score"] for h in stored])
    # Across the run both lists contributed to the fused rankings.
    everything = [h for r in results for h in r["retrieved"]]
    assert any(h["dense_rank"] is not None for h in everything)
    assert any(h["lexical_rank"] is not None for h in everything)
    assert any("hybrid RRF k=30 retrieval" in c.value for c in at.caption)


def test_out_of_range_values_block_the_run_with_the_reason_beside_them(demo_data_dir: Path) -> None:
    at = open_page("evaluate")
    next(s for s in at.selectbox if s.label == "Policy").select("custom").run()
    next(n for n in at.number_input if n.label == "Results (k)").set_value(0).run()
    next(n for n in at.number_input if n.label == "hnsw_ef (0 = default)").set_value(99999).run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    assert "Results (k) must be from 1 to 200, got 0" in shown
    assert "hnsw_ef (0 = default) must be from 0 to 4096, got 99999" in shown
    run_button = next(b for b in at.button if b.label == "Run")
    assert run_button.disabled  # nothing starts with a value the page painted red

    next(n for n in at.number_input if n.label == "Results (k)").set_value(10).run()
    next(n for n in at.number_input if n.label == "hnsw_ef (0 = default)").set_value(64).run()
    assert not at.error and not next(b for b in at.button if b.label == "Run").disabled


def test_the_eval_set_comes_from_one_source_at_a_time(demo_data_dir: Path) -> None:
    at = open_page("evaluate")
    assert not at.get("file_uploader") and any(s.label == "Eval set" for s in at.selectbox)
    next(r for r in at.radio if r.label == "Eval set from").set_value("a file").run()
    assert not at.exception, at.exception
    assert at.get("file_uploader") and not any(s.label == "Eval set" for s in at.selectbox)
    assert next(b for b in at.button if b.label == "Run").disabled  # nothing uploaded yet
