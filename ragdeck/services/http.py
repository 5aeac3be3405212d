"""HTTP plumbing for remote components: explicit timeouts, one retry policy, TEI-style error bodies.

``request`` / ``request_json`` send one call through an ``httpx.Client`` and retry it (tenacity) on HTTP 429,
any 5xx, timeouts and refused or dropped connections, honouring ``Retry-After``. Other 4xx answers are not
retried. Every failure surfaces as ``ServiceUnavailable`` (``HttpError`` when the server answered) whose
message names the component and its setting (``Source``, e.g. ``embedder (TEI_URL)``), the URL (credentials
redacted: ``services.redact``), the status and the server's own ``error`` text, and says what to do.

``TeiEndpoint`` is what the TEI embedder and reranker share: base URL, client, policy, cached ``/info``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from ragdeck.errors import ConfigError, ServiceUnavailable
from ragdeck.services.redact import redact_text, redact_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MAX_S = 5.0

# Transport failures worth another attempt: the server may be starting, restarting or busy.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.ConnectError,  # refused / unreachable (a restarting container)
    httpx.RemoteProtocolError,  # the server dropped the connection mid-answer
)

_STATUS_HINTS: dict[int, str] = {
    401: "The server wants credentials: check the URL and any auth proxy in front of it.",
    403: "The server refused the request: check the URL and any auth proxy in front of it.",
    404: "No such endpoint: check the base URL (TEI_URL / TEI_RERANK_URL) and that the server is TEI.",
    413: (
        "The request is too large for the server: lower the batch size (RAGDECK_EMBED_BATCH_SIZE) "
        "or raise TEI's --max-client-batch-size / --payload-limit."
    ),
    422: "TEI could not tokenize or parse the request: check the input texts.",
    424: (
        "TEI's model backend failed: check the server logs and that it serves the right kind of model "
        "(an embedding model for /embed, a reranker for /rerank)."
    ),
    429: "TEI is overloaded: send fewer concurrent requests or raise its --max-concurrent-requests.",
}
_SERVER_ERROR_HINT = "The server is failing or restarting: check that it is up and read its logs."


@dataclass(frozen=True)
class Source:
    """Which component a call serves and the setting that names its server, for error messages."""

    component: str  # "embedder", "reranker", "llm", ...
    setting: str  # "TEI_URL", "TEI_RERANK_URL", ...

    def __str__(self) -> str:
        return f"{self.component} ({self.setting})"


def _prefix(source: Source | None) -> str:
    return f"{source}: " if source is not None else ""


def make_timeout(timeout_s: float) -> httpx.Timeout:
    """Explicit timeouts: ``timeout_s`` to read, write or get a pooled connection; connect capped at 5 s."""
    if not timeout_s > 0:
        raise ConfigError(f"HTTP timeout must be positive, got {timeout_s!r}: set RAGDECK_HTTP_TIMEOUT_S.")
    return httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_MAX_S))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one HTTP call.

    ``attempts`` counts the first try (1 = never retry). Waits grow ``backoff_initial_s * 2**n`` up to
    ``backoff_max_s``; a ``Retry-After`` header replaces the wait, capped at ``retry_after_max_s``.
    Retried: HTTP 429, every 5xx, timeouts, refused or dropped connections. ``sleep`` is injectable for tests.
    """

    attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}.")
        if self.backoff_initial_s < 0 or self.backoff_max_s < 0 or self.retry_after_max_s < 0:
            raise ConfigError("RetryPolicy waits must be >= 0 seconds.")

    @classmethod
    def from_retries(cls, retries: int, **kwargs: Any) -> RetryPolicy:
        """A policy with ``retries`` retries after the first attempt (``Settings.http_retries``)."""
        return cls(attempts=max(0, retries) + 1, **kwargs)

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """A single attempt (health probes)."""
        return cls(attempts=1)

    @staticmethod
    def retries_status(status: int) -> bool:
        """True for HTTP statuses worth another attempt: 429 and every 5xx."""
        return status == 429 or 500 <= status <= 599

    def backoff_s(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based) when the server gave no Retry-After."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, attempt - 1))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class HttpError(ServiceUnavailable):
    """A remote component answered with an error status (TEI's ``error`` / ``error_type`` kept)."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int,
        error: str,
        error_type: str | None,
        attempts: int,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.error = error
        self.error_type = error_type
        self.attempts = attempts


def error_body(response: httpx.Response) -> tuple[str, str | None]:
    """The server's error text and type: TEI's ``{"error", "error_type"}``, else the body's start."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, Mapping):
        error = body.get("error") or body.get("message") or body.get("detail")
        if error is not None:
            kind = body.get("error_type") or body.get("type")
            return str(error), (str(kind) if kind is not None else None)
    text = " ".join(response.text.split())[:300]
    return text or response.reason_phrase or "no error message", None


