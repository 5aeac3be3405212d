"""Retrieval studies saved as JSON files, one per study (``<data_dir>/studies/<study id>.json``), each
replaced atomically, so a crash while saving leaves the previous save whole."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ragdeck.errors import InputError
from ragdeck.services.files import write_text_atomic

STUDY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", re.ASCII)


class StudyFiles:
    """Save, load and list studies under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, study_id: str) -> Path:
        if not isinstance(study_id, str) or not STUDY_ID_RE.fullmatch(study_id):
            raise InputError(f"invalid study id {study_id!r}: use the id a study printed (study-…)")
        return self.root / f"{study_id}.json"

    def save(self, study: dict[str, Any]) -> Path:
        """Write one study (its ``study_id`` names the file); returns the path."""
        path = self._path(str(study["study_id"]))
        write_text_atomic(path, json.dumps(study, indent=2, allow_nan=True) + "\n")
        return path

    def load(self, study_id: str) -> dict[str, Any]:
        """One study; InputError naming the saved ones when there is none by that id."""
        path = self._path(study_id)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = ", ".join(s["study_id"] for s in self.list()[:10]) or "none yet"
            raise InputError(f"no study {study_id!r} in {self.root} (saved: {known})") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"study file {path} cannot be read ({exc}): run the study again") from None
        return data

    def list(self) -> list[dict[str, Any]]:
        """Every readable saved study, newest first (unreadable files are skipped)."""
        out = []
        for path in self.root.glob("*.json") if self.root.is_dir() else []:
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda s: s.get("created_at", 0.0), reverse=True)
