"""Votes in Redis (``REDIS_URL`` set): one per response id across replicas, the replaced vote returned,
counts, expiry after the retention, and a clear error when Redis is down. Against Debian's redis-server."""

from __future__ import annotations

import time
import uuid

import pytest
from servers import free_port

from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_feedback_log
from ragdeck.errors import ServiceUnavailable
from ragdeck.services.feedback_redis import RedisFeedbackLog


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


def test_two_replicas_keep_one_vote_per_response_id(redis_url: str, prefix: str) -> None:
    one = RedisFeedbackLog(redis_url, retention_s=3600, prefix=prefix)
    two = RedisFeedbackLog(redis_url, retention_s=3600, prefix=prefix)
    assert one.add("r1", "A", "up", "good") is None
    assert two.add("r1", "A", "down") == "up"  # the other replica sees and replaces it
    assert one.vote("r1") == two.vote("r1") == "down"
    assert two.add("r2", "B", "up") is None
    assert one.counts() == {("A", "down"): 1, ("B", "up"): 1}
    assert one.vote("never-voted") is None
    one.close()
    two.close()


def test_a_vote_expires_after_the_retention(redis_url: str, prefix: str) -> None:
    log = RedisFeedbackLog(redis_url, retention_s=0.3, prefix=prefix)
    log.add("r1", "A", "up")
    assert log.vote("r1") == "up"
    deadline = time.monotonic() + 30
    while log.vote("r1") is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the condition; Redis expires the key on its own clock
    assert log.vote("r1") is None and log.counts() == {}
    assert log.prune(0) == 0


def test_redis_down_is_a_clear_error_without_the_password(prefix: str) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    log = RedisFeedbackLog(url, retention_s=60, prefix=prefix, timeout_s=0.5)
    with pytest.raises(ServiceUnavailable) as caught:
        log.add("r1", "A", "up")
    message = str(caught.value)
    assert "did not answer" in message and "REDIS_URL" in message and "hunter2" not in message


def test_wiring_keeps_votes_in_redis_when_redis_url_is_set(
    data_dir, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    log = build_feedback_log(Settings())
    assert isinstance(log, RedisFeedbackLog)
    response_id = f"wired-{uuid.uuid4().hex}"
    log.add(response_id, "A", "up")
    assert RedisFeedbackLog(redis_url, retention_s=60).vote(response_id) == "up"
