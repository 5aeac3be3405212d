"""A study's record: its plan (``StudyPlan``), what it found (``Study``, also its JSON report and its saved
state), and how the test questions decide (``compare_on_test``, ``decide``)."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ragdeck.console.evaluation.stats import paired_bootstrap_ci, paired_permutation_test
from ragdeck.console.retrieval.policies import Policy
from ragdeck.console.tuning.space import SearchSpace
from ragdeck.console.tuning.split import Split

CONFIDENCE = 0.95


@dataclass(frozen=True)
class StudyPlan:
    """What a study tries and how it decides (recorded with it, so a resumed study is the same study)."""

    set_name: str
    set_hash: str
    collection: str
    baseline: Policy
    space: SearchSpace
    objective: str  # a stored metric name, e.g. doc_ndcg@10
    split: Split
    budget_p95_ms: float | None = None
    missing_gold: str = "skip"
    set_path: str | None = None  # the file it was read from, to resume from

    def to_json(self) -> dict[str, Any]:
        """The plan as the report records it."""
        return {
            "eval_set": {"name": self.set_name, "version": self.set_hash, "path": self.set_path},
            "collection": self.collection,
            "baseline": self.baseline.as_dict(),
            "space": self.space.to_json(),
            "objective": self.objective,
            "split": self.split.to_json(),
            "budget_p95_ms": self.budget_p95_ms,
            "missing_gold": self.missing_gold,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyPlan:
        """The inverse of ``to_json``."""
        split = data["split"]
        return cls(
            set_name=data["eval_set"]["name"],
            set_hash=data["eval_set"]["version"],
            collection=data["collection"],
            baseline=Policy(**data["baseline"]),
            space=SearchSpace.from_json(data["space"]),
            objective=data["objective"],
            split=Split(
                split["seed"], split["test_fraction"], tuple(split["tune_ids"]), tuple(split["test_ids"])
            ),
            budget_p95_ms=data.get("budget_p95_ms"),
            missing_gold=data.get("missing_gold", "skip"),
            set_path=data["eval_set"].get("path"),
        )


def new_study_id() -> str:
    """``study-YYYYmmdd-HHMMSS-xxxxxx`` (UTC)."""
    return time.strftime("study-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


@dataclass
class Study:
    """A study and everything it found: its plan, every trial, the choice, the test and the decision."""

    study_id: str
    plan: StudyPlan
    created_at: float = field(default_factory=time.time)
    status: str = "running"  # running, done, cancelled, failed
    trials: list[dict[str, Any]] = field(default_factory=list)
    chosen: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    decision: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The study as its JSON report (and its saved state)."""
        return {
            "study_id": self.study_id,
            "created_at": self.created_at,
            "status": self.status,
            **self.plan.to_json(),
            "trials": self.trials,
            "chosen": self.chosen,
            "chosen_knobs": self.chosen_knobs(),
            "baseline_scores": self.baseline,
            "test": self.test,
            "decision": self.decision,
            "timing": self.timing,
            "notes": self.notes,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Study:
        """A saved study (to resume it or show it)."""
        return cls(
            study_id=data["study_id"],
            plan=StudyPlan.from_json(data),
            created_at=data["created_at"],
            status=data["status"],
            trials=list(data.get("trials") or []),
            chosen=data.get("chosen"),
            baseline=data.get("baseline_scores"),
            test=data.get("test"),
            decision=data.get("decision"),
            timing=dict(data.get("timing") or {}),
            notes=list(data.get("notes") or []),
            error=data.get("error"),
        )

    def chosen_knobs(self) -> dict[str, Any] | None:
        """The chosen configuration as policy knobs (every retrieval knob, the baseline's where the trial
        left one alone), or None before a choice."""
        if self.chosen is None:
            return None
        return Policy.from_mapping(self.plan.baseline.name, self.chosen["params"], self.plan.baseline).knobs()


def mean_of(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN (NaN when none is)."""
    data = [v for v in values if not math.isnan(v)]
    return sum(data) / len(data) if data else math.nan


def compare_on_test(
    baseline: Sequence[float], chosen: Sequence[float], *, tune_gain: float, ids: Sequence[str]
) -> dict[str, Any]:
    """The chosen configuration against the baseline on the test questions: means, the paired difference
    (chosen − baseline) with its bootstrap interval and permutation p-value, the tune and test gains and
    the optimism (tune gain − test gain), and every question's pair."""
    diff, low, high = paired_bootstrap_ci(baseline, chosen, confidence=CONFIDENCE)
    p = paired_permutation_test(baseline, chosen)
    return {
        "questions": len(ids),
        "baseline_mean": mean_of(baseline),
        "chosen_mean": mean_of(chosen),
        "difference": diff,
        "ci_low": low,
        "ci_high": high,
        "confidence": CONFIDENCE,
        "p_value": p,
        "tune_gain": tune_gain,
        "test_gain": diff,
        "optimism": tune_gain - diff,
        "per_question": [
            {"id": i, "baseline": b, "chosen": c} for i, b, c in zip(ids, baseline, chosen, strict=True)
        ],
    }


def decide(test: dict[str, Any], *, same: bool, alpha: float = 0.05) -> str:
    """One line: what to do with the study's result, and why."""
    if same:
        return "keep the baseline: it is the best configuration on the tune questions"
    interval = f"[{test['ci_low']:+.4f}, {test['ci_high']:+.4f}]"
    gain = f"{test['difference']:+.4f} {interval}, p = {test['p_value']:.3g}"
    if test["ci_low"] > 0 and test["p_value"] < alpha:
        return f"try the chosen configuration as the canary: held-out gain {gain}"
    if test["ci_high"] < 0:
        return f"keep the baseline: the chosen configuration is worse on held-out questions ({gain})"
    return f"keep the baseline: the held-out gain is not significant ({gain})"
