"""Draft policies from studies, on the real state database: save / list / get / delete, bad knobs refused,
a draft tried as the canary changes the policy ``load_policies`` and ``LivePolicies`` return (audited,
naming the draft and study), the undo puts the previous overrides back, and the Canary page's panel."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ragdeck.console import audit
from ragdeck.console.identity import Role, User
from ragdeck.console.online.drafts import apply_draft, standing_draft, summary_text, undo_draft
from ragdeck.console.retrieval.policies import LivePolicies
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import (
    build_audit_log,
    build_policies,
    build_policy_drafts,
    build_policy_overrides,
    read_policy_overrides,
)
from ragdeck.errors import InputError, PermissionDenied

SUMMARY = {
    "metric": "doc_ndcg@10",
    "test_mean_chosen": 0.61,
    "test_mean_baseline": 0.55,
    "diff": 0.06,
    "low": 0.02,
    "high": 0.1,
    "p_value": 0.004,
    "optimism": 0.015,
}
OPERATOR = User("olga", Role.OPERATOR)
ENGINEER = User("erik", Role.ENGINEER)
ANNOTATOR = User("ann", Role.ANNOTATOR)


def test_save_list_get_delete_round_trip(data_dir: Path) -> None:
    drafts = build_policy_drafts(Settings())
    first = drafts.save_draft(
        "hybrid-k30", {"retrieval": "hybrid", "fusion": "rrf", "rrf_k": 30}, study_id="st-1",
        summary=SUMMARY, actor=ENGINEER,
    )  # fmt: skip
    assert first.knobs == {"retrieval": "hybrid", "fusion": "rrf", "rrf_k": 30} and first.created_by == "erik"
    drafts.save_draft("ef128", {"hnsw_ef": 128, "top_k": 80}, study_id=None, actor="ragdeck tune")
    assert [d.name for d in drafts.list_drafts()] == ["ef128", "hybrid-k30"]  # newest first
    got = build_policy_drafts(Settings()).get_draft("hybrid-k30")  # another handle, same database
    assert (
        got == first
        and got.summary == SUMMARY
        and got.knobs_text() == "retrieval=hybrid, fusion=rrf, rrf_k=30"
    )
    assert summary_text(got.summary) == (
        "doc_ndcg@10 · test: chosen 0.6100 vs baseline 0.5500 · Δ +0.0600 [+0.0200, +0.1000] · p = 0.004 · "
        "optimism +0.0150"
    )
    replaced = drafts.save_draft("ef128", {"hnsw_ef": 256}, study_id="st-2", actor=ENGINEER)
    assert drafts.get_draft("ef128") == replaced and replaced.knobs == {"hnsw_ef": 256}
    assert drafts.delete_draft("ef128", ENGINEER).name == "ef128"
    assert [d.name for d in drafts.list_drafts()] == ["hybrid-k30"]
    with pytest.raises(InputError, match="no draft named 'ef128': use one of hybrid-k30"):
        drafts.get_draft("ef128")
    log = build_audit_log(Settings())
    assert [e.action for e in audit.entries(log=log)] == [
        "policy.draft.delete", "policy.draft", "policy.draft", "policy.draft",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({}, "a draft sets at least one knob"),
        ({"top_k": 0}, "draft knob top_k must be an integer >= 1, got 0"),
        ({"fusion": "median"}, "draft knob fusion must be one of rrf, weighted"),
        ({"rerank": "yes"}, "draft knob rerank must be true or false, got 'yes'"),
        ({"dense_weight": 1.5}, "dense_weight must be a number from 0 to 1"),
        ({"temperature": 0.2, "top_k": 10}, "unknown knob 'temperature': a draft sets only top_k, top_n"),
    ],
)
def test_bad_knobs_are_refused_with_a_clear_error(data_dir: Path, knobs: dict, message: str) -> None:
    drafts = build_policy_drafts(Settings())
    with pytest.raises(InputError) as caught:
        drafts.save_draft("bad", knobs, study_id="st", actor=ENGINEER)
    assert message in str(caught.value)
    assert drafts.list_drafts() == []


def test_bad_names_summaries_and_roles_are_refused(data_dir: Path) -> None:
    drafts = build_policy_drafts(Settings())
    with pytest.raises(InputError, match="invalid draft name"):
        drafts.save_draft("no spaces", {"top_k": 10}, study_id=None, actor=ENGINEER)
    with pytest.raises(InputError, match="must be JSON"):
        drafts.save_draft("x", {"top_k": 10}, study_id=None, summary={"when": object()}, actor=ENGINEER)
    with pytest.raises(PermissionDenied):
        drafts.save_draft("x", {"top_k": 10}, study_id=None, actor=ANNOTATOR)
    assert drafts.list_drafts() == []
    drafts.save_draft("x", {"top_k": 10}, study_id=None, actor=ENGINEER)
    with pytest.raises(PermissionDenied):
        apply_draft(
            Settings(), "x", "B", actor=ENGINEER, drafts=drafts,
            overrides=build_policy_overrides(Settings()), log=build_audit_log(Settings()),
        )  # fmt: skip
    assert read_policy_overrides(Settings()) == {}


def _apply(name: str, actor: User | str = OPERATOR):
    settings = Settings()
    return apply_draft(
        settings, name, settings.canary_policy, actor=actor, drafts=build_policy_drafts(settings),
        overrides=build_policy_overrides(settings), log=build_audit_log(settings),
    )  # fmt: skip


def _undo(actor: User | str = OPERATOR):
    settings = Settings()
    return undo_draft(
        settings, settings.canary_policy, actor=actor, drafts=build_policy_drafts(settings),
        overrides=build_policy_overrides(settings), log=build_audit_log(settings),
    )  # fmt: skip


def test_a_draft_tried_as_the_canary_changes_the_live_policy_and_the_undo_restores_it(data_dir: Path) -> None:
    settings = Settings()
    overrides = build_policy_overrides(settings)
    overrides.set("B", "hnsw_ef", 64, actor="tune page")  # an override from before the draft
    live = LivePolicies(settings, lambda: read_policy_overrides(settings), refresh_s=0.0)
    before = build_policies(settings)
    assert live["B"].hnsw_ef == 64 and live["B"].retrieval == "dense"
    drafts = build_policy_drafts(settings)
    knobs = {"retrieval": "hybrid", "fusion": "weighted", "dense_weight": 0.7, "hnsw_ef": 128, "top_k": 60}
    drafts.save_draft("weighted-07", knobs, study_id="st-9", summary=SUMMARY, actor=ENGINEER)

    result = _apply("weighted-07")
    after = build_policies(settings)
    for name, value in knobs.items():
        assert getattr(after["B"], name) == value and getattr(live["B"], name) == value
    assert after["A"] == before["A"]  # control untouched
    assert result.policy == "B" and result.study_id == "st-9"
    assert ("hnsw_ef", 64, 128) in result.changed and ("retrieval", "dense", "hybrid") in result.changed
    assert "fusion: rrf → weighted" in result.lines()
    entry = audit.entries(action="canary.draft", log=build_audit_log(settings))[0]
    assert (
        entry.actor == "olga"
        and entry.target == "policy:B"
        and entry.reason == "draft weighted-07 from study st-9"
    )
    assert entry.before["hnsw_ef"] == 64 and entry.after == {**knobs, "fusion": "weighted"}
    assert standing_draft(drafts, "B")["draft"] == "weighted-07"

    undone = _undo()
    restored = build_policies(settings)
    assert restored == before and live["B"] == before["B"]
    assert read_policy_overrides(settings) == {"B": {"hnsw_ef": 64}}  # the earlier override is back
    assert ("hnsw_ef", 128, 64) in undone.changed and undone.kept == []
    assert standing_draft(drafts, "B") is None
    entry = audit.entries(action="canary.draft.undo", log=build_audit_log(settings))[0]
    assert entry.reason == "undo draft weighted-07 from study st-9" and entry.after["retrieval"] == "dense"
    with pytest.raises(InputError, match="no draft is applied to policy 'B': nothing to undo"):
        _undo()


def test_undo_leaves_a_field_someone_changed_since(data_dir: Path) -> None:
    settings = Settings()
    drafts = build_policy_drafts(settings)
    drafts.save_draft("deep", {"top_k": 80, "hnsw_ef": 200}, study_id="st-3", actor=ENGINEER)
    _apply("deep")
    build_policy_overrides(settings).set("B", "hnsw_ef", 300, actor="tune page")  # someone tunes ef after
    undone = _undo()
    assert undone.kept == ["hnsw_ef"] and ("top_k", 80, settings.top_k) in undone.changed
    assert read_policy_overrides(settings) == {"B": {"hnsw_ef": 300}}
    assert (
        "left as changed since: hnsw_ef"
        in audit.entries(action="canary.draft.undo", log=build_audit_log(settings))[0].reason
    )


def test_a_draft_the_policy_cannot_take_writes_nothing(data_dir: Path) -> None:
    settings = Settings()
    drafts = build_policy_drafts(settings)
    drafts.save_draft("too-narrow", {"top_k": 3}, study_id="st", actor=ENGINEER)  # below top_n 10
    with pytest.raises(InputError, match=r"policy 'B' would not load with these values: .*top_n"):
        _apply("too-narrow")
    assert read_policy_overrides(settings) == {} and standing_draft(drafts, "B") is None
    assert audit.entries(action="canary.draft", log=build_audit_log(settings)) == []
    with pytest.raises(InputError, match="no draft named 'nope'"):
        _apply("nope")


def test_the_drafts_migration_keeps_an_older_database(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state database at schema 4 (before drafts) with overrides in it gains the drafts tables and keeps
    its rows."""
    from ragdeck.services import state_schema
    from ragdeck.services.policy_overrides import PolicyOverrides

    path = Settings().state_db
    with monkeypatch.context() as patch:
        patch.setattr(state_schema, "MIGRATIONS", state_schema.MIGRATIONS[:4])
        PolicyOverrides(path).set("B", "hnsw_ef", 96, actor="older ragdeck")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    drafts = build_policy_drafts(Settings())  # opens and migrates
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == state_schema.latest_version() >= 5
    assert read_policy_overrides(Settings()) == {"B": {"hnsw_ef": 96}} and drafts.list_drafts() == []


