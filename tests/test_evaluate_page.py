"""The Evaluate page through AppTest: run a policy over an eval set, then read the results."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pages import open_page

DEMO_GOLD = Path(__file__).resolve().parent.parent / "eval_sets" / "demo_gold.jsonl"


def test_run_from_the_page_then_summary_table_drilldown_and_downloads(demo_data_dir: Path) -> None:
    sets = Path("eval_sets")  # the data_dir fixture runs each test in its own working directory
    sets.mkdir()
    shutil.copy(DEMO_GOLD, sets / "demo_gold.jsonl")
    at = open_page("evaluate")
    assert any("No eval runs yet" in i.value for i in at.info)

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
    assert len(ranked) == 10 and list(ranked["rank"]) == list(range(1, 11))
    downloads = [d.label for d in at.get("download_button")]
    assert downloads == ["CSV", "JSON", "HTML report"]
