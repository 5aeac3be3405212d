"""Secrets never leave: the redactor (URLs, free text, log records) and the settings that hold secrets."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from ragdeck.console.settings import Settings
from ragdeck.services.redact import (
    RedactingFilter,
    hide_addresses,
    install_log_redaction,
    is_secret_param,
    redact_text,
    redact_url,
    remember_secrets,
    url_addresses,
    url_secrets,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # userinfo, whatever its shape, becomes ***@
        ("http://alice:s3cr3t@127.0.0.1:6333", "http://***@127.0.0.1:6333"),
        ("http://:pw@qdrant:6333/x", "http://***@qdrant:6333/x"),
        ("https://TOKEN123@tei/embed", "https://***@tei/embed"),
        ("redis://default:pw@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("http://a%40b:p%3Aw@tei:80", "http://***@tei:80"),
        # IPv6 loopback keeps its brackets and port
        ("http://alice:pw@[::1]:6333/?api_key=x", "http://***@[::1]:6333/?api_key=***"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        # secret-looking query parameters, any case and spelling; others kept as written
        ("http://h/v1?api-key=K&x=1", "http://h/v1?api-key=***&x=1"),
        ("http://h/v1?API-Key=K&Token=T", "http://h/v1?API-Key=***&Token=***"),
        ("http://h/?apikey=1&key=2&access_token=3&password=4", "http://h/?apikey=***&key=***&access_token=***&password=***"),
        ("http://h/?secret=1&sig=2&X-Amz-Signature=3&client_secret=4", "http://h/?secret=***&sig=***&X-Amz-Signature=***&client_secret=***"),
        ("http://h/cb#access_token=T&state=s", "http://h/cb#access_token=***&state=s"),
        # ordinary URLs are left alone (no false positive)
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://qdrant:6333/collections?limit=10&with_payload=true&q=a%20b", "http://qdrant:6333/collections?limit=10&with_payload=true&q=a%20b"),
        # a name ending in key/token/secret is masked: erring on the safe side
        ("http://h/search?keyword=rag&sortkey=1", "http://h/search?keyword=rag&sortkey=***"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_hides_userinfo_even_when_the_url_does_not_parse() -> None:
    shown = redact_url("http://alice:s3cr3t@[::1:6333/?token=abc")
    assert "s3cr3t" not in shown and "abc" not in shown and "alice" not in shown


def test_secret_params() -> None:
    for name in ("api-key", "api_key", "apikey", "key", "token", "access_token", "password", "secret", "sig",
                 "SIG", "Api-Key", "x-api-key", "subscription-key", "X-Amz-Credential"):  # fmt: skip
        assert is_secret_param(name), name
    for name in ("limit", "q", "collection", "with_payload", "model", "keyword", "tokens_max"):
        assert not is_secret_param(name), name


def test_url_secrets_and_addresses() -> None:
    assert url_secrets("http://alice:s3cr3t@[::1]:6333/?api-key=K%2BY&limit=5") == {"s3cr3t", "K%2BY", "K+Y"}
    assert url_secrets("https://TOKEN123@tei") == {"TOKEN123"}
    assert url_secrets("http://127.0.0.1:9/v1") == set() and url_secrets(None) == set()
    assert url_addresses("http://u:p@[::1]:6333/x") == {"[::1]:6333", "::1", "[::1]"}
    assert url_addresses("http://qdrant:6333") == {"qdrant:6333"}  # a one-word host alone is not replaced


def test_redact_text_scrubs_urls_headers_and_known_secrets() -> None:
    error = (
        "ConnectError: GET http://alice:s3cr3t-PASS@127.0.0.1:9/v1/models?api-key=K3Y-SECRET: refused "
        "(e.g. http://127.0.0.1:8088/v1). Headers: Authorization: Bearer BEARER-VALUE, api-key: QK-VAL; "
        '{"x-api-key": "JSON-KEY"} and the key again: LK-SECRET, quoted LK%2DSECRET+x'
    )
    shown = redact_text(error, ["LK-SECRET", "LK%2DSECRET", None, ""])
    for secret in ("s3cr3t-PASS", "alice", "K3Y-SECRET", "BEARER-VALUE", "QK-VAL", "JSON-KEY", "LK-SECRET"):
        assert secret not in shown, (secret, shown)
    assert "GET http://***@127.0.0.1:9/v1/models?api-key=***: refused" in shown
    assert "(e.g. http://127.0.0.1:8088/v1)." in shown  # ordinary URLs and punctuation kept
    assert "Authorization: Bearer ***," in shown
    # a percent-encoded form of a known secret goes too
    assert "s%3Acret" not in redact_text("sent s%3Acret", ["s:cret"])


def test_remembered_secrets_are_scrubbed_everywhere_but_short_ones_are_not() -> None:
    remember_secrets(["REMEMBERED-9f1c", "ab", None])
    assert redact_text("token REMEMBERED-9f1c leaked") == "token *** leaked"
    assert (
        redact_text("ab stays: a short value would mangle words")
        == "ab stays: a short value would mangle words"
    )


def test_hide_addresses_keeps_what_is_down_but_not_where() -> None:
    detail = (
        "embedder (TEI_URL): POST http://***@10.1.2.3:8080/embed could not connect; redis 10.1.2.3:6379 "
        "refused; [::1]:6333 too; 10.1.2.30 is another host"
    )
    shown = hide_addresses(detail, url_addresses("http://10.1.2.3:8080") | url_addresses("http://[::1]:6333"))
    assert shown == (
        "embedder (TEI_URL): POST <address> could not connect; redis <address>:6379 refused; <address> too; "
        "10.1.2.30 is another host"
    )


def test_settings_hold_secrets_as_secret_types_and_never_show_them(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "QDRANT_URL": "http://alice:URL-PASS@127.0.0.1:6333?api-key=URL-KEY",
        "QDRANT_API_KEY": "QDRANT-KEY",
        "LLM_API_KEY": "LLM-KEY",
        "JUDGE_API_KEY": "JUDGE-KEY",
        "RAGDECK_ADMIN_TOKEN": "ADMIN-TOKEN",
        "RAGDECK_AUTH_COOKIE_KEY": "COOKIE-KEY",
        "REDIS_URL": "redis://:REDIS-PASS@127.0.0.1:6379/0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for name in ("qdrant_api_key", "llm_api_key", "judge_api_key", "admin_token", "auth_cookie_key"):
        assert isinstance(getattr(settings, name), SecretStr), name
    assert settings.qdrant_url == env["QDRANT_URL"]  # the adapters still get the URL as configured
    secrets = {"URL-PASS", "URL-KEY", "QDRANT-KEY", "LLM-KEY", "JUDGE-KEY", "ADMIN-TOKEN", "COOKIE-KEY",
               "REDIS-PASS"}  # fmt: skip
    assert settings.secret_values() == secrets
    shown = " ".join((repr(settings), str(settings), settings.model_dump_json(), settings.fingerprint()))
    assert not [s for s in secrets if s in shown], shown
    assert "http://***@127.0.0.1:6333?api-key=***" in repr(settings)
    assert "127.0.0.1:6333" in settings.endpoint_addresses()
    # the cache key of the console changes with a secret, without holding it
    other = Settings(llm_api_key="ANOTHER-KEY")
    assert other.fingerprint() != settings.fingerprint()
    assert Settings().fingerprint() == settings.fingerprint()
    monkeypatch.setenv("QDRANT_URL", env["QDRANT_URL"].replace("URL-PASS", "OTHER-PASS"))
    assert Settings().fingerprint() != settings.fingerprint()


def _emit(logger: logging.Logger, *args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is None:
            logger.warning(*args)
        else:
            try:
                raise exc
            except type(exc):
                logger.exception(*args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_the_log_filter_scrubs_message_arguments_and_tracebacks() -> None:
    logger = logging.getLogger("ragdeck.test.secrets.filter")
    logger.addFilter(RedactingFilter())
    text = _emit(logger, "GET %s failed: %s (%d)", "http://alice:PW-1234@127.0.0.1:9?token=T0K", "x", 7)
    assert text == "WARNING GET http://***@127.0.0.1:9?token=*** failed: x (7)\n"
    text = _emit(logger, "crash", exc=RuntimeError("at http://bob:PW-5678@127.0.0.1:9/v1"))
    assert "PW-5678" not in text and "http://***@127.0.0.1:9/v1" in text and "Traceback" in text


def test_installed_log_redaction_reaches_every_logger_and_handler() -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    remember_secrets(["LOGGED-SECRET-77"])
    logger = logging.getLogger("some.library.without.filters")
    text = _emit(logger, "key %s in %r", "LOGGED-SECRET-77", {"url": "redis://:pw-pw@127.0.0.1:1/0"})
    assert "LOGGED-SECRET-77" not in text and "pw-pw" not in text, text
    # uvicorn's access formatter unpacks record.args: their number and non-string values survive
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/readyz?token=abc", "1.1", 200), None,
    )  # fmt: skip
    assert record.args == ("127.0.0.1:5", "GET", "/readyz?token=abc", "1.1", 200)
    assert record.getMessage() == '127.0.0.1:5 - "GET /readyz?token=abc HTTP/1.1" 200'
