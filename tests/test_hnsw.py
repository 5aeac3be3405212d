"""HNSW tuning on real HNSW (qdrant-edge): sweeps, Pareto front, recommendation, applying a choice."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hnsw_data import build_collection, clustered_vectors

from ragdeck.console import hnsw
from ragdeck.console.hnsw import SweepRow
from ragdeck.console.roles import User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log, build_policy_overrides
from ragdeck.errors import InputError, PermissionDenied, RagdeckError, StoreBusy
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.types import HnswConfig, VectorPoint

LIVE_URL, LIVE_KEY = os.environ.get("QDRANT_URL"), os.environ.get("QDRANT_API_KEY")  # read before data_dir
EFS = (10, 20, 40, 80, 160)  # the engine searches with max(ef, k): ef below k = 10 would change nothing


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedQdrantStore, hnsw.SweepResult]]:
    """A sweep of m 4 (the live index) and 32 (a temporary copy) x five ef on the clustered collection."""
    store = build_collection(tmp_path_factory.mktemp("sweep") / "qdrant")
    points = hnsw.StoredVectors.read(store, "vecs")
    queries = hnsw.sample_queries(points, 100, seed=1, noise=0.3)
    seen: list[tuple[str, int, int]] = []
    result = hnsw.run_sweep(
        store, "vecs", queries, ms=(4, 32), ef_constructs=(32,), efs=EFS, points=points,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )  # fmt: skip
    result.progress = seen  # type: ignore[attr-defined]
    yield store, result
    store.close()


def _recalls(result: hnsw.SweepResult, m: int) -> list[float]:
    return [r.recall_exact for r in result.rows if r.m == m]


def test_recall_is_non_decreasing_in_ef_on_clustered_data(swept) -> None:
    _, result = swept
    for m in (4, 32):
        recalls = _recalls(result, m)
        assert len(recalls) == len(EFS)
        assert all(a <= b for a, b in itertools.pairwise(recalls)), (m, recalls)
    low = _recalls(result, 4)
    assert low[0] < 0.9 < low[-1]  # the knob matters on this data: HNSW is really in use


def test_m32_is_at_least_m4_at_the_same_ef(swept) -> None:
    _, result = swept
    for r4, r32 in zip(_recalls(result, 4), _recalls(result, 32), strict=True):
        assert r32 >= r4


def test_sweep_rows_say_where_they_were_measured_and_copies_are_gone(swept) -> None:
    store, result = swept
    live = [r for r in result.rows if r.index == "live"]
    copies = [r for r in result.rows if r.index == "copy"]
    assert {(r.m, r.ef_construct) for r in live} == {(4, 32)} and all(r.build_s is None for r in live)
    assert {(r.m, r.ef_construct) for r in copies} == {(32, 32)} and all(r.build_s > 0 for r in copies)
    assert all(r.index_bytes and r.index_bytes > 0 for r in result.rows)
    assert all(r.recall_gold is None and 0 < r.p50_ms <= r.p95_ms for r in result.rows)
    assert [c.name for c in store.list_collections()] == ["vecs"]
    assert not [p for p in (store.root / "collections").iterdir() if p.name != "vecs"]
    assert (
        result.queries == 100 and "100 stored vectors sampled with seed 1, perturbed" in result.query_source
    )
    assert sum(r.recommended for r in result.rows) == 1
    stages = [s for s, _, _ in result.progress]  # type: ignore[attr-defined]
    assert stages[0].startswith("exact search") and stages[-1] == "done"
    assert any(s.startswith("building m=32") for s in stages)
    data = result.to_json()
    assert data["recommended"] == next(i for i, r in enumerate(result.rows) if r.recommended)
    assert set(data["rows"][0]) >= {
        "m", "ef_construct", "ef", "recall_exact", "recall_gold", "p50_ms", "p95_ms", "build_s",
        "index_bytes", "recommended",
    }  # fmt: skip
    json.dumps(data)


def _row(m: int, ef: int, recall: float, p95: float, size: int = 100, gold: float | None = None) -> SweepRow:
    return SweepRow(m, 100, ef, recall, gold, p95 / 2, p95, None, size, "copy")


TABLE = [
    _row(4, 8, 0.62, 0.05),
    _row(4, 32, 0.89, 0.09),
    _row(4, 128, 0.995, 0.30),
    _row(16, 8, 0.90, 0.08),
    _row(16, 32, 0.97, 0.12),
    _row(16, 128, 0.999, 0.35),
    _row(32, 8, 0.93, 0.10),
    _row(32, 32, 0.998, 0.16),
    _row(32, 128, 1.0, 0.50),
]


def test_recommendation_is_the_fastest_configuration_above_the_target() -> None:
    choice = hnsw.recommend(TABLE, 0.95)
    assert (
        choice.index == 4
    )  # m=16 ef=32: 0.12 ms; m=32 ef=32 and the ef=128 rows also qualify but are slower
    assert "m=16 efc=100 ef=32" in choice.sentence and "5 configurations" in choice.sentence
    assert hnsw.recommend(TABLE, 0.99).index == 7
    assert hnsw.recommend(TABLE, 0.6).index == 0
    assert hnsw.recommend(TABLE, 0.99, budget_ms=0.2).index == 7
    assert hnsw.recommend(TABLE, 0.9, latency_key="p50_ms").index == 3
    none = hnsw.recommend(TABLE, 0.999, budget_ms=0.2)
    assert none.index is None and "budget" in none.sentence
    unreachable = hnsw.recommend(TABLE, 1.0 + 0.0, budget_ms=None)
    assert unreachable.index == 8
    assert hnsw.recommend(TABLE[:6], 1.0).index is None
    tie = [
        _row(4, 8, 0.96, 0.1, size=300),
        _row(16, 8, 0.96, 0.1, size=200),
        _row(8, 16, 0.96, 0.1, size=200),
    ]
    assert hnsw.recommend(tie, 0.95).index == 2  # equal latency: smaller index, then smaller m
    no_gold = hnsw.recommend(TABLE, 0.9, recall_key="recall_gold")
    assert no_gold.index is None and "eval set" in no_gold.sentence
    with pytest.raises(InputError, match="target"):
        hnsw.recommend(TABLE, 1.5)
    with pytest.raises(InputError, match="recall"):
        hnsw.recommend(TABLE, 0.9, recall_key="ndcg")


def test_pareto_front_on_a_fixed_table() -> None:
    front = hnsw.pareto_front(TABLE)
    assert [TABLE[i].label for i in front] == [
        "m=4 efc=100 ef=8",
        "m=16 efc=100 ef=8",
        "m=32 efc=100 ef=8",
        "m=16 efc=100 ef=32",
        "m=32 efc=100 ef=32",
        "m=16 efc=100 ef=128",
        "m=32 efc=100 ef=128",
    ]
    assert hnsw.pareto_front([]) == []


def test_gold_recall_is_the_evals_recall_with_its_level() -> None:
    from ragdeck.console.evaluation.metrics import score_levels, set_recall_name

    rankings = [["a#s:0", "a#s:1", "b#s:0"], ["c#s:0", "c#s:1"], ["x#s:0"]]
    qrels = [{"a#s:1": 1, "z#s:0": 1}, {"c": 1}, {"q#s:0": 0}]
    # A set with document-level gold: doc_recall@3 over 3 documents for every query, as an eval run scores
    # it. Query 1: documents [a, b] hold a of {a, z}; query 2: c of {c}; query 3: no relevant gold, 0.
    assert set_recall_name(qrels, 3) == "doc_recall@3"
    assert hnsw.gold_recall(rankings, qrels, 3) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    _, per_query = score_levels(rankings, qrels, [3])
    assert hnsw.gold_recall(rankings, qrels, 3) == pytest.approx(
        np.mean([m["doc_recall@3"] for m in per_query])
    )
    # Chunk-level gold everywhere: recall@3 over 3 chunks.
    assert set_recall_name(qrels[:1], 3) == "recall@3"
    assert hnsw.gold_recall(rankings[:1], qrels[:1], 3) == pytest.approx(0.5)
    assert hnsw.gold_recall(rankings[:1], qrels[:1], 1) == 0.0  # a#s:1 is second
    assert hnsw.gold_recall(rankings[2:], qrels[2:], 3) is None  # no relevant gold at all


def test_notes_say_when_hnsw_is_not_in_use(swept) -> None:
    from ragdeck.services.types import CollectionInfo

    _, result = swept
    assert result.notes == []  # full_scan_threshold=1 KB: HNSW is used, and m=4 misses neighbours
    small = CollectionInfo("c", 384, "Cosine", 1000, 1000, HnswConfig())
    notes = hnsw.sweep_notes(small, [_row(4, 10, 1.0, 0.1)])
    assert "1,500 KB of vectors, under its full_scan_threshold of 10,000 KB" in notes[0]
    assert "exact top-k" in notes[1]


def test_parse_ints() -> None:
    assert hnsw.parse_ints("32, 4,16,4", "--m") == (4, 16, 32)
    for bad in ("", "4,x", "0,8"):
        with pytest.raises(InputError, match="--ef"):
            hnsw.parse_ints(bad, "--ef")


class FailingStore(EmbeddedQdrantStore):
    """Fails the index build of the second temporary copy."""

    builds = 0

    def finish_indexing(self, name: str) -> None:
        if name.startswith(hnsw.TEMP_PREFIX):
            FailingStore.builds += 1
            if FailingStore.builds == 2:
                raise RagdeckError("disk full (injected)")
        super().finish_indexing(name)


def test_temporary_copies_are_gone_after_a_failed_sweep(tmp_path: Path) -> None:
    build_collection(tmp_path / "qdrant", n=1000).close()
    with FailingStore(tmp_path / "qdrant") as store:
        points = hnsw.StoredVectors.read(store, "vecs")
        queries = hnsw.sample_queries(points, 20)
        with pytest.raises(RagdeckError, match="injected"):
            hnsw.measure_grid(
                store, "vecs", queries, ms=(8, 16, 32), ef_constructs=(32,), efs=(10,), points=points
            )
        assert FailingStore.builds == 2
        assert [c.name for c in store.list_collections()] == ["vecs"]
        assert [p.name for p in (store.root / "collections").iterdir()] == ["vecs"]


def test_leftover_copies_of_a_killed_sweep_are_removed(tmp_path: Path) -> None:
    with build_collection(tmp_path / "qdrant", n=200) as store:
        old = hnsw.temporary_name(8, 32, now=time.time() - 7 * 3600)
        recent = hnsw.temporary_name(16, 32)  # maybe a sweep running in another process: kept
        for name in (old, recent):
            store.create_collection(name, 64, HnswConfig())
        assert hnsw.remove_temporary(store) == [old]
        assert sorted(c.name for c in store.list_collections()) == sorted([recent, "vecs"])
        assert hnsw.remove_temporary(store, older_than_s=0) == [recent]
        assert [c.name for c in store.list_collections()] == ["vecs"]


class GatedStore(EmbeddedQdrantStore):
    """Holds the index build of every temporary copy until ``gate`` opens; ``waiting`` says one is held."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate, self.waiting = threading.Event(), threading.Event()

    def finish_indexing(self, name: str) -> None:
        if name.startswith(hnsw.TEMP_PREFIX):
            self.waiting.set()
            assert self.gate.wait(120), "the gate was never opened"
        super().finish_indexing(name)


