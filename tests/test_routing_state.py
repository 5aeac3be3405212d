"""Shared routing state on a real SQLite file and a real redis-server: one contract, two backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import free_port

from ragdeck.console.online.ports import RoutingState
from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.routing_state import RedisRoutingState, SqliteRoutingState, open_routing_state

Factory = Callable[..., SqliteRoutingState | RedisRoutingState]


@pytest.fixture(params=["sqlite", "redis"])
def make_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Opens instances that share one backing store (one SQLite file, or one Redis key prefix)."""
    opened: list[SqliteRoutingState | RedisRoutingState] = []
    if request.param == "sqlite":
        path = tmp_path / "routing.sqlite3"

        def make(**kwargs: object) -> SqliteRoutingState | RedisRoutingState:
            opened.append(SqliteRoutingState(path, **kwargs))
            return opened[-1]
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex}:"

        def make(**kwargs: object) -> SqliteRoutingState | RedisRoutingState:
            opened.append(RedisRoutingState(url, prefix, **kwargs))
            return opened[-1]

    yield make
    for state in opened:
        if isinstance(state, RedisRoutingState):
            state.close()


def test_satisfies_the_protocol(make_state: Factory) -> None:
    state = make_state()
    assert isinstance(state, RoutingState)
    assert state.mode in {"sqlite", "redis"}


def test_weights_start_empty_and_keep_what_was_set(make_state: Factory) -> None:
    state = make_state()
    assert state.weights() == {} and state.thresholds() == {} and state.events() == []
    state.set_weight("B", 0.25, actor="alice", reason="start canary")
    state.set_weight("A", 1, actor="alice")
    state.set_weight("B", 0.5, actor="bob", reason="more")
    assert state.weights() == {"A": 1.0, "B": 0.5}
    newest, middle, oldest = state.events()
    assert (newest["kind"], newest["policy"], newest["actor"], newest["reason"]) == (
        "weight",
        "B",
        "bob",
        "more",
    )
    assert (newest["weight"], newest["previous"]) == (0.5, 0.25)
    assert (oldest["weight"], oldest["previous"], oldest["reason"]) == (0.25, None, "start canary")
    assert middle["policy"] == "A"
    assert newest["ts"] >= middle["ts"] >= oldest["ts"] > 1.6e9
    assert len(state.events(limit=2)) == 2 and state.events(limit=0) == []


def test_thresholds_update_only_the_named_ones(make_state: Factory) -> None:
    state = make_state()
    state.set_thresholds({"p95_ms": 2000, "error_rate": 0.05}, actor="ops")
    state.set_thresholds({"p95_ms": 1500.5}, actor="ops")
    assert state.thresholds() == {"p95_ms": 1500.5, "error_rate": 0.05}
    event = state.events(limit=1)[0]
    assert (event["kind"], event["actor"], event["values"]) == ("thresholds", "ops", {"p95_ms": 1500.5})


def test_record_event_keeps_its_fields(make_state: Factory) -> None:
    state = make_state()
    state.record_event(
        "guard_trip", policy="B", actor="guard", reason="P95 too high", p95_ms=3100.0, samples=80
    )
    event = state.events()[0]
    assert event["kind"] == "guard_trip" and event["p95_ms"] == 3100.0 and event["samples"] == 80
    assert event["reason"] == "P95 too high" and event["policy"] == "B"


def test_events_are_capped_to_the_newest(make_state: Factory) -> None:
    state = make_state(max_events=5)
    for i in range(12):
        state.set_weight("B", i / 100, actor="loop")
    events = state.events(limit=100)
    assert [e["weight"] for e in events] == [0.11, 0.1, 0.09, 0.08, 0.07]


@pytest.mark.parametrize("weight", [-0.1, 1.01, "lots", float("nan"), None])
def test_invalid_weights_are_refused(make_state: Factory, weight: object) -> None:
    state = make_state()
    with pytest.raises(InputError, match="weight"):
        state.set_weight("B", weight, actor="x")  # type: ignore[arg-type]
    assert state.weights() == {} and state.events() == []


def test_invalid_thresholds_are_refused(make_state: Factory) -> None:
    state = make_state()
    with pytest.raises(InputError, match="p95_ms"):
        state.set_thresholds({"p95_ms": float("inf")}, actor="x")
    with pytest.raises(InputError, match="error_rate"):
        state.set_thresholds({"error_rate": "high"}, actor="x")  # type: ignore[dict-item]
    assert state.thresholds() == {}


def test_two_instances_see_each_others_changes(make_state: Factory) -> None:
    one, two = make_state(), make_state()
    one.set_weight("B", 0.3, actor="one")
    assert two.weights() == {"B": 0.3}
    two.set_weight("B", 0.0, actor="two", reason="rollback")
    two.set_thresholds({"p95_ms": 900}, actor="two")
    assert one.weights() == {"B": 0.0}
    assert one.thresholds() == {"p95_ms": 900.0}
    assert [e["actor"] for e in one.events()] == ["two", "two", "one"]


def test_health_reports_the_backend(make_state: Factory) -> None:
    health = make_state().health()
    assert health.ok and health.component == "routing state" and health.version


def test_sqlite_is_safe_for_several_processes(tmp_path: Path) -> None:
    """Four processes write 50 weights each at once: no write is lost, no 'database is locked' escapes."""
    path = tmp_path / "shared.sqlite3"
    SqliteRoutingState(path)
    script = textwrap.dedent(
        """
        import sys
        from ragdeck.services.routing_state import SqliteRoutingState
        state = SqliteRoutingState(sys.argv[1])
        for i in range(50):
            state.set_weight(sys.argv[2], i / 100, actor=sys.argv[2])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    state = SqliteRoutingState(path)
    assert state.weights() == {f"p{n}": 0.49 for n in range(4)}
    events = state.events(limit=1000)
    assert len(events) == 200
    for n in range(4):  # each writer's events are in its own order
        mine = [e["weight"] for e in reversed(events) if e["actor"] == f"p{n}"]
        assert mine == [i / 100 for i in range(50)]


def test_redis_outage_says_what_to_check() -> None:
    state = RedisRoutingState(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(ServiceUnavailable, match="REDIS_URL") as err:
        state.weights()
    assert "redis-server" in str(err.value)
    with pytest.raises(ServiceUnavailable, match="REDIS_URL"):
        state.set_weight("B", 0.1, actor="x")
    health = state.health()
    assert not health.ok and "REDIS_URL" in health.detail


def test_bad_redis_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="redis://"):
        RedisRoutingState("http://127.0.0.1:1/0")


def test_unusable_sqlite_path_says_what_to_check(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ServiceUnavailable, match="RAGDECK_DATA_DIR"):
        SqliteRoutingState(blocker / "routing.sqlite3")


def test_open_routing_state_picks_redis_when_a_url_is_set(tmp_path: Path, redis_url: str) -> None:
    assert open_routing_state(None, tmp_path / "r.sqlite3").mode == "sqlite"
    redis_state = open_routing_state(redis_url, tmp_path / "unused.sqlite3")
    assert redis_state.mode == "redis" and redis_state.health().ok
    assert not (tmp_path / "unused.sqlite3").exists()
