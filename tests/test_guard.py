"""The canary guard on a real routing state: trips on injected latency and errors, not on noise."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import pytest
from servers import free_port

from ragdeck.console.online.guard import CanaryGuard, GuardThresholds, p95
from ragdeck.console.online.routing import Router
from ragdeck.console.settings import Settings
from ragdeck.errors import InputError
from ragdeck.services.prometheus import PrometheusReader
from ragdeck.services.routing_state import RedisRoutingState, SqliteRoutingState

DEFAULTS = GuardThresholds(p95_ms=2500, error_rate=0.05, min_samples=50, window_s=300)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(tmp_path: Path) -> SqliteRoutingState:
    state = SqliteRoutingState(tmp_path / "routing.sqlite3")
    state.set_weight("B", 0.2, actor="ops", reason="start canary")
    return state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def feed(guard: CanaryGuard, clock: FakeClock, latencies_s: np.ndarray, ok: np.ndarray, step_s: float = 0.05):
    """Record requests as the API does (check after each); the first tripping verdict, else the last."""
    verdict = None
    for latency, good in zip(latencies_s, ok, strict=True):
        clock.now += step_s
        guard.record("B", float(latency), bool(good))
        verdict = guard.check()
        if verdict.tripped:
            return verdict
    return verdict


def normal_traffic(
    rng: np.random.Generator, n: int, error_share: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Lognormal latencies, median 300 ms (P95 about 680 ms), and ``error_share`` failures."""
    return rng.lognormal(mean=np.log(0.3), sigma=0.5, size=n), rng.random(n) >= error_share


def test_trips_on_injected_latency(state: SqliteRoutingState, clock: FakeClock, caplog) -> None:
    rng = np.random.default_rng(1)
    latencies, ok = normal_traffic(rng, 400, error_share=0.0)
    latencies[rng.random(400) < 0.8] = 5.0  # 80 % of requests take 5 s
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    with caplog.at_level(logging.WARNING, logger="ragdeck.console.online.guard"):
        verdict = feed(guard, clock, latencies, ok)
    assert verdict.tripped and verdict.source == "local"
    assert verdict.samples == 50  # judged as soon as min_samples were in
    assert verdict.p95_ms == pytest.approx(5000.0) and verdict.error_rate == 0.0
    assert "P95 5000 ms > 2500 ms" in verdict.reason
    assert state.weights()["B"] == 0.0
    assert guard.trips == 1
    assert any("canary guard tripped" in r.message for r in caplog.records)
    trip, weight_change = state.events(limit=2)
    assert (trip["kind"], trip["policy"], trip["actor"], trip["samples"]) == ("guard_trip", "B", "guard", 50)
    assert trip["p95_ms"] == pytest.approx(5000.0) and trip["previous_weight"] == 0.2
    assert (weight_change["kind"], weight_change["actor"], weight_change["weight"]) == (
        "weight",
        "guard",
        0.0,
    )
    assert "P95" in weight_change["reason"]


def test_trips_on_injected_errors(state: SqliteRoutingState, clock: FakeClock) -> None:
    rng = np.random.default_rng(2)
    latencies, _ = normal_traffic(rng, 1000)
    ok = rng.random(1000) >= 0.20  # 20 % errors
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    verdict = feed(guard, clock, latencies, ok)
    assert verdict.tripped and "error rate" in verdict.reason and "P95" not in verdict.reason
    assert verdict.error_rate > 0.05 and verdict.p95_ms < 2500
    assert state.weights()["B"] == 0.0 and guard.trips == 1
    assert state.events(limit=1)[0]["kind"] == "guard_trip"


