"""The RAG API's ``POST /query`` as one async call for ``ragdeck replay`` (httpx, explicit timeouts).

A replay measures the API as it is, so nothing is retried: every answer, error status, timeout or dropped
connection is reported as it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ragdeck.services.http import make_timeout


@dataclass(frozen=True)
class QueryReply:
    """What one ``POST /query`` came back with.

    ``status`` is the HTTP status, or ``"timeout"`` / ``"connection"`` when no answer came, or
    ``"invalid_response"`` for a 200 whose body is not the API's JSON. ``policy`` and ``no_answer`` come
    from a 200's body (``policy`` is None otherwise).
    """

    status: int | str
    policy: str | None = None
    no_answer: bool = False

    @property
    def ok(self) -> bool:
        """True for a 200 with the API's body."""
        return self.status == 200


class RagApiClient:
    """``POST {target}/query`` with ``{"question", "user_id", "policy"?}``; one pooled async client."""

    def __init__(self, target: str, timeout_s: float = 30.0, max_connections: int = 64) -> None:
        self.url = target.rstrip("/") + "/query"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(timeout=make_timeout(timeout_s), limits=limits, trust_env=False)

    async def __call__(self, question: str, user_id: str, policy: str | None) -> QueryReply:
        """Send one question; never raises for what the server or the network did."""
        body: dict[str, str] = {"question": question, "user_id": user_id}
        if policy is not None:
            body["policy"] = policy
        try:
            response = await self._client.post(self.url, json=body)
        except httpx.TimeoutException:
            return QueryReply("timeout")
        except httpx.TransportError:
            return QueryReply("connection")
        if response.status_code != 200:
            return QueryReply(response.status_code)
        try:
            data = response.json()
            return QueryReply(200, str(data["policy"]), bool(data.get("no_answer", False)))
        except (ValueError, KeyError, TypeError):
            return QueryReply("invalid_response")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
