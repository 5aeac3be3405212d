"""Feedback on answers: response ids and votes live in the SQLite state store for the promised retention
(``RESPONSE_TTL_S``, 7 days), survive a restart of the API, take one vote each (a later vote replaces the
earlier), and an unknown or expired id gets a clear 404 / 410 in the API's one error shape."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import COMPONENT_ENV
from fastapi.testclient import TestClient
from servers import api_serve
from test_api_input import assert_error_shape

from ragdeck.console.answering.service import RESPONSE_TTL_S, new_response_id, response_issued_at
from ragdeck.console.settings import Settings
from ragdeck.services.feedback_log import SqliteFeedbackLog
from ragdeck.services.kv import SqliteKV

DAY = 86400.0


def votes(state_db: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(state_db) as db:
        return db.execute("SELECT response_id, policy, vote, comment FROM feedback ORDER BY id").fetchall()


def test_one_vote_per_answer_the_later_replaces_the_earlier(api_clients: Callable[..., TestClient]) -> None:
    from test_api import metric_value

    client = api_clients()
    first = client.post("/query", json={"question": "What does the rerank route return?"}).json()[
        "response_id"
    ]
    other = client.post("/query", json={"question": "What is a recording rule?"}).json()["response_id"]

    up = client.post("/feedback", json={"response_id": first, "vote": "up", "comment": "good"})
    assert up.status_code == 200 and up.json() == {"ok": True, "policy": "A", "vote": "up", "replaced": None}
    down = client.post("/feedback", json={"response_id": first, "vote": "down", "comment": "wrong page"})
    assert down.status_code == 200 and down.json()["replaced"] == "up"
    again = client.post("/feedback", json={"response_id": first, "vote": "down"})
    assert again.status_code == 200 and again.json()["replaced"] == "down"
    assert client.post("/feedback", json={"response_id": other, "vote": "up"}).status_code == 200

    assert votes(Settings().state_db) == [(first, "A", "down", None), (other, "A", "up", None)]
    # The counter counts votes cast: the first "up", the change to "down", not the repeated "down".
    assert metric_value(client, "rag_feedback_total", policy="A", vote="up") == 2
    assert metric_value(client, "rag_feedback_total", policy="A", vote="down") == 1


def test_unknown_and_expired_ids_are_404_and_410(api_clients: Callable[..., TestClient]) -> None:
    client = api_clients()
    unknown = client.post("/feedback", json={"response_id": new_response_id(), "vote": "up"})
    assert "unknown response_id" in assert_error_shape(unknown, 404)
    foreign = client.post("/feedback", json={"response_id": "not-one-of-ours", "vote": "up"})
    assert "unknown response_id" in assert_error_shape(foreign, 404)
    old = new_response_id(now=time.time() - RESPONSE_TTL_S - 60)
    expired = client.post("/feedback", json={"response_id": old, "vote": "up"})
    message = assert_error_shape(expired, 410)
    assert "expired" in message and "7 days" in message and "ask the question again" in message
    assert votes(Settings().state_db) == []


def test_an_id_past_the_retention_is_refused_even_if_not_yet_pruned(
    api_clients: Callable[..., TestClient],
) -> None:
    client = api_clients()
    responses = client.app.state.runtime.service.responses
    assert isinstance(responses, SqliteKV)  # the embedded default keeps issued ids in the state database
    issued = time.time() - RESPONSE_TTL_S - 60
    response_id = new_response_id(now=issued)
    with sqlite3.connect(Settings().state_db) as db:  # as the API wrote it 7 days ago, before any prune
        db.execute(
            "INSERT INTO kv_entries (key, value, expires_at) VALUES (?, ?, ?)",
            (f"{responses.prefix}response:{response_id}", "A", issued + RESPONSE_TTL_S),
        )
    assert_error_shape(client.post("/feedback", json={"response_id": response_id, "vote": "up"}), 410)


def test_response_ids_carry_their_issue_time() -> None:
    now = time.time()
    response_id = new_response_id(now=now)
    assert len(response_id) == 33 and response_issued_at(response_id) == int(now)
    assert new_response_id() != new_response_id()
    assert response_issued_at("0123abcd" + "0" * 24) is None and response_issued_at("nope") is None


def test_kept_for_the_retention_then_pruned(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    store = SqliteKV(tmp_path / "ragdeck.sqlite3", prefix="ragdeck:responses:", clock=lambda: clock[0])
    others = SqliteKV(tmp_path / "ragdeck.sqlite3", prefix="ragdeck:other:", clock=lambda: clock[0])
    store.set("response:old", "A", ttl_s=RESPONSE_TTL_S)
    others.set("response:old", "kept", ttl_s=RESPONSE_TTL_S)
    clock[0] += RESPONSE_TTL_S - DAY
    store.set("response:new", "B", ttl_s=RESPONSE_TTL_S)
    assert store.get("response:old") == "A"  # six days on: still there
    clock[0] += 2 * DAY
    assert store.get("response:old") is None and store.get("response:new") == "B"
    assert len(store) == 2  # expired, not yet pruned
    assert store.prune() == 1
    assert len(store) == 1 and len(others) == 1  # a prune touches its own prefix only
    clock[0] += RESPONSE_TTL_S  # "new" has expired too, and a prune is due: the next write prunes by itself
    assert store.prune_every_s <= RESPONSE_TTL_S
    store.set("response:newer", "A", ttl_s=RESPONSE_TTL_S)
    assert len(store) == 1 and store.get("response:newer") == "A"

    log = SqliteFeedbackLog(tmp_path / "ragdeck.sqlite3")
    try:
        log.add("r-old", "A", "up", ts=1_000.0)
        log.add("r-new", "A", "down", ts=1_000.0 + RESPONSE_TTL_S)
        assert log.prune(RESPONSE_TTL_S, now=1_000.0 + RESPONSE_TTL_S + 1) == 1
        assert log.vote("r-old") is None and log.vote("r-new") == "down"
    finally:
        log.close()


@contextmanager
def api_process(data_dir: Path, log: Path) -> Iterator[str]:
    """``ragdeck api serve`` as its own process over ``data_dir`` (embedded default: no Redis, no LLM)."""
    env = {k: v for k, v in os.environ.items() if k not in COMPONENT_ENV}
    env["RAGDECK_DATA_DIR"] = str(data_dir)
    with api_serve(env, log, cwd=data_dir.parent) as url:
        yield url


@pytest.mark.slow
def test_feedback_on_an_id_issued_before_a_restart_is_accepted(demo_snapshot: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run(["cp", "-a", "--sparse=always", str(demo_snapshot), str(data)], check=True)
    log = tmp_path / "api.log"
    with api_process(data, log) as api, httpx.Client(timeout=60) as http:
        answer = http.post(f"{api}/query", json={"question": "How does Prometheus scrape targets?"})
        assert answer.status_code == 200, answer.text
        response_id = answer.json()["response_id"]
        first = http.post(f"{api}/feedback", json={"response_id": response_id, "vote": "up"})
        assert first.status_code == 200, first.text
    with api_process(data, log) as api, httpx.Client(timeout=60) as http:  # a new process, same data
        later = http.post(f"{api}/feedback", json={"response_id": response_id, "vote": "down"})
        assert later.status_code == 200, (later.text, log.read_text()[-2000:])
        assert later.json() == {"ok": True, "policy": "A", "vote": "down", "replaced": "up"}
        unknown = http.post(f"{api}/feedback", json={"response_id": new_response_id(), "vote": "up"})
        assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
    assert votes(data / "ragdeck.sqlite3") == [(response_id, "A", "down", None)]
