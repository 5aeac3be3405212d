"""Eval set files for the console: listing (with the shipped demo set), resolving and keeping uploads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragdeck.console.evalsets.files import (
    DEMO_EVAL_SETS,
    eval_set_files,
    listed_eval_sets,
    resolve_eval_set,
    save_upload,
)
from ragdeck.errors import InputError


def test_lists_sets_newest_first_without_version_logs(tmp_path: Path) -> None:
    published, uploads = tmp_path / "eval_sets", tmp_path / "uploads"
    published.mkdir()
    old = published / "old.jsonl"
    old.write_text("{}\n")
    os.utime(old, (1_000, 1_000))
    (published / "old.versions.jsonl").write_text("{}\n")
    (published / "notes.md").write_text("x")
    new = save_upload("new.csv", b"question,gold_context_ids,reference_answer\n", uploads)
    assert eval_set_files([published, uploads, tmp_path / "missing"]) == [new, old]


def test_upload_keeps_only_the_base_name_and_replaces_whole(tmp_path: Path) -> None:
    first = save_upload("../../escape.jsonl", b'{"a": 1}\n', tmp_path / "uploads")
    assert first == tmp_path / "uploads" / "escape.jsonl"
    second = save_upload("escape.jsonl", b'{"a": 2}\n', tmp_path / "uploads")
    assert second.read_bytes() == b'{"a": 2}\n'
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["escape.jsonl"]


def test_upload_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.jsonl or \.csv"):
        save_upload("gold.xlsx", b"PK", tmp_path)


def test_the_demo_set_ships_inside_the_package() -> None:
    import ragdeck

    assert DEMO_EVAL_SETS.parent == Path(ragdeck.__file__).resolve().parent
    names = {p.name for p in DEMO_EVAL_SETS.iterdir()}
    assert {"demo_gold.jsonl", "demo_gold.csv", "demo_gold.versions.jsonl", "history"} <= names


def test_listing_adds_the_shipped_demo_set_unless_published(tmp_path: Path) -> None:
    published, uploads = tmp_path / "eval_sets", tmp_path / "uploads"
    shipped = [DEMO_EVAL_SETS / "demo_gold.jsonl", DEMO_EVAL_SETS / "demo_gold.csv"]
    assert listed_eval_sets(published, uploads) == shipped  # nothing published: the demo set still shows
    mine = save_upload("mine.jsonl", b"{}\n", published)
    assert listed_eval_sets(published, uploads) == [mine, *shipped]
    own = save_upload("demo_gold.jsonl", b"{}\n", published)  # published under the same name: it wins
    assert listed_eval_sets(published, uploads)[-1:] == [DEMO_EVAL_SETS / "demo_gold.csv"]
    assert own in listed_eval_sets(published, uploads)


def test_resolving_falls_back_to_the_shipped_set_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = DEMO_EVAL_SETS / "demo_gold.jsonl"
    assert resolve_eval_set(Path("eval_sets/demo_gold.jsonl")) == shipped
    assert resolve_eval_set(Path("demo_gold.jsonl")) == shipped
    assert resolve_eval_set(Path("other/demo_gold.jsonl")) == Path("other/demo_gold.jsonl")
    assert resolve_eval_set(Path("eval_sets/missing.jsonl")) == Path("eval_sets/missing.jsonl")
    own = save_upload("demo_gold.jsonl", b"{}\n", tmp_path / "eval_sets")
    assert resolve_eval_set(Path("eval_sets/demo_gold.jsonl")) == Path("eval_sets/demo_gold.jsonl")
    assert own.exists()
