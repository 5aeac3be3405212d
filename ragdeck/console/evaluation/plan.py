"""What an eval run evaluates: a policy, the cut-offs k, whether answers are generated and judged, how many
queries run at once, and what to do with gold the collection lacks (``missing``); stored with the run, so a
resumed run evaluates the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragdeck.console.evaluation.metric_names import DEFAULT_KS, document_name, metric_names
from ragdeck.console.evaluation.missing import DEFAULT_MISSING_GOLD, check_choice
from ragdeck.console.retrieval.policies import Policy
from ragdeck.errors import InputError


@dataclass(frozen=True)
class EvalPlan:
    """What a run evaluates: a policy, the cut-offs k, whether to generate and judge answers, and
    ``missing_gold`` (fail, skip or keep: see ``missing``)."""

    policy: Policy
    ks: tuple[int, ...] = DEFAULT_KS
    answers: bool = False
    concurrency: int = 4
    missing_gold: str = DEFAULT_MISSING_GOLD

    def __post_init__(self) -> None:
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks):
            raise InputError(f"every k must be an integer >= 1, got {list(self.ks)}")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {self.concurrency}")
        check_choice(self.missing_gold)

    @property
    def depth(self) -> int:
        """Chunks retrieved at least: enough for the largest chunk cut-off and for the policy's answer
        contexts (document cut-offs may need more: ``depth.retrieve_to_depth``)."""
        return max(max(self.ks), self.policy.top_n)

    def retrieval_metric_names(self) -> list[str]:
        """Retrieval metric names at every k: the gold's level, then document level (``doc_`` prefix)."""
        names = metric_names(sorted(set(self.ks)))
        return names + [document_name(n) for n in names]

    def to_json(self) -> dict[str, Any]:
        """The plan as stored with the run (and read back by ``from_json`` to resume it)."""
        return {
            "policy": self.policy.as_dict(),
            "ks": list(self.ks),
            "answers": self.answers,
            "concurrency": self.concurrency,
            "missing_gold": self.missing_gold,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalPlan:
        """The inverse of ``to_json``."""
        policy = dict(data["policy"])
        return cls(
            policy=Policy(**policy),
            ks=tuple(data["ks"]),
            answers=bool(data["answers"]),
            concurrency=int(data["concurrency"]),
            missing_gold=str(data.get("missing_gold", DEFAULT_MISSING_GOLD)),  # runs before it: fail
        )