def test_does_not_trip_on_normal_noise(state: SqliteRoutingState, clock: FakeClock) -> None:
    """3,000 ordinary requests (P95 ~680 ms, 1 % errors), checked after each one: no trip.

    min_samples is 200 here: at 50 samples a 1 % error process exceeds 5 % by chance (3 of 50) with
    probability ~1.4 % per judgement (~3 % over a canary's life, simulated), which is a real false trip.
    """
    thresholds = GuardThresholds(p95_ms=2500, error_rate=0.05, min_samples=200, window_s=300)
    latencies, ok = normal_traffic(np.random.default_rng(3), 3000)
    guard = CanaryGuard(state, thresholds, "B", clock=clock)
    verdict = feed(guard, clock, latencies, ok)
    assert not verdict.tripped and verdict.reason == "within thresholds"
    assert verdict.samples == 3000 and 500 < verdict.p95_ms < 900 and verdict.error_rate < 0.03
    assert state.weights()["B"] == 0.2 and guard.trips == 0
    assert all(e["kind"] != "guard_trip" for e in state.events(limit=100))


def test_does_not_trip_before_min_samples(state: SqliteRoutingState, clock: FakeClock) -> None:
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    verdict = feed(guard, clock, np.full(49, 5.0), np.zeros(49, dtype=bool))
    assert not verdict.tripped and verdict.reason == "49 of 50 samples needed"
    assert verdict.p95_ms == pytest.approx(5000.0) and verdict.error_rate == 1.0
    assert state.weights()["B"] == 0.2
    verdict = feed(guard, clock, np.full(1, 5.0), np.zeros(1, dtype=bool))
    assert verdict.tripped and verdict.samples == 50


def test_ignores_other_policies(state: SqliteRoutingState, clock: FakeClock) -> None:
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    for _ in range(100):
        guard.record("A", 9.0, False)
    verdict = guard.check()
    assert not verdict.tripped and verdict.samples == 0


def test_old_samples_slide_out_of_the_window(state: SqliteRoutingState, clock: FakeClock) -> None:
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    feed(guard, clock, np.full(40, 5.0), np.zeros(40, dtype=bool))
    clock.now += 301  # the bad minute is over
    latencies, ok = normal_traffic(np.random.default_rng(4), 60, error_share=0.0)
    verdict = feed(guard, clock, latencies, ok)
    assert not verdict.tripped and verdict.samples == 60 and verdict.error_rate == 0.0


def test_does_not_trip_again_while_weight_is_zero_and_rearms_after(
    state: SqliteRoutingState, clock: FakeClock
) -> None:
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    bad = np.full(200, 5.0), np.zeros(200, dtype=bool)
    assert feed(guard, clock, *bad).tripped
    verdict = feed(guard, clock, *bad)
    assert not verdict.tripped and "weight is 0" in verdict.reason
    assert guard.trips == 1
    assert sum(e["kind"] == "guard_trip" for e in state.events(limit=100)) == 1

    state.set_weight("B", 0.1, actor="ops", reason="fixed, retry")
    clock.now += 1.0  # past the state cache
    latencies, ok = normal_traffic(np.random.default_rng(5), 100, error_share=0.0)
    verdict = feed(guard, clock, latencies, ok)
    assert not verdict.tripped and verdict.samples == 100  # the old bad window was dropped
    assert feed(guard, clock, *bad).tripped and guard.trips == 2
    assert state.weights()["B"] == 0.0


