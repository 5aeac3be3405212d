"""The RAG API refuses bad input with a 4xx in one error shape, never a 500 or a guess; admin changes are
audited. In process (FastAPI TestClient) on the real embedded stack with the demo collection."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from conftest import API_TOKEN
from fastapi.testclient import TestClient

from ragdeck.console import audit

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
JSON = {"content-type": "application/json"}


def assert_error_shape(response: httpx.Response, status: int) -> str:
    """The one error body of the API, ``{"error": "<message>"}``; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"].strip()
    return body["error"]


@pytest.fixture
def client(shared_api_client: TestClient) -> TestClient:
    """The module's API (tests of refusals leave no state behind; each checks that nothing changed)."""
    return shared_api_client


@pytest.fixture
def fresh_client(api_clients: Callable[..., TestClient]) -> TestClient:
    """An API over a fresh copy of the demo data (for tests that change the routing state)."""
    return api_clients()


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e309", "-1e309"])
@pytest.mark.parametrize("field", ["p95_ms", "error_rate", "window_s", "min_samples"])
def test_thresholds_must_be_finite_numbers(client: TestClient, field: str, number: str) -> None:
    before = client.get("/admin/routing", headers=ADMIN).json()["thresholds"]
    sent = client.put("/admin/routing/thresholds", content=f'{{"{field}": {number}}}', headers=ADMIN | JSON)
    message = assert_error_shape(sent, 422)
    assert field in message
    assert client.get("/admin/routing", headers=ADMIN).json()["thresholds"] == before
    assert not audit.entries(action="api.routing.thresholds", log=client.app.state.runtime.audit_log)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/routing/weight", {"policy": "B", "weight": True}, "weight"),
        ("/admin/routing/weight", {"policy": "B", "weight": "0.5"}, "weight"),
        ("/admin/routing/weight", {"policy": "B", "weight": None}, "weight"),
        ("/admin/routing/weight", {"policy": 1, "weight": 0.5}, "policy"),
        ("/admin/routing/thresholds", {"min_samples": True}, "min_samples"),
        ("/admin/routing/thresholds", {"min_samples": 2.5}, "min_samples"),
        ("/admin/routing/thresholds", {"error_rate": False}, "error_rate"),
        ("/admin/routing/thresholds", {"min_samples": 10**400}, "min_samples"),
    ],
)
def test_booleans_and_strings_are_not_numbers(client: TestClient, path: str, body: dict, field: str) -> None:
    before = client.get("/admin/routing", headers=ADMIN).json()
    message = assert_error_shape(client.put(path, json=body, headers=ADMIN), 422)
    assert field in message
    after = client.get("/admin/routing", headers=ADMIN).json()
    assert after["weights"] == before["weights"] and after["thresholds"] == before["thresholds"]


def test_an_integer_is_a_number(fresh_client: TestClient) -> None:
    client = fresh_client
    sent = client.put("/admin/routing/weight", json={"policy": "B", "weight": 1}, headers=ADMIN)
    assert sent.status_code == 200 and sent.json()["weights"]["B"] == 1.0
    sent = client.put("/admin/routing/thresholds", json={"p95_ms": 900, "min_samples": 7.0}, headers=ADMIN)
    assert sent.status_code == 200
    assert sent.json()["thresholds"]["p95_ms"] == 900.0 and sent.json()["thresholds"]["min_samples"] == 7


@pytest.mark.parametrize(
    "header",
    [
        API_TOKEN,
        f"Token {API_TOKEN}",
        f"Basic {API_TOKEN}",
        f"Bearer{API_TOKEN}",
        "Bearer ",
        f"{API_TOKEN} x",
    ],
)
def test_the_admin_token_needs_the_bearer_scheme(client: TestClient, header: str) -> None:
    refused = client.get("/admin/routing", headers={"Authorization": header})
    assert "Bearer" in assert_error_shape(refused, 401)
    assert refused.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_name_is_case_insensitive(client: TestClient, scheme: str) -> None:
    assert client.get("/admin/routing", headers={"Authorization": f"{scheme} {API_TOKEN}"}).status_code == 200


CONTROL = ["\u0000", "what is\u0000PromQL?", "\u001b[31mred", "bell\u0007", "\u007f", "\u0085next", "\ud800"]


@pytest.mark.parametrize("text", CONTROL, ids=[ascii(t) for t in CONTROL])
def test_control_characters_are_refused_in_questions(client: TestClient, text: str) -> None:
    body = json.dumps({"question": text})  # ensure_ascii: "\ud800" travels as the JSON escape it is
    message = assert_error_shape(client.post("/query", content=body, headers=JSON), 422)
    assert message.startswith("question: ")
    # pydantic refuses a lone surrogate itself ("not a valid string"); the rest are ragdeck's check
    assert "control character" in message or text == "\ud800"


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("POST", "/query", {"question": "What is PromQL?", "user_id": "u\u0000"}, None),
        ("POST", "/query", {"question": "What is PromQL?", "policy": "A\u0001"}, None),
        ("POST", "/feedback", {"response_id": "x\u0002", "vote": "up"}, None),
        ("POST", "/feedback", {"response_id": "x", "vote": "up", "comment": "bad\u0008"}, None),
        ("PUT", "/admin/routing/weight", {"policy": "B", "weight": 0.1, "reason": "why\u0000"}, None),
        ("PUT", "/admin/routing/thresholds", {"p95_ms": 900, "reason": "\u001f"}, None),
        ("GET", "/admin/routing/assign", None, {"user_id": "u\u0000"}),
    ],
)
def test_control_characters_are_refused_in_every_text_input(
    client: TestClient, method: str, path: str, body: dict | None, params: dict | None
) -> None:
    sent = client.request(method, path, json=body, params=params, headers=ADMIN)
    assert "control character" in assert_error_shape(sent, 422)