@pytest.mark.slow
def test_the_canary_panel_tries_a_draft_in_one_click_and_undoes_it(demo_data_dir: Path) -> None:
    """Against the RAG API hosted by the console (as the Canary page's tests run it)."""
    from pages import open_page

    import ragdeck.ui as ui

    build_policy_drafts(Settings()).save_draft(
        "hybrid-k30",
        {"retrieval": "hybrid", "rrf_k": 30},
        study_id="st-7",
        summary=SUMMARY,
        actor="ragdeck tune",
    )
    ui._hosted_api.clear()
    at = open_page("canary")
    next(b for b in at.button if b.label == "Start the RAG API in this console").click().run()
    assert not at.exception, at.exception
    hosted = ui.hosted_api()
    assert hosted is not None
    try:
        assert any(s.value == "Drafts from studies" for s in at.subheader)
        listed = next(d.value for d in at.dataframe if "study verdict" in d.value.columns)
        assert list(listed["draft"]) == ["hybrid-k30"] and list(listed["study"]) == ["st-7"]
        assert "Δ +0.0600 [+0.0200, +0.1000]" in listed["study verdict"].iloc[0]
        assert any(
            "B now → with `hybrid-k30`: retrieval dense → hybrid, rrf_k 60 → 30" in c.value
            for c in at.caption
        )
        undo = next(b for b in at.button if b.label == "Undo the draft on B")
        assert undo.disabled  # nothing applied yet

        next(b for b in at.button if b.label == "Try draft hybrid-k30 as the canary").click().run()
        assert not at.exception, at.exception
        done = next(s.value for s in at.success if "hybrid-k30" in s.value)
        assert (
            "Applied draft `hybrid-k30` (study st-7) on policy B: retrieval: dense → hybrid; rrf_k: 60 → 30"
            in done
        )
        assert any(
            "B gets 0 % of users, so no user is served by this draft yet" in w.value for w in at.warning
        )
        assert any("B runs with draft `hybrid-k30` (study st-7)" in i.value for i in at.info)
        policy = build_policies(Settings())["B"]
        assert (policy.retrieval, policy.rrf_k) == ("hybrid", 30)
        entry = audit.entries(action="canary.draft", log=build_audit_log(Settings()))[0]
        assert entry.reason == "draft hybrid-k30 from study st-7" and entry.after["retrieval"] == "hybrid"

        next(b for b in at.button if b.label == "Undo the draft on B").click().run()
        assert not at.exception, at.exception
        assert any(
            "Undid draft `hybrid-k30`" in s.value and "retrieval: hybrid → dense" in s.value
            for s in at.success
        )
        assert (
            build_policies(Settings())["B"].retrieval == "dense" and read_policy_overrides(Settings()) == {}
        )
        assert next(b for b in at.button if b.label == "Undo the draft on B").disabled
    finally:
        hosted.stop()
        ui._hosted_api.clear()


