"""Eval set files for the console: listing and keeping uploads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragdeck.console.evalset_files import eval_set_files, save_upload
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
