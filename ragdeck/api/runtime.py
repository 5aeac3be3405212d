"""What one API process holds, built once from settings: the stack, the service, shared state, metrics."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ragdeck.api.metrics import ApiMetrics
from ragdeck.api.readiness import Readiness
from ragdeck.console.answering.service import RESPONSE_TTL_S, RagService
from ragdeck.console.audit import AuditLog
from ragdeck.console.interfaces import Embedder, FeedbackLog
from ragdeck.console.online.ports import RoutingState
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_audit_log, build_feedback_log, build_rag_service, build_stack
from ragdeck.services.redact import hide_addresses, install_log_redaction

log = logging.getLogger("ragdeck.api")

ADMIN_ACTOR = "api-admin"  # who the audit log and routing events name for a change made with the admin token


def acting(named: str | None) -> str:
    """Who a change made with the admin token is recorded as: the name the caller gives (the console sends
    its signed-in user), marked as said by the token's holder, else the token itself."""
    return f"{named} via {ADMIN_ACTOR}" if named else ADMIN_ACTOR


PRUNE_EVERY_S = 3600.0  # votes past the retention are deleted at most this often


@dataclass
class ApiRuntime:
    """One API process: the service and what the admin endpoints and ``/metrics`` read."""

    settings: Settings
    stack: Stack
    service: RagService
    routing_state: RoutingState
    feedback_log: FeedbackLog
    audit_log: AuditLog
    readiness: Readiness
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    _pruned_at: float = field(default=float("-inf"), repr=False)
    _prune_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def admin_token(self) -> str | None:
        """The admin bearer token, or None when admin endpoints are disabled."""
        token = self.settings.admin_token
        return token.get_secret_value() if token else None

    def public(self, text: str) -> str:
        """``text`` fit for an unauthenticated answer: no secret and no server address."""
        return hide_addresses(text, self.settings.endpoint_addresses())

    def policy_weights(self) -> dict[str, float]:
        """Share of users per policy right now (control gets what the canary does not)."""
        router = self.service.router
        weight = router.weight()
        weights = dict.fromkeys(self.service.policies, 0.0)
        weights[router.canary] = weight
        weights[router.control] = 1.0 - weight
        return weights

    def routing_summary(self) -> dict[str, Any]:
        """What ``GET /admin/routing`` shows: policies, weights, guard thresholds and recent events."""
        guard = self.service.guard
        return {
            "control": self.service.router.control,
            "canary": self.service.router.canary,
            "weights": self.policy_weights(),
            # read from the shared state, not the guard's cache, so a change just made shows at once
            "thresholds": guard.thresholds.merged(self.routing_state.thresholds()).as_dict() if guard else {},
            "events": self.routing_state.events(20),
            "policies": {name: policy.as_dict() for name, policy in self.service.policies.items()},
        }

    def record_feedback(self, response_id: str, policy: str, vote: str, comment: str | None) -> str | None:
        """Keep the vote on ``response_id`` in the state store, replacing an earlier one (returned, else
        None); votes older than the retention (``RESPONSE_TTL_S``) are pruned now and then."""
        replaced = self.feedback_log.add(response_id, policy, vote, comment)
        now = time.monotonic()
        with self._prune_lock:
            due = now - self._pruned_at >= PRUNE_EVERY_S
            if due:
                self._pruned_at = now
        if due:
            pruned = self.feedback_log.prune(RESPONSE_TTL_S)
            if pruned:
                log.info("pruned %d votes older than %d days", pruned, RESPONSE_TTL_S // 86400)
        return replaced

    def close(self) -> None:
        """Release the store, state and connections."""
        self.readiness.stop()
        self.feedback_log.close()
        self.stack.close()


def runtime_over(settings: Settings, stack: Stack, *, warm: bool = True) -> ApiRuntime:
    """An API runtime over an existing ``stack`` (the console hosting the API shares its store handle);
    it starts warming up at once (``Readiness``), or when the caller calls ``readiness.start()`` if not
    ``warm``."""
    service, state = build_rag_service(settings, stack)
    runtime = ApiRuntime(
        settings=settings,
        stack=stack,
        service=service,
        routing_state=state,
        feedback_log=build_feedback_log(settings),
        audit_log=build_audit_log(settings),
        readiness=Readiness(service, settings.ready_refresh_s),
    )
    if warm:
        runtime.readiness.start()
    return runtime


def build_runtime(
    settings: Settings | None = None, *, embedder: Embedder | None = None, warm: bool = True
) -> ApiRuntime:
    """Wire the API from settings (default ``Settings()``); ``embedder`` replaces the configured one;
    ``warm``: start warming up now (else on ``readiness.start()``)."""
    install_log_redaction()
    settings = settings or Settings()
    stack = build_stack(settings)
    if embedder is not None:
        stack.use_embedder(embedder)
    try:
        runtime = runtime_over(settings, stack, warm=warm)
    except Exception:
        stack.close()
        raise
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from ragdeck.api.tracing import setup_tracing

        setup_tracing("ragdeck-api")
    return runtime
