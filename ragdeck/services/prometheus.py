"""Reads the RAG API's request metrics back from Prometheus (all replicas at once) via prometheus-api-client.

The API exports a histogram ``rag_request_seconds{policy}`` and a counter
``rag_requests_total{policy,status}`` with status ``ok`` / ``error`` / ``rejected``. Rejected requests
(bad input, rate limits) are neither samples nor errors here: the guard judges what the policy served.
Every reader method returns None when Prometheus has no data for the policy and window (no series yet,
or no requests: 0/0).
"""

from __future__ import annotations

import math
import re

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from ragdeck.errors import InputError, ServiceUnavailable
from ragdeck.services.http import normalize_base_url
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.types import ComponentHealth

REQUEST_HISTOGRAM = "rag_request_seconds"
REQUESTS_COUNTER = "rag_requests_total"
SERVED_STATUSES = "ok|error"

_DURATION_RE = re.compile(r"(\d+(ms|s|m|h|d|w|y))+", re.ASCII)
_METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.ASCII)


def promql_window(window: str | float) -> str:
    """A PromQL range duration: seconds (a number) become ``"<n>s"``; a string like ``"5m"`` is checked."""
    if isinstance(window, int | float) and not isinstance(window, bool):
        if not window >= 1:
            raise InputError(f"window must be at least 1 second, got {window!r}")
        return f"{round(window)}s"
    if isinstance(window, str) and _DURATION_RE.fullmatch(window.strip()):
        return window.strip()
    raise InputError(f"window must be seconds or a Prometheus duration such as '5m', got {window!r}")


def label_value(value: str) -> str:
    """``value`` quoted for a PromQL label matcher (backslashes, quotes and newlines escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class PrometheusReader:
    """PromQL reads of the API's latency and error metrics for one policy over a window.

    ``retries`` counts retries of a failed HTTP call (on connection errors and 429/502/503/504), kept low
    because the canary guard reads on the request path. Unreachable Prometheus or a refused query raises
    ServiceUnavailable saying to check PROMETHEUS_URL.
    """

    def __init__(self, url: str, timeout_s: float = 2.0, *, retries: int = 1) -> None:
        url = normalize_base_url(url, "PROMETHEUS_URL", example="http://127.0.0.1:9090")
        self.url = url
        self.endpoint = redact_url(url)  # for messages and the Stack page: no password or token
        self.timeout_s = timeout_s
        self._session = requests.Session()
        retry = Retry(total=retries, backoff_factor=0.2, status_forcelist=[429, 502, 503, 504])
        self._prom = PrometheusConnect(
            url, disable_ssl=True, session=self._session, retry=retry, timeout=timeout_s
        )

    def _unavailable(self, what: str, exc: Exception) -> ServiceUnavailable:
        if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
            reason = "could not connect"
        else:  # the client's text can carry the URL: show it redacted
            reason = f"{type(exc).__name__}: {redact_text(str(exc))}"
        return ServiceUnavailable(
            f"metrics (PROMETHEUS_URL): Prometheus at {self.endpoint} failed {what} ({reason}): check "
            "PROMETHEUS_URL "
            f"and that Prometheus is running and scraping the RAG API"
        )

    def query(self, promql: str) -> float | None:
        """The single value of an instant query; None when the result is empty, NaN or infinite."""
        try:
            result = self._prom.custom_query(promql)
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise self._unavailable(f"the query {promql!r}", exc) from exc
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if math.isfinite(value) else None

    def by_labels(self, promql: str, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        """An instant query's series keyed by the values of ``labels`` (NaN and infinite values left out)."""
        try:
            result = self._prom.custom_query(promql)
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise self._unavailable(f"the query {promql!r}", exc) from exc
        out: dict[tuple[str, ...], float] = {}
        for series in result or []:
            value = float(series["value"][1])
            if math.isfinite(value):
                metric = series.get("metric", {})
                out[tuple(str(metric.get(name, "")) for name in labels)] = value
        return out

    def range_values(self, promql: str, start: float, end: float, step_s: float) -> list[tuple[float, float]]:
        """The first series of a range query as (Unix time, value) points, NaN and infinities left out."""
        from datetime import UTC, datetime

        try:
            result = self._prom.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{max(1, round(step_s))}s",
            )
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise self._unavailable(f"the range query {promql!r}", exc) from exc
        if not result:
            return []
        points = ((float(t), float(v)) for t, v in result[0].get("values", []))
        return [(t, v) for t, v in points if math.isfinite(v)]

    def quantile_ms(self, q: float, metric: str, policy: str, window: str | float) -> float | None:
        """The ``q`` quantile of histogram ``metric`` in milliseconds (``histogram_quantile`` over the
        summed bucket rates: linear interpolation inside the bucket, so exact only to bucket resolution)."""
        if not 0.0 < q < 1.0:
            raise InputError(f"quantile must be between 0 and 1, got {q!r}")
        metric = metric.removesuffix("_bucket")
        if not _METRIC_RE.fullmatch(metric):
            raise InputError(f"invalid metric name {metric!r}")
        rate = f"rate({metric}_bucket{{policy={label_value(policy)}}}[{promql_window(window)}])"
        return self.query(f"histogram_quantile({q}, sum by (le) ({rate})) * 1000")

    def p95_ms(self, metric: str, policy: str, window: str | float) -> float | None:
        """P95 latency in milliseconds of histogram ``metric`` (e.g. rag_request_seconds) for ``policy``."""
        return self.quantile_ms(0.95, metric, policy, window)

    def _increase(self, policy: str, status: str, window: str | float) -> str:
        selector = f"{REQUESTS_COUNTER}{{policy={label_value(policy)},status=~{label_value(status)}}}"
        return f"sum(increase({selector}[{promql_window(window)}]))"

    def error_rate(self, policy: str, window: str | float) -> float | None:
        """errors / (ok + error) over the window (``rag_requests_total``); None when nothing was served."""
        errors = self._increase(policy, "error", window)
        served = self._increase(policy, SERVED_STATUSES, window)
        return self.query(f"({errors} or vector(0)) / {served}")

    def sample_count(self, policy: str, window: str | float) -> int | None:
        """Requests served (ok + error) over the window, rounded (``increase`` extrapolates slightly)."""
        value = self.query(self._increase(policy, SERVED_STATUSES, window))
        return None if value is None else round(value)

    def health(self) -> ComponentHealth:
        """Whether Prometheus answers, with its version from ``/api/v1/status/buildinfo``."""
        try:
            response = self._session.get(f"{self.url}/api/v1/status/buildinfo", timeout=self.timeout_s)
            response.raise_for_status()
            version = response.json().get("data", {}).get("version")
        except (requests.RequestException, ValueError) as exc:
            detail = str(self._unavailable("the health check", exc))
            return ComponentHealth("metrics", "server", False, detail, endpoint=self.endpoint)
        return ComponentHealth(
            "metrics", "server", True, "Prometheus", version=version, endpoint=self.endpoint
        )

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()
