"""The Tune page (AppTest): sweep, Pareto chart, recommendation, live ef slider, applying."""

from __future__ import annotations

from pathlib import Path

import pytest
from hnsw_data import build_collection
from pages import open_page

from ragdeck.console.retrieval.policies import load_policies
from ragdeck.console.settings import Settings


def _widget(items, label: str):
    return next(w for w in items if w.label == label)


def test_empty_data_dir_says_what_to_do(data_dir: Path) -> None:
    at = open_page("tune")
    assert any("No collections yet" in i.value for i in at.info)


def test_sweep_draws_the_chart_recommends_and_applies(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poor live index (ef_construct 4: recall@10 about 0.5) and a good copy (m=16, ef_construct=32: 1.0).
    build_collection(data_dir / "qdrant", n=1500, ef_construct=4).close()
    at = open_page("tune")
    assert any("Run sweep" in i.value for i in at.info)
    _widget(at.selectbox, "Collection or alias").select("vecs")
    _widget(at.multiselect, "m").set_value([16])
    _widget(at.multiselect, "ef_construct").set_value([32])
    _widget(at.multiselect, "ef (search time)").set_value([16, 64])
    _widget(at.number_input, "Sampled queries").set_value(30)
    _widget(at.button, "Run sweep").click().run()
    assert not at.exception, at.exception

    charts = at.get("plotly_chart")
    assert len(charts) == 1
    figure = charts[0].proto.spec
    assert "Pareto front" in figure and "recommended" in figure and "m=16 ef_construct=32 ef=16" in figure
    _widget(at.slider, "Recall target").set_value(0.9).run()
    success = [s.value for s in at.success]
    assert any("is the cheapest of the 2 configurations" in s for s in success), success
    table = next(d.value for d in at.dataframe if "recall_exact" in d.value.columns)
    assert list(zip(table["m"], table["index"], strict=True)) == [(4, "live")] * 2 + [(16, "copy")] * 2
    best = table.loc[table["recommended"]]
    assert len(best) == 1 and best["m"].iloc[0] == 16, table
    best_ef = int(best["ef"].iloc[0])

    _widget(at.button, "Set policy ef").click().run()
    assert not at.exception, at.exception
    assert any(f"default ef None → {best_ef}" in s.value for s in at.success)
    assert load_policies(Settings())["A"].hnsw_ef == best_ef

    _widget(at.button, "Rebuild vecs with m=16, ef_construct=32").click().run()
    assert not at.exception, at.exception
    assert any("vecs: m 4 → 16, ef_construct 4 → 32" in s.value for s in at.success)
    import ragdeck.ui as ui

    info = ui.get_stack().store.collection_info("vecs")
    assert (info.hnsw.m, info.points, info.indexed_vectors) == (16, 1500, 1500)
    names = [c.name for c in ui.get_stack().store.list_collections()]
    assert names == ["vecs"]  # the sweep's temporary copy is gone

    # The live ef slider re-runs one query on the (now rebuilt) live index, against exact search.
    _widget(at.slider, "ef").set_value(200).run()
    assert not at.exception, at.exception
    assert _widget(at.metric, "Recall@10 vs exact").value == "1.00"
    hits = next(d.value for d in at.dataframe if "in_exact_top_k" in d.value.columns)
    assert len(hits) == 10 and hits["in_exact_top_k"].all()


def test_applying_is_disabled_below_operator(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "engineer")
    build_collection(data_dir / "qdrant", n=400).close()
    at = open_page("tune")
    _widget(at.multiselect, "m").set_value([4])
    _widget(at.multiselect, "ef_construct").set_value([32])
    _widget(at.multiselect, "ef (search time)").set_value([16])
    _widget(at.number_input, "Sampled queries").set_value(20)
    _widget(at.button, "Run sweep").click().run()
    assert not at.exception, at.exception
    assert _widget(at.button, "Set policy ef").disabled
    assert any("applying needs the operator role" in c.value for c in at.caption)
