"""Publishing the annotation store's gold as versioned eval sets, with history and diffs (and the page)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pages import open_page

from ragdeck.console import annotation
from ragdeck.console.evalsets.io import read_csv, read_jsonl
from ragdeck.console.evalsets.publish import diff, gold_to_evalset, load_version, publish, versions
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.annotation_store import SqliteAnnotationStore


def labelled_store() -> tuple[SqliteAnnotationStore, list[str]]:
    store = SqliteAnnotationStore(Settings().state_db)
    ids = annotation.add_questions(
        store, ["What is a recording rule?", "What is TEI?", "Unlabelled?"], "typed", "ann"
    )
    annotation.set_label(store, ids[0], "alice", "docs/rules#recording:0", 2, ("docs/rules", 0, 800))
    annotation.set_label(store, ids[0], "alice", "docs/rules#recording:1", 1, ("docs/rules", 700, 1500))
    annotation.set_answer(store, ids[0], "alice", "A rule that precomputes an expression.", "done")
    annotation.set_label(store, ids[1], "alice", "tei/index#intro:0", 2, ("tei/index", 0, 600))
    return store, ids


def test_publish_versions_and_diff(data_dir: Path, tmp_path: Path) -> None:
    store, ids = labelled_store()
    out = tmp_path / "eval_sets"
    first = gold_to_evalset("demo", annotation.export_gold(store))
    assert [r.id for r in first.records] == ids[:2]  # the unlabelled question is left out
    record = first.by_id()[ids[0]]
    assert record.relevance == {"docs/rules#recording:0": 2} and len(record.gold_spans) == 2
    v1, new = publish(first, out, annotators=["alice"], note="first cut")
    assert new and v1.version == 1 and v1.hash == first.content_hash()
    assert read_jsonl(out / "demo.jsonl").content_hash() == v1.hash
    assert read_csv(out / "demo.csv").records[0].question == "What is a recording rule?"
    again, new = publish(gold_to_evalset("demo", annotation.export_gold(store)), out)
    assert not new and again.version == 1  # same content, no new version

    annotation.set_label(store, ids[1], "alice", "tei/index#intro:1", 2, ("tei/index", 500, 1100))
    annotation.set_label(store, ids[2], "alice", "x/y#z:0", 2, ("x/y", 0, 10))
    v2, new = publish(gold_to_evalset("demo", annotation.export_gold(store)), out, annotators=["alice"])
    assert new and v2.version == 2
    assert [v.version for v in versions(out, "demo")] == [1, 2]
    change = diff(load_version(out, "demo", 1), load_version(out, "demo", 2))
    assert change.added == [ids[2]] and change.removed == []
    assert set(change.changed) == {ids[1]} and "gold_context_ids" in change.changed[ids[1]]
    lines = (out / "demo.versions.jsonl").read_text().splitlines()
    assert [json.loads(line)["note"] for line in lines] == ["first cut", ""]


def test_refusals(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no question with gold"):
        publish(gold_to_evalset("empty", []), tmp_path)
    with pytest.raises(InputError, match="invalid eval set name"):
        gold_to_evalset("../escape", [])
    with pytest.raises(InputError, match="no version 3"):
        load_version(tmp_path, "demo", 3)
    with pytest.raises(InputError, match="invalid eval set name"):
        load_version(tmp_path, "../escape", 1)


@pytest.mark.parametrize("name", ["demo_gold.versions", "Demo.VERSIONS", "set.queries"])
def test_reserved_suffixes_never_clobber_a_version_log(data_dir: Path, tmp_path: Path, name: str) -> None:
    store, _ids = labelled_store()
    out = tmp_path / "eval_sets"
    publish(gold_to_evalset("demo_gold", annotation.export_gold(store)), out)
    log = (out / "demo_gold.versions.jsonl").read_bytes()
    stem = name.rsplit(".", 1)[0]
    expected = rf"eval set name '{name}' ends in '\.\w+', .* pick another name, e\.g\. {stem}_set"
    with pytest.raises(InputError, match=expected):
        gold_to_evalset(name, annotation.export_gold(store))
    evalset = gold_to_evalset("demo_gold", annotation.export_gold(store))
    evalset.name = name  # a set named elsewhere (a file's stem) is refused by publish itself
    with pytest.raises(InputError, match="ends in"):
        publish(evalset, out)
    with pytest.raises(InputError, match="ends in"):
        versions(out, name)
    assert (out / "demo_gold.versions.jsonl").read_bytes() == log
    assert sorted(p.name for p in out.iterdir()) == [
        "demo_gold.csv", "demo_gold.jsonl", "demo_gold.versions.jsonl", "history"
    ]  # fmt: skip


def test_a_damaged_version_log_is_named(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "demo.versions.jsonl").write_text('{"version": 1}\n' + "[" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"demo\.versions\.jsonl, line 1: not a version record \(.*hash"):
        versions(tmp_path, "demo")
    (tmp_path / "demo.versions.jsonl").write_text("[" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"line 1: not a version record \(arrays or objects nested"):
        versions(tmp_path, "demo")


def test_publish_page(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(tmp_path / "sets"))
    labelled_store()
    at = open_page("publish")
    assert not at.exception, at.exception
    at.text_input(key="publish_name").input("team_gold").run()
    assert {m.label: m.value for m in at.metric}["Questions with gold"] == "2"
    next(b for b in at.button if b.label == "Publish").click().run()
    assert not at.exception, at.exception
    assert any("Published team_gold v1" in s.value for s in at.success)
    assert (tmp_path / "sets" / "team_gold.jsonl").exists()
    [history] = [d.value for d in at.dataframe if "version" in d.value.columns]
    assert history["version"].tolist() == [1]


def test_the_preview_shows_gold_chunks_answers_who_contributed_and_what_is_held_back(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from review_data import html_bodies, seed_chunks

    from ragdeck.console.annotation.gold import MERGE_RULE, MERGE_SUMMARY

    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(tmp_path / "sets"))
    seed_chunks()
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2, q3 = annotation.add_questions(
        store, ["What is a recording rule?", "What is TEI?", "Nothing relevant?"], "typed", "ann"
    )
    for person, grades in (("alice", {"c1": 2, "c2": 0}), ("bob", {"c1": 2, "c2": 2})):
        for chunk, grade in grades.items():
            annotation.set_label(store, q1, person, chunk, grade, ("doc", 0, 10))
    annotation.set_answer(store, q1, "alice", "It precomputes an expression.", "done")
    annotation.adjudicate(store, q1, "c2", 1, "carol", "half of it")
    annotation.set_label(store, q2, "bob", "c9", 2, ("doc", 0, 10))
    annotation.set_answer(store, q2, "bob", "", "flagged", "is c9 outdated?")
    annotation.set_label(store, q3, "alice", "c9", 0, ("doc", 0, 10))
    at = open_page("publish")
    assert any(c.value == MERGE_SUMMARY for c in at.caption)
    assert any(m.value == MERGE_RULE for m in at.markdown)
    at.text_input(key="publish_name").input("team_gold").run()
    assert not at.exception, at.exception
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    preview = next(v for k, v in tables.items() if "gold chunks" in k)
    for table in tables.values():
        assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    [row] = preview.to_dict("records")
    assert row["question"] == "What is a recording rule?"
    assert row["gold chunks"] == "c1 (relevant), c2 (partly relevant)"
    assert row["reference answer"] == "It precomputes an expression." and row["answer by"] == "alice"
    assert (row["annotators"], row["decided by"], row["flagged by"]) == ("alice, bob", "carol", "—")
    held = next(v for k, v in tables.items() if "why" in k).set_index("question")["why"].to_dict()
    assert held == {
        "What is TEI?": "flagged by bob (is c9 outdated?); include flagged questions to publish it",
        "Nothing relevant?": "no gold chunk: none is partly relevant or relevant by the merge rule",
    }
    assert not any("&lt;b&gt;bold?" in b for b in html_bodies(at))  # chunk text only on demand
    next(s for s in at.selectbox if s.label == "Read the gold chunks of").set_value(q1).run()
    bodies = html_bodies(at)
    assert any("A recording rule precomputes an expression." in b for b in bodies)
    assert any("&lt;b&gt;bold?&lt;/b&gt; :red[not red]" in b for b in bodies)  # escaped, not rendered


def test_publish_page_starts_with_no_name_and_holds_flagged_questions_back(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(tmp_path / "sets"))
    store, ids = labelled_store()
    annotation.set_answer(store, ids[1], "bob", "", "flagged")  # labelled, but someone has doubts
    at = open_page("publish")
    assert at.text_input(key="publish_name").value == ""  # no set is named for you, let alone overwritten
    assert any("Name the eval set" in i.value for i in at.info) and not at.get("form")
    at.text_input(key="publish_name").input("team_gold").run()
    assert {m.label: m.value for m in at.metric}["Questions with gold"] == "1"
    assert any("1 flagged question(s) held back: What is TEI?" in w.value for w in at.warning)
    at.checkbox[0].check().run()  # include them on purpose
    assert {m.label: m.value for m in at.metric}["Questions with gold"] == "2"


def test_publishing_over_an_existing_set_shows_the_diff_and_needs_a_confirmation_and_a_reason(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = tmp_path / "sets"
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(sets))
    store, _ = labelled_store()
    big = gold_to_evalset("team_gold", annotation.export_gold(store))
    extra = [replace(big.records[0], id=f"old-{n}", question=f"Old question {n}?") for n in range(3)]
    publish(replace(big, records=[*big.records, *extra]), sets, note="first")  # v1: 5 questions
    at = open_page("publish")
    at.text_input(key="publish_name").input("team_gold").run()
    warning = next(w.value for w in at.warning if "exists" in w.value)
    assert "v1 holds 5 questions" in warning and "v2 with 2" in warning
    assert any(m.value.startswith("**Removed (3):**") and "`old-0`" in m.value for m in at.markdown)
    publish_button = next(b for b in at.button if b.label == "Publish")
    assert publish_button.disabled  # nothing is replaced without the confirmation
    assert [v.version for v in versions(sets, "team_gold")] == [1]

    at.checkbox(key="publish_confirm").check().run()
    next(b for b in at.button if b.label == "Publish").click().run()
    assert any("say why team_gold gets a new version" in e.value for e in at.error)  # a reason is needed
    assert [v.version for v in versions(sets, "team_gold")] == [1]
    at.text_input[1].input("dropped three stale questions")
    next(b for b in at.button if b.label == "Publish").click().run()
    assert not at.exception, at.exception
    assert any("Published team_gold v2" in s.value for s in at.success)
    assert versions(sets, "team_gold")[-1].note == "dropped three stale questions"