def test_a_cancelled_sweep_keeps_what_it_measured_and_a_resume_measures_only_the_rest(tmp_path: Path) -> None:
    with build_collection(tmp_path / "qdrant", n=1000) as store:  # live index: m=4, ef_construct=32
        points = hnsw.StoredVectors.read(store, "vecs")
        queries = hnsw.sample_queries(points, 30, seed=2)
        cancel, seen = threading.Event(), []

        def progress(stage: str, done: int, total: int) -> None:
            seen.append((stage, done, total))
            if done == 3:  # the live index's three ef are measured: cancel before the copy is built
                cancel.set()

        partial = hnsw.run_sweep(
            store, "vecs", queries, ms=(4, 16), ef_constructs=(32,), efs=(10, 20, 40), points=points,
            progress=progress, cancel=cancel,
        )  # fmt: skip
        assert partial.partial and partial.planned == 6
        assert [(r.m, r.ef, r.index) for r in partial.rows] == [
            (4, 10, "live"),
            (4, 20, "live"),
            (4, 40, "live"),
        ]
        assert seen[-2:] == [("building m=16 ef_construct=32", 3, 6), ("cancelled", 3, 6)]
        assert [c.name for c in store.list_collections()] == ["vecs"]  # nothing built, nothing left
        assert partial.recommendation.sentence.startswith("Partial sweep (3 of 6 configurations measured)")
        assert partial.to_json()["partial"] is True and partial.to_json()["grid"]["m"] == [4, 16]
        with pytest.raises(InputError, match="its own queries"):
            hnsw.resume_sweep(store, partial, hnsw.sample_queries(points, 10))

        seen.clear()
        full = hnsw.resume_sweep(store, partial, queries, points=points, progress=lambda *a: seen.append(a))
        searched = [stage for stage, _, _ in seen if stage.startswith("searching")]
        assert searched == [f"searching m=16 ef_construct=32 ef={ef}" for ef in (10, 20, 40)]
        assert seen[0][1:] == (3, 6) and seen[-1] == ("done", 6, 6)
        assert not full.partial and [(r.m, r.ef) for r in full.rows] == [
            (m, ef) for m in (4, 16) for ef in (10, 20, 40)
        ]
        assert [r.p50_ms for r in full.rows[:3]] == [
            r.p50_ms for r in partial.rows
        ]  # kept, not measured again
        assert full.total_s > partial.total_s and not full.recommendation.sentence.startswith("Partial")
        assert [c.name for c in store.list_collections()] == ["vecs"]


