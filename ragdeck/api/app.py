"""The RAG API (FastAPI): `/query`, `/feedback`, `/healthz`, `/readyz`, `/metrics` and admin routing.

Thin: it validates input, calls ``ragdeck.console.answering.service.RagService`` and turns outcomes into
HTTP and metrics.
Bad input always gets a 4xx with a message that says what to fix, never a 500. Every 4xx (and 5xx) body has
one shape, ``{"error": "<what went wrong and what to do>"}`` (``schemas.ErrorBody``), whoever refuses the
request: validation, a body that is not JSON, an unknown route or method, the admin token, the routes.
Changes to the canary weight and the guard's thresholds are written to the audit log.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragdeck.api.metrics import ApiMetrics
from ragdeck.api.runtime import ApiRuntime, acting
from ragdeck.api.schemas import (
    MAX_BODY_BYTES,
    ErrorBody,
    FeedbackRequest,
    QueryRequest,
    Text,
    ThresholdUpdate,
    WeightUpdate,
)
from ragdeck.console import audit
from ragdeck.console.answering.service import ResponseExpired, UnknownResponse
from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.redact import redact_text

log = logging.getLogger("ragdeck.api")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        # Read the whole body first (it is small by contract), so an oversized one is refused before any
        # parsing, with or without a Content-Length header.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(
            {"error": f"request body over {self.limit // 1024} KiB: send a shorter question"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error body: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _http_message(request: Request, exc: StarletteHTTPException) -> str:
    """A message that says what to do for the HTTP errors FastAPI and Starlette raise themselves."""
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return f"no route {method} {path}: see /docs for the API's routes"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return f"{method} is not allowed on {path}" + (f": use {allowed}" if allowed else "")
    if exc.status_code == 400:
        return "the request body could not be read: send UTF-8 JSON with 'Content-Type: application/json'"
    return str(exc.detail) or f"HTTP {exc.status_code}"


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """400 for a body that is not JSON, else 422 naming each bad field."""
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            where = err.get("loc", ("body", 0))[-1]
            return 400, f"malformed JSON at character {where}: {ctx.get('error', 'invalid JSON')}"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "model_attributes_type":
            msg = "the body must be a JSON object"
        elif err.get("type") == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{loc}: {msg}")
    return 422, "; ".join(problems) or "invalid request"


def create_app(runtime: ApiRuntime) -> FastAPI:
    """The FastAPI app over one runtime (service, routing state, metrics, admin token)."""
    service = runtime.service
    metrics = runtime.metrics or ApiMetrics()
    metrics.prime(sorted(service.policies))
    metrics.watch_llm(service.llm_status)
    app = FastAPI(
        title="ragdeck RAG API",
        version="0.1.0",
        description="Answers questions from the indexed corpus with cited contexts.",
        responses={"4XX": {"model": ErrorBody, "description": "The request was refused: `error` says why."}},
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        if request.url.path == "/query":
            metrics.requests.labels("invalid", "rejected").inc()
        return _error(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, _http_message(request, exc), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s crashed", request.method, request.url.path)
        return _error(500, "internal error: see the API's log")

    def require_admin(authorization: str | None = Header(None)) -> None:
        token = runtime.admin_token
        if not token:
            raise _Refused(
                403, "admin endpoints are disabled: set RAGDECK_ADMIN_TOKEN on the API to enable them"
            )
        scheme, _, sent = (authorization or "").strip().partition(" ")
        # RFC 7235: the scheme name is case-insensitive, but it must be there.
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            raise _Refused(
                401,
                "missing or wrong admin token: send 'Authorization: Bearer <RAGDECK_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(_Refused)
    async def _refused(request: Request, exc: _Refused) -> JSONResponse:
        return _error(exc.status, exc.message, headers=exc.headers)

    @app.post("/query")
    def query(body: QueryRequest) -> JSONResponse:
        started = time.perf_counter()
        policy_label = body.policy if body.policy in service.policies else "invalid"
        try:
            outcome = service.query(body.question, user_id=body.user_id, policy=body.policy)
        except InputError as exc:
            metrics.requests.labels(policy_label, "rejected").inc()
            return _error(400, str(exc))
        except Exception as exc:
            routed = getattr(exc, "policy", policy_label)
            metrics.requests.labels(routed, "error").inc()
            _observe_guard(routed, time.perf_counter() - started, ok=False)
            if isinstance(exc, RagdeckError):
                log.warning("query failed: %s", redact_text(str(exc)))
                return _error(503, runtime.public(str(exc)))
            log.exception("query crashed")
            return _error(500, "internal error while answering: see the API's log")
        seconds = time.perf_counter() - started
        policy = outcome.policy
        answer = outcome.answer
        metrics.observe_answer(
            policy,
            outcome.timings_ms,
            outcome.prompt_ctx_tokens,
            outcome.cached,
            model=answer.model if answer.mode == "llm" else None,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            fallback=answer.fallback_reason is not None,
        )
        metrics.request.labels(policy).observe(seconds)
        metrics.requests.labels(policy, "ok").inc()
        if outcome.answer.no_answer:
            metrics.no_answer.labels(policy).inc()
        _observe_guard(policy, seconds, ok=True)
        return JSONResponse(outcome.to_json())

    def _observe_guard(policy: str, seconds: float, ok: bool) -> None:
        verdict = service.observe(policy, seconds, ok)
        if verdict is not None and verdict.tripped:
            metrics.guard_trips.labels(policy).inc()

    @app.post("/feedback")
    def feedback(body: FeedbackRequest) -> JSONResponse:
        try:
            policy = service.feedback_policy(body.response_id, body.vote)
        except ResponseExpired as exc:
            return _error(410, str(exc))
        except UnknownResponse as exc:
            return _error(404, str(exc))
        except InputError as exc:
            return _error(422, str(exc))
        except RagdeckError as exc:
            return _error(503, str(exc))
        try:
            replaced = runtime.record_feedback(body.response_id, policy, body.vote, body.comment)
        except RagdeckError as exc:
            return _error(503, str(exc))
        if replaced != body.vote:  # the counter counts votes cast, a repeated identical vote once
            metrics.feedback.labels(policy, body.vote).inc()
        return JSONResponse({"ok": True, "policy": policy, "vote": body.vote, "replaced": replaced})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        test = runtime.readiness.latest()
        if test is None:
            warming = "not ready: warming up (loading the models, opening the collections); try again"
            body: dict[str, Any] = {"ready": False, "warming": True, "failed": [], "degraded": []}
            return JSONResponse({**body, "checks": [], "error": warming}, status_code=503)
        checks = test.checks
        failed = [c.component for c in checks if not c.ok and not c.degraded]
        body = {
            "ready": not failed,
            "warming": False,
            "failed": failed,
            "degraded": [c.component for c in checks if c.degraded],
            "checked_s_ago": round(time.monotonic() - test.at, 1),
            "warm_up_ms": None if test.warm_ms is None else round(test.warm_ms, 1),
            "checks": [
                {
                    "component": c.component,
                    "ok": c.ok,
                    "degraded": c.degraded,
                    "detail": runtime.public(c.detail),
                    "ms": round(c.ms, 1),
                }
                for c in checks
            ],
        }
        if failed:
            body["error"] = "not ready: " + "; ".join(
                f"{c.component}: {runtime.public(c.detail)}" for c in checks if not c.ok
            )
        return JSONResponse(body, status_code=503 if failed else 200)

    @app.get("/metrics")
    def prometheus_metrics() -> PlainTextResponse:
        for name, weight in runtime.policy_weights().items():
            metrics.policy_weight.labels(name).set(weight)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/admin/routing", dependencies=[Depends(require_admin)])
    def routing() -> dict[str, Any]:
        return runtime.routing_summary()

    @app.get("/admin/routing/assign", dependencies=[Depends(require_admin)])
    def assign(user_id: Annotated[Text, Query(min_length=1, max_length=256)]) -> dict[str, str]:
        decision = service.router.choose(user_id, None)
        return {"user_id": user_id, "policy": decision.policy, "reason": decision.reason}

    @app.put("/admin/routing/weight", dependencies=[Depends(require_admin)])
    def set_weight(body: WeightUpdate) -> JSONResponse:
        if body.policy not in service.policies:
            known = ", ".join(sorted(service.policies))
            return _error(404, f"unknown policy {body.policy!r}: use one of {known}")
        before = runtime.policy_weights().get(body.policy)
        actor = acting(body.actor)
        runtime.routing_state.set_weight(body.policy, body.weight, actor=actor, reason=body.reason)
        service.router.refresh()
        audit.record(
            actor, "api.routing.weight", body.policy, before=before, after=body.weight,
            reason=body.reason, log=runtime.audit_log,
        )  # fmt: skip
        return JSONResponse(runtime.routing_summary())

    @app.put("/admin/routing/thresholds", dependencies=[Depends(require_admin)])
    def set_thresholds(body: ThresholdUpdate) -> JSONResponse:
        values = body.values()
        if not values:
            return _error(422, "send at least one of p95_ms, error_rate, min_samples, window_s")
        current = runtime.routing_summary()["thresholds"]
        actor = acting(body.actor)
        runtime.routing_state.set_thresholds(values, actor=actor)
        audit.record(
            actor, "api.routing.thresholds", "guard", before={k: current.get(k) for k in values},
            after=values, reason=body.reason, log=runtime.audit_log,
        )  # fmt: skip
        return JSONResponse(runtime.routing_summary())

    return app


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
