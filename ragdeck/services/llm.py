"""Chat completions from any OpenAI-compatible server: vLLM in production, llama.cpp (`ragdeck llm serve`)
locally. Satisfies ``ragdeck.console.interfaces.ChatModel``.

Calls go through ``ragdeck.services.http`` (explicit timeouts; retries on 429 / 5xx / timeouts / refused
connections with backoff and ``Retry-After``); failures become ``ServiceUnavailable`` whose message names the
URL and says what to set or start.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from ragdeck.errors import InputError, ServiceUnavailable
from ragdeck.services.http import (
    HttpError,
    RetryPolicy,
    get_json,
    make_timeout,
    normalize_base_url,
    post_json,
)
from ragdeck.services.redact import redact_text, redact_url
from ragdeck.services.types import ChatMessage, ChatResult, ComponentHealth

SETTING = "LLM_BASE_URL"
HEALTH_TIMEOUT_MAX_S = 5.0
_START_HINT = (
    "start a local one with `ragdeck llm serve`, or set LLM_BASE_URL to a running vLLM / OpenAI-compatible "
    "server (e.g. http://127.0.0.1:8088/v1)"
)
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")


def openai_base_url(base_url: str, setting: str = SETTING) -> str:
    """The API root that OpenAI clients expect, always ending in ``/v1``.

    ``http://h:8088``, ``http://h:8088/``, ``http://h:8088/v1/`` and ``http://h:8088/v1/chat/completions`` all
    give ``http://h:8088/v1``; ConfigError unless it is an http(s) URL.
    """
    url = normalize_base_url(base_url, setting)
    for suffix in _ENDPOINT_SUFFIXES:
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    return url if url.endswith("/v1") else f"{url}/v1"


def _server_error_text(error: str) -> str:
    """The message inside an OpenAI-style ``{"error": {"message": ...}}`` body (kept as a dict's repr by
    ``ragdeck.services.http.error_body``); ``error`` unchanged otherwise."""
    if error.startswith("{"):
        try:
            parsed = ast.literal_eval(error)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return error
        if isinstance(parsed, Mapping) and parsed.get("message"):
            return str(parsed["message"])
    return error


class OpenAIChatModel:
    """One OpenAI-compatible chat server (``/v1/chat/completions``, ``/v1/models``).

    ``model`` None means the first model the server lists (asked once, then cached). ``api_key`` is sent as
    ``Authorization: Bearer``; on an injected ``client`` the header is set on that client. Closes only a
    client it created. ``mode``: "server" (vLLM, any remote) or "local" (a llama.cpp server ragdeck started).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        mode: str = "server",
        setting: str = SETTING,
    ) -> None:
        self.setting = setting
        self.base_url = openai_base_url(base_url, setting)
        self.shown_url = redact_url(self.base_url)  # for messages: no password or token
        self.mode = mode
        self.timeout_s = timeout_s
        self.timeout = make_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        self._model = (model or "").strip() or None
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_client = client is None
        if client is None:
            client = httpx.Client(timeout=self.timeout, headers=headers)
        else:
            client.headers.update(headers)
        self.client = client

    # ------------------------------------------------------------------ model names

    @property
    def model_name(self) -> str:
        """The configured model, else the server's first model; ``LLM at <url>`` while the server is down."""
        if self._model:
            return self._model
        try:
            return self.resolve_model(policy=RetryPolicy.no_retry())
        except ServiceUnavailable:
            return f"LLM at {self.shown_url}"

    def resolve_model(self, *, policy: RetryPolicy | None = None) -> str:
        """The model to send: the configured one, else the first of ``/models`` (cached once found)."""
        with self._lock:
            if self._model:
                return self._model
        served = self.models(policy=policy)
        if not served:
            raise ServiceUnavailable(
                f"GET {redact_url(self.url('/models'))} lists no models: check the server's logs, or set "
                "RAGDECK_LLM_MODEL to the model name it serves."
            )
        with self._lock:
            self._model = self._model or served[0]
            return self._model

    def models(self, *, policy: RetryPolicy | None = None) -> list[str]:
        """Ids of the models the server serves (``GET /models``), in its order."""
        url = self.url("/models")
        shown = redact_url(url)
        try:
            body = get_json(self.client, url, policy=policy or self.retry, timeout=self.timeout)
        except ServiceUnavailable as exc:
            raise self._explain(exc, "GET", url) from exc
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list):
            raise ServiceUnavailable(
                f"GET {shown} answered without a model list ({str(body)[:120]!r}): check that {SETTING} "
                "points at an OpenAI-compatible server (vLLM, `ragdeck llm serve`)."
            )
        return [str(item["id"]) for item in data if isinstance(item, Mapping) and item.get("id")]

    # ------------------------------------------------------------------ chat

    def url(self, path: str) -> str:
        """Absolute URL of an API path such as ``/chat/completions``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def chat(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> ChatResult:
        """One non-streamed completion. ``latency_ms`` covers the whole call, retries included; usage is
        what the server reported (0 when it sent none). Raises InputError for no messages or max_tokens < 1,
        ServiceUnavailable when the server fails or answers without choices."""
        if not messages:
            raise InputError("chat needs at least one message")
        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}: set RAGDECK_LLM_MAX_TOKENS")
        model = self.resolve_model()
        url = self.url("/chat/completions")
        body = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        started = time.perf_counter()
        try:
            answer = post_json(self.client, url, body, policy=self.retry, timeout=self.timeout)
        except ServiceUnavailable as exc:
            raise self._explain(exc, "POST", url, model=model) from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self._parse(answer, url, model, latency_ms)

    @staticmethod
    def _parse(answer: Any, url: str, model: str, latency_ms: float) -> ChatResult:
        shown = redact_url(url)
        choices = answer.get("choices") if isinstance(answer, Mapping) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, Mapping) else None
        if not isinstance(message, Mapping):
            raise ServiceUnavailable(
                f"POST {shown} answered without choices ({str(answer)[:160]!r}): check that {SETTING} points "
                "at an OpenAI-compatible chat server (vLLM, `ragdeck llm serve`) and read its logs."
            )
        usage = answer.get("usage") if isinstance(answer.get("usage"), Mapping) else {}
        return ChatResult(
            text=str(message.get("content") or ""),
            model=str(answer.get("model") or model),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            finish_reason=first.get("finish_reason"),
            latency_ms=latency_ms,
        )

    def _explain(
        self, exc: ServiceUnavailable, method: str, url: str, *, model: str | None = None
    ) -> Exception:
        """The same failure, told in LLM terms (which setting to change, what to start)."""
        shown = redact_url(url)
        if isinstance(exc, HttpError):
            error = _server_error_text(exc.error).rstrip(". ")
            tries = f" after {exc.attempts} attempts" if exc.attempts > 1 else ""
            hint = self._hint(exc.status, model)
            message = f"{method} {shown} answered HTTP {exc.status}{tries}: {error}. {hint}"
            return HttpError(
                message,
                url=exc.url,
                status=exc.status,
                error=error,
                error_type=exc.error_type,
                attempts=exc.attempts,
            )
        cause = exc.__cause__
        if isinstance(cause, httpx.ConnectError):
            return ServiceUnavailable(
                f"llm ({self.setting}): could not connect to the LLM server at {self.shown_url}: "
                + (
                    _START_HINT
                    if self.setting == SETTING
                    else f"check {self.setting} and that the server is up"
                )
                + "."
            )
        if isinstance(cause, httpx.ReadTimeout | httpx.WriteTimeout):
            return ServiceUnavailable(
                f"{method} {shown} got no answer within {self.timeout_s:g} s: raise RAGDECK_LLM_TIMEOUT_S, "
                "lower RAGDECK_LLM_MAX_TOKENS or check the server's load."
            )
        if isinstance(cause, httpx.TimeoutException):
            return ServiceUnavailable(
                f"{method} {shown} timed out connecting: check {self.setting} and that the server is "
                "reachable."
            )
        return exc

    def _hint(self, status: int, model: str | None) -> str:
        if status in (401, 403):
            return "The server wants an API key: set LLM_API_KEY to the key it was started with."
        if status == 404:
            what = f"model {model!r} or " if model else ""
            return (
                f"The server does not know this {what}endpoint: check {self.setting} (the API root, usually "
                f"ending in /v1) and RAGDECK_LLM_MODEL against GET {self.url('/models')}."
            )
        if status in (400, 422):
            return (
                "The server refused the request: check RAGDECK_LLM_MODEL and that prompt + "
                "RAGDECK_LLM_MAX_TOKENS fit the model's context length."
            )
        if status == 429:
            return "The server is overloaded: send fewer concurrent requests or add capacity."
        if status >= 500:
            return "The LLM server is failing or restarting: check that it is up and read its logs."
        return ""

    # ------------------------------------------------------------------ health, lifecycle

    def health(self) -> ComponentHealth:
        """Probe ``/models`` once (short timeout); never raises. Not ok when the configured model is not
        among the served ones."""
        policy = RetryPolicy.no_retry()
        short = make_timeout(min(self.timeout_s, HEALTH_TIMEOUT_MAX_S))
        url = self.url("/models")
        shown = redact_url(url)
        base = ComponentHealth(component="llm", mode=self.mode, ok=False, endpoint=self.shown_url)
        try:
            body = get_json(self.client, url, policy=policy, timeout=short)
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, list):
                raise ServiceUnavailable(f"GET {shown} answered without a model list: is this an OpenAI API?")
            served = [str(d["id"]) for d in data if isinstance(d, Mapping) and d.get("id")]
        except ServiceUnavailable as exc:
            base.detail = str(self._explain(exc, "GET", url))
            base.model = self._model
            return base
        except Exception as exc:  # health must never raise
            base.detail = redact_text(f"{type(exc).__name__}: {exc}")
            base.model = self._model
            return base
        if not served:
            base.detail = f"{shown} lists no models: read the server's logs"
            return base
        if self._model and self._model not in served:
            base.model = self._model
            base.detail = (
                f"model {self._model!r} is not served here (served: {', '.join(served)}): "
                "set RAGDECK_LLM_MODEL to one of them"
            )
            return base
        with self._lock:
            self._model = self._model or served[0]
        base.ok, base.model = True, self._model
        base.detail = f"serves {', '.join(served)}"
        return base

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.shown_url!r}, model={self._model!r}, mode={self.mode!r})"


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