def test_a_sweep_job_reports_progress_cancels_between_configurations_and_resumes(tmp_path: Path) -> None:
    from dataclasses import replace

    from ragdeck.console.jobs import JobRunner

    build_collection(tmp_path / "qdrant", n=1000).close()
    jobs = JobRunner()
    with GatedStore(tmp_path / "qdrant") as store:
        try:
            points = hnsw.StoredVectors.read(store, "vecs")
            queries = hnsw.sample_queries(points, 30, seed=4)
            grid = hnsw.Grid.of((32, 4, 16), (32,), (40, 10))
            request = hnsw.SweepRequest("vecs", queries, grid, points=points)
            job = hnsw.start_sweep_job(jobs, store, request)
            assert store.waiting.wait(120)  # the live index is measured; the first copy's build is held
            assert job.running and hnsw.sweep_running(jobs, "vecs") and job.request is request
            assert (job.stage, job.done, job.total) == ("building m=16 ef_construct=32", 2, 6)
            assert job.fraction == pytest.approx(2 / 6)
            assert hnsw.start_sweep_job(jobs, store, request) is job  # one sweep per collection at a time
            job.cancel.set()
            store.gate.set()  # the copy finishes building; no configuration is measured on it
            job.thread.join(120)
            assert not job.running and job.error is None and not hnsw.sweep_running(jobs, "vecs")
            partial = job.result
            assert partial.partial and [(r.m, r.ef, r.index) for r in partial.rows] == [
                (4, 10, "live"),
                (4, 40, "live"),
            ]
            assert (job.stage, job.done, job.total) == ("cancelled", 2, 6)
            assert [c.name for c in store.list_collections()] == ["vecs"]  # that copy is deleted

            resumed = hnsw.start_sweep_job(jobs, store, replace(request, previous=partial))
            assert resumed is not job and hnsw.sweep_job(jobs, "vecs") is resumed
            resumed.thread.join(300)
            assert not resumed.running and resumed.error is None
            full = resumed.result
            assert (resumed.stage, resumed.done, resumed.total) == ("done", 6, 6)
            assert not full.partial and [(r.m, r.ef) for r in full.rows] == [
                (m, ef) for m in (4, 16, 32) for ef in (10, 40)
            ]
            assert [r.p50_ms for r in full.rows[:2]] == [r.p50_ms for r in partial.rows]
            assert [c.name for c in store.list_collections()] == ["vecs"]
        finally:
            store.gate.set()


