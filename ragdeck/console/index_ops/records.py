"""The records every index operation shares: a version behind the alias (``IndexVersion``), an alias move
(``AliasMove``), a gate's outcome (``GateResult``), the errors ``GateBlocked`` and ``RebuildCancelled``, and
the small rules about names (``version_number``), corpora (``corpus_hash``) and time."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragdeck.console.jobs import Cancelled
from ragdeck.errors import InputError

# progress(stage, done, total): "chunk", "embed", "index" during a rebuild; "live", "shadow" during a gate.
Progress = Callable[[str, int, int], None]

STALE_AFTER_S = 300.0  # a rebuild silent this long counts as dead even when its process cannot be checked
HEARTBEAT_EVERY_S = 1.0  # at most one progress write a second
BEAT_EVERY_S = 30.0  # the heartbeat between progress reports
DEFAULT_MAX_REGRESSION = 0.02


class GateBlocked(InputError):
    """A swap without a passed, current gate (and no override)."""


class RebuildCancelled(Cancelled):
    """A rebuild stopped by its cancel switch: the shadow is kept, marked interrupted (resume or clean up)."""


@dataclass
class IndexVersion:
    """One version behind the alias, with how it was built and where it stands."""

    collection: str
    alias: str
    version: int
    status: str  # building, interrupted, ready, failed, abandoned, deleted
    created_at: str
    created_by: str
    spec: dict[str, Any] = field(default_factory=dict)
    corpus_hash: str | None = None
    points: int | None = None
    gate: dict[str, Any] | None = None
    cleared_by_run: str | None = None
    progress: dict[str, Any] | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: float | None = None
    live: bool = False
    rollback_target: bool = False
    exists: bool = True

    @property
    def gate_passed(self) -> bool:
        """True when the last gate of this version passed."""
        return bool(self.gate and self.gate.get("passed"))

    @property
    def redactions(self) -> dict[str, int]:
        """What redaction replaced in the corpus of a finished build, by kind (recorded with its progress)."""
        return dict((self.progress or {}).get("redactions") or {})

    @property
    def redacted_text(self) -> str:
        """``EMAIL 4, SECRET 1`` (kinds in name order), or ``nothing``."""
        return ", ".join(f"{k} {v}" for k, v in sorted(self.redactions.items())) or "nothing"

    @property
    def progress_text(self) -> str:
        """Where a rebuild is (or stopped), e.g. ``embed 64/310``."""
        p = self.progress or {}
        return f"{p.get('stage', '?')} {p.get('done', 0)}/{p.get('total', 0)}"

    def summary(self) -> dict[str, Any]:
        """One flat row for tables and ``--json``."""
        chunking = self.spec.get("chunking") or {}
        hnsw = self.spec.get("hnsw") or {}
        gate = "—" if not self.gate else ("passed" if self.gate.get("passed") else "failed")
        if self.gate and self.gate.get("override"):
            gate = "overridden"
        return {
            "collection": self.collection,
            "version": self.version,
            "state": "live" if self.live else ("previous" if self.rollback_target else self.status),
            "status": self.status,
            "points": self.points,
            "chunk chars": f"{chunking.get('min_chars', '?')}-{chunking.get('max_chars', '?')}"
            if chunking
            else "",
            "embedding model": self.spec.get("embedding_model", ""),
            "m": hnsw.get("m"),
            "ef_construct": hnsw.get("ef_construct"),
            "corpus": (self.corpus_hash or "")[:12],
            "created": self.created_at,
            "by": self.created_by,
            "gate": gate,
            "cleared by run": self.cleared_by_run or "",
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], *, exists: bool = True, points: int | None = None) -> IndexVersion:
        """From a registry row; ``points`` (counted in the store) wins over the recorded count."""
        return cls(
            collection=row["collection"],
            alias=row["alias"],
            version=int(row["version"]),
            status=row["status"],
            created_at=iso(row["created_at"]),
            created_by=row["created_by"],
            spec=row["spec"] or {},
            corpus_hash=row["corpus_hash"],
            points=points if points is not None else row["points"],
            gate=row["gate"],
            cleared_by_run=row["cleared_by_run"],
            progress=row["progress"],
            error=row["error"],
            host=row["host"],
            pid=row["pid"],
            heartbeat_at=row["heartbeat_at"],
            exists=exists,
        )


@dataclass(frozen=True)
class AliasMove:
    """A swap or rollback that happened."""

    alias: str
    action: str
    before: str | None
    after: str
    actor: str
    reason: str


@dataclass
class GateResult:
    """A gate of a shadow against the live version: outcome, both runs, the paired comparison."""

    collection: str
    passed: bool
    failures: list[str]
    checks: list[dict[str, Any]]
    live_collection: str | None
    live_run: str | None
    shadow_run: str
    set_name: str
    set_hash: str
    comparison_md: str = ""
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As stored with the version."""
        return asdict(self)


def version_number(collection: str, alias: str) -> int | None:
    """N of ``{alias}_v{N}``, else None."""
    match = re.fullmatch(re.escape(alias) + r"_v(\d+)", collection)
    return int(match.group(1)) if match else None


def corpus_hash(path: Path) -> str:
    """SHA-256 over every file under ``path`` (relative name and bytes, in name order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def iso(stamp: float | None) -> str:
    """A Unix time as ISO 8601 UTC to the second ("" for None)."""
    return "" if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
