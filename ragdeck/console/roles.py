"""Roles (annotator < engineer < operator), the current user of the CLI, and the permission check.

Public API::

    Role.parse("operator") -> Role.OPERATOR;  user.can(Role.ENGINEER) -> bool
    role_for(name, settings, default=...) -> Role      # the `roles` mapping, else the default
    cli_user(settings) -> User                          # RAGDECK_USER, else the OS user
    require(user, Role.OPERATOR, "index.swap", target="rag_chunks") -> None
        # raises PermissionDenied and appends a "denied" audit entry when the role is too low

The console's user (login or trusted proxy header) comes from ``ragdeck.ui.current_user()``.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from ragdeck.console import audit
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError, PermissionDenied

if TYPE_CHECKING:
    from ragdeck.services.audit_log import SqliteAuditLog


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


def role_for(name: str, settings: Settings, default: str | Role | None = None) -> Role:
    """The role of ``name`` in ``settings.roles``, else ``default`` (``settings.default_role`` if None)."""
    if name in settings.roles:
        return Role.parse(settings.roles[name])
    return Role.parse(settings.default_role if default is None else default)


def os_user() -> str:
    """``RAGDECK_USER`` when set, else the operating-system user name."""
    name = os.environ.get("RAGDECK_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "local"


def cli_user(settings: Settings | None = None) -> User:
    """The user running the CLI: ``RAGDECK_USER`` or the OS user, with their role from ``roles``."""
    settings = settings or Settings()
    name = os_user()
    return User(name, role_for(name, settings), "cli")


def require(
    user: User,
    role: Role,
    action: str,
    *,
    target: str = "",
    log: SqliteAuditLog | None = None,
) -> None:
    """Raise PermissionDenied unless ``user`` has ``role``; a refusal is written to the audit log first."""
    if user.can(role):
        return
    audit.record(
        user,
        action,
        target,
        reason=f"needs role {role.label}, has {user.role.label}",
        outcome="denied",
        log=log,
    )
    raise PermissionDenied(
        f"{user.name} has role {user.role.label}; '{action}' needs {role.label}: ask an operator to "
        f"do it, or to give you the role (setting `roles`, or `roles` in the login credentials file)"
    )
