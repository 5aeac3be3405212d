"""Secrets never leave the process: URLs, free text and log records made fit to show.

``redact_url`` hides a URL's userinfo (``user:password@`` becomes ``***@``) and the values of its
secret-looking query parameters (``api-key``, ``token``, ``sig``, ...). ``redact_text`` does the same to every
URL inside free text (exception messages embed the full URL), masks ``Authorization`` / ``api-key`` header
values, and replaces known secret values. ``hide_addresses`` goes further for unauthenticated answers: it
says which component is down, never where it lives.

Known secrets are remembered per process (``remember_secrets``; the composition root hands over every
secret of the settings), so that ``redact_text`` and the log redaction (``install_log_redaction``, installed
by the CLI, the API and the console) scrub them wherever they turn up.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from ragdeck.services.types import ComponentHealth

REDACTED = "***"
ADDRESS = "<address>"
# Known secrets shorter than this are not replaced in free text (they would mangle ordinary words).
MIN_SECRET_CHARS = 4

_SECRET_PARAMS = frozenset(
    {"key", "apikey", "token", "accesstoken", "authtoken", "idtoken", "refreshtoken", "sig", "signature",
     "password", "passwd", "pwd", "pass", "secret", "clientsecret", "auth", "authorization", "credential",
     "credentials", "session", "sessionid", "sessiontoken", "securitytoken"}
)  # fmt: skip
_SECRET_SUFFIXES = ("key", "token", "secret", "password", "passwd", "signature", "credential", "credentials")
# A URL in free text; it does not end on the punctuation of the sentence around it.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]")
_USERINFO = re.compile(r"(//)[^/?#\s@]*@")
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|apikey)(['\"]?\s*[:=]\s*['\"]?)"
    r"((?:bearer|basic|token)\s+)?[^\s'\",;}]*[^\s'\",;}.:!?)\]]"
)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()


def is_secret_param(name: str) -> bool:
    """Whether a query parameter holds a credential: ``api-key``, ``access_token``, ``X-Amz-Signature``..."""
    compact = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return compact in _SECRET_PARAMS or compact.endswith(_SECRET_SUFFIXES)


def _mask_params(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, sep, _ = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if sep and is_secret_param(name) else piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """``url`` fit to show: userinfo becomes ``***@`` and secret query (or fragment) values ``***``.

    Everything else is kept as written (host, IPv6 brackets, port, path, ordinary parameters).
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: still never show the userinfo
        return _mask_params(_USERINFO.sub(rf"\1{REDACTED}@", url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    return urlunsplit(
        parts._replace(netloc=netloc, query=_mask_params(parts.query), fragment=_mask_params(parts.fragment))
    )


def url_secrets(url: str | None) -> set[str]:
    """The credentials inside ``url``: its password (else a lone user) and secret query values, as written
    and decoded."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    # The password; a user without one is the credential itself (``https://TOKEN@host``).
    value = userinfo.partition(":")[2] if ":" in userinfo else userinfo
    found.update({value, unquote_plus(value)})
    for text in (parts.query, parts.fragment):
        for piece in text.split("&"):
            name, sep, value = piece.partition("=")
            if sep and is_secret_param(name):
                found.update({value, unquote_plus(value)})
    return {value for value in found if value}


def url_addresses(url: str | None) -> set[str]:
    """Where ``url`` points, for ``hide_addresses``: ``host:port``, and the host when it is an IP address or
    a dotted name (a one-word host such as ``qdrant`` is a service name, not worth mangling text for)."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return set()
    found = {parts.netloc.rpartition("@")[2]}
    if "." in host or ":" in host:
        found |= {host, f"[{host}]"} if ":" in host else {host}
    return {value for value in found if value}


def remember_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values this process holds: ``redact_text`` and the log redaction replace them."""
    global _known
    fresh = {v for v in values if v and len(v) >= MIN_SECRET_CHARS}
    with _lock:
        _known = _known | fresh


def known_secrets() -> frozenset[str]:
    """The secret values remembered so far."""
    return _known


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (an exception message, a log line) fit to show: each URL through ``redact_url``, header
    credentials masked, and every known secret (``secrets`` and the remembered ones) replaced by ``***``."""
    if not text:
        return text
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}", text)
    values = {v for v in secrets if v and len(v) >= MIN_SECRET_CHARS} | _known
    variants = {form for v in values for form in (v, quote(v, safe=""), quote_plus(v)) if form != REDACTED}
    for value in sorted(variants, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def hide_addresses(text: str, addresses: Iterable[str] = ()) -> str:
    """``redact_text(text)`` with every URL and each of ``addresses`` (hosts, ``host:port``) replaced by
    ``<address>``: for unauthenticated answers, which say what is down but not where it lives."""
    text = _URL.sub(ADDRESS, redact_text(text))
    for address in sorted({a for a in addresses if a}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-]){re.escape(address)}(?![\w\-]|\.\w)", ADDRESS, text)
    return text


def redact_health(health: ComponentHealth) -> ComponentHealth:
    """A component's health with its detail and endpoint redacted."""
    return replace(
        health,
        detail=redact_text(health.detail),
        endpoint=redact_url(health.endpoint) if health.endpoint else health.endpoint,
    )


def _scrub_arg(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    clean = redact_text(text)
    return value if clean == text and not isinstance(value, str) else clean


class RedactingFilter(logging.Filter):
    """Scrubs a log record in place: its message, arguments, traceback and stack (see ``redact_text``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _scrub_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_installed = False


def install_log_redaction() -> None:
    """Scrub every log record this process creates (any logger, any handler, uvicorn's included, even
    handlers configured later), by wrapping the record factory with ``RedactingFilter``. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        make_record = logging.getLogRecordFactory()
        scrub = RedactingFilter()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            scrub.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
