"""The Canary panel's domain: quantiles as PromQL computes them, per-policy figures from the RAG API's
/metrics and from Prometheus, and the canary controls against the real RAG API (operator role, audit log)."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from servers import require_binary

from ragdeck.api.metrics import SLOW_BUCKETS, ApiMetrics
from ragdeck.console import audit
from ragdeck.console.online.panel import (
    ScrapeHistory,
    active_rollback,
    event_rows,
    figures_from_prometheus,
    figures_from_samples,
    histogram_quantile,
    promote_canary,
    promql_queries,
    roll_back_canary,
    set_canary_weight,
    set_guard_thresholds,
)
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log
from ragdeck.errors import ConfigError, InputError, PermissionDenied, ServiceUnavailable
from ragdeck.services.rag_api_admin import RagApiAdmin
from ragdeck.services.types import MetricSample

INF = math.inf


# ---------------------------------------------------------------------- histogram_quantile


def test_histogram_quantile_worked_examples() -> None:
    buckets = [(0.1, 10), (0.5, 30), (1.0, 40), (INF, 40)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.3)  # rank 20: 0.1 + 0.4 * 10/20
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.9)  # rank 38: 0.5 + 0.5 * 8/10
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.04)  # first bucket starts at 0
    assert histogram_quantile(0.5, [(0.1, 1), (INF, 10)]) == 0.1  # rank in +Inf: highest finite bound
    assert histogram_quantile(0.5, [(0.1, 0), (INF, 0)]) is None  # no observations
    assert histogram_quantile(0.5, [(0.1, 3), (1.0, 5)]) is None  # no +Inf bucket
    assert histogram_quantile(0.5, list(reversed(buckets))) == pytest.approx(0.3)  # order does not matter
    with pytest.raises(InputError, match="quantile"):
        histogram_quantile(1.5, buckets)


def _promtool_case(name: str, q: float, buckets: list[tuple[float, float]], expected: float) -> str:
    series = "\n".join(
        f"      - series: '{name}_bucket{{le=\"{'+Inf' if math.isinf(le) else repr(le)}\"}}'\n"
        f"        values: '{count!r}'"
        for le, count in buckets
    )
    return (
        f"  - interval: 1m\n    input_series:\n{series}\n    promql_expr_test:\n"
        f"      - expr: histogram_quantile({q!r}, {name}_bucket)\n        eval_time: 0m\n"
        f"        exp_samples:\n          - labels: '{{}}'\n            value: {expected!r}\n"
    )


def test_histogram_quantile_equals_prometheus_on_random_histograms(tmp_path: Path) -> None:
    """promtool evaluates PromQL's own histogram_quantile and fails unless each value equals ours."""
    promtool = require_binary("promtool", "/usr/bin/promtool")
    rng = np.random.default_rng(7)
    cases = []
    for i in range(25):
        bounds = sorted(set(rng.choice(SLOW_BUCKETS, size=int(rng.integers(2, 8)), replace=False).tolist()))
        counts = np.cumsum(rng.integers(0, 30, size=len(bounds) + 1)).astype(float).tolist()
        if counts[-1] == 0:
            counts[-1] = 1.0
        buckets = [*zip(bounds, counts[:-1], strict=True), (INF, counts[-1])]
        q = float(rng.choice([0.5, 0.9, 0.95, 0.99, float(rng.uniform(0.01, 0.99))]))
        expected = histogram_quantile(q, buckets)
        assert expected is not None
        cases.append(_promtool_case(f"h{i}", q, buckets, expected))
    (tmp_path / "empty.yml").write_text("groups: []\n")
    (tmp_path / "quantiles.yml").write_text(
        "rule_files: [empty.yml]\nevaluation_interval: 1m\ntests:\n" + "".join(cases)
    )
    done = subprocess.run(
        [promtool, "test", "rules", "quantiles.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------- figures from /metrics


def scrape(metrics: ApiMetrics) -> list[MetricSample]:
    """The samples of one API registry, parsed as RagApiAdmin.metrics parses /metrics."""
    text = generate_latest(metrics.registry).decode()
    return [
        MetricSample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def test_figures_from_two_scrapes_count_only_what_happened_between() -> None:
    metrics = ApiMetrics()
    metrics.prime(["A", "B"])
    for _ in range(50):  # before the first scrape: must not count
        metrics.request.labels("A").observe(5.0)
        metrics.requests.labels("A", "ok").inc()
    first = scrape(metrics)
    for seconds in [0.2] * 18 + [1.2] * 2:
        metrics.request.labels("A").observe(seconds)
        metrics.requests.labels("A", "ok").inc()
    for i in range(10):
        metrics.request.labels("B").observe(0.4)
        metrics.requests.labels("B", "ok" if i < 8 else "error").inc()
    for _ in range(3):
        metrics.no_answer.labels("A").inc()
    metrics.feedback.labels("B", "up").inc(3)
    metrics.feedback.labels("B", "down").inc(1)
    metrics.requests.labels("invalid", "rejected").inc()
    figures = figures_from_samples(scrape(metrics), first, elapsed_s=10.0, weights={"A": 0.8, "B": 0.2})
    a, b = figures.policies
    assert [a.policy, b.policy] == ["A", "B"] and figures.source == "api"
    assert a.served == 20 and a.throughput_rps == 2.0 and a.error_rate == 0.0
    assert a.no_answer_rate == pytest.approx(3 / 20)
    # 18 in (0.1, 0.25], 2 in (1.0, 1.5]: P50 rank 10 -> 0.1 + 0.15 * 10/18; P95 rank 19 -> 1.0 + 0.5 * 1/2
    assert a.p50_ms == pytest.approx((0.1 + 0.15 * 10 / 18) * 1000)
    assert a.p95_ms == pytest.approx(1250.0)
    assert b.served == 10 and b.error_rate == pytest.approx(0.2) and b.weight == 0.2
    assert b.thumbs_up_rate == pytest.approx(0.75) and a.thumbs_up_rate is None
    assert "10 s" in figures.window


def test_figures_since_start_use_the_counters_age_and_a_restart_counts_from_zero() -> None:
    metrics = ApiMetrics()
    metrics.prime(["A", "B"])
    for _ in range(4):
        metrics.request.labels("A").observe(0.3)
        metrics.requests.labels("A", "ok").inc()
    samples = scrape(metrics)
    created = min(s.value for s in samples if s.name == "rag_requests_created")
    figures = figures_from_samples(samples, now=created + 8.0)
    a = figures.policies[0]
    assert a.served == 4 and a.throughput_rps == pytest.approx(0.5) and "started" in figures.window
    assert figures.policies[1].served == 0 and figures.policies[1].p95_ms is None
    restarted = ApiMetrics()  # a new process: counters below the previous scrape count from zero
    restarted.request.labels("A").observe(0.3)
    restarted.requests.labels("A", "ok").inc()
    after = figures_from_samples(scrape(restarted), samples, elapsed_s=5.0)
    assert after.policies[0].served == 1


def test_scrape_history_takes_the_oldest_scrape_inside_the_window() -> None:
    metrics = ApiMetrics()
    metrics.prime(["A"])
    history = ScrapeHistory()
    for t in range(0, 700, 100):  # scrapes at 0, 100, ..., 600 s; one request before each
        metrics.request.labels("A").observe(0.1)
        metrics.requests.labels("A", "ok").inc()
        history.add(scrape(metrics), at=1000.0 + t)
    figures = history.figures(300.0)
    assert figures.policies[0].served == 3 and "300 s" in figures.window  # against the scrape at 300 s
    with pytest.raises(InputError, match="no scrape"):
        ScrapeHistory().figures(60)


class FixedPromQL:
    """Answers the panel's PromQL from a table (what Prometheus would return), recording each query."""

    def __init__(self, answers: dict[str, dict[tuple[str, ...], float]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def by_labels(self, promql: str, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        self.asked.append(promql)
        return self.answers.get(promql, {})


def test_figures_from_prometheus_combine_the_queries() -> None:
    q = promql_queries(300)
    source = FixedPromQL(
        {
            q["served"]: {("A",): 600.0, ("B",): 60.0},
            q["ok"]: {("A",): 594.0, ("B",): 54.0},
            q["errors"]: {("A",): 6.0, ("B",): 6.0},
            q["p50"]: {("A",): 0.2, ("B",): 0.3},
            q["p95"]: {("A",): 0.9, ("B",): 2.7},
            q["no_answer"]: {("A",): 59.4},
            q["feedback"]: {("B", "up"): 2.0, ("B", "down"): 6.0},
            q["weight"]: {("A",): 0.9, ("B",): 0.1},
        }
    )
    figures = figures_from_prometheus(source, 300)
    a, b = figures.policies
    assert (
        a.throughput_rps == 2.0
        and a.error_rate == 0.01
        and a.no_answer_rate == pytest.approx(0.1)
        and a.weight == 0.9
    )
    assert b.p95_ms == 2700.0 and b.error_rate == 0.1 and b.thumbs_up_rate == 0.25
    assert figures.source == "prometheus" and "5 min" in figures.window
    assert all("[300s]" in promql for promql in source.asked if "rag_policy_weight" not in promql)


def test_events_render_and_the_active_rollback_is_the_newest_weight_change() -> None:
    trip = {"ts": 1.0e9, "kind": "guard_trip", "policy": "B", "actor": "guard", "reason": "P95 > 2500 ms",
            "previous_weight": 0.2, "p95_ms": 3000.0, "error_rate": 0.0, "samples": 120}  # fmt: skip
    raised = {
        "ts": 1.0e9 + 60,
        "kind": "weight",
        "policy": "B",
        "actor": "admin",
        "weight": 0.1,
        "previous": 0.0,
    }
    assert active_rollback([trip], "B") == trip
    assert active_rollback([raised, trip], "B") is None
    rows = event_rows([trip])
    assert rows[0]["event"] == "guard rollback" and "20% → 0 %" in rows[0]["change"]
    assert "P95 3000 ms" in rows[0]["change"] and rows[0]["time (UTC)"].startswith("2001-09-09")


# ---------------------------------------------------------------------- against the real RAG API


TOKEN = "canary-test-token"


@pytest.fixture
def api(demo_data_dir: Path, local_embedder):
    """The real RAG API over the demo data, on loopback; yields (url, runtime)."""
    from servers import serve_asgi

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    runtime = build_runtime(Settings(admin_token=TOKEN), embedder=local_embedder)
    try:
        with serve_asgi(create_app(runtime), "rag-api") as url:
            yield url, runtime
    finally:
        runtime.close()


OPERATOR = User("olga", Role.OPERATOR, "test")
ENGINEER = User("erik", Role.ENGINEER, "test")


def test_operator_moves_the_canary_and_every_change_is_audited(api) -> None:
    url, runtime = api
    admin, audit_log = RagApiAdmin(url, TOKEN), build_audit_log(Settings())
    try:
        summary = set_canary_weight(admin, OPERATOR, 0.3, "try B on 30 %", log=audit_log)
        assert summary["weights"] == {"A": pytest.approx(0.7), "B": 0.3}
        users = [f"u{i}" for i in range(30)]
        from ragdeck.console.online.routing import stable_bucket

        assert [admin.assign(u) for u in users] == ["B" if stable_bucket(u) < 0.3 else "A" for u in users]
        assert promote_canary(admin, OPERATOR, "B wins", log=audit_log)["weights"]["B"] == 1.0
        assert roll_back_canary(admin, OPERATOR, log=audit_log)["weights"]["B"] == 0.0
        set_guard_thresholds(admin, OPERATOR, {"p95_ms": 800, "min_samples": 20}, "tighter", log=audit_log)
        assert admin.routing()["thresholds"]["p95_ms"] == 800.0
        log = audit.entries(actor="olga", log=build_audit_log(Settings()))
        assert [e.action for e in log] == [
            "canary.thresholds",
            "canary.rollback",
            "canary.promote",
            "canary.weight",
        ]
        assert log[3].before == 0.0 and log[3].after == 0.3 and log[3].reason == "try B on 30 %"
        assert log[1].before == 1.0 and log[1].after == 0.0
        assert log[0].before == {"p95_ms": 2500.0, "min_samples": 100.0}
        assert runtime.routing_state.events(1)[0]["kind"] == "thresholds"
        # the API's own events and audit rows name who acted through the console, not just the token
        assert {e["actor"] for e in runtime.routing_state.events(10)} == {"olga via api-admin"}
        weight_change = runtime.routing_state.events(10)[-1]
        assert weight_change["reason"] == "try B on 30 %"
        api_rows = audit.entries(action="api.routing.weight", log=build_audit_log(Settings()))
        assert {e.actor for e in api_rows} == {"olga via api-admin"}
    finally:
        admin.close()


def test_without_the_operator_role_nothing_moves_and_the_attempt_is_audited(api) -> None:
    url, _ = api
    admin = RagApiAdmin(url, TOKEN)
    try:
        with pytest.raises(PermissionDenied, match="operator"):
            promote_canary(admin, ENGINEER, "sneaky", log=build_audit_log(Settings()))
        assert admin.routing()["weights"]["B"] == 0.0
        denied = audit.entries(actor="erik", log=build_audit_log(Settings()))
        assert denied[0].action == "canary.promote" and denied[0].outcome == "denied"
    finally:
        admin.close()


def test_the_api_says_what_to_fix(api, tmp_path: Path) -> None:
    url, _ = api
    with pytest.raises(ConfigError, match="RAGDECK_ADMIN_TOKEN"):
        RagApiAdmin(url, None).routing()
    with pytest.raises(ConfigError, match="refused the admin token"):
        RagApiAdmin(url, "wrong").routing()
    with pytest.raises(InputError, match="weight"):
        RagApiAdmin(url, TOKEN).set_weight("B", 7.0)
    from servers import free_port

    with pytest.raises(ServiceUnavailable, match="ragdeck api serve"):
        RagApiAdmin(f"http://127.0.0.1:{free_port()}", TOKEN, timeout_s=1).routing()
    with pytest.raises(ConfigError, match="RAGDECK_API_URL"):
        RagApiAdmin("127.0.0.1:8000", TOKEN)
    assert not RagApiAdmin(url, "wrong").health().ok and RagApiAdmin(url, TOKEN).health().ok


def test_figures_from_the_live_api_match_its_requests(api) -> None:
    import httpx

    url, _ = api
    admin = RagApiAdmin(url, TOKEN)
    history = ScrapeHistory()
    history.add(admin.metrics())
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(6):
            assert (
                client.post("/query", json={"question": f"What is a scrape interval? {i}"}).status_code == 200
            )
        assert client.post("/query", json={"question": "  "}).status_code == 422
    time.sleep(0.01)
    history.add(admin.metrics())
    figures = history.figures(3600, weights=admin.routing()["weights"])
    by_policy = {p.policy: p for p in figures.policies}
    assert set(by_policy) == {"A", "B"}
    assert by_policy["A"].served == 6 and by_policy["A"].error_rate == 0.0 and by_policy["A"].weight == 1.0
    assert by_policy["A"].p95_ms is not None and by_policy["A"].p95_ms > 0
    assert by_policy["B"].served == 0 and by_policy["B"].p95_ms is None
    admin.close()


@pytest.mark.slow
def test_figures_from_debian_prometheus_scraping_the_api(api, tmp_path: Path) -> None:
    """Prometheus scrapes the live API; the panel's PromQL then counts what was sent to each policy."""
    import httpx
    from servers import prometheus_server

    from ragdeck.services.prometheus import PrometheusReader

    url, _ = api
    admin = RagApiAdmin(url, TOKEN)
    admin.set_weight("B", 0.5)
    users = [f"prom-user-{i}" for i in range(16)]
    from ragdeck.console.online.routing import stable_bucket

    sent = {"A": 0, "B": 0}
    with prometheus_server(tmp_path / "prom", [url.removeprefix("http://")], scrape_interval_s=1) as prom_url:
        reader = PrometheusReader(prom_url)
        deadline = time.monotonic() + 30
        while not reader.by_labels("sum by (policy) (rag_requests_total)", ("policy",)):
            assert time.monotonic() < deadline, "Prometheus never scraped the API"  # increase() needs a
            time.sleep(0.2)  # sample from before the requests, or it sees no change
        with httpx.Client(base_url=url, timeout=60) as client:
            for i, user in enumerate(users):
                body = client.post("/query", json={"question": f"What is an exporter? {i}", "user_id": user})
                assert body.status_code == 200
                sent[body.json()["policy"]] += 1
        assert sent == {p: sum((stable_bucket(u) < 0.5) == (p == "B") for u in users) for p in ("A", "B")}
        deadline = time.monotonic() + 30
        raw = 'sum(rag_requests_total{status="ok"})'  # the counters themselves: increase() extrapolates
        while (reader.by_labels(raw, ()).get((), 0.0) < len(users)) and time.monotonic() < deadline:
            time.sleep(0.3)  # until a scrape has seen every request
        figures = figures_from_prometheus(reader, 120)
        reader.close()
    admin.close()
    by_policy = {p.policy: p for p in figures.policies}
    assert set(by_policy) == {"A", "B"} and figures.source == "prometheus"
    # increase() extrapolates the samples it has to the window's edges, so the counts exceed what was sent
    # (by as much as 40 % here, with a few seconds of samples); both policies' series were created together
    # and are scraped together, so they are scaled alike and their ratio is the ratio sent
    served = {p: by_policy[p].served for p in sent}
    assert sum(sent.values()) - 0.5 <= sum(served.values()) <= 2 * sum(sent.values())
    assert served["A"] / served["B"] == pytest.approx(sent["A"] / sent["B"], rel=0.02)
    for policy in sent:
        assert by_policy[policy].error_rate == 0.0 and by_policy[policy].weight == 0.5
        assert by_policy[policy].p95_ms is not None and 0 < by_policy[policy].p95_ms < 60_000