def test_cli_policy_draft_list_apply_undo(data_dir: Path, monkeypatch, capsys) -> None:
    from cli_runner import assert_one_line_error, run_cli

    code, out, err = run_cli(monkeypatch, capsys, "policy", "draft", "list")
    assert code == 0 and "no draft yet" in out, err
    build_policy_drafts(Settings()).save_draft(
        "hybrid-k30", {"retrieval": "hybrid", "rrf_k": 30}, study_id="st-7", summary=SUMMARY, actor="study"
    )
    code, out, err = run_cli(monkeypatch, capsys, "policy", "draft", "list")
    assert code == 0, err
    assert "hybrid-k30  study st-7" in out and "knobs: retrieval=hybrid, rrf_k=30" in out
    assert "verdict: doc_ndcg@10 · test: chosen 0.6100 vs baseline 0.5500" in out
    code, out, err = run_cli(monkeypatch, capsys, "policy", "draft", "list", "--json")
    assert code == 0 and json.loads(out)[0]["knobs"] == {"retrieval": "hybrid", "rrf_k": 30}

    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "engineer")
    code, _, err = run_cli(monkeypatch, capsys, "policy", "draft", "apply", "hybrid-k30")
    assert code != 0 and "operator" in err and "Traceback" not in err
    assert read_policy_overrides(Settings()) == {}
    monkeypatch.setenv("RAGDECK_DEFAULT_ROLE", "operator")

    code, out, err = run_cli(monkeypatch, capsys, "policy", "draft", "apply", "hybrid-k30")
    assert code == 0, err
    assert "applied draft hybrid-k30 (study st-7) on policy B:" in out
    assert "retrieval: dense → hybrid" in out and "rrf_k: 60 → 30" in out
    assert "note: B gets 0 % of users" in out
    assert build_policies(Settings())["B"].retrieval == "hybrid"
    code, out, err = run_cli(monkeypatch, capsys, "policy", "draft", "undo")
    assert code == 0, err
    assert "undid draft hybrid-k30" in out and "retrieval: hybrid → dense" in out
    assert read_policy_overrides(Settings()) == {}
    code, _, err = run_cli(monkeypatch, capsys, "policy", "draft", "undo")
    assert_one_line_error(code, err, "no draft is applied to policy 'B': nothing to undo")
    code, _, err = run_cli(monkeypatch, capsys, "policy", "draft", "apply", "nope")
    assert_one_line_error(code, err, "no draft named 'nope': use one of hybrid-k30")
