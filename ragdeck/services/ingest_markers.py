"""Markers of ingests in progress: one small JSON file per collection under a folder of the data directory
(``<data_dir>/ingests/<collection>.json``), written atomically before an ingest creates or fills its
collection and removed once it is complete. A marker left behind names a process that died mid-way (host,
pid), so the next ingest of that collection can clear the partial one it left. Satisfies
``ragdeck.console.ingest.ports.IngestJournal``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ragdeck.services.common import check_name
from ragdeck.services.files import write_json_atomic


class IngestMarkers:
    """In-progress markers, one JSON file per collection under ``folder`` (created on first write)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, collection: str) -> Path:
        return self.folder / f"{check_name(collection)}.json"

    def put(self, collection: str, marker: dict[str, Any]) -> None:
        """Record (or replace) the marker of ``collection``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(collection), marker)

    def get(self, collection: str) -> dict[str, Any] | None:
        """The marker of ``collection``, or None (an unreadable one counts as left by a dead process)."""
        path = self._path(collection)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"pid": None, "host": None, "created": True}
        return data if isinstance(data, dict) else {"pid": None, "host": None, "created": True}

    def remove(self, collection: str) -> None:
        """Forget the marker of ``collection`` (nothing if there is none)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(collection).unlink()