def _http_error(
    method: str, response: httpx.Response, attempts: int, source: Source | None = None
) -> HttpError:
    url = redact_url(str(response.request.url))
    status = response.status_code
    error, error_type = error_body(response)
    kind = f" ({error_type})" if error_type else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    hint = _STATUS_HINTS.get(status) or (_SERVER_ERROR_HINT if status >= 500 else "")
    if source is not None:
        hint = hint.replace("(TEI_URL / TEI_RERANK_URL)", f"({source.setting})")
    message = f"{_prefix(source)}{method} {url} answered HTTP {status}{kind}{tries}: {error}."
    if hint:
        message = f"{message} {hint}"
    return HttpError(message, url=url, status=status, error=error, error_type=error_type, attempts=attempts)


def _transport_error(
    method: str, url: str, exc: httpx.TransportError, attempts: int, source: Source | None = None
) -> ServiceUnavailable:
    tries = f" (tried {attempts} times)" if attempts > 1 else ""
    check = source.setting if source is not None else "TEI_URL / TEI_RERANK_URL"
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        what = "timed out waiting for the answer"
        hint = "Raise RAGDECK_HTTP_TIMEOUT_S, send smaller batches or check the server's load."
    elif isinstance(exc, httpx.TimeoutException):
        what = "timed out connecting"
        hint = f"Check the URL ({check}) and that the server is reachable from here."
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
        hint = f"Check the URL ({check}) and that the server is running."
    else:
        what = f"failed ({type(exc).__name__}: {redact_text(str(exc))})"
        hint = "Check that the server is up and read its logs."
    return ServiceUnavailable(f"{_prefix(source)}{method} {redact_url(url)} {what}{tries}. {hint}")


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, policy.retry_after_max_s)
        return policy.backoff_s(state.attempt_number)

    return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    reason = f"HTTP {exc.response.status_code}" if isinstance(exc, _RetryableStatus) else repr(exc)
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("attempt %d failed (%s); retrying in %.2f s", state.attempt_number, reason, wait)


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    policy: RetryPolicy | None = None,
    timeout: httpx.Timeout | None = None,
    source: Source | None = None,
) -> httpx.Response:
    """Send one request with retries; return the 2xx/3xx response or raise ``ServiceUnavailable``.

    ``HttpError`` (a ``ServiceUnavailable``) when the server answered 4xx/5xx; plain ``ServiceUnavailable``
    after timeouts or connection failures. ``timeout`` overrides the client's for this call; ``source``
    names the component and setting in the message.
    """
    policy = policy or RetryPolicy()
    method = method.upper()
    kwargs: dict[str, Any] = {}
    if json_body is not None:
        kwargs["json"] = json_body
    if timeout is not None:
        kwargs["timeout"] = timeout

    attempts = 0

    def attempt() -> httpx.Response:
        nonlocal attempts
        attempts += 1
        response = client.request(method, url, **kwargs)
        if policy.retries_status(response.status_code):
            raise _RetryableStatus(response)
        return response

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type((_RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS)),
        sleep=policy.sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        response = retrying(attempt)
    except _RetryableStatus as exc:
        raise _http_error(method, exc.response, attempts, source) from None
    except httpx.TransportError as exc:
        raise _transport_error(method, url, exc, attempts, source) from exc
    except httpx.HTTPError as exc:  # e.g. a malformed URL
        check = f" ({source.setting})" if source is not None else ""
        raise ServiceUnavailable(
            f"{_prefix(source)}{method} {redact_url(url)} failed: "
            f"{redact_text(str(exc))}. Check the URL{check}."
        ) from exc
    if response.status_code >= 400:
        raise _http_error(method, response, attempts, source)
    return response


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    policy: RetryPolicy | None = None,
    timeout: httpx.Timeout | None = None,
    source: Source | None = None,
) -> Any:
    """``request`` and decode the JSON answer; a non-JSON answer raises ``ServiceUnavailable``."""
    response = request(
        client, method, url, json_body=json_body, policy=policy, timeout=timeout, source=source
    )
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        start = " ".join(response.text.split())[:120]
        raise ServiceUnavailable(
            f"{_prefix(source)}{method.upper()} {redact_url(url)} answered HTTP {response.status_code} with "
            "something that is not JSON "
            f"({start!r}). Check that the URL points at the right server."
        ) from None


def post_json(client: httpx.Client, url: str, body: Any, **kwargs: Any) -> Any:
    """POST ``body`` as JSON and return the decoded answer (see ``request_json``)."""
    return request_json(client, "POST", url, json_body=body, **kwargs)


def get_json(client: httpx.Client, url: str, **kwargs: Any) -> Any:
    """GET and return the decoded JSON answer (see ``request_json``)."""
    return request_json(client, "GET", url, **kwargs)


