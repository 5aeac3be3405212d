"""Atomic file writes, the one way ragdeck replaces a file: the adapters and the domain both use it.

A write goes to a temporary file beside the target (same directory, so the rename cannot cross devices),
which is fsynced and then ``os.replace``d over the target, and the directory is fsynced: a reader sees the
old file or the new one, never half of one, and a crash or an error midway leaves the old file as it was
(the temporary file is removed). Temporary names start with ``.`` and end with ``.tmp``.

- ``atomic_path(path)``: the temporary path to fill by any means (a stream, ``tar``, a copy); it replaces
  ``path`` when the ``with`` block ends normally and is removed when the block raises;
- ``write_text_atomic``, ``write_bytes_atomic``, ``write_json_atomic``, ``copy_file_atomic``: the usual
  cases on top of it;
- ``fsync_dir``: make a rename inside a directory durable.

A target that is a folder, or whose folder is missing (or is a file), raises InputError naming it before
anything is written: these paths usually come from a user (``--out``, ``--json``). Imports nothing from
ragdeck but ``ragdeck.errors``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError

__all__ = [
    "atomic_path",
    "copy_file_atomic",
    "fsync_dir",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def fsync_dir(path: Path | str) -> None:
    """fsync a directory, so that a rename or replace inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: Path | str, *, make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; fill it inside the block.

    When the block ends normally the temporary file is fsynced, replaces ``path`` and the directory is
    fsynced; when the block raises it is removed and ``path`` is left as it was. The directory must exist
    unless ``make_parents``. The temporary file does not exist yet when the block starts. InputError when
    ``path`` is a folder or its folder is missing (see the module docstring).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name to write to (for example {path / 'out'})")
    if make_parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InputError(
                f"cannot write {path}: a file is in the way of its folder; pick another path"
            ) from None
    elif not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    # Short: a target's name may already be near the file system's limit.
    tmp = path.parent / f".{path.name[:40]}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path | str, data: bytes, *, make_parents: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_path``)."""
    with atomic_path(path, make_parents=make_parents) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str, *, make_parents: bool = True) -> None:
    """Replace ``path`` with ``text`` (UTF-8, line ends as given) atomically; its directory is created."""
    with (
        atomic_path(path, make_parents=make_parents) as tmp,
        open(tmp, "w", encoding="utf-8", newline="") as fh,
    ):
        fh.write(text)


def write_json_atomic(path: Path | str, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON (indented, keys sorted, a final newline) atomically.

    The directory must exist.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


def copy_file_atomic(source: Path | str, dest: Path | str) -> Path:
    """Copy ``source`` over ``dest`` atomically; returns ``dest``."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest
