"""Stable canary routing: each user id lands in a fixed bucket in [0, 1); buckets below the weight go canary.

The bucket comes from sha256, not Python's ``hash()``: ``hash()`` of a str is salted per process
(PYTHONHASHSEED), so replicas and restarts would disagree and a user would flip between policies.
With a fixed hash every replica routes a user the same way, and raising the weight only moves users
from control to canary (a user in the canary stays there while the weight does not drop below its bucket).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ragdeck.console.online.ports import RoutingState
from ragdeck.errors import InputError, RagdeckError

log = logging.getLogger(__name__)

_SCALE = float(2**64)


def stable_bucket(user_id: str, salt: str = "ragdeck") -> float:
    """A number in [0, 1) fixed for (``salt``, ``user_id``): the first 8 bytes of sha256 over 2**64.

    The same on every process, machine and Python version; a new ``salt`` reshuffles every user.
    """
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True)
class RoutingDecision:
    """The policy a request gets and why: "requested", "canary", "control" or "anonymous"."""

    policy: str
    reason: str


class Router:
    """Chooses control or canary per user, reading the canary weight from the shared ``RoutingState``.

    The weight is re-read at most every ``cache_s`` seconds, so every replica follows a change within
    ``cache_s``; when the state holds no weight for the canary, ``default_weight`` applies. A state that
    cannot be read keeps the last weight seen (or the default) until it answers again.
    """

    def __init__(
        self,
        control: str,
        canary: str,
        state: RoutingState,
        default_weight: float = 0.0,
        cache_s: float = 1.0,
        *,
        known: Iterable[str] | None = None,
        salt: str = "ragdeck",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if control == canary:
            raise InputError(f"control and canary must be different policies, both are '{control}'")
        self.control = control
        self.canary = canary
        self.state = state
        self.default_weight = _clamp(default_weight)
        self.cache_s = cache_s
        self.known = frozenset(known or ()) | {control, canary}
        self.salt = salt
        self._clock = clock
        self._lock = threading.Lock()
        self._weight = self.default_weight
        self._read_at: float | None = None

    def weight(self) -> float:
        """The canary's current share of users (0..1), cached for ``cache_s`` seconds."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.cache_s:
                self._read_at = now
                try:
                    stored = self.state.weights().get(self.canary)
                except (
                    RagdeckError
                ) as exc:  # an unreachable state keeps the last weight, not a failed request
                    log.warning("routing state unreadable, keeping canary weight %.3f: %s", self._weight, exc)
                else:
                    self._weight = self.default_weight if stored is None else _clamp(stored)
            return self._weight

    def refresh(self) -> None:
        """Forget the cached weight: the next request reads the shared state (after a change made here)."""
        with self._lock:
            self._read_at = None

    def choose(self, user_id: str | None, requested: str | None = None) -> RoutingDecision:
        """The policy for one request.

        An explicit ``requested`` policy wins (unknown names raise InputError listing the known ones);
        no user id goes to control ("anonymous"); otherwise canary when ``stable_bucket(user_id) < weight``.
        """
        if requested:
            if requested not in self.known:
                raise InputError(
                    f"unknown policy '{requested}': known policies are {', '.join(sorted(self.known))}"
                )
            return RoutingDecision(requested, "requested")
        if not user_id:
            return RoutingDecision(self.control, "anonymous")
        if stable_bucket(user_id, self.salt) < self.weight():
            return RoutingDecision(self.canary, "canary")
        return RoutingDecision(self.control, "control")


def _clamp(weight: float) -> float:
    return min(1.0, max(0.0, float(weight)))
