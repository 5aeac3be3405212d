"""What the retrieval policies need from outside: ``PolicyOverrideStore``, the policy fields set at run time.

``services.policy_overrides`` satisfies it; ``console.wiring`` builds it and reads it for
``policies.load_policies`` (the domain reads no database); ``hnsw.apply`` writes through it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["PolicyOverrideStore"]


@runtime_checkable
class PolicyOverrideStore(Protocol):
    """Policy fields set at run time, seen by every process's policy loader
    (``services.policy_overrides.PolicyOverrides``, the SQLite state database)."""

    def all(self) -> dict[str, dict[str, Any]]:
        """Policy -> {field: value} for every override."""

    def set(self, policy: str, field: str, value: Any, *, actor: str) -> Any:
        """Set one field of one policy (None: back to unset); returns the previous override, if any."""

    def clear(self, policy: str, field: str) -> None:
        """Remove one override (the TOML value applies again)."""
