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
from typing import TYPE_CHECKING

from ragdeck.console import audit
from ragdeck.console.identity import Role, User
from ragdeck.console.settings import Settings
from ragdeck.errors import PermissionDenied

__all__ = ["Role", "User", "cli_user", "os_user", "require", "role_for"]

if TYPE_CHECKING:
    from ragdeck.services.audit_log import SqliteAuditLog


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