def _apply_ef(settings: Settings, policy: str, ef: int | None, *, actor: User | str) -> tuple:
    """``apply_policy_ef`` on the state database's overrides, as the fronts hand them in."""
    return hnsw.apply_policy_ef(
        settings, policy, ef, actor=actor, overrides=build_policy_overrides(settings),
        log=build_audit_log(settings),
    )  # fmt: skip


def _audit_entries(action: str) -> list:
    from ragdeck.console import audit

    return audit.entries(action=action, log=build_audit_log(Settings()))


def _query_continuously(store: EmbeddedQdrantStore, stop: threading.Event, log: list) -> None:
    vectors = clustered_vectors(50, seed=9)
    i = 0
    while not stop.is_set():
        try:
            hits = store.search("vecs", vectors[i % 50], 10, hnsw_ef=32)
            log.append(("ok", time.monotonic(), len(hits)))
        except Exception as exc:  # every failure is recorded: there must be none
            log.append(("error", time.monotonic(), repr(exc)))
        i += 1


@pytest.mark.slow
def test_queries_keep_succeeding_during_an_in_place_rebuild(tmp_path: Path, data_dir: Path) -> None:
    store = build_collection(tmp_path / "qdrant", n=4000)
    try:
        stop, log = threading.Event(), []
        worker = threading.Thread(target=_query_continuously, args=(store, stop, log))
        worker.start()
        try:
            while len(log) < 20:
                time.sleep(0.01)
            began = time.monotonic()
            stages: list[tuple[str, int, int]] = []
            before, after = hnsw.apply_hnsw(
                store,
                "vecs",
                32,
                64,
                log=build_audit_log(Settings()),
                actor="test",
                progress=lambda *a: stages.append(a),
            )
            ended = time.monotonic()
            while len([e for e in log if e[1] > ended]) < 20:
                time.sleep(0.01)
        finally:
            stop.set()
            worker.join()
        assert stages[0] == ("rebuilding vecs with m=32 ef_construct=64 (0 s)", 0, 1)
        assert stages[-2:] == [("rebuilding vecs with m=32 ef_construct=64: done", 1, 1), ("done", 1, 1)]
        errors = [e for e in log if e[0] == "error"]
        assert not errors, errors[:3]
        assert all(e[2] == 10 for e in log)
        during = [e for e in log if began < e[1] < ended]
        assert len(during) >= 5, "searches were blocked for the whole rebuild"
        assert (before.m, before.ef_construct) == (4, 32) and (after.m, after.ef_construct) == (32, 64)
        shard = store.root / "collections" / "vecs" / "shard"
        built = [json.loads(p.read_text()) for p in shard.glob("segments/*/vector_index/hnsw_config.json")]
        assert built and all((b["m"], b["ef_construct"]) == (32, 64) for b in built)
        assert [p.name for p in (store.root / "collections").iterdir()] == ["vecs"]
        audited = _audit_entries("collection.hnsw")
        assert [(e.target, e.outcome, e.after["m"]) for e in audited] == [("collection:vecs", "ok", 32)]
    finally:
        store.close()
    # A fresh process sees the new index.
    code = (
        "import sys; from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore as S; "
        "s = S(sys.argv[1]); i = s.collection_info('vecs'); print(i.hnsw.m, i.hnsw.ef_construct, i.points, "
        "i.indexed_vectors); s.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "qdrant")], capture_output=True, text=True
    )
    assert done.stdout.split() == ["32", "64", "4000", "4000"], done.stderr


