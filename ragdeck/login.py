"""Who is using the console: a trusted proxy header, a login (streamlit-authenticator), or the local user.

Order: ``auth_trust_header`` with ``auth_header`` set → the header's user name (a request without the header
gets the login when one is configured, else is refused); ``auth_credentials_file`` set → the login form
(bcrypt-hashed passwords, a signed cookie); neither → the local user (``RAGDECK_USER`` or the OS user) with
``default_role``. Roles come from the ``roles`` setting first, then the credentials file's ``roles`` list,
then ``login_default_role``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
import yaml

from ragdeck.console.roles import Role, User, os_user, role_for
from ragdeck.console.settings import Settings
from ragdeck.errors import ConfigError

COOKIE_NAME = "ragdeck_auth"


def load_credentials(path: Path) -> dict[str, Any]:
    """The credentials file: ``credentials: {usernames: {name: {password, roles, ...}}}`` (+ ``cookie``)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the login credentials file {path}: {exc}") from exc
    users = ((data or {}).get("credentials") or {}).get("usernames") if isinstance(data, dict) else None
    if not isinstance(users, dict) or not users:
        raise ConfigError(
            f"{path} has no users: write `credentials: usernames: <name>: password: <bcrypt hash>` "
            "(hash with `python -c \"import streamlit_authenticator as s; print(s.Hasher.hash('pw'))\"`)"
        )
    return data


def login_role(name: str, settings: Settings, listed: object) -> Role:
    """A logged-in user's role: ``roles`` setting, else the highest in the file's list, else the default."""
    if name in settings.roles:
        return Role.parse(settings.roles[name])
    if isinstance(listed, str):
        listed = [listed]
    if isinstance(listed, list) and listed:
        return max(Role.parse(str(r)) for r in listed)
    return Role.parse(settings.login_default_role)


def _authenticator(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The session's authenticator (built once per session: its cookie component may render only once)."""
    assert settings.auth_credentials_file is not None
    config = load_credentials(settings.auth_credentials_file)
    cookie = config.get("cookie") or {}
    key = settings.auth_cookie_key.get_secret_value() if settings.auth_cookie_key else cookie.get("key")
    if not key:
        raise ConfigError(
            "the login needs a cookie signing secret: set RAGDECK_AUTH_COOKIE_KEY (a long random string)"
        )
    ident = (str(settings.auth_credentials_file), str(key))
    held = st.session_state.get("_ragdeck_authenticator")
    if held is None or held[0] != ident:
        import streamlit_authenticator as stauth

        authenticator = stauth.Authenticate(
            config["credentials"],
            str(cookie.get("name") or COOKIE_NAME),
            str(key),
            float(cookie.get("expiry_days", 1)),
            auto_hash=False,
        )
        held = st.session_state["_ragdeck_authenticator"] = (ident, authenticator)
    return held[1], config["credentials"]["usernames"]


def _login(settings: Settings) -> User:
    authenticator, users = _authenticator(settings)
    if st.session_state.get("authentication_status") is not True:
        authenticator.login(location="main", key="ragdeck-login")
    status = st.session_state.get("authentication_status")
    if status is not True:
        if status is False:
            st.error("Wrong user name or password.", icon="⚠️")
        else:
            st.info("Sign in to use the console.")
        st.stop()
    name = str(st.session_state.get("username"))
    listed = (users.get(name) or {}).get("roles")
    return User(name, login_role(name, settings, listed), "login")


def request_header(name: str) -> str:
    """A header of the request that opened this session ("" when absent)."""
    return st.context.headers.get(name) or ""


def current_user(settings: Settings | None = None) -> User:
    """The console's user for this request; shows the login form and stops the page when needed."""
    settings = settings or Settings()
    if settings.auth_trust_header and settings.auth_header:
        name = request_header(settings.auth_header).strip()
        if name:
            return User(name, role_for(name, settings, settings.login_default_role), "header")
        if settings.auth_credentials_file is None:
            st.error(
                f"No {settings.auth_header} header on this request: open the console through the auth "
                "proxy (or unset RAGDECK_AUTH_TRUST_HEADER).",
                icon="⛔",
            )
            st.stop()
    if settings.auth_credentials_file is not None:
        return _login(settings)
    name = os_user()
    return User(name, role_for(name, settings), "local")


def sidebar_identity(settings: Settings | None = None) -> User:
    """Resolve the user (login first) and show who is signed in, with a logout button after a login."""
    settings = settings or Settings()
    user = current_user(settings)
    with st.sidebar:
        st.caption(f"Signed in as **{user.name}** · {user.role.label}")
        if user.source == "login":
            authenticator, _ = _authenticator(settings)
            # In a callback, so the run that follows the click already sees the user logged out.
            st.button("Log out", key="ragdeck-logout", on_click=authenticator.logout, args=("", "unrendered"))
    return user
