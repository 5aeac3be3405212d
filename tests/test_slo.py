"""SLO math against the Google SRE workbook's worked examples (ch. 5, "Alerting on SLOs")."""

from __future__ import annotations

import pytest

from ragdeck.console.settings import Settings
from ragdeck.console.slo.objectives import (
    ALERT_RULES,
    SloStatus,
    SloTargets,
    alert_states,
    budget_remaining,
    budget_spent,
    burn_rate,
    hours_to_exhaustion,
    latest_quality_run,
    quality_status,
    ratio_status,
)
from ragdeck.errors import InputError
from ragdeck.services.types import RunRow


def test_burn_rate_is_the_bad_ratio_over_the_budget() -> None:
    # 99.9 % SLO: budget 0.001. 0.1 % errors burn at exactly 1; 1 % at 10; all requests failing at 1000.
    assert burn_rate(0.001, 0.001) == pytest.approx(1.0)
    assert burn_rate(0.01, 0.001) == pytest.approx(10.0)
    assert burn_rate(None, 0.001) is None
    with pytest.raises(InputError):
        burn_rate(0.1, 0.0)


@pytest.mark.parametrize(
    ("rate", "hours", "spent"),
    [(14.4, 1, 0.02), (6, 6, 0.05), (3, 24, 0.10), (1, 72, 0.10)],  # the workbook's table of alert windows
)
def test_the_workbooks_alert_windows_spend_its_stated_budget_shares(
    rate: float, hours: float, spent: float
) -> None:
    assert budget_spent(rate, hours, period_days=30) == pytest.approx(spent)


def test_time_to_exhaust_a_30_day_budget() -> None:
    assert hours_to_exhaustion(1.0) == pytest.approx(720)  # burn rate 1: the whole period
    assert hours_to_exhaustion(2.0) == pytest.approx(360)  # burn rate 2: 15 days
    assert hours_to_exhaustion(1000.0) * 60 == pytest.approx(43.2)  # 100 % errors at 99.9 %: 43 minutes
    assert hours_to_exhaustion(0.0) is None and hours_to_exhaustion(2.0, remaining=0.5) == pytest.approx(180)


def test_budget_remaining() -> None:
    assert budget_remaining(0.0005, 0.001) == pytest.approx(0.5)
    assert budget_remaining(0.002, 0.001) == pytest.approx(-1.0)  # overspent
    assert budget_remaining(None, 0.001) is None


def test_multi_window_alerts_need_both_windows_above_the_factor() -> None:
    assert [(r.severity, r.factor, r.long, r.short) for r in ALERT_RULES] == [
        ("page", 14.4, "1h", "5m"), ("page", 6.0, "6h", "30m"),
        ("ticket", 3.0, "1d", "2h"), ("ticket", 1.0, "3d", "6h"),
    ]  # fmt: skip
    assert alert_states({"1h": 15, "5m": 15}) == {"page": True, "ticket": False}
    assert alert_states({"1h": 15, "5m": 5}) == {
        "page": False,
        "ticket": False,
    }  # recovered: the short window
    assert alert_states({"6h": 7, "30m": 7}) == {"page": True, "ticket": False}
    assert alert_states({"1d": 3.5, "2h": 4, "3d": 0.5, "6h": 0.5}) == {"page": False, "ticket": True}
    assert alert_states({"3d": 1.2, "6h": 1.1}) == {"page": False, "ticket": True}
    assert alert_states({"1h": 20, "5m": None}) == {"page": False, "ticket": False}  # no data never fires


def test_states_green_amber_red_unknown() -> None:
    def availability(ratio: float, period: float) -> SloStatus:
        windows = dict.fromkeys(("5m", "30m", "1h", "2h", "6h", "1d", "3d"), ratio)
        return ratio_status("availability", "", value=1 - period, target=0.999, unit="",
                            higher_is_better=True, budget=0.001, bad_ratios=windows,
                            period_bad_ratio=period)  # fmt: skip

    assert availability(0.0, 0.0001).state == "green"
    assert availability(0.0, 0.0008).state == "amber"  # met, but only 20 % of the budget left
    assert availability(0.002, 0.0005).state == "amber"  # 2x over 1d and 2h: a ticket
    assert availability(0.02, 0.0005).state == "red"  # 20x: a page
    assert availability(0.0, 0.0015).state == "red"  # the period's target missed, budget overspent
    assert SloStatus("x", "", None, 1.0, "", True).state == "unknown"
    slow = SloStatus("p95", "", 250.0, 200.0, "ms", False)
    assert slow.met is False and slow.state == "red"


