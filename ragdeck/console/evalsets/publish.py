"""Publishing eval sets: the annotation store's gold as a versioned file under ``eval_sets/``, its history,
and the difference between two versions.

Layout of a published set NAME in the eval-set directory:
- ``NAME.jsonl`` and ``NAME.csv``: the latest version (what people review in git and evals read);
- ``NAME.versions.jsonl``: one line per version (``version``, ``hash``, ``created_at``, ``annotators``,
  ``counts``, ``note``), appended atomically;
- ``history/NAME/vN.jsonl``: every version's records, so any two can be compared.
Publishing records whose content hash equals the latest version's makes no new version. A name is a
collection-style name (``services.common.check_name``) that does not end in a reserved suffix (``.versions``,
``.queries``): ``demo_gold.versions`` would overwrite demo_gold's version log, ``x.queries`` a qrels set's
questions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ragdeck.console.evalsets.io import read_jsonl, write_csv, write_jsonl
from ragdeck.console.evalsets.model import EvalRecord, EvalSet, GoldSpan
from ragdeck.errors import InputError
from ragdeck.services.common import check_name
from ragdeck.services.files import write_text_atomic
from ragdeck.services.inputs import parse_json


class GoldLike(Protocol):
    """What ``gold_to_evalset`` reads of one exported question (``console.annotation.export_gold``)."""

    question_id: str
    question: str
    gold_chunk_ids: Sequence[str]
    relevance: dict[str, int]
    spans: dict[str, Any]
    reference_answer: str
    annotators: Sequence[str]
    tags: Sequence[str]


RESERVED_SUFFIXES = (".versions", ".queries")


def check_evalset_name(name: str) -> str:
    """Raise InputError unless ``name`` can name a published set (see the module docstring); return it."""
    check_name(name, "eval set")
    reserved = next((s for s in RESERVED_SUFFIXES if name.lower().endswith(s)), None)
    if reserved is not None:
        stem = name[: -len(reserved)] or "gold"
        raise InputError(
            f"eval set name {name!r} ends in {reserved!r}, which names the files kept beside a set "
            f"({name}.jsonl would clobber them); pick another name, e.g. {stem}_set"
        )
    return name


@dataclass(frozen=True)
class Version:
    """One published version of an eval set."""

    version: int
    hash: str
    created_at: float
    annotators: list[str]
    counts: dict[str, int]
    note: str = ""


@dataclass
class EvalSetDiff:
    """What changed between two versions: record ids added or removed, and per changed id the fields."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the two versions hold the same records."""
        return not (self.added or self.removed or self.changed)


def gold_to_evalset(name: str, gold: Iterable[GoldLike]) -> EvalSet:
    """An eval set from exported gold: one record per question with its gold chunks, grades other than 1,
    source spans and reference answer. Questions with no gold chunk are left out."""
    records = []
    for item in gold:
        if not item.gold_chunk_ids:
            continue
        spans = [
            GoldSpan(span.doc_id, span.start, span.end, chunk_id)
            for chunk_id, span in sorted(item.spans.items())
            if chunk_id in item.gold_chunk_ids
        ]
        records.append(
            EvalRecord(
                id=item.question_id,
                question=item.question,
                gold_context_ids=list(item.gold_chunk_ids),
                reference_answer=item.reference_answer,
                gold_spans=spans,
                relevance={k: v for k, v in item.relevance.items() if v != 1},
                tags=list(item.tags),
            )
        )
    return EvalSet(name=check_evalset_name(name), records=records)


def versions(directory: Path, name: str) -> list[Version]:
    """Published versions of ``name``, oldest first (empty when never published)."""
    path = Path(directory) / f"{check_evalset_name(name)}.versions.jsonl"
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line:
            continue
        try:
            out.append(Version(**parse_json(line)))
        except (ValueError, TypeError) as exc:  # not JSON (json.JSONDecodeError is one), or not a version
            raise InputError(
                f"{path}, line {number}: not a version record ({exc}); restore the file from git"
            ) from None
    return out


def load_version(directory: Path, name: str, version: int) -> EvalSet:
    """The records of one published version."""
    path = Path(directory) / "history" / check_evalset_name(name) / f"v{version}.jsonl"
    if not path.exists():
        raise InputError(f"eval set {name!r} has no version {version} in {directory}")
    return read_jsonl(path)


def publish(
    evalset: EvalSet, directory: Path, *, annotators: Sequence[str] = (), note: str = ""
) -> tuple[Version, bool]:
    """Write ``evalset`` as the latest version of its name; returns (version, whether it is new).

    Refuses an empty set. The history copy and the latest files are written before the version line, so a
    crash never lists a version whose records are missing.
    """
    check_evalset_name(evalset.name)
    if not evalset.records:
        raise InputError(f"eval set {evalset.name!r} has no question with gold chunks: label some first")
    directory = Path(directory)
    digest = evalset.content_hash()
    history = versions(directory, evalset.name)
    if history and history[-1].hash == digest:
        return history[-1], False
    number = history[-1].version + 1 if history else 1
    version = Version(number, digest, time.time(), sorted(annotators), evalset.stats(), note)
    write_jsonl(evalset, directory / "history" / evalset.name / f"v{number}.jsonl")
    write_jsonl(evalset, directory / f"{evalset.name}.jsonl")
    write_csv(evalset, directory / f"{evalset.name}.csv")
    lines = [json.dumps(v.__dict__, sort_keys=True) for v in [*history, version]]
    write_text_atomic(directory / f"{evalset.name}.versions.jsonl", "\n".join(lines) + "\n")
    return version, True


def diff(old: EvalSet, new: EvalSet) -> EvalSetDiff:
    """Records added, removed and changed (by id) from ``old`` to ``new``, with the changed fields."""
    before, after = old.by_id(), new.by_id()
    result = EvalSetDiff(added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)))
    for record_id in sorted(set(before) & set(after)):
        a, b = before[record_id].canonical(), after[record_id].canonical()
        fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if fields:
            result.changed[record_id] = fields
    return result
