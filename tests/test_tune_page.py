"""The Tune page (AppTest): a sweep as a background job (progress, cancel, resume), Pareto chart,
recommendation, live ef slider, applying."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hnsw_data import build_collection
from pages import open_page
from streamlit.testing.v1 import AppTest

from ragdeck.console.hnsw import TEMP_PREFIX
from ragdeck.console.hnsw.jobs import SweepJob, sweep_job
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore


def _widget(items, label: str):
    return next(w for w in items if w.label == label)


def _sweep_job(collection: str = "vecs") -> SweepJob:
    import ragdeck.ui as ui

    job = sweep_job(ui.get_jobs(), collection)
    assert job is not None, "no sweep job was started"
    return job


def _finish_sweep(at: AppTest) -> SweepJob:
    """Wait for the sweep job to end, then rerun the page (what the progress fragment does on its own)."""
    job = _sweep_job()
    assert job.thread is not None
    job.thread.join(300)
    assert not job.running and job.error is None, job.error
    at.run()
    assert not at.exception, at.exception
    return job


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
    _finish_sweep(at)

    timing = next(c.value for c in at.caption if "Sweep time" in c.value)
    assert "the whole job: preparing the queries" in timing
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
    assert any(f"default ef engine default → {best_ef}" in s.value for s in at.success)
    assert f"now: {best_ef}" in [c.value for c in at.caption]  # what was just applied, not the old value
    assert build_policies(Settings())["A"].hnsw_ef == best_ef

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
    _finish_sweep(at)
    assert _widget(at.button, "Set policy ef").disabled
    assert any("applying needs the operator role" in c.value for c in at.caption)


def test_a_sweep_runs_as_a_job_with_progress_cancel_and_resume(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_collection(data_dir / "qdrant", n=800).close()  # live index: m=4, ef_construct=32
    gate, waiting = threading.Event(), threading.Event()
    build = EmbeddedQdrantStore.finish_indexing

    def held(store: EmbeddedQdrantStore, name: str) -> None:
        """Temporary copies wait for ``gate`` before their index is built: the job is caught mid-sweep."""
        if name.startswith(TEMP_PREFIX):
            waiting.set()
            assert gate.wait(120), "the gate was never opened"
        build(store, name)

    monkeypatch.setattr(EmbeddedQdrantStore, "finish_indexing", held)
    try:
        at = open_page("tune")
        _widget(at.multiselect, "m").set_value([4, 16])
        _widget(at.multiselect, "ef_construct").set_value([32])
        _widget(at.multiselect, "ef (search time)").set_value([16, 64])
        _widget(at.number_input, "Sampled queries").set_value(20)
        _widget(at.button, "Run sweep").click().run()
        assert not at.exception, at.exception
        assert waiting.wait(120)  # the page run is over while the job works in its thread
        job = _sweep_job()
        assert job.running
        at.run()
        assert any("runs in the background" in i.value for i in at.info)
        bars = [p.proto.text for p in at.get("progress")]
        assert bars == ["building m=16 ef_construct=32: 2/4 configurations"], bars
        assert not at.get("plotly_chart")

        _widget(at.button, "Cancel").click().run()
        assert not at.exception, at.exception
        assert job.cancel.is_set() and job.running  # cooperative: it stops at the next configuration
        gate.set()
        _finish_sweep(at)
        assert job.result.partial and job.stage == "cancelled"
        warnings = [w.value for w in at.warning]
        assert any("Partial sweep: cancelled after 2 of 4 configurations" in w for w in warnings), warnings
        table = next(d.value for d in at.dataframe if "recall_exact" in d.value.columns)
        assert list(zip(table["m"], table["ef"], table["index"], strict=True)) == [
            (4, 16, "live"),
            (4, 64, "live"),
        ]
        assert len(at.get("plotly_chart")) == 1
        import ragdeck.ui as ui

        assert [c.name for c in ui.get_stack().store.list_collections()] == ["vecs"]  # no copy left

        _widget(at.button, "Resume").click().run()
        assert not at.exception, at.exception
        resumed = _sweep_job()
        assert resumed is not job and resumed.request.previous is job.result
        _finish_sweep(at)
        assert (resumed.stage, resumed.done, resumed.total) == ("done", 4, 4)
        assert not any("Partial sweep" in w.value for w in at.warning)
        assert not any(b.label == "Resume" for b in at.button)
        table = next(d.value for d in at.dataframe if "recall_exact" in d.value.columns)
        assert list(zip(table["m"], table["index"], strict=True)) == [(4, "live")] * 2 + [(16, "copy")] * 2
        assert table["p50_ms"].iloc[:2].tolist() == [r.p50_ms for r in job.result.rows]  # not measured again
        assert [c.name for c in ui.get_stack().store.list_collections()] == ["vecs"]
        assert any(s.label == "ef" for s in at.slider)  # the live ef slider has the sweep's queries
    finally:
        gate.set()


def test_a_sweep_kept_by_an_earlier_process_is_listed_and_resumed(data_dir: Path) -> None:
    from ragdeck.console import hnsw
    from ragdeck.console.hnsw.saved import SweepRecorder
    from ragdeck.console.wiring import build_sweep_log

    # An earlier console: the sweep measured the live index's two ef, then was cancelled; then it stopped.
    with build_collection(data_dir / "qdrant", n=800) as store:  # live index: m=4, ef_construct=32
        queries = hnsw.sample_queries(hnsw.StoredVectors.read(store, "vecs"), 20, seed=3)
        grid = hnsw.Grid.of((4, 16), (32,), (16, 64))
        earlier = build_sweep_log(Settings())
        recorder = SweepRecorder.begin(earlier, store, "sweep-1", "vecs", queries, grid, 10, created_by="eve")
        cancel = threading.Event()

        def progress(stage: str, done: int, total: int) -> None:
            if done == 2:  # the live index's two ef are measured: cancel before the copy is built
                cancel.set()

        partial = hnsw.run_sweep(
            store, "vecs", queries, ms=grid.ms, ef_constructs=grid.ef_constructs, efs=grid.efs,
            cancel=cancel, on_row=recorder.row, progress=progress,
        )  # fmt: skip
        recorder.end(partial)
    assert partial.partial and len(partial.rows) == 2

    at = open_page("tune")
    assert [e.label for e in at.expander] == ["Resumable sweeps (1)"]
    listed = next(d.value for d in at.dataframe if "measured" in d.value.columns)
    assert listed[["sweep", "state", "measured", "by"]].values.tolist() == [
        ["sweep-1", "partial", "2/4", "eve"]
    ]
    _widget(at.button, "Resume sweep").click().run()
    assert not at.exception, at.exception
    job = _finish_sweep(at)
    assert job.request.sweep_id == "sweep-1" and (job.stage, job.done, job.total) == ("done", 4, 4)
    table = next(d.value for d in at.dataframe if "recall_exact" in d.value.columns)
    assert list(zip(table["m"], table["ef"], strict=True)) == [(4, 16), (4, 64), (16, 16), (16, 64)]
    assert table["p50_ms"].iloc[:2].tolist() == [r.p50_ms for r in partial.rows]  # kept, not measured again
    assert not at.expander  # done: nothing left to resume
    [row] = build_sweep_log(Settings()).sweeps()
    assert (row["status"], row["measured"]) == ("done", 4)


def test_a_retrieval_study_runs_from_the_page_and_saves_a_draft(demo_data_dir: Path, local_embedder) -> None:
    import ragdeck.console.wiring as wiring
    import ragdeck.ui as ui
    from ragdeck.console.tuning.study import STUDY_JOB_KIND
    from ragdeck.console.wiring import build_policy_drafts, build_study_files

    original = wiring.build_embedder
    wiring.build_embedder = lambda settings: local_embedder  # the session's loaded model
    try:
        at = open_page("tune")
        assert any("No study yet" in i.value for i in at.info)
        _widget(at.selectbox, "Eval set").select_index(
            next(i for i, o in enumerate(_widget(at.selectbox, "Eval set").options) if "demo_gold" in o)
        )
        _widget(at.multiselect, "Modes").set_value(["lexical", "hybrid"])
        _widget(at.multiselect, "Fusions").set_value(["rrf", "dbsf"])
        _widget(at.multiselect, "RRF k").set_value([60])
        _widget(at.multiselect, "Candidates per list").set_value([40])
        _widget(at.button, "Run study").click().run()
        assert not at.exception, at.exception
        (job,) = [j for j in ui.get_jobs()._jobs.values() if j.kind == STUDY_JOB_KIND]
        assert job.thread is not None
        job.thread.join(300)
        assert job.error is None, job.error
        at.run()
        assert not at.exception, at.exception
        (saved,) = build_study_files(Settings()).list()
        assert saved["status"] == "done" and [t["label"] for t in saved["trials"]] == [
            "lexical", "hybrid rrf k=60 top_k=40", "hybrid dbsf top_k=40",
        ]  # fmt: skip
        shown = [m.label for m in at.metric]
        assert shown == ["Held-out gain", "95 % interval", "Permutation p", "Optimism"]
        assert at.metric[0].value == f"{saved['test']['difference']:+.4f}"
        decision = [*at.success, *at.info, *at.warning]
        assert any(saved["decision"] in d.value for d in decision)
        assert len(at.get("plotly_chart")) >= 1
        assert [b.label for b in at.get("download_button")] == ["Download JSON", "Download HTML"]
        _widget(at.text_input, "Draft name").set_value("from-study")
        _widget(at.button, "Save as draft policy").click().run()
        assert not at.exception, at.exception
        draft = build_policy_drafts(Settings()).get_draft("from-study")
        assert draft.study_id == saved["study_id"] and draft.knobs == saved["chosen_knobs"]
        assert any("Saved draft from-study" in s.value for s in at.success)
    finally:
        wiring.build_embedder = original
