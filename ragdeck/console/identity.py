"""Who acts: a ``Role`` (annotator < engineer < operator) and a ``User`` with one; no rules, no I/O.

The records that ``roles`` (the permission check) and ``audit`` (who did what) both name; ``roles``
re-exports them, so callers import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ragdeck.errors import ConfigError


class Role(IntEnum):
    """What a user may do; each role may do everything the lower ones may."""

    ANNOTATOR = 1  # label questions, review
    ENGINEER = 2  # run evals, compare, sweep HNSW
    OPERATOR = 3  # rebuild, swap, roll back, snapshot, restore, delete, apply to live

    @property
    def label(self) -> str:
        """The lower-case name used in settings and the audit log."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """A role from its name (any case); raises ConfigError naming the choices."""
        if isinstance(value, Role):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            choices = ", ".join(r.label for r in cls)
            raise ConfigError(f"unknown role {value!r}: use one of {choices}") from None


@dataclass(frozen=True)
class User:
    """Who is acting: name, role and where the identity came from (local, cli, login, header)."""

    name: str
    role: Role
    source: str = "local"

    def can(self, role: Role) -> bool:
        """True when this user's role is ``role`` or higher."""
        return self.role >= role

    def __str__(self) -> str:
        return f"{self.name} ({self.role.label})"