def test_another_replica_tripping_first_is_not_a_second_trip(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.sqlite3"
    SqliteRoutingState(path).set_weight("B", 0.5, actor="ops")
    one = CanaryGuard(SqliteRoutingState(path), DEFAULTS, "B", clock=clock)
    two = CanaryGuard(SqliteRoutingState(path), DEFAULTS, "B", clock=clock)
    for guard in (one, two):
        for _ in range(10):
            guard.record("B", 5.0, False)
    assert two.check().reason == "10 of 50 samples needed"  # two has now cached weight 0.5
    for guard in (one, two):
        for _ in range(50):
            guard.record("B", 5.0, False)
    assert one.check().tripped
    verdict = two.check()  # two's cached weight is still 0.5: it re-reads before writing
    assert not verdict.tripped and "weight is 0" in verdict.reason and two.trips == 0
    events = SqliteRoutingState(path).events(limit=100)
    assert sum(e["kind"] == "guard_trip" for e in events) == 1


def test_thresholds_set_through_the_state_override(state: SqliteRoutingState, clock: FakeClock) -> None:
    state.set_thresholds({"p95_ms": 400, "min_samples": 100}, actor="ops")
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock)
    latencies, ok = normal_traffic(np.random.default_rng(6), 500, error_share=0.0)
    verdict = feed(guard, clock, latencies, ok)
    assert verdict.tripped and verdict.samples == 100 and "> 400 ms" in verdict.reason
    assert guard.current_thresholds() == GuardThresholds(p95_ms=400, error_rate=0.05, min_samples=100)
    assert guard.current_thresholds().as_dict() == {
        "p95_ms": 400, "error_rate": 0.05, "min_samples": 100, "window_s": 300
    }  # fmt: skip


def test_invalid_thresholds_from_the_state_are_ignored(state: SqliteRoutingState) -> None:
    state.set_thresholds({"error_rate": 7.0}, actor="ops")
    guard = CanaryGuard(state, DEFAULTS, "B")
    guard.check()
    assert guard.current_thresholds() == DEFAULTS


@pytest.mark.parametrize(
    "values",
    [{"p95_ms": 0}, {"error_rate": 1.5}, {"min_samples": 0}, {"window_s": -1}, {"p95_ms": float("inf")}],
)
def test_invalid_thresholds_are_refused(values: dict) -> None:
    with pytest.raises(InputError, match=next(iter(values))):
        GuardThresholds(**values)


def test_thresholds_from_settings(data_dir: Path) -> None:
    settings = Settings(guard_p95_ms=1200, guard_error_rate=0.02, guard_min_samples=80, guard_window_s=60)
    assert GuardThresholds.from_settings(settings) == GuardThresholds(1200, 0.02, 80, 60)
    assert GuardThresholds.from_settings(Settings()) == GuardThresholds()  # the same defaults


def test_p95_is_linear_interpolation_between_ranks() -> None:
    assert p95(np.arange(1, 101, dtype=float)) == pytest.approx(95.05)  # 1 + 0.95 * 99
    assert p95(np.array([10.0])) == 10.0
    assert np.isnan(p95(np.array([])))


def test_falls_back_to_its_own_window_when_prometheus_is_unreachable(
    state: SqliteRoutingState, clock: FakeClock, caplog
) -> None:
    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, retries=0)
    guard = CanaryGuard(state, DEFAULTS, "B", clock=clock, source=reader)
    with caplog.at_level(logging.WARNING, logger="ragdeck.console.online.guard"):
        verdict = feed(guard, clock, np.full(60, 5.0), np.ones(60, dtype=bool))
    assert verdict.tripped and verdict.source == "local"
    assert any("falls back to its own window" in r.message for r in caplog.records)


def test_guard_trip_reaches_routers_through_redis(redis_url: str, clock: FakeClock) -> None:
    """The guard in one replica sets weight 0 in Redis; a router in another replica follows in cache_s."""
    prefix = f"test:{uuid.uuid4().hex}:"
    guard_state, router_state = RedisRoutingState(redis_url, prefix), RedisRoutingState(redis_url, prefix)
    guard_state.set_weight("B", 1.0, actor="ops")
    router = Router("A", "B", router_state, cache_s=1.0, clock=clock)
    assert router.choose("erin").policy == "B"
    guard = CanaryGuard(guard_state, DEFAULTS, "B", clock=clock)
    assert feed(guard, clock, np.full(60, 0.1), np.arange(60) % 4 != 0).tripped  # 25 % errors
    clock.now += 1.0
    assert router.choose("erin").policy == "A"
    assert router_state.events(limit=1)[0]["kind"] == "guard_trip"
