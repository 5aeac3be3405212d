"""Where eval set files live for the console: published sets, uploads kept under the data directory, and
the demo sets shipped inside the package (read-only; found from any working directory)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from ragdeck.console.evalsets.io import read_any
from ragdeck.console.evalsets.model import EvalSet
from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.files import write_bytes_atomic

SET_SUFFIXES = (".jsonl", ".csv")
# The shipped demo gold set (demo_gold.jsonl / .csv, its version log and history), package data.
DEMO_EVAL_SETS = Path(__file__).resolve().parents[2] / "demo_eval_sets"


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


def listed_eval_sets(published: Path, uploads: Path) -> list[Path]:
    """What the console offers: sets in ``published`` (the eval_sets_dir) and ``uploads``, newest first, then
    each shipped demo set whose name ``published`` lacks. Shipped sets are read from the package, never
    written: publishing writes to ``published``, and a set published there under the same name wins."""
    files = eval_set_files([published, uploads])
    have = {f.name for f in files if f.parent == published}
    shipped = sorted(eval_set_files([DEMO_EVAL_SETS]), key=lambda f: (f.suffix != ".jsonl", f.name))
    return files + [f for f in shipped if f.name not in have]


def resolve_eval_set(path: Path) -> Path:
    """``path``, or the shipped demo set of that name when ``path`` does not exist and is a bare file name or
    a file directly under a folder named ``eval_sets`` (so ``--set eval_sets/demo_gold.jsonl`` works from
    any folder). Anything else comes back unchanged, for the reader to report as missing."""
    if path.exists() or (len(path.parts) > 1 and path.parent.name != "eval_sets"):
        return path
    shipped = DEMO_EVAL_SETS / path.name
    return shipped if shipped.is_file() else path


def save_upload(name: str, data: bytes, folder: Path) -> Path:
    """Keep an uploaded set as ``folder/<basename>`` (so runs on it can be resumed) and return its path.

    Only the base name is used, so a name cannot climb out of ``folder``; the file is written to a temporary
    name and moved into place (``services.files``), so a crash never leaves half a set behind.
    """
    base = Path(name).name
    if not base or Path(base).suffix not in SET_SUFFIXES:
        raise InputError(f"an eval set upload must be a .jsonl or .csv file, got {name!r}")
    target = folder / base
    write_bytes_atomic(target, data, make_parents=True)
    return target


def read_upload(name: str, data: bytes) -> EvalSet:
    """An uploaded eval set read and checked before anything keeps it; its errors name the file as the user
    knows it (``name``), never the temporary copy read."""
    base = Path(name).name
    if not base or Path(base).suffix not in SET_SUFFIXES:
        raise InputError(f"an eval set upload must be a .jsonl or .csv file, got {name!r}")
    with tempfile.TemporaryDirectory(prefix="ragdeck-upload-") as folder:
        path = Path(folder) / base
        path.write_bytes(data)
        try:
            return read_any(path)
        except RagdeckError as exc:
            raise InputError(str(exc).replace(str(path), base).replace(folder, "upload")) from None
