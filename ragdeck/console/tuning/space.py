"""A study's search space: which retrieval knobs it tries, and the trials (knob settings) that follow.

A trial sets only the knobs that change its ranking, on top of the baseline policy: the retrieval mode
always; for hybrid its fusion and that fusion's parameter (RRF's k, the weighted fusion's dense weight;
DBSF has none) and the candidates per list (``top_k``); ``top_k`` for dense and lexical only when the
reranker reorders them; the search-time ``hnsw_ef`` for anything with a dense list; rerank on or off only
where a reranker is configured. So no two trials give the same ranking by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ragdeck.console.knobs import FUSIONS, KNOBS, RETRIEVAL_MODES
from ragdeck.errors import InputError

T = TypeVar("T")
Trial = dict[str, Any]  # knob -> value, applied on top of the baseline policy


@dataclass(frozen=True)
class SearchSpace:
    """The values a study tries for each knob (``efs``: None is the engine's default ef)."""

    modes: tuple[str, ...] = RETRIEVAL_MODES
    fusions: tuple[str, ...] = FUSIONS
    rrf_ks: tuple[int, ...] = (10, 60)
    dense_weights: tuple[float, ...] = (0.3, 0.5, 0.7)
    top_ks: tuple[int, ...] = (20, 40, 80)
    efs: tuple[int | None, ...] = (None,)
    rerank: tuple[bool, ...] = (False, True)

    def __post_init__(self) -> None:
        for name, values, knob in (
            ("modes", self.modes, "retrieval"),
            ("fusions", self.fusions, "fusion"),
            ("rrf_ks", self.rrf_ks, "rrf_k"),
            ("dense_weights", self.dense_weights, "dense_weight"),
            ("top_ks", self.top_ks, "top_k"),
            ("efs", self.efs, "hnsw_ef"),
            ("rerank", self.rerank, "rerank"),
        ):
            if not values:
                raise InputError(f"the search space's {name} is empty: give at least one value")
            for value in values:
                problem = KNOBS[knob].problem(value)
                if problem:
                    raise InputError(f"search space: {problem}")

    def trials(self, *, reranker: bool, top_n: int) -> list[Trial]:
        """Every meaningful combination, in a stable order (modes, then fusions, then the rest as given).
        ``reranker``: whether one is configured (else rerank is not varied); ``top_n``: the results a policy
        keeps, so candidate depths below it are left out."""
        reranks: Sequence[bool | None] = self.rerank if reranker else (None,)
        depths = [k for k in self.top_ks if k >= top_n] or [max(self.top_ks)]
        out: list[Trial] = []
        for mode in self.modes:
            for fusion_knobs in self._fusions() if mode == "hybrid" else [{}]:
                for rerank in reranks:
                    varies_depth = mode == "hybrid" or bool(rerank)
                    for top_k in depths if varies_depth else [None]:
                        for ef in self.efs if mode != "lexical" else [None]:
                            trial: Trial = {"retrieval": mode, **fusion_knobs}
                            if rerank is not None:
                                trial["rerank"] = rerank
                            if top_k is not None:
                                trial["top_k"] = top_k
                            if mode != "lexical":
                                trial["hnsw_ef"] = ef
                            out.append(trial)
        return out

    def _fusions(self) -> list[Trial]:
        out: list[Trial] = []
        for fusion in self.fusions:
            if fusion == "rrf":
                out += [{"fusion": "rrf", "rrf_k": k} for k in self.rrf_ks]
            elif fusion == "weighted":
                out += [{"fusion": "weighted", "dense_weight": w} for w in self.dense_weights]
            else:
                out.append({"fusion": fusion})
        return out

    def to_json(self) -> dict[str, Any]:
        """The space as a study's report records it."""
        return {name: list(values) for name, values in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSpace:
        """The inverse of ``to_json``."""
        return cls(**{name: tuple(values) for name, values in data.items()})


def trial_label(trial: Trial) -> str:
    """A short readable name: "hybrid rrf k=60 top_k=40", "dense ef=128 rerank"."""
    parts = [str(trial.get("retrieval", "?"))]
    fusion = trial.get("fusion")
    if fusion == "rrf":
        parts.append(f"rrf k={trial.get('rrf_k')}")
    elif fusion == "weighted":
        parts.append(f"weighted {trial.get('dense_weight'):g} dense")
    elif fusion:
        parts.append(str(fusion))
    if "top_k" in trial:
        parts.append(f"top_k={trial['top_k']}")
    if trial.get("hnsw_ef") is not None:
        parts.append(f"ef={trial['hnsw_ef']}")
    if trial.get("rerank"):
        parts.append("rerank")
    return " ".join(parts)


def parse_list(text: str, read: Callable[[str], T], what: str) -> tuple[T, ...]:
    """Comma-separated values (``"10,60"``), each read by ``read``; InputError naming ``what`` and the
    value that does not parse."""
    values = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        try:
            values.append(read(piece))
        except ValueError:
            raise InputError(f"{what}: cannot read {piece!r}; give comma-separated values") from None
    if not values:
        raise InputError(f"{what}: give at least one value")
    return tuple(dict.fromkeys(values))


def read_ef(text: str) -> int | None:
    """An ef value: an integer, or "default" (the engine's own)."""
    return None if text.lower() in {"default", "none"} else int(text)


def read_bool(text: str) -> bool:
    """on/off, true/false, yes/no, 1/0."""
    lowered = text.lower()
    if lowered in {"on", "true", "yes", "1"}:
        return True
    if lowered in {"off", "false", "no", "0"}:
        return False
    raise ValueError(text)
