"""The CI regression gate: absolute thresholds on summary metrics, and a maximum drop against a baseline run.

``parse_gate("recall@10>=0.85,faithfulness>=0.8")`` reads the thresholds; ``check_gate`` compares a run's
summary means with them and, when a baseline is given, with the baseline's means: a metric fails when it
dropped by more than ``max_regression`` (every ragdeck metric is higher-is-better).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ragdeck.console.evaluation.metric_names import GATE_NAME_PATTERN, cutoff_text, is_answer_metric
from ragdeck.errors import InputError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_CONDITION = re.compile(
    rf"\s*(?P<metric>{GATE_NAME_PATTERN})\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+0-9.eE]+)\s*"
)


@dataclass(frozen=True)
class Condition:
    """One threshold, e.g. ``recall@10 >= 0.85``."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


@dataclass
class GateOutcome:
    """Whether the gate passed, every check made (metric, wanted, got, ok) and the failures as sentences."""

    passed: bool
    checks: list[dict[str, object]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def parse_gate(text: str) -> list[Condition]:
    """Conditions from ``metric OP number`` items separated by commas; InputError naming a bad item."""
    conditions = []
    for item in (part for part in text.split(",") if part.strip()):
        match = _CONDITION.fullmatch(item)
        try:
            value = float(match.group("value")) if match else None
        except ValueError:
            value = None
        if match is None or value is None:
            raise InputError(
                f"gate item {item.strip()!r} is not 'metric OP number' (OP one of {', '.join(OPERATORS)}), "
                'e.g. --gate "recall@10>=0.85,faithfulness>=0.8"'
            )
        conditions.append(Condition(match.group("metric"), match.group("op"), value))
    if not conditions:
        raise InputError('the gate is empty: give conditions like "recall@10>=0.85"')
    return conditions


def _missing(metric: str, available: Sequence[str]) -> str:
    hint = ""
    if is_answer_metric(metric):
        hint = " (an answer metric: run with answers, and a judge for faithfulness / relevancy / recall)"
    elif (k := cutoff_text(metric)) is not None:
        hint = f" (is k={k} among the run's --k cut-offs?)"
    shown = ", ".join(sorted(available)[:12])
    return f"{metric} was not computed by this run{hint}; it has: {shown}"


def check_gate(
    means: Mapping[str, float],
    conditions: Sequence[Condition] = (),
    *,
    baseline: Mapping[str, float] | None = None,
    max_regression: float | None = None,
    compared: Sequence[str] = (),
) -> GateOutcome:
    """Check ``means`` against the conditions, and against ``baseline`` for the metrics in ``compared``.

    A metric a condition names but the run lacks fails the gate (a gate that cannot be checked must not
    pass). Baseline metrics the run lacks are skipped with a note in ``checks``.
    """
    outcome = GateOutcome(passed=True)
    for condition in conditions:
        value = means.get(condition.metric)
        if value is None:
            outcome.failures.append(_missing(condition.metric, list(means)))
            outcome.checks.append({"check": str(condition), "value": None, "ok": False})
            continue
        ok = OPERATORS[condition.op](value, condition.threshold)
        outcome.checks.append({"check": str(condition), "value": value, "ok": ok})
        if not ok:
            outcome.failures.append(
                f"{condition.metric} = {value:.4f}, the gate wants {condition.op} {condition.threshold:g}"
            )
    if baseline is not None and max_regression is not None:
        for metric in compared:
            if metric not in baseline or metric not in means:
                outcome.checks.append({"check": f"{metric} vs baseline", "value": None, "ok": None})
                continue
            drop = baseline[metric] - means[metric]
            ok = drop <= max_regression + 1e-12
            outcome.checks.append(
                {
                    "check": f"{metric} drop <= {max_regression:g}",
                    "value": drop,
                    "ok": ok,
                    "baseline": baseline[metric],
                    "current": means[metric],
                }
            )
            if not ok:
                outcome.failures.append(
                    f"{metric} fell from {baseline[metric]:.4f} (baseline) to {means[metric]:.4f}: a drop of "
                    f"{drop:.4f}, more than the allowed {max_regression:g}"
                )
    outcome.passed = not outcome.failures
    return outcome
