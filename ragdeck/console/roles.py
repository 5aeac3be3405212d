"""Roles (annotator < engineer < operator), the current user of the CLI, and the permission check.

Public API::

    Role.parse("operator") -> Role.OPERATOR;  user.can(Role.ENGINEER) -> bool
    role_for(name, settings, default=...) -> Role      # the `roles` mapping, else the default
    cli_user(settings) -> User                          # RAGDECK_USER, else the OS user
    PERMISSIONS["index.swap"] -> Role.OPERATOR          # the one table: action -> the role it needs
    allowed(user, "index.swap") -> bool
    require(user, "index.swap", target="rag_chunks", log=log) -> None
        # raises PermissionDenied and appends a "denied" audit entry when the role is too low

The console's user (login or trusted proxy header) comes from ``ragdeck.ui.current_user()``.
"""

from __future__ import annotations

import getpass
import os
from types import MappingProxyType

from ragdeck.console import audit
from ragdeck.console.identity import Role, User
from ragdeck.console.settings import Settings
from ragdeck.errors import PermissionDenied

__all__ = ["PERMISSIONS", "Role", "User", "allowed", "cli_user", "os_user", "require", "role_for"]

_ENGINEER_ACTIONS = (
    "eval.run",  # retrieval / answer runs on the shared stack (CLI, Evaluate page)
    "evalset.publish",  # a new gold version others evaluate against
    "hnsw.sweep",  # temporary copies of a collection, searched many times
    "policy.draft",  # a draft policy from a study, saved or deleted (it changes no live policy)
    "index.gate",  # an eval run of a candidate version
    "slo.targets",
)
_OPERATOR_ACTIONS = (
    "canary.draft",  # a draft's knobs become the canary policy's run-time overrides
    "canary.draft.undo",
    "canary.promote",
    "canary.rollback",
    "canary.thresholds",
    "canary.weight",
    "collection.delete",
    "collection.hnsw",
    "index.delete",
    "index.rebuild",
    "index.rebuild.cleanup",
    "index.rebuild.resume",
    "index.rollback",
    "index.swap",
    "ingest.alias",
    "policy.hnsw_ef",
    "snapshot.create",
    "snapshot.restore",
)
PERMISSIONS: MappingProxyType[str, Role] = MappingProxyType(
    {
        **dict.fromkeys(_ENGINEER_ACTIONS, Role.ENGINEER),
        **dict.fromkeys(_OPERATOR_ACTIONS, Role.OPERATOR),
    }
)
"""Every action that changes shared state or spends shared compute, and the lowest role allowed to do it;
the CLI, the API's console-side actions and the pages all check through it (labelling needs no more than
the annotator role every user has)."""


def needed_role(action: str) -> Role:
    """The role ``action`` needs (a KeyError for an action missing from ``PERMISSIONS`` is a bug)."""
    return PERMISSIONS[action]


def allowed(user: User, action: str) -> bool:
    """Whether ``user`` may do ``action`` (pages use it to disable what would be refused)."""
    return user.can(needed_role(action))


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


def require(user: User, action: str, *, target: str = "", log: audit.AuditLog) -> None:
    """Raise PermissionDenied unless ``user`` has the role ``action`` needs; a refusal is audited first."""
    role = needed_role(action)
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
