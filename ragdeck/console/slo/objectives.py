"""Service level objectives: their definitions, error budgets, burn rates and multi-window alert states.

Follows the Google SRE workbook, ch. 5 ("Alerting on SLOs"), as ``monitoring/rules/ragdeck_alerts.yml`` does:

- an SLI is a ratio of bad events (failed requests; requests slower than the latency target) to all events;
  the error budget is the share the objective allows to be bad: 1 - 0.999 = 0.001 for availability, 0.05 for
  "P95 <= target" (5 % may be slower);
- burn rate = bad ratio over a window / budget: 1 spends the budget exactly over the SLO period, 14.4 for an
  hour spends 14.4 h / 720 h = 2 % of a 30-day budget;
- budget remaining over the period = 1 - bad ratio over the period / budget (negative: overspent);
- alerts fire when both windows of a pair exceed a factor: page at 14.4x over 1h and 5m or 6x over 6h and
  30m; ticket at 3x over 1d and 2h or 1x over 3d and 6h.

Quality objectives (faithfulness, recall@k) are means of the latest eval run of the live index version and
have no budget or burn rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ragdeck.console import audit
from ragdeck.console.roles import User, require
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.files import write_json_atomic
from ragdeck.services.inputs import parse_json
from ragdeck.services.types import RunRow

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
WINDOW_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}


@dataclass(frozen=True)
class AlertRule:
    """One multi-window burn-rate condition: both ``long`` and ``short`` windows above ``factor``."""

    severity: str
    factor: float
    long: str
    short: str


ALERT_RULES = (
    AlertRule("page", 14.4, "1h", "5m"),
    AlertRule("page", 6.0, "6h", "30m"),
    AlertRule("ticket", 3.0, "1d", "2h"),
    AlertRule("ticket", 1.0, "3d", "6h"),
)


@dataclass(frozen=True)
class SloTargets:
    """The objectives, editable on the SLO page (defaults from settings ``slo_*``)."""

    availability: float = 0.999
    retrieval_p95_ms: float = 200.0
    generation_p95_s: float = 2.5
    error_rate: float = 0.001
    faithfulness: float = 0.8
    recall: float = 0.85
    recall_metric: str = "recall@10"
    period_days: float = 30.0

    def __post_init__(self) -> None:
        ok = {
            "availability": 0.0 < self.availability < 1.0,
            "retrieval_p95_ms": self.retrieval_p95_ms > 0,
            "generation_p95_s": self.generation_p95_s > 0,
            "error_rate": 0.0 < self.error_rate < 1.0,
            "faithfulness": 0.0 <= self.faithfulness <= 1.0,
            "recall": 0.0 <= self.recall <= 1.0,
            "period_days": self.period_days > 0,
        }
        for name, good in ok.items():
            if not good or not math.isfinite(float(getattr(self, name))):
                raise InputError(
                    f"SLO {name}={getattr(self, name)!r} is invalid: availability and error_rate strictly "
                    "between 0 and 1, faithfulness and recall in [0, 1], latencies and period_days > 0"
                )
        if not self.recall_metric.strip():
            raise InputError("SLO recall_metric must name an eval metric such as recall@10")

    @classmethod
    def from_settings(cls, settings: Settings, overrides: Mapping[str, Any] | None = None) -> SloTargets:
        """The settings' targets, with ``overrides`` (saved from the page) on top; unknown keys ignored."""
        base = cls(
            availability=settings.slo_availability,
            retrieval_p95_ms=settings.slo_retrieval_p95_ms,
            generation_p95_s=settings.slo_generation_p95_s,
            error_rate=settings.slo_error_rate,
            faithfulness=settings.slo_faithfulness,
            recall=settings.slo_recall,
            recall_metric=settings.slo_recall_metric,
            period_days=settings.slo_period_days,
        )
        known = {f.name for f in fields(cls)}
        return replace(base, **{k: v for k, v in (overrides or {}).items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        """The targets by name (what the page saves)."""
        return asdict(self)


def burn_rate(bad_ratio: float | None, budget: float) -> float | None:
    """Bad ratio over a window divided by the error budget; None without data."""
    if bad_ratio is None or not math.isfinite(bad_ratio):
        return None
    if budget <= 0:
        raise InputError(f"an error budget must be positive, got {budget!r}")
    return bad_ratio / budget


def budget_remaining(bad_ratio_over_period: float | None, budget: float) -> float | None:
    """Share of the period's error budget left: 1 - bad ratio / budget (below 0: overspent)."""
    rate = burn_rate(bad_ratio_over_period, budget)
    return None if rate is None else 1.0 - rate


def budget_spent(rate: float, hours: float, period_days: float = 30.0) -> float:
    """Share of a period's budget that burning at ``rate`` for ``hours`` spends: rate * hours / period."""
    return rate * hours / (period_days * 24.0)


def hours_to_exhaustion(
    rate: float | None, remaining: float = 1.0, period_days: float = 30.0
) -> float | None:
    """Hours until the ``remaining`` budget is gone at burn rate ``rate``; None when not burning."""
    if rate is None or rate <= 0:
        return None
    return max(0.0, remaining) * period_days * 24.0 / rate


def alert_states(rates: Mapping[str, float | None]) -> dict[str, bool]:
    """Whether each severity's alert fires given burn rates by window ("5m" ... "3d"); a missing window
    never fires (as in PromQL, where ``and`` with an empty side is empty)."""
    states = {"page": False, "ticket": False}
    for rule in ALERT_RULES:
        long, short = rates.get(rule.long), rates.get(rule.short)
        if long is not None and short is not None and long > rule.factor and short > rule.factor:
            states[rule.severity] = True
    return states


@dataclass(frozen=True)
class SloStatus:
    """One objective now: its value against the target, and for ratio SLOs budget, burn rates and alerts.

    ``state`` is "green" (met, no alert), "amber" (met but a ticket fires or under a quarter of the budget
    is left), "red" (missed, a page fires, or the budget is spent) or "unknown" (no data).
    """

    name: str
    description: str
    value: float | None
    target: float
    unit: str
    higher_is_better: bool
    budget: float | None = None
    budget_remaining: float | None = None
    burn_rates: Mapping[str, float | None] | None = None
    alerts: Mapping[str, bool] | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the value meets the target (None without a value)."""
        if self.value is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def state(self) -> str:
        """green / amber / red / unknown (see the class docstring)."""
        if self.met is None:
            return "unknown"
        alerts = self.alerts or {}
        if (
            not self.met
            or alerts.get("page")
            or (self.budget_remaining is not None and self.budget_remaining <= 0)
        ):
            return "red"
        if alerts.get("ticket") or (self.budget_remaining is not None and self.budget_remaining < 0.25):
            return "amber"
        return "green"


def ratio_status(
    name: str,
    description: str,
    *,
    value: float | None,
    target: float,
    unit: str,
    higher_is_better: bool,
    budget: float,
    bad_ratios: Mapping[str, float | None],
    period_bad_ratio: float | None,
    note: str = "",
) -> SloStatus:
    """An objective with an error budget: burn rates per window, alert states and budget remaining."""
    rates = {w: burn_rate(bad_ratios.get(w), budget) for w in WINDOWS}
    return SloStatus(
        name,
        description,
        value,
        target,
        unit,
        higher_is_better,
        budget=budget,
        budget_remaining=budget_remaining(period_bad_ratio, budget),
        burn_rates=rates,
        alerts=alert_states(rates),
        note=note,
    )


def latest_quality_run(runs: Sequence[RunRow], collection: str, metric: str) -> RunRow | None:
    """The newest finished eval run on physical ``collection`` whose summary has ``metric``."""
    for run in runs:  # newest first
        metrics = (run.summary or {}).get("metrics") or {}
        if run.collection == collection and run.status == "done" and metric in metrics:
            return run
    return None


def quality_status(
    name: str, metric: str, target: float, runs: Sequence[RunRow], collection: str
) -> SloStatus:
    """A quality objective from the latest eval run of ``collection`` (the live index version)."""
    run = latest_quality_run(runs, collection, metric)
    if run is None:
        return SloStatus(
            name,
            f"mean {metric} of the latest eval run on {collection} ≥ {target:g}",
            None,
            target,
            "",
            True,
            note=f"no finished eval run with {metric} on {collection}: run one on the Evaluate page",
        )
    value = float(run.summary["metrics"][metric]["mean"])  # type: ignore[index]
    return SloStatus(
        name,
        f"mean {metric} of the latest eval run on {collection} ≥ {target:g}",
        value,
        target,
        "",
        True,
        note=f"eval run {run.run_id} on {run.set_name}",
    )


def status_rows(statuses: Sequence[SloStatus]) -> list[dict[str, Any]]:
    """One display row per objective: state, value, target, budget left, burn rates, alerts."""
    rows = []
    for s in statuses:
        rates = s.burn_rates or {}
        rows.append(
            {
                "objective": s.name,
                "state": s.state,
                "value": None if s.value is None else round(s.value, 4),
                "target": s.target,
                "unit": s.unit,
                "budget left": None if s.budget_remaining is None else round(s.budget_remaining, 4),
                **{
                    f"burn {w}": None if rates.get(w) is None else round(rates[w], 2)
                    for w in ("1h", "6h", "3d")
                },
                "page": (s.alerts or {}).get("page"),
                "ticket": (s.alerts or {}).get("ticket"),
                "note": s.note,
            }
        )
    return rows


def overrides_file(settings: Settings) -> Path:
    """Where the SLO page keeps edited targets: ``slo_targets.json`` in the data directory."""
    return settings.data_dir / "slo_targets.json"


def load_overrides(path: Path) -> dict[str, Any]:
    """Targets saved from the page; {} when none were saved or the file is unreadable (then settings rule)."""
    try:
        data = parse_json(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_targets(user: User, path: Path, before: SloTargets, new: SloTargets, *, log: audit.AuditLog) -> None:
    """Save edited targets whole (fsynced, atomic: never half a file); engineer or above; audited."""
    require(user, "slo.targets", target="slo", log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, new.as_dict())
    audit.record(user, "slo.targets", "slo", before=before.as_dict(), after=new.as_dict(), log=log)
