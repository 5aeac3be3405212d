"""Where eval set files live for the console: published sets and uploads kept under the data directory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ragdeck.errors import InputError

SET_SUFFIXES = (".jsonl", ".csv")


def eval_set_files(folders: Iterable[Path]) -> list[Path]:
    """Eval sets (JSONL / CSV) in ``folders``, newest first; version logs (``*.versions.jsonl``) left out."""
    files = [
        f
        for folder in folders
        if folder.is_dir()
        for f in folder.iterdir()
        if f.is_file() and f.suffix in SET_SUFFIXES and not f.name.endswith(".versions.jsonl")
    ]
    return sorted(files, key=lambda f: f.stat().st_mtime, reverse=True)


def save_upload(name: str, data: bytes, folder: Path) -> Path:
    """Keep an uploaded set as ``folder/<basename>`` (so runs on it can be resumed) and return its path.

    Only the base name is used, so a name cannot climb out of ``folder``; the file is written to a temporary
    name and moved into place, so a crash never leaves half a set behind.
    """
    base = Path(name).name
    if not base or Path(base).suffix not in SET_SUFFIXES:
        raise InputError(f"an eval set upload must be a .jsonl or .csv file, got {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / base
    partial = target.with_name(f".{base}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target
