"""Secrets never leave, end to end: credentials in every configured URL and key, every component down
(closed loopback ports); the RAG API (its own process), ``ragdeck stack`` (JSON and table), a CLI error and
the Stack page show which component is down and never a password, token or key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pages import open_page
from servers import free_port, readyz_when_warm, stop, wait_for_port

USER, PASSWORD, QUERY_KEY = "alice", "s3cr3t-PASS", "K3Y-SECRET"
KEYS = {
    "QDRANT_API_KEY": "QDRANT-K3Y-0001",
    "LLM_API_KEY": "LLM-K3Y-0002",
    "JUDGE_API_KEY": "JUDGE-K3Y-0003",
    "RAGDECK_ADMIN_TOKEN": "ADMIN-T0KEN-0004",
}
SECRETS = (PASSWORD, QUERY_KEY, *KEYS.values())
URLS = {  # setting -> path (and how its token parameter is spelled)
    "QDRANT_URL": "?api-key=",
    "TEI_URL": "?api_key=",
    "TEI_RERANK_URL": "/rerank?token=",
    "LLM_BASE_URL": "/v1?api-key=",
    "JUDGE_BASE_URL": "/v1?key=",
    "PROMETHEUS_URL": "?access_token=",
    "RAGDECK_API_URL": "?Token=",
}


@pytest.fixture
def secret_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every URL with ``alice:s3cr3t-PASS@`` and a token parameter, every key set; nothing listens."""
    env = dict(KEYS)
    for name, rest in URLS.items():
        env[name] = f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}{rest}{QUERY_KEY}"
    env["REDIS_URL"] = f"redis://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/0"
    env["RAGDECK_HTTP_RETRIES"] = "0"
    env["RAGDECK_HTTP_TIMEOUT_S"] = "5"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def leaks(text: str) -> list[str]:
    """The secrets (and ``alice:`` / ``alice@`` userinfo) found in ``text``."""
    return [s for s in (*SECRETS, f"{USER}:", f"{USER}@") if s in text]


def ragdeck(*args: str) -> subprocess.CompletedProcess[str]:
    """``ragdeck ARGS`` as its own process with this test's environment; a wide terminal (no wrapping)."""
    exe = Path(sys.executable).parent / "ragdeck"
    env = {**os.environ, "COLUMNS": "2000"}
    return subprocess.run(
        [str(exe), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_no_secret_in_the_api_the_cli_or_their_logs(secret_env: dict[str, str], tmp_path: Path) -> None:
    # ragdeck stack --json: every component down, endpoints shown redacted
    result = ragdeck("stack", "--json")
    assert result.returncode == 1, result.stderr
    assert not leaks(result.stdout + result.stderr), result.stdout + result.stderr
    rows = {row["component"]: row for row in json.loads(result.stdout)}
    assert {"vector store", "embedder", "llm", "reranker"} <= {c for c, r in rows.items() if not r["ok"]}
    qdrant_port = secret_env["QDRANT_URL"].split("@127.0.0.1:")[1].split("?")[0]
    assert rows["vector store"]["endpoint"] == f"http://***@127.0.0.1:{qdrant_port}?api-key=***"
    assert "QDRANT_URL" in rows["vector store"]["detail"]

    # ragdeck stack (the table) and a CLI error line
    table = ragdeck("stack")
    assert table.returncode == 1 and "vector store" in table.stdout and "***@127.0.0.1" in table.stdout
    assert not leaks(table.stdout + table.stderr), table.stdout + table.stderr
    error = ragdeck("collections")
    assert error.returncode == 1 and "error: vector store (QDRANT_URL)" in error.stderr, error.stderr
    assert not leaks(error.stderr), error.stderr

    # the RAG API in its own process: /healthz, /readyz, a /query that fails with 503, and its log
    port, log = free_port(), tmp_path / "api.log"
    exe = Path(sys.executable).parent / "ragdeck"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(exe), "api", "serve", "--port", str(port), "--no-llm", "--log-level", "debug"],
            env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, timeout_s=120)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                healthz = http.get("/healthz")
                readyz = readyz_when_warm(http.get)
                query = http.post("/query", json={"question": "How long does Prometheus keep data?"})
                wrong = http.get("/admin/routing", headers={"Authorization": "Bearer wrong"})
                bearer = {"Authorization": f"Bearer {KEYS['RAGDECK_ADMIN_TOKEN']}"}
                admin = http.get("/admin/routing", headers=bearer)  # Redis is down: fails past the token
        finally:
            stop(proc)
    assert healthz.status_code == 200
    assert readyz.status_code == 503 and query.status_code == 503, (readyz.text, query.text)
    assert wrong.status_code == 401 and admin.status_code not in (401, 403), admin.text  # the token works
    assert {"embedder", "vector store"} <= set(readyz.json()["failed"])
    assert "QDRANT_URL" in query.json()["error"]
    addresses = [
        value.split("@")[1].split("?")[0].split("/")[0] for value in secret_env.values() if "@" in value
    ]
    for body in (healthz.text, readyz.text, query.text, admin.text, wrong.text):
        assert not leaks(body), body
        assert not [a for a in addresses if a in body], body  # unauthenticated: what is down, not where
    logged = log.read_text()
    assert "query failed" in logged and "/readyz" in logged, logged
    assert not leaks(logged), logged


def test_no_secret_on_the_stack_page(secret_env: dict[str, str]) -> None:
    at = open_page().run()
    assert not at.exception, at.exception
    components = at.dataframe[0].value
    assert not components.set_index("component").loc["vector store", "status"].startswith("●")
    rendered = [components.to_csv()]
    for kind in (at.error, at.warning, at.info, at.caption, at.markdown, at.code, at.title, at.subheader):
        rendered += [str(element.value) for element in kind]
    text = "\n".join(rendered)
    assert "***@127.0.0.1" in text and "QDRANT_URL" in text, text
    assert not leaks(text), text
