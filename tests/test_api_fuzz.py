"""Fuzzing the RAG API from its own OpenAPI schema (schemathesis), in process over ASGI (no network), on the
embedded default stack with the demo collection: no request may get a 5xx, and every 4xx must carry the
API's one error body, ``{"error": "<message>"}``.

Every operation is fuzzed with valid data (positive mode) and with data that breaks the schema (negative
mode). Bounded and reproducible: ``MAX_EXAMPLES`` per operation and mode, derandomized, no deadline, no
example database. Admin operations are sent with the admin token, so their bodies are fuzzed rather than
refused at the door (the token itself is tested in test_api_input.py).

The operations are walked in the test (``schema.get_all_operations``) rather than with
``schemathesis.pytest.from_fixture``, whose lazy node ids do not work with pytest 9.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from conftest import API_TOKEN
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 25  # per operation and generation mode
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


def check(case: schemathesis.Case) -> None:
    """Send ``case`` to the app; no 5xx, and a 4xx in the one error shape."""
    response = case.call(headers=ADMIN if case.path.startswith("/admin") else None)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    assert response.status_code < 500, where
    if 400 <= response.status_code < 500:
        body = json.loads(response.text)
        assert isinstance(body, dict) and set(body) == {"error"}, where
        assert isinstance(body["error"], str) and body["error"].strip(), where


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_5xx_and_every_4xx_in_the_one_error_shape(
    shared_api_client: TestClient, mode: schemathesis.GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", shared_api_client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            check(case)

        try:
            fuzz()
        except Unsatisfiable:  # negative mode: an operation without parameters or body has nothing to break
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            continue
        fuzzed.append(operation.label)
    inputs = ("POST /query", "POST /feedback", "GET /admin/routing/assign", "PUT /admin/routing/weight")
    assert {*inputs, "PUT /admin/routing/thresholds"} <= set(fuzzed), fuzzed