def test_tabs_and_newlines_are_text(client: TestClient) -> None:
    answer = client.post("/query", json={"question": "What is\ta recording rule?\r\n"})
    assert answer.status_code == 200, answer.text
    vote = {"response_id": answer.json()["response_id"], "vote": "up", "comment": "line one\nline two"}
    assert client.post("/feedback", json=vote).status_code == 200


def _stream() -> object:
    yield b'{"question": "'
    for _ in range(100):
        yield b"y" * 1024
    yield b'"}'


REFUSALS = [
    ("malformed JSON", "POST", "/query", {"content": b'{"question": "unterminated'}, 400),
    ("JSON NaN literal as question", "POST", "/query", {"content": b'{"question": NaN}'}, 422),
    ("not UTF-8", "POST", "/query", {"content": b'{"question": "\xff\xfe"}'}, 400),
    ("empty body", "POST", "/query", {"content": b""}, 422),
    ("array body", "POST", "/query", {"content": b'["a question"]'}, 422),
    ("unknown field", "POST", "/query", {"json": {"question": "hi", "colour": "red"}}, 422),
    ("unknown policy", "POST", "/query", {"json": {"question": "What is PromQL?", "policy": "Z"}}, 400),
    ("too large", "POST", "/query", {"content": json.dumps({"question": "x" * 100_000}).encode()}, 413),
    ("too large, streamed", "POST", "/query", {"content": _stream}, 413),
    ("unknown route", "GET", "/no/such/route", {}, 404),
    ("wrong method", "DELETE", "/query", {}, 405),
    ("GET on a POST route", "GET", "/feedback", {}, 405),
    ("no token", "GET", "/admin/routing", {"headers": {}}, 401),
    ("missing query parameter", "GET", "/admin/routing/assign", {}, 422),
    ("unknown response id", "POST", "/feedback", {"json": {"response_id": "nope", "vote": "up"}}, 404),
    ("bad vote", "POST", "/feedback", {"json": {"response_id": "nope", "vote": "sideways"}}, 422),
    ("unknown policy weight", "PUT", "/admin/routing/weight", {"json": {"policy": "Q", "weight": 0.1}}, 404),
    ("no threshold", "PUT", "/admin/routing/thresholds", {"json": {}}, 422),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "kwargs", "status"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_every_4xx_has_the_one_error_shape(
    client: TestClient, case: str, method: str, path: str, kwargs: dict, status: int
) -> None:
    kwargs = dict(kwargs)
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"]()
    headers = kwargs.pop("headers", ADMIN | JSON)
    assert_error_shape(client.request(method, path, headers=headers, **kwargs), status)


def test_disabled_admin_endpoints_answer_in_the_error_shape(api_clients: Callable[..., TestClient]) -> None:
    disabled = api_clients(admin_token="")
    assert "RAGDECK_ADMIN_TOKEN" in assert_error_shape(disabled.get("/admin/routing", headers=ADMIN), 403)


def test_weight_and_threshold_changes_are_audited(fresh_client: TestClient) -> None:
    client = fresh_client
    log = client.app.state.runtime.audit_log
    sent = {"policy": "B", "weight": 0.25, "reason": "canary at a quarter"}
    assert client.put("/admin/routing/weight", json=sent, headers=ADMIN).status_code == 200
    assert client.put("/admin/routing/weight", json={"policy": "B", "weight": 0.5}, headers=ADMIN).is_success
    weights = audit.entries(action="api.routing.weight", log=log)
    assert [(e.target, e.before, e.after, e.reason) for e in weights] == [
        ("B", 0.25, 0.5, ""),
        ("B", 0.0, 0.25, "canary at a quarter"),
    ]
    assert {e.actor for e in weights} == {"api-admin"} and {e.outcome for e in weights} == {"ok"}

    current = client.get("/admin/routing", headers=ADMIN).json()["thresholds"]
    change = {"p95_ms": 1234.0, "min_samples": 9, "reason": "quieter guard"}
    assert client.put("/admin/routing/thresholds", json=change, headers=ADMIN).status_code == 200
    (entry,) = audit.entries(action="api.routing.thresholds", log=log)
    assert entry.target == "guard" and entry.reason == "quieter guard"
    assert entry.before == {"p95_ms": current["p95_ms"], "min_samples": current["min_samples"]}
    assert entry.after == {"p95_ms": 1234.0, "min_samples": 9.0}
    assert audit.verify(log=log) is None

    refused = client.put("/admin/routing/weight", json={"policy": "Q", "weight": 0.1}, headers=ADMIN)
    assert refused.status_code == 404
    assert len(audit.entries(action="api.routing.weight", log=log)) == 2  # nothing changed, nothing audited
