"""Stable canary routing: proportions, stability across processes, monotonic ramp-up, shared weights."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from ragdeck.console.online.routing import Router, RoutingDecision, stable_bucket
from ragdeck.errors import InputError
from ragdeck.services.routing_state import RedisRoutingState, SqliteRoutingState

USERS = [f"user-{i:05d}@example.org" for i in range(10_000)]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(tmp_path: Path) -> SqliteRoutingState:
    return SqliteRoutingState(tmp_path / "routing.sqlite3")


def canary_users(router: Router, users: list[str] = USERS) -> set[str]:
    return {u for u in users if router.choose(u).policy == router.canary}


def test_stable_bucket_is_in_range_and_pinned() -> None:
    buckets = [stable_bucket(u) for u in USERS]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert len(set(buckets)) == len(USERS)
    # Pinned: changing the hash would silently move users between policies on the next deploy.
    assert stable_bucket("alice") == pytest.approx(0.8129795494546481, abs=1e-15)
    assert stable_bucket("alice", salt="other") != stable_bucket("alice")


@pytest.mark.parametrize("weight", [0.1, 0.5])
def test_canary_share_is_within_binomial_bounds(state: SqliteRoutingState, weight: float) -> None:
    state.set_weight("B", weight, actor="test")
    router = Router("A", "B", state)
    n = len(USERS)
    got = len(canary_users(router))
    sigma = math.sqrt(n * weight * (1 - weight))
    assert abs(got - n * weight) <= 4.5 * sigma, (got, n * weight, sigma)


def test_weights_zero_and_one_are_exact(state: SqliteRoutingState) -> None:
    clock = FakeClock()
    router = Router("A", "B", state, clock=clock)
    state.set_weight("B", 0.0, actor="test")
    assert canary_users(router) == set()
    state.set_weight("B", 1.0, actor="test")
    clock.now += 1.0
    assert canary_users(router) == set(USERS)


def test_assignments_are_the_same_in_another_process(state: SqliteRoutingState) -> None:
    """A separate interpreter with a different PYTHONHASHSEED routes every user the same way."""
    state.set_weight("B", 0.3, actor="test")
    here = {u: Router("A", "B", state).choose(u).policy for u in USERS}
    script = textwrap.dedent(
        """
        import json, sys
        from ragdeck.console.online.routing import Router
        from ragdeck.services.routing_state import SqliteRoutingState
        router = Router("A", "B", SqliteRoutingState(sys.argv[1]))
        users = [f"user-{i:05d}@example.org" for i in range(10_000)]
        print(json.dumps({u: router.choose(u).policy for u in users}))
        """
    )
    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(state.path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == here and outputs[1] == here


def test_raising_the_weight_only_moves_users_from_control_to_canary(state: SqliteRoutingState) -> None:
    clock = FakeClock()
    router = Router("A", "B", state, clock=clock)
    previous: set[str] = set()
    for weight in (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.9, 1.0):
        state.set_weight("B", weight, actor="ramp")
        clock.now += 1.0
        now = canary_users(router)
        assert previous <= now, f"{len(previous - now)} users left the canary when raising to {weight}"
        previous = now
    assert previous == set(USERS)


def test_explicit_request_wins_and_unknown_names_are_listed(state: SqliteRoutingState) -> None:
    state.set_weight("B", 1.0, actor="test")
    router = Router("A", "B", state, known=["A", "B", "C"])
    assert router.choose("alice", requested="A") == RoutingDecision("A", "requested")
    assert router.choose(None, requested="C") == RoutingDecision("C", "requested")
    with pytest.raises(InputError, match="unknown policy 'Z': known policies are A, B, C"):
        router.choose("alice", requested="Z")


def test_no_user_id_goes_to_control(state: SqliteRoutingState) -> None:
    state.set_weight("B", 1.0, actor="test")
    router = Router("A", "B", state)
    assert router.choose(None) == RoutingDecision("A", "anonymous")
    assert router.choose("") == RoutingDecision("A", "anonymous")
    assert router.choose("bob") == RoutingDecision("B", "canary")


def test_default_weight_applies_until_the_state_has_one(state: SqliteRoutingState) -> None:
    clock = FakeClock()
    router = Router("A", "B", state, default_weight=1.0, cache_s=1.0, clock=clock)
    assert router.weight() == 1.0 and router.choose("carol").reason == "canary"
    state.set_weight("B", 0.0, actor="ops")
    clock.now += 1.0
    assert router.weight() == 0.0 and router.choose("carol") == RoutingDecision("A", "control")


def test_weight_is_cached_for_cache_s(state: SqliteRoutingState) -> None:
    clock = FakeClock()
    state.set_weight("B", 0.2, actor="ops")
    router = Router("A", "B", state, cache_s=1.0, clock=clock)
    assert router.weight() == 0.2
    state.set_weight("B", 0.7, actor="ops")
    clock.now += 0.99
    assert router.weight() == 0.2
    clock.now += 0.01
    assert router.weight() == 0.7


def test_an_unreachable_state_keeps_the_last_weight(tmp_path: Path) -> None:
    """A private redis-server that goes away: routing goes on with the last weight read, no exception."""
    from servers import redis_server

    with redis_server(tmp_path / "redis") as url:
        state = RedisRoutingState(url, timeout_s=0.5)
        state.set_weight("B", 1.0, actor="ops")
        router = Router("A", "B", state, default_weight=0.0, cache_s=0)
        assert router.choose("dave") == RoutingDecision("B", "canary")
    assert router.weight() == 1.0
    assert router.choose("dave") == RoutingDecision("B", "canary")


def test_control_and_canary_must_differ(state: SqliteRoutingState) -> None:
    with pytest.raises(InputError, match="different"):
        Router("A", "A", state)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_routers_on_separate_states_converge_after_cache_s(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two replicas, each with its own state object on one backing store, route alike after a change."""
    if backend == "sqlite":
        one, two = (SqliteRoutingState(tmp_path / "shared.sqlite3") for _ in range(2))
    else:
        url, prefix = request.getfixturevalue("redis_url"), f"test:{uuid.uuid4().hex}:"
        one, two = RedisRoutingState(url, prefix), RedisRoutingState(url, prefix)
    clock = FakeClock()
    replica_1 = Router("A", "B", one, cache_s=1.0, clock=clock)
    replica_2 = Router("A", "B", two, cache_s=1.0, clock=clock)
    users = USERS[:2000]
    assert canary_users(replica_1, users) == canary_users(replica_2, users) == set()

    one.set_weight("B", 0.5, actor="ops")  # changed through replica 1's state
    clock.now += 1.0
    first = canary_users(replica_1, users)
    assert 800 < len(first) < 1200 and canary_users(replica_2, users) == first

    two.set_weight("B", 0.1, actor="ops")  # and back through replica 2's state
    clock.now += 1.0
    second = canary_users(replica_2, users)
    assert second < first and canary_users(replica_1, users) == second