def test_a_rebuild_that_missed_writes_is_refused_and_the_old_index_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragdeck.services.qdrant_embedded.rebuild as embedded

    store = build_collection(tmp_path / "qdrant", n=500)
    real_copy = embedded._copy_tree

    def copy_then_write(source: Path, target: Path) -> None:
        real_copy(source, target)
        store.upsert("vecs", [VectorPoint(id="late#s:0", vector=np.ones(64).tolist())])

    monkeypatch.setattr(embedded, "_copy_tree", copy_then_write)
    try:
        with pytest.raises(StoreBusy, match="written while"):
            store.update_hnsw("vecs", HnswConfig(m=16, ef_construct=64, full_scan_threshold=1))
        info = store.collection_info("vecs")
        assert (info.hnsw.m, info.points) == (4, 501)
        assert store.retrieve("vecs", ["late#s:0"])
        assert [p.name for p in (store.root / "collections").iterdir()] == ["vecs"]
    finally:
        store.close()


def test_apply_policy_ef_persists_across_a_restart(data_dir: Path) -> None:
    before, after = _apply_ef(Settings(), "B", 64, actor="test")
    assert (before, after) == (None, 64)
    from ragdeck.console.wiring import build_policies

    assert build_policies(Settings())["B"].hnsw_ef == 64 and build_policies(Settings())["A"].hnsw_ef is None
    code = (
        "from ragdeck.console.wiring import build_policies; "
        "from ragdeck.console.settings import Settings; "
        "p = build_policies(Settings()); print(p['A'].hnsw_ef, p['B'].hnsw_ef)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["None", "64"], done.stderr
    assert _apply_ef(Settings(), "B", 128, actor="test") == (64, 128)
    audited = _audit_entries("policy.hnsw_ef")
    assert [(e.target, e.actor, e.before, e.after) for e in audited] == [
        ("policy:B", "test", 64, 128),
        ("policy:B", "test", None, 64),
    ]
    with pytest.raises(InputError, match="unknown policy"):
        _apply_ef(Settings(), "Z", 64, actor="test")
    with pytest.raises(InputError, match="ef must be"):
        _apply_ef(Settings(), "A", 0, actor="test")


def test_applying_needs_the_operator_role_and_refusals_are_audited(data_dir: Path) -> None:
    from ragdeck.console import audit
    from ragdeck.console.roles import Role, User

    engineer, operator = User("eve", Role.ENGINEER), User("olga", Role.OPERATOR)
    with pytest.raises(PermissionDenied, match="operator"):
        _apply_ef(Settings(), "A", 32, actor=engineer)
    with build_collection(data_dir / "qdrant", n=300) as store:
        with pytest.raises(PermissionDenied):
            hnsw.apply_hnsw(store, "vecs", 8, 32, log=build_audit_log(Settings()), actor=engineer)
        assert store.collection_info("vecs").hnsw.m == 4
        hnsw.check_sweep(engineer, "vecs", log=build_audit_log(Settings()))
        with pytest.raises(PermissionDenied):
            hnsw.check_sweep(User("ann", Role.ANNOTATOR), "vecs", log=build_audit_log(Settings()))
        hnsw.apply_hnsw(store, "vecs", 8, 32, log=build_audit_log(Settings()), actor=operator)
    _apply_ef(Settings(), "A", 32, actor=operator)
    rows = [(e.actor, e.action, e.target, e.outcome) for e in audit.entries(log=build_audit_log(Settings()))]
    assert rows == [
        ("olga", "policy.hnsw_ef", "policy:A", "ok"),
        ("olga", "collection.hnsw", "collection:vecs", "ok"),
        ("ann", "hnsw.sweep", "collection:vecs", "denied"),
        ("eve", "collection.hnsw", "collection:vecs", "denied"),
        ("eve", "policy.hnsw_ef", "policy:A", "denied"),
    ]


def test_an_unreadable_state_database_is_a_one_line_error(tmp_path: Path) -> None:
    from ragdeck.errors import ServiceUnavailable
    from ragdeck.services.policy_overrides import read_overrides

    bad = tmp_path / "ragdeck.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(ServiceUnavailable, match="cannot be read"):
        read_overrides(bad)
    assert read_overrides(tmp_path / "absent.sqlite3") == {}


def test_a_running_service_picks_up_an_applied_ef(data_dir: Path) -> None:
    from ragdeck.console.retrieval.policies import LivePolicies

    now = [0.0]
    from ragdeck.console.wiring import read_policy_overrides

    live = LivePolicies(
        Settings(), lambda: read_policy_overrides(Settings()), refresh_s=1.0, clock=lambda: now[0]
    )
    assert live["A"].hnsw_ef is None and sorted(live) == ["A", "B"] and len(live) == 2
    _apply_ef(Settings(), "A", 40, actor="test")
    assert live["A"].hnsw_ef is None  # read again at most once a second
    now[0] = 1.5
    assert live["A"].hnsw_ef == 40 and live["A"].retrieval_params().hnsw_ef == 40

    from ragdeck.console.wiring import build_rag_service, build_stack

    stack = build_stack(Settings())
    try:
        service, _ = build_rag_service(Settings(), stack)
        assert service.policy("A").hnsw_ef == 40
        assert isinstance(service.policies, LivePolicies)
    finally:
        stack.close()


def test_policy_overrides_apply_over_toml_and_ignore_unknown_policies(data_dir: Path) -> None:
    Path("ragdeck.toml").write_text("[policies.ctl]\nhnsw_ef = 16\n[policies.can]\ntop_k = 20\n")
    settings = Settings(control_policy="ctl", canary_policy="can")
    from ragdeck.console.retrieval.policies import load_policies
    from ragdeck.console.wiring import build_policies

    assert build_policies(settings)["ctl"].hnsw_ef == 16
    _apply_ef(settings, "ctl", 48, actor="test")
    assert build_policies(settings)["ctl"].hnsw_ef == 48
    assert load_policies(settings, {})["ctl"].hnsw_ef == 16  # the domain reads no database: wiring hands them
    assert (
        load_policies(settings, overrides={"ctl": {"hnsw_ef": 8}, "gone": {"hnsw_ef": 4}})["ctl"].hnsw_ef == 8
    )
    build_policy_overrides(settings).clear("ctl", "hnsw_ef")
    assert build_policies(settings)["ctl"].hnsw_ef == 16


def test_live_search_compares_with_exact(tmp_path: Path) -> None:
    with build_collection(tmp_path / "qdrant", n=2000) as store:
        query = clustered_vectors(1, seed=11)[0]
        low, high = (hnsw.live_search(store, "vecs", query, ef, 10) for ef in (10, 400))
        assert len(low.hits) == len(high.hits) == 10 and high.recall_exact == 1.0
        assert low.recall_exact <= high.recall_exact and low.latency_ms > 0
        assert sum(h["in_exact_top_k"] for h in high.hits) == 10


def test_sweep_on_the_server_adapter_code_path(tmp_path: Path, data_dir: Path) -> None:
    """qdrant-client local mode ignores HNSW: only the code path (copies, cleanup, update_collection) runs."""
    pytest.importorskip("qdrant_client")
    import warnings

    from qdrant_client import QdrantClient

    from ragdeck.services.qdrant_server import QdrantServerStore

    x = clustered_vectors(300, dim=16)
    with (
        QdrantServerStore(QdrantClient(":memory:"), meta_dir=tmp_path / "meta") as store,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)
        store.create_collection("docs", 16, HnswConfig(m=16, ef_construct=100))
        store.upsert("docs", [VectorPoint(id=f"d#s:{i}", vector=x[i].tolist()) for i in range(300)])
        store.set_alias("docs_live", "docs")
        points = hnsw.StoredVectors.read(store, "docs")
        result = hnsw.run_sweep(
            store,
            "docs_live",
            hnsw.sample_queries(points, 10),
            ms=(8, 16),
            ef_constructs=(100,),
            efs=(10, 20),
        )
        assert [(r.m, r.index) for r in result.rows] == [(8, "copy"), (8, "copy"), (16, "live"), (16, "live")]
        assert all(r.recall_exact == 1.0 and r.index_bytes is None for r in result.rows)  # brute force
        assert [c.name for c in store.list_collections()] == ["docs"]
        stages: list[tuple[str, int, int]] = []
        before, after = hnsw.apply_hnsw(
            store,
            "docs_live",
            32,
            200,
            log=build_audit_log(Settings()),
            actor="test",
            progress=lambda *a: stages.append(a),
        )
        assert stages[-2:] == [("server indexing: done", 1, 1), ("done", 1, 1)]
        assert ("server indexing (0 s)", 0, 300) in stages  # local mode reports no indexed vectors
        assert before == after  # local mode keeps its config; a real server rebuilds (TestLiveHnsw)


@pytest.mark.live
@pytest.mark.skipif(not LIVE_URL, reason="needs QDRANT_URL (a real server)")
def test_apply_on_a_live_server(tmp_path: Path, data_dir: Path) -> None:
    import uuid

    from ragdeck.services.qdrant_server import QdrantServerStore

    x = clustered_vectors(500, dim=32)
    name = f"ragdeck_test_hnsw_{uuid.uuid4().hex[:8]}"
    with QdrantServerStore.connect(LIVE_URL, LIVE_KEY, 30.0, tmp_path) as s:
        s.create_collection(name, 32, HnswConfig(m=4, ef_construct=32, full_scan_threshold=1))
        try:
            s.upsert(name, [VectorPoint(id=f"d#s:{i}", vector=x[i].tolist()) for i in range(500)])
            s.finish_indexing(name)
            _, after = hnsw.apply_hnsw(s, name, 32, 64, log=build_audit_log(Settings()), actor="test")
            assert (after.m, after.ef_construct) == (32, 64)
            points = hnsw.StoredVectors.read(s, name)
            rows = hnsw.measure_grid(
                s, name, hnsw.sample_queries(points, 20), ms=(8, 32), ef_constructs=(64,), efs=(16,)
            )
            assert len(rows) == 2 and not [
                c for c in s.list_collections() if c.name.startswith(hnsw.TEMP_PREFIX)
            ]
        finally:
            s.delete_collection(name)


def test_a_sweep_job_prepares_its_queries_itself_and_counts_that_time(tmp_path: Path) -> None:
    import threading

    from ragdeck.console.jobs import JobRunner

    build_collection(tmp_path / "qdrant", n=400).close()
    held, spent = threading.Event(), []
    with GatedStore(tmp_path / "qdrant") as store:
        store.gate.set()

        def prepare():
            started = time.perf_counter()
            held.wait(120)  # the page has long returned: the preparing is the job's, with its stage shown
            points = hnsw.StoredVectors.read(store, "vecs")
            queries = hnsw.sample_queries(points, 20, seed=1)
            spent.append(time.perf_counter() - started)
            return queries, points

        request = hnsw.SweepRequest("vecs", None, hnsw.Grid.of((4,), (32,), (10,)))
        job = hnsw.start_sweep_job(JobRunner(), store, request, prepare=prepare)
        deadline = time.monotonic() + 60
        while job.stage != "preparing queries" and time.monotonic() < deadline:
            time.sleep(0.01)  # the job's thread reports its stage
        assert job.running and job.stage == "preparing queries"
        held.set()
        job.thread.join(300)
        assert job.error is None and job.request.queries is not None and len(job.request.queries) == 20
        assert job.result.total_s >= spent[0]  # the sweep time shown includes making the queries
        with pytest.raises(ValueError, match="needs its queries"):
            hnsw.start_sweep_job(JobRunner(), store, request)
