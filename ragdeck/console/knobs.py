"""The retrieval knobs, defined once: their names, defaults, allowed values, help and check.

``RetrievalKnobs`` holds them: ``top_k`` candidates from the vector store (from each list in hybrid mode),
``top_n`` kept after reranking, the search-time ``hnsw_ef``, ``rerank``, the ``retrieval`` mode (dense,
lexical or hybrid) and hybrid's ``fusion`` (RRF with ``rrf_k``, weighted scores with ``dense_weight``, or
distribution-based score fusion, dbsf).
Everything else takes them from here:

- the pipeline's ``RetrievalParams`` and a ``Policy`` are ``RetrievalKnobs`` with more fields, so both have
  these defaults and this check (a policy prefixes its name to the message);
- ``Settings`` declares ``top_k``, ``top_n``, ``hnsw_ef``, ``retrieval``, ``fusion``, ``rrf_k`` and
  ``dense_weight`` (``RAGDECK_TOP_K``, ...) with ``KNOBS[name]``'s default, bounds and help;
- the pages' retrieval inputs (``ui.retrieval_inputs``) read their bounds from ``KNOBS``, and so should the
  CLI's options.

This module is in the console's core, beside ``settings``, because settings need it and the retrieval
package imports settings (a module of the retrieval package here would make an import cycle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self, get_args

from ragdeck.errors import InputError

__all__ = [
    "DEFAULT_RRF_K",
    "FUSIONS",
    "KNOBS",
    "RETRIEVAL_MODES",
    "Fusion",
    "Knob",
    "RetrievalKnobs",
    "RetrievalMode",
    "check_fusion",
    "knob_problem",
]

RetrievalMode = Literal["dense", "lexical", "hybrid"]
Fusion = Literal["rrf", "weighted", "dbsf"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(RetrievalMode)
FUSIONS: tuple[str, ...] = get_args(Fusion)
DEFAULT_RRF_K = 60  # Qdrant's default k of Rrf


@dataclass(frozen=True)
class Knob:
    """One knob: its default, what it means, and what it accepts. ``kind`` is int, float, bool or str;
    numbers lie in [``minimum``, ``maximum``] (None: unbounded), text is one of ``choices``; ``optional``
    knobs may also be None (unset)."""

    name: str  # the RetrievalKnobs field
    default: Any
    help: str
    kind: type
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    @property
    def expected(self) -> str:
        """What the knob accepts, ending "top_k must be ...": "an integer >= 1", "one of rrf, weighted"."""
        if self.kind is bool:
            text = "true or false"
        elif self.choices:
            text = f"one of {', '.join(self.choices)}"
        elif self.kind is float:
            text = f"a number from {self.minimum:g} to {self.maximum:g}"
        else:
            text = f"an integer >= {self.minimum:g}"
        return f"{text} or unset" if self.optional else text

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is allowed (the exact type: a bool is not an integer, "40" is not 40)."""
        if value is None:
            return self.optional
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float if self.kind is float else int):
            return False
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )

    def problem(self, value: object) -> str | None:
        """None when ``value`` is allowed, else "NAME must be EXPECTED, got VALUE"."""
        return None if self.accepts(value) else f"{self.name} must be {self.expected}, got {value!r}"


def _knob(default: Any, help: str, kind: type, **rules: Any) -> Any:
    """A dataclass field holding its ``Knob`` (named after the field in ``KNOBS``)."""
    return field(default=default, metadata={"knob": Knob("", default, help, kind, **rules)})


@dataclass(frozen=True, kw_only=True)
class RetrievalKnobs:
    """The retrieval knobs with their defaults; an invalid value raises InputError naming the knob.

    Keyword-only, so that a subclass (``Policy``) may put its own fields first.
    """

    top_k: int = _knob(40, "Candidates taken from the vector store.", int, minimum=1)
    top_n: int = _knob(10, "Results kept after reranking.", int, minimum=1)
    hnsw_ef: int | None = _knob(
        None, "Search-time ef; unset = the engine's default.", int, minimum=1, optional=True
    )
    rerank: bool = _knob(True, "Rerank the candidates when a reranker is configured.", bool)
    retrieval: str = _knob(
        "dense",
        "Candidates by embedding, by BM25 over the same chunks, or both fused.",
        str,
        choices=RETRIEVAL_MODES,
    )
    fusion: str = _knob("rrf", "How hybrid retrieval fuses its two lists.", str, choices=FUSIONS)
    rrf_k: int = _knob(DEFAULT_RRF_K, "RRF's k (Qdrant's convention: ranks counted from 0).", int, minimum=1)
    dense_weight: float = _knob(0.5, "Weighted fusion: the dense list's weight.", float, minimum=0, maximum=1)

    def __post_init__(self) -> None:
        problem = self.knob_problem()
        if problem:
            raise InputError(problem)

    def knob_problem(self) -> str | None:
        """The first knob out of range as "NAME must be EXPECTED, got VALUE"; None when all are fine."""
        return knob_problem({name: getattr(self, name) for name in KNOBS})

    def knobs(self) -> dict[str, Any]:
        """The knobs by name (not the fields a subclass adds)."""
        return {name: getattr(self, name) for name in KNOBS}

    def at_depth(self, k: int) -> Self:
        """The same knobs retrieving ``k`` results: ``top_n`` k, ``top_k`` raised to k when below it."""
        return dataclasses.replace(self, top_n=k, top_k=max(self.top_k, k))


KNOBS: dict[str, Knob] = {
    f.name: dataclasses.replace(f.metadata["knob"], name=f.name) for f in dataclasses.fields(RetrievalKnobs)
}


def knob_problem(values: Mapping[str, object]) -> str | None:
    """The first of ``values`` (knobs by name; others are ignored) that its knob refuses, as a sentence."""
    for name, knob in KNOBS.items():
        if name in values and (problem := knob.problem(values[name])):
            return problem
    return None


def check_fusion(retrieval: str, fusion: str, rrf_k: int, dense_weight: float) -> None:
    """InputError naming the first of these options out of range."""
    problem = knob_problem(
        {"retrieval": retrieval, "fusion": fusion, "rrf_k": rrf_k, "dense_weight": dense_weight}
    )
    if problem:
        raise InputError(problem)
