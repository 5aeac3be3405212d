"""What a sweep tries and what it reports: the grid of m, ef_construct and search-time ef, and the records of
a sweep (one row per configuration, the recommendation, the whole result).

A sweep's plan is every (m, ef_construct) asked for plus the live index's own pair, crossed with every ef,
in the order the rows are kept: by m, then ef_construct, then ef. A result measured on only part of its
plan (a cancelled sweep) says so (``partial``) and can be resumed for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from ragdeck.console.evaluation.metric_names import DOC_PREFIX
from ragdeck.errors import InputError

DEFAULT_MS = (4, 16, 32)
DEFAULT_EF_CONSTRUCTS = (100,)
DEFAULT_EFS = (10, 16, 32, 64, 128)  # the engine searches with max(ef, k): ef below k = 10 is k
RECALL_KEYS = ("recall_exact", "recall_gold")
LATENCY_KEYS = ("p50_ms", "p95_ms")

Progress = Callable[[str, int, int], None]  # (stage, configurations done, configurations planned)


def parse_ints(text: str, what: str, minimum: int = 1) -> tuple[int, ...]:
    """``"4,16,32"`` -> (4, 16, 32), sorted and without duplicates; InputError naming ``what`` otherwise."""
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, e.g. 4,16,32 (got {text!r})") from None
    if not values or values[0] < minimum:
        raise InputError(f"{what} must be integers >= {minimum}, e.g. 4,16,32 (got {text!r})")
    return tuple(values)


def check_keys(recall_key: str, latency_key: str) -> None:
    """InputError unless ``recall_key`` is in RECALL_KEYS and ``latency_key`` in LATENCY_KEYS."""
    if recall_key not in RECALL_KEYS:
        raise InputError(f"recall must be one of {', '.join(RECALL_KEYS)}, got {recall_key!r}")
    if latency_key not in LATENCY_KEYS:
        raise InputError(f"latency must be one of {', '.join(LATENCY_KEYS)}, got {latency_key!r}")


class Config(NamedTuple):
    """One configuration of a sweep."""

    m: int
    ef_construct: int
    ef: int


@dataclass(frozen=True)
class Grid:
    """The values asked for (the live index's own m / ef_construct are added when planning)."""

    ms: tuple[int, ...] = DEFAULT_MS
    ef_constructs: tuple[int, ...] = DEFAULT_EF_CONSTRUCTS
    efs: tuple[int, ...] = DEFAULT_EFS

    @classmethod
    def of(cls, ms: Sequence[int], ef_constructs: Sequence[int], efs: Sequence[int]) -> Grid:
        """Sorted, without duplicates; InputError when one of the three is empty."""
        for what, values in (("m", ms), ("ef_construct", ef_constructs), ("ef", efs)):
            if not values:
                raise InputError(f"give at least one {what} value")
        return cls(*(tuple(sorted({int(v) for v in values})) for values in (ms, ef_constructs, efs)))

    def builds(self, live: tuple[int, int]) -> list[tuple[int, int]]:
        """Every (m, ef_construct) to measure, the live pair included, sorted."""
        return sorted({(m, e) for m in self.ms for e in self.ef_constructs} | {live})

    def plan(self, live: tuple[int, int]) -> list[Config]:
        """Every configuration to measure, in row order."""
        return [Config(m, e, ef) for m, e in self.builds(live) for ef in self.efs]

    def to_json(self) -> dict[str, list[int]]:
        """``{"m": [...], "ef_construct": [...], "ef": [...]}``."""
        return {"m": list(self.ms), "ef_construct": list(self.ef_constructs), "ef": list(self.efs)}


@dataclass
class SweepRow:
    """One configuration's measurements (``ragdeck.console.hnsw`` says what each figure means)."""

    m: int
    ef_construct: int
    ef: int
    recall_exact: float
    recall_gold: float | None
    p50_ms: float
    p95_ms: float
    build_s: float | None
    index_bytes: int | None
    index: str  # "live" (the collection's own index) or "copy"
    recommended: bool = False
    on_front: bool = False

    @property
    def label(self) -> str:
        """``m=16 efc=100 ef=32``."""
        return f"m={self.m} efc={self.ef_construct} ef={self.ef}"

    @property
    def config(self) -> Config:
        """The configuration this row measured."""
        return Config(self.m, self.ef_construct, self.ef)

    def to_json(self) -> dict[str, Any]:
        """Every field by name."""
        return asdict(self)


@dataclass
class Recommendation:
    """The recommended row (index into the rows, None when nothing qualifies) and one sentence why."""

    index: int | None
    sentence: str


@dataclass
class SweepResult:
    """A sweep: its rows (front and recommendation marked), queries and timings; ``partial`` when it measured
    only part of its plan (cancelled), which ``resume_sweep`` completes."""

    collection: str
    k: int
    query_source: str
    queries: int
    rows: list[SweepRow]
    recommendation: Recommendation
    target: float
    budget_ms: float | None
    recall_key: str
    latency_key: str
    total_s: float
    live: dict[str, int] = field(default_factory=dict)  # the live index's m and ef_construct
    notes: list[str] = field(default_factory=list)  # what the figures mean on this collection
    grid: Grid = field(default_factory=Grid)  # what was asked for
    planned: int = 0  # configurations in the plan (0: not recorded, taken as complete)
    gold_metric: str | None = None  # the eval metric recall_gold is: recall@k (chunks) or doc_recall@k

    @property
    def gold_label(self) -> str:
        """What ``recall_gold`` is, its level stated: "gold doc_recall@10 (k documents)"."""
        name = self.gold_metric or f"recall@{self.k}"
        level = "documents" if name.startswith(DOC_PREFIX) else "chunks"
        return f"gold {name} (k {level})"

    @property
    def partial(self) -> bool:
        """True when some configurations of the plan were not measured (the sweep was cancelled)."""
        return len(self.rows) < self.planned

    def to_json(self) -> dict[str, Any]:
        """The whole result as JSON values (what ``ragdeck hnsw sweep --json`` writes)."""
        return {
            "collection": self.collection,
            "k": self.k,
            "queries": self.queries,
            "query_source": self.query_source,
            "target": self.target,
            "budget_ms": self.budget_ms,
            "recall_key": self.recall_key,
            "gold_metric": self.gold_metric,
            "latency_key": self.latency_key,
            "live": self.live,
            "notes": self.notes,
            "total_s": round(self.total_s, 3),
            "grid": self.grid.to_json(),
            "planned": self.planned,
            "partial": self.partial,
            "recommended": self.recommendation.index,
            "recommendation": self.recommendation.sentence,
            "rows": [r.to_json() for r in self.rows],
        }