def test_targets_from_settings_with_saved_overrides_and_validation() -> None:
    targets = SloTargets.from_settings(Settings(slo_retrieval_p95_ms=150), {"recall": 0.9, "unknown": 1})
    assert targets.retrieval_p95_ms == 150 and targets.recall == 0.9 and targets.availability == 0.999
    with pytest.raises(InputError, match="availability"):
        SloTargets(availability=1.0)


def run(run_id: str, collection: str, status: str = "done", **metrics: float) -> RunRow:
    summary = {"metrics": {m: {"mean": v} for m, v in metrics.items()}}
    return RunRow(run_id, 1.0, 1.0, status, "demo", "h", collection, 1, {}, summary)


def test_quality_reads_the_latest_finished_run_of_the_live_version() -> None:
    runs = [  # newest first
        run("r4", "kb_v2", status="running", faithfulness=0.1),
        run("r3", "kb_v1", faithfulness=0.7),
        run("r2", "kb_v2", recall_at=0.0),
        run("r1", "kb_v2", faithfulness=0.9),
    ]
    assert latest_quality_run(runs, "kb_v2", "faithfulness").run_id == "r1"
    status = quality_status("faithfulness", "faithfulness", 0.8, runs, "kb_v2")
    assert status.value == 0.9 and status.state == "green" and "r1" in status.note
    missing = quality_status("recall", "recall@10", 0.85, runs, "kb_v2")
    assert missing.state == "unknown" and "Evaluate page" in missing.note


def test_the_pages_slis_equal_the_recorded_slis_the_alerts_use(tmp_path) -> None:
    """promtool evaluates the page's PromQL next to the recording rules on the same series: equal values."""
    import subprocess
    from pathlib import Path

    from servers import require_binary

    from ragdeck.console.slo.live import RETRIEVAL, availability_promql, slow_promql

    promtool = require_binary("promtool", "/usr/bin/promtool")
    rules = Path(__file__).resolve().parent.parent / "monitoring" / "rules" / "ragdeck_recording.yml"
    checks = []
    for window in ("5m", "1h", "6h"):
        pairs = (
            (availability_promql(window), f"job:rag_availability_errors:ratio_rate{window}", 1000),
            (
                slow_promql(RETRIEVAL, "0.2", window),
                f"job:rag_retrieval_rerank_slow:ratio_rate{window}",
                50000,
            ),
        )
        for mine, recorded, ppm in pairs:
            checks.append(
                f"      - expr: 'abs(({mine}) - sum({recorded})) < bool 1e-12'\n        eval_time: 400m\n"
                f"        exp_samples:\n          - labels: '{{}}'\n            value: 1\n"
                f"      - expr: 'round(1e6 * ({mine}))'\n        eval_time: 400m\n"
                f"        exp_samples:\n          - labels: '{{}}'\n            value: {ppm}\n"
            )
    series = {
        'rag_requests_total{job="rag-api",policy="A",status="ok"}': "0+999x420",
        'rag_requests_total{job="rag-api",policy="A",status="error"}': "0+1x420",
        'rag_requests_total{job="rag-api",policy="A",status="rejected"}': "0+500x420",
        'rag_retrieval_rerank_seconds_bucket{job="rag-api",policy="A",le="0.2"}': "0+95x420",
        'rag_retrieval_rerank_seconds_bucket{job="rag-api",policy="A",le="+Inf"}': "0+100x420",
        'rag_retrieval_rerank_seconds_count{job="rag-api",policy="A"}': "0+100x420",
    }
    inputs = "".join(f"      - series: '{k}'\n        values: '{v}'\n" for k, v in series.items())
    (tmp_path / "slis_test.yml").write_text(
        f"rule_files:\n  - {rules}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
        f"{inputs}    promql_expr_test:\n{''.join(checks)}"
    )
    done = subprocess.run(
        [promtool, "test", "rules", "slis_test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_latency_slis_read_the_bucket_at_or_above_the_target() -> None:
    from ragdeck.console.slo.live import bucket_at_or_above

    bounds = [0.1, 0.15, 0.2, 0.3, float("inf")]
    assert bucket_at_or_above(0.2, bounds) == 0.2
    assert bucket_at_or_above(0.25, bounds) == 0.3
    assert bucket_at_or_above(0.01, bounds) == 0.1
    assert bucket_at_or_above(0.5, bounds) is None


def test_burn_rate_windows_longer_than_the_data_are_named() -> None:
    from ragdeck.console.slo.live import thin_windows

    assert thin_windows(None) == []  # no data at all: the page says "no data" instead
    assert thin_windows(120) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert thin_windows(400) == ["30m", "1h", "2h", "6h", "1d", "3d"]
    assert thin_windows(2 * 86400) == ["3d"]
    assert thin_windows(3 * 86400) == []
