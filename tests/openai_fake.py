"""A fake OpenAI-compatible chat server for tests (the shapes vLLM and llama.cpp's server speak).

``POST /v1/chat/completions`` -> ``{"id", "object": "chat.completion", "model", "choices": [{"index",
"message": {"role": "assistant", "content"}, "finish_reason"}], "usage": {"prompt_tokens",
"completion_tokens", "total_tokens"}}``; ``GET /v1/models`` -> ``{"object": "list", "data": [{"id", ...}]}``;
errors as OpenAI's ``{"error": {"message", "type", "param", "code"}}``.

The answer is deterministic: ``echo: <last user message>`` cut to ``max_tokens`` words (one word = one
token; finish_reason "length" when cut). Knobs: fail the next N requests with a status (optionally with
``Retry-After``), a delay, malformed answers (no choices, not JSON), a required API key, the served models,
a scripted reply (``reply``: request body -> the assistant's content, instead of the echo).
Every request is recorded (path, Authorization header, body).

``run_fake_openai(**state)`` serves it with uvicorn on 127.0.0.1 and a free port in a background thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    429: "RateLimitError",
}


@dataclass
class Fault:
    """One injected failure."""

    status: int
    retry_after: str | None = None
    paths: tuple[str, ...] = (CHAT,)


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    authorization: str | None
    body: dict[str, Any] | None


@dataclass
class FakeOpenAIState:
    """Configuration, knobs and the request log of one fake server (thread-safe)."""

    models: list[str] = field(default_factory=lambda: ["fake-chat-1", "fake-chat-2"])
    api_key: str | None = None  # when set, requests must carry "Authorization: Bearer <api_key>"
    delay_s: float = 0.0
    malformed: str | None = None  # "no_choices" | "empty_choices" | "not_json" | "no_usage"
    reply: Callable[[dict[str, Any]], str] | None = None  # scripted content; None = the echo
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def fail_next(
        self, n: int, status: int = 503, *, retry_after: str | None = None, paths: tuple[str, ...] = (CHAT,)
    ) -> None:
        """Answer the next ``n`` requests to ``paths`` with ``status`` (maybe with a Retry-After header)."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after, paths) for _ in range(n))

    def reset(self) -> None:
        """Clear faults, delay, malformed mode, auth and the request log (served models stay)."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.delay_s = 0.0
            self.malformed = None
            self.api_key = None
            self.reply = None

    def count(self, path: str) -> int:
        """Requests received on ``path`` (failed ones too)."""
        with self.lock:
            return sum(1 for r in self.requests if r.path == path)

    def last(self, path: str = CHAT) -> Recorded:
        """The latest request on ``path``."""
        with self.lock:
            return [r for r in self.requests if r.path == path][-1]

    def _record(self, path: str, authorization: str | None, body: dict[str, Any] | None) -> Fault | None:
        with self.lock:
            self.requests.append(Recorded(path, authorization, body))
            if self.faults and path in self.faults[0].paths:
                return self.faults.popleft()
            return None


def openai_error(status: int, message: str, **headers: str) -> Response:
    """An OpenAI-style error body with ``status``."""
    body = {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "InternalServerError"),
            "param": None,
            "code": status,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers or None)


def reply_for(body: dict[str, Any]) -> tuple[str, int, int, str]:
    """The fake's answer to a chat body: text, prompt tokens, completion tokens, finish reason."""
    messages = body.get("messages") or []
    prompt_tokens = sum(len(str(m.get("content", "")).split()) + 1 for m in messages)
    last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    words = ["echo:", *last_user.split()]
    limit = int(body.get("max_tokens") or 16)
    cut = words[:limit]
    return " ".join(cut), prompt_tokens, len(cut), "length" if len(words) > limit else "stop"


def create_app(state: FakeOpenAIState) -> FastAPI:
    """The fake app; handlers are sync so a delay blocks only a threadpool worker."""
    app = FastAPI()

    def gate(path: str, request: Request, body: dict[str, Any] | None) -> Response | None:
        auth = request.headers.get("authorization")
        fault = state._record(path, auth, body)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return openai_error(fault.status, f"injected failure {fault.status}", **headers)
        if state.api_key is not None and auth != f"Bearer {state.api_key}":
            return openai_error(401, "Incorrect API key provided.")
        if state.delay_s > 0:
            state.stop.wait(state.delay_s)
        return None

    @app.get(MODELS)
    def models(request: Request) -> Response:
        if (answer := gate(MODELS, request, None)) is not None:
            return answer
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "fake"} for m in state.models]
        return JSONResponse({"object": "list", "data": data})

    @app.post(CHAT)
    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return openai_error(400, "Request body is not JSON.")
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_chat, request, body)

    def _chat(request: Request, body: dict[str, Any]) -> Response:
        if (answer := gate(CHAT, request, body)) is not None:
            return answer
        model = body.get("model")
        if model not in state.models:
            return openai_error(404, f"The model `{model}` does not exist.")
        if not body.get("messages"):
            return openai_error(400, "messages must not be empty.")
        if state.malformed == "not_json":
            return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=200)
        text, prompt_tokens, completion_tokens, finish = reply_for(body)
        if state.reply is not None:
            text, finish = state.reply(body), "stop"
        answer: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if state.malformed == "no_choices":
            del answer["choices"]
        elif state.malformed == "empty_choices":
            answer["choices"] = []
        elif state.malformed == "no_usage":
            del answer["usage"]
        return JSONResponse(answer)

    return app


@dataclass
class FakeOpenAI:
    """A running fake server: its API root (``.../v1``), origin and state."""

    url: str
    origin: str
    state: FakeOpenAIState


@contextmanager
def run_fake_openai(**state: Any) -> Iterator[FakeOpenAI]:
    """Serve the fake on 127.0.0.1:<free port> in a background thread; stop it on exit.

    ``state`` sets ``FakeOpenAIState`` fields (``models=[...]``, ``api_key="k"``, ...).
    """
    fake_state = FakeOpenAIState(**state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(fake_state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        origin = f"http://127.0.0.1:{port}"
        yield FakeOpenAI(url=f"{origin}/v1", origin=origin, state=fake_state)
    finally:
        fake_state.stop.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
