"""What live traffic needs from outside: ``RoutingState`` (canary weights, guard thresholds and events shared
by every API replica), ``RoutingAdmin`` (the RAG API's admin endpoints, for the canary controls) and
``DraftStore`` (draft policies from studies and their applications to a policy).

``services.routing_state``, ``services.rag_api_admin`` and ``services.policy_drafts`` satisfy them;
``console.wiring`` builds them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ragdeck.services.types import MetricSample

__all__ = ["DraftStore", "RoutingAdmin", "RoutingState"]


@runtime_checkable
class RoutingState(Protocol):
    """Canary weights, guard thresholds and guard events, shared by every API replica (Redis or SQLite)."""

    mode: str  # "sqlite" | "redis"

    def weights(self) -> dict[str, float]:
        """Policy name -> routing weight (share of users, 0..1) as last set; empty when never set."""

    def set_weight(self, policy: str, weight: float, *, actor: str, reason: str = "") -> None:
        """Set one policy's weight and record who did it and why."""

    def thresholds(self) -> dict[str, float]:
        """Guard thresholds by name (e.g. p95_ms, error_rate, min_samples, window_s); empty when never set."""

    def set_thresholds(self, values: dict[str, float], *, actor: str) -> None:
        """Update some thresholds (others keep their value)."""

    def record_event(
        self, kind: str, *, policy: str = "", actor: str, reason: str = "", **data: object
    ) -> None:
        """Append an event (e.g. kind "guard_trip") to the shared log."""

    def events(self, limit: int = 50) -> list[dict[str, object]]:
        """Recent weight changes and guard trips, newest first (each a dict with ts, kind, policy, ...)."""


@runtime_checkable
class RoutingAdmin(Protocol):
    """The RAG API's admin routing endpoints and its ``/metrics`` (``services.rag_api_admin.RagApiAdmin``)."""

    base_url: str
    shown_url: str  # base_url fit to show (no password or token)

    def routing(self) -> dict[str, Any]:
        """Control and canary names, weights, guard thresholds, recent events and policies."""

    def set_weight(
        self, policy: str, weight: float, reason: str = "", *, actor: str | None = None
    ) -> dict[str, Any]:
        """Set a policy's share of users (0..1) on every replica for ``actor``; the new routing summary."""

    def set_thresholds(
        self, values: dict[str, float], reason: str = "", *, actor: str | None = None
    ) -> dict[str, Any]:
        """Change some of the guard's thresholds for ``actor``; returns the new routing summary."""

    def assign(self, user_id: str) -> str:
        """The policy the API routes ``user_id`` to right now."""

    def metrics(self) -> list[MetricSample]:
        """Every sample the API exports on ``/metrics``."""


@runtime_checkable
class DraftStore(Protocol):
    """Draft policies and each time one became a policy's overrides (``services.policy_drafts``): rows as
    dicts (draft: name, knobs, study_id, summary, created_by, created_at; application: id, draft,
    study_id, policy, knobs, previous, applied_by, applied_at, undone_by, undone_at)."""

    def put(
        self, name: str, knobs: dict[str, Any], study_id: str | None, summary: dict[str, Any], created_by: str
    ) -> dict[str, Any]:
        """Save a draft (replacing one of the same name); returns the stored row."""

    def get(self, name: str) -> dict[str, Any] | None:
        """One draft, or None."""

    def list(self) -> list[dict[str, Any]]:
        """Every draft, newest first."""

    def delete(self, name: str) -> bool:
        """Remove a draft; False when there was none."""

    def record_application(
        self,
        *,
        draft: str,
        study_id: str | None,
        policy: str,
        knobs: dict[str, Any],
        previous: dict[str, Any],
        actor: str,
    ) -> int:
        """Note a draft's knobs became a policy's overrides (``previous``: what those fields held)."""

    def standing(self, policy: str) -> dict[str, Any] | None:
        """The newest application to ``policy`` not undone yet, or None."""

    def mark_undone(self, application_id: int, actor: str) -> bool:
        """Mark an application undone; False when it already was."""