def normalize_base_url(
    base_url: str,
    setting: str = "TEI_URL",
    *,
    example: str = "http://127.0.0.1:8080",
    what: str = "an http(s) URL",
) -> str:
    """``base_url`` stripped, without a trailing slash; ConfigError naming ``setting`` (with ``what`` it must
    be and an ``example``) unless it is an http(s) URL. The message shows the URL redacted."""
    url = (base_url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{setting} must be {what} such as {example}, got {redact_url(base_url)!r}.")
    return url


@dataclass
class TeiProbe:
    """Outcome of probing a TEI server's ``/health`` and ``/info``."""

    ok: bool
    detail: str
    info: dict[str, Any] | None = None

    @property
    def version(self) -> str | None:
        """TEI's version from ``/info``."""
        return str(self.info["version"]) if self.info and self.info.get("version") else None

    @property
    def model(self) -> str | None:
        """The served model id from ``/info``."""
        return str(self.info["model_id"]) if self.info and self.info.get("model_id") else None


class TeiEndpoint:
    """One text-embeddings-inference server: base URL, an httpx client with explicit timeouts, the retry
    policy and ``/info`` (fetched once, lazily; ``probe`` refreshes it). Closes only a client it created.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        setting: str = "TEI_URL",
        component: str = "embedder",
    ) -> None:
        self.base_url = normalize_base_url(base_url, setting)
        self.source = Source(component, setting)
        self.shown_url = redact_url(self.base_url)  # for messages and the Stack page
        self.timeout = make_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        self._own_client = client is None
        self.client = client if client is not None else httpx.Client(timeout=self.timeout)
        self._lock = threading.Lock()
        self._info: dict[str, Any] | None = None
        self._info_tried = False

    def url(self, path: str) -> str:
        """Absolute URL of an endpoint path such as ``/embed``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def post(self, path: str, body: Any) -> Any:
        """POST JSON to ``path`` with the retry policy; the decoded answer."""
        return post_json(
            self.client, self.url(path), body, policy=self.retry, timeout=self.timeout, source=self.source
        )

    def info(self) -> dict[str, Any] | None:
        """``/info``, fetched on first use (one attempt); None when the server would not say."""
        with self._lock:
            if not self._info_tried:
                self._info_tried = True
                try:
                    self._info = self._fetch_info()
                except ServiceUnavailable as exc:
                    log.warning(
                        "TEI /info unavailable at %s (%s); using configured batch size", self.shown_url, exc
                    )
            return self._info

    def _fetch_info(self) -> dict[str, Any]:
        info = get_json(
            self.client,
            self.url("/info"),
            policy=RetryPolicy.no_retry(),
            timeout=self.timeout,
            source=self.source,
        )
        if not isinstance(info, dict):
            raise ServiceUnavailable(
                f"{self.source}: GET {redact_url(self.url('/info'))} answered {type(info).__name__}, "
                "not an object."
            )
        return info

    def max_batch(self, configured: int) -> int:
        """Inputs per request: ``configured`` capped by the server's ``max_client_batch_size``."""
        info = self.info()
        server_max = info.get("max_client_batch_size") if info else None
        if isinstance(server_max, int) and server_max > 0:
            return max(1, min(configured, server_max))
        return max(1, configured)

    def model_id(self) -> str | None:
        """The served model's id from ``/info`` (None when unknown)."""
        info = self.info()
        return str(info["model_id"]) if info and info.get("model_id") else None

    def probe(self, expected_model_type: str) -> TeiProbe:
        """Check ``/health`` then refresh ``/info``; ``expected_model_type`` is "embedding" or "reranker".
        Never raises."""
        try:
            request(
                self.client,
                "GET",
                self.url("/health"),
                policy=RetryPolicy.no_retry(),
                timeout=self.timeout,
                source=self.source,
            )
            info = self._fetch_info()
        except ServiceUnavailable as exc:
            return TeiProbe(ok=False, detail=str(exc))
        except Exception as exc:  # health must never raise
            return TeiProbe(ok=False, detail=redact_text(f"{type(exc).__name__}: {exc}"))
        with self._lock:
            self._info, self._info_tried = info, True
        model_type = info.get("model_type")
        kinds = sorted(model_type) if isinstance(model_type, dict) else []
        if kinds and expected_model_type not in kinds:
            return TeiProbe(
                ok=False,
                detail=(
                    f"{self.shown_url} serves {info.get('model_id')} (model type: {'/'.join(kinds)}), but "
                    f"the {self.source.component} needs model type {expected_model_type}: point "
                    f"{self.source.setting} at the right TEI server."
                ),
                info=info,
            )
        detail = (
            f"max {info.get('max_client_batch_size')} inputs/request, "
            f"max {info.get('max_input_length')} tokens/input, dtype {info.get('model_dtype')}"
        )
        return TeiProbe(ok=True, detail=detail, info=info)

    def close(self) -> None:
        """Close the HTTP client if this endpoint created it."""
        if self._own_client:
            self.client.close()
