"""The one atomic-write helper (ragdeck.services.files): new content or the old file, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragdeck.errors import InputError
from ragdeck.services import common, files
from ragdeck.services.files import (
    atomic_path,
    copy_file_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_text_replaces_the_file_and_keeps_line_ends(tmp_path: Path) -> None:
    target = tmp_path / "set.csv"
    target.write_text("old\n")
    write_text_atomic(target, "a,b\r\nc,d\n")
    assert target.read_bytes() == b"a,b\r\nc,d\n"
    assert _leftovers(tmp_path) == []


def test_write_text_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    write_text_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"


def test_write_json_is_indented_sorted_and_ends_with_a_newline(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    write_json_atomic(target, {"b": 1, "a": [1, 2]})
    text = target.read_text(encoding="utf-8")
    assert text == json.dumps({"a": [1, 2], "b": 1}, indent=2, sort_keys=True) + "\n"


def test_write_json_wants_the_directory_to_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"folder .*missing does not exist; create it first"):
        write_json_atomic(tmp_path / "missing" / "meta.json", {})


def test_a_folder_is_never_replaced_and_a_file_in_the_way_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder: give a file name"):
        write_text_atomic(folder, "x")
    assert folder.is_dir() and _leftovers(tmp_path) == []
    (tmp_path / "file").write_text("keep")
    with pytest.raises(InputError, match="a file is in the way"):
        write_text_atomic(tmp_path / "file" / "out.json", "x")
    assert (tmp_path / "file").read_text() == "keep"


def test_a_write_that_fails_midway_leaves_the_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "aliases.json"
    target.write_text('{"rag_chunks": "rag_chunks_v1"}\n')
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text('{"rag_chunks": "rag_ch')  # half of the new content
        raise RuntimeError("disk full")
    assert target.read_text() == '{"rag_chunks": "rag_chunks_v1"}\n'
    assert _leftovers(tmp_path) == []


def test_unserialisable_json_leaves_the_old_file_intact(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"ok": True, "when": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert _leftovers(tmp_path) == []


def test_a_failed_replace_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="cross-device"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_the_temp_file_is_beside_the_target_and_hidden(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 200 + ".tar")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".tmp")
        assert len(tmp.name) < 80 and not tmp.exists()
        tmp.write_bytes(b"tar")
    assert target.read_bytes() == b"tar"


def test_the_file_is_replaced_only_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "snap.tar"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"


def test_copy_file_atomic(tmp_path: Path) -> None:
    source = tmp_path / "a.tar"
    source.write_bytes(os.urandom(4096))
    dest = tmp_path / "out" / "b.tar"
    dest.parent.mkdir()
    assert copy_file_atomic(source, dest) == dest
    assert dest.read_bytes() == source.read_bytes()
    assert _leftovers(dest.parent) == []


def test_common_reexports_the_same_helpers() -> None:
    assert common.write_json_atomic is files.write_json_atomic
    assert common.fsync_dir is files.fsync_dir
