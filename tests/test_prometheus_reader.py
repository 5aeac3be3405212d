"""PrometheusReader against Debian's real prometheus scraping a prometheus_client exporter with known data.

Known traffic, observed after Prometheus has scraped the zeroed series (so ``increase`` sees every request):
- policy B: 90 requests at 0.2 s (ok) and 10 at 3 s (error), plus 5 rejected. histogram_quantile puts
  the 95th of 100 in the (2.5, 5] bucket, half-way: 2.5 + (95 - 90) / 10 * 2.5 = 3.75 s.
- policy A: 100 requests at 0.05 s, all ok, no error series at all: P95 = 0.95 * 0.1 s = 95 ms.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from servers import free_port, prometheus_server

from ragdeck.console.online.guard import CanaryGuard, GuardThresholds
from ragdeck.errors import InputError, ServiceUnavailable
from ragdeck.services.prometheus import PrometheusReader, label_value, promql_window
from ragdeck.services.routing_state import SqliteRoutingState

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WINDOW = "1m"


@dataclass
class Stack:
    reader: PrometheusReader
    url: str


def wait_until(condition, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    registry = CollectorRegistry()
    seconds = Histogram(
        "rag_request_seconds", "RAG request latency", ["policy"], buckets=BUCKETS, registry=registry
    )
    requests = Counter("rag_requests", "RAG requests", ["policy", "status"], registry=registry)
    for policy in ("A", "B"):  # series exist at 0 before any traffic, as the API creates them at startup
        seconds.labels(policy)
        requests.labels(policy, "ok")
    requests.labels("B", "error")
    requests.labels("B", "rejected")
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with prometheus_server(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{port}"]) as url:
            reader = PrometheusReader(url, timeout_s=5)
            # Two scrapes of the zeroed series: increase() over the window is now 0, not absent.
            wait_until(lambda: reader.sample_count("B", WINDOW) == 0, what="two scrapes of zeroed series")
            assert reader.error_rate("B", WINDOW) is None  # 0 / 0: nothing served yet
            for _ in range(90):
                seconds.labels("B").observe(0.2)
                requests.labels("B", "ok").inc()
            for _ in range(10):
                seconds.labels("B").observe(3.0)
                requests.labels("B", "error").inc()
            requests.labels("B", "rejected").inc(5)
            for _ in range(100):
                seconds.labels("A").observe(0.05)
                requests.labels("A", "ok").inc()
            wait_until(
                lambda: (reader.sample_count("A", WINDOW) or 0) >= 100, what="the traffic to be scraped"
            )
            time.sleep(4)  # a few more scrapes: less extrapolation in increase()
            yield Stack(reader, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_p95_matches_the_known_histogram(stack: Stack) -> None:
    p95_b = stack.reader.p95_ms("rag_request_seconds", "B", WINDOW)
    assert 2500 <= p95_b <= 5000  # the bucket holding the true P95 (3 s)
    assert p95_b == pytest.approx(3750, rel=0.01)  # linear interpolation inside that bucket
    p95_a = stack.reader.p95_ms("rag_request_seconds_bucket", "A", WINDOW)  # the _bucket name works too
    assert p95_a == pytest.approx(95, rel=0.01)
    q50 = stack.reader.quantile_ms(0.5, "rag_request_seconds", "B", 60)
    assert 100 <= q50 <= 250


@pytest.mark.slow
def test_error_rate_and_sample_count(stack: Stack) -> None:
    assert stack.reader.error_rate("B", WINDOW) == pytest.approx(0.10, rel=1e-6)  # rejected not counted
    assert stack.reader.error_rate("A", WINDOW) == 0.0  # no error series at all
    assert stack.reader.sample_count("B", WINDOW) == pytest.approx(100, rel=0.25)  # increase() extrapolates


@pytest.mark.slow
def test_unknown_policy_has_no_data(stack: Stack) -> None:
    assert stack.reader.p95_ms("rag_request_seconds", "nope", WINDOW) is None
    assert stack.reader.error_rate("nope", WINDOW) is None
    assert stack.reader.sample_count("nope", WINDOW) is None
    assert stack.reader.p95_ms("rag_request_seconds", 'we"ird\\', WINDOW) is None  # quoted, not injected


@pytest.mark.slow
def test_health_reports_the_version(stack: Stack) -> None:
    health = stack.reader.health()
    assert health.ok and health.component == "metrics" and health.endpoint == stack.url
    assert health.version and health.version[0].isdigit()


@pytest.mark.slow
def test_guard_judges_all_replicas_from_prometheus(stack: Stack, tmp_path: Path) -> None:
    """This guard saw no request itself; Prometheus shows the canary's P95 3.75 s and 10 % errors: trip."""
    state = SqliteRoutingState(tmp_path / "routing.sqlite3")
    state.set_weight("B", 0.3, actor="ops")
    state.set_weight("A", 0.3, actor="ops")
    thresholds = GuardThresholds(p95_ms=2500, error_rate=0.05, min_samples=50, window_s=60)
    verdict = CanaryGuard(state, thresholds, "B", source=stack.reader).check()
    assert verdict.tripped and verdict.source == "prometheus"
    assert verdict.p95_ms == pytest.approx(3750, rel=0.01) and verdict.error_rate == pytest.approx(0.1)
    assert state.weights()["B"] == 0.0 and state.events(limit=1)[0]["source"] == "prometheus"
    healthy = CanaryGuard(state, thresholds, "A", source=stack.reader).check()
    assert not healthy.tripped and healthy.source == "prometheus" and healthy.p95_ms < 100
    strict = GuardThresholds(p95_ms=2500, error_rate=0.05, min_samples=1000, window_s=60)
    assert CanaryGuard(state, strict, "A", source=stack.reader).check().reason.endswith("samples needed")


def test_unreachable_prometheus_says_what_to_check() -> None:
    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout_s=1, retries=0)
    with pytest.raises(ServiceUnavailable, match="PROMETHEUS_URL"):
        reader.p95_ms("rag_request_seconds", "B", WINDOW)
    health = reader.health()
    assert not health.ok and "PROMETHEUS_URL" in health.detail


def test_query_building_checks_its_inputs() -> None:
    assert promql_window(300) == "300s" and promql_window("5m") == "5m" and promql_window("1h30m") == "1h30m"
    for bad in ("5 minutes", "", 0.2, True, "5m]"):
        with pytest.raises(InputError):
            promql_window(bad)
    assert label_value('a"b\\c') == '"a\\"b\\\\c"'
    reader = PrometheusReader("http://127.0.0.1:9")
    with pytest.raises(InputError, match="metric name"):
        reader.p95_ms("rag request", "B", WINDOW)
    with pytest.raises(InputError, match="quantile"):
        reader.quantile_ms(1.0, "rag_request_seconds", "B", WINDOW)


def test_url_must_be_http() -> None:
    from ragdeck.errors import ConfigError

    with pytest.raises(ConfigError, match="PROMETHEUS_URL"):
        PrometheusReader("127.0.0.1:9090")
