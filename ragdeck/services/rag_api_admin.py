"""The RAG API as the console sees it: its admin routing endpoints and its ``/metrics`` page (httpx).

Every call has explicit timeouts and is tried once: a weight change must not be sent twice behind the
operator's back, and a panel that cannot reach the API says so at once. Failures raise ``ServiceUnavailable``
(no answer, 5xx) or ``ConfigError`` (admin routes off, wrong token) with what to do; a 4xx the API explains
raises ``InputError`` with the API's own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ragdeck.errors import ConfigError, InputError, ServiceUnavailable
from ragdeck.services.http import make_timeout, normalize_base_url
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.types import ComponentHealth, MetricSample

COMPONENT = "RAG API"


class RagApiAdmin:
    """``GET/PUT {base_url}/admin/routing...`` with the bearer token, and ``GET {base_url}/metrics``."""

    def __init__(self, base_url: str, token: str | None, timeout_s: float = 5.0) -> None:
        url = normalize_base_url(
            base_url, "RAGDECK_API_URL", example="http://127.0.0.1:8000", what="the RAG API's http(s) origin"
        )
        self.base_url = url
        self.shown_url = redact_url(url)  # for messages and pages: no password or token
        self._token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=url, timeout=make_timeout(timeout_s), headers=headers, trust_env=False
        )

    # ------------------------------------------------------------------ admin routing

    def routing(self) -> dict[str, Any]:
        """``GET /admin/routing``: control, canary, weights, guard thresholds, recent events, policies."""
        return self._json("GET", "/admin/routing")

    def set_weight(
        self, policy: str, weight: float, reason: str = "", *, actor: str | None = None
    ) -> dict[str, Any]:
        """``PUT /admin/routing/weight`` (``weight`` in 0..1) on behalf of ``actor``; the new routing."""
        body = {"policy": policy, "weight": weight, "reason": reason, "actor": actor}
        return self._json("PUT", "/admin/routing/weight", body)

    def set_thresholds(
        self, values: Mapping[str, float], reason: str = "", *, actor: str | None = None
    ) -> dict[str, Any]:
        """``PUT /admin/routing/thresholds`` with any of p95_ms, error_rate, min_samples, window_s."""
        return self._json("PUT", "/admin/routing/thresholds", {**values, "reason": reason, "actor": actor})

    def assign(self, user_id: str) -> str:
        """The policy the API routes ``user_id`` to right now."""
        return str(self._json("GET", "/admin/routing/assign", params={"user_id": user_id})["policy"])

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> list[MetricSample]:
        """Every sample on ``GET /metrics`` (Prometheus text format), counters with their ``_total`` name."""
        response = self._send("GET", "/metrics")
        try:
            families = list(text_string_to_metric_families(response.text))
        except ValueError as exc:
            raise ServiceUnavailable(
                f"{self.shown_url}/metrics is not in the Prometheus text format ({exc}): check that "
                "RAGDECK_API_URL points at the RAG API"
            ) from exc
        return [MetricSample(s.name, dict(s.labels), float(s.value)) for f in families for s in f.samples]

    def health(self) -> ComponentHealth:
        """Whether ``/healthz`` answers and the admin routes accept the token."""
        try:
            self._send("GET", "/healthz")
        except ServiceUnavailable as exc:
            return ComponentHealth(COMPONENT, "server", False, str(exc), endpoint=self.shown_url)
        try:
            self.routing()
        except (ConfigError, ServiceUnavailable) as exc:
            return ComponentHealth(COMPONENT, "server", False, str(exc), endpoint=self.shown_url)
        return ComponentHealth(COMPONENT, "server", True, "admin routes reachable", endpoint=self.shown_url)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ plumbing

    def _json(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = self._send(method, path, body, params)
        try:
            data = response.json()
        except ValueError as exc:
            raise ServiceUnavailable(
                f"{self.shown_url}{path} did not answer JSON: "
                "check that RAGDECK_API_URL points at the RAG API"
            ) from exc
        if not isinstance(data, dict):
            raise ServiceUnavailable(f"{self.shown_url}{path} answered {type(data).__name__}, not an object")
        return data

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"the RAG API at {self.shown_url} did not answer ({type(exc).__name__}: "
                f"{redact_text(str(exc))}): start it with `ragdeck api serve` or set RAGDECK_API_URL to "
                "where it runs"
            ) from exc
        if response.status_code < 400:
            return response
        try:
            message = str(response.json().get("error") or response.text)
        except (ValueError, AttributeError):
            message = response.text[:300]
        status = response.status_code
        if status == 401:
            raise ConfigError(
                f"the RAG API refused the admin token ({message}): set the console's "
                "RAGDECK_ADMIN_TOKEN to the API's token"
                if self._token
                else "the console has no admin token: set RAGDECK_ADMIN_TOKEN to the RAG API's token"
            )
        if status == 403:
            raise ConfigError(f"the RAG API's admin routes are off ({message})")
        if status >= 500:
            raise ServiceUnavailable(
                f"the RAG API at {self.shown_url} failed {method} {path} ({status}: {message})"
            )
        raise InputError(f"the RAG API refused {method} {path} ({status}): {message}")
