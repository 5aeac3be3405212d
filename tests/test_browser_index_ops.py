"""Index Ops end to end in headless Chromium: rebuild with a new chunk size, a gate no build can pass (red,
audited as failed), a gate that passes, swap, roll back; with the login on, an operator's rollback shows in
the page's audit log under the signed-in name with the reason."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest
from console_process import running_console
from index_helpers import small_corpus, small_evalset
from test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, _require_browser

from ragdeck.console import audit
from ragdeck.console.evalsets.io import write_jsonl
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_audit_log
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def small_data(data_dir: Path, tmp_path: Path, local_embedder) -> tuple[Path, Path]:
    """v1 of a small corpus live behind rag_chunks and an eval set published for it: (corpus, data dir)."""
    corpus = small_corpus(tmp_path / "corpus")
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:
        ingest(corpus, store, local_embedder, collection="rag_chunks_v1", alias="rag_chunks")
    write_jsonl(small_evalset(), Path("eval_sets") / "small.jsonl")
    return corpus, data_dir


@pytest.fixture
def small_console(small_data: tuple[Path, Path], tmp_path: Path):
    with running_console(tmp_path) as url:
        yield url, *small_data


def _set(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    _idle(page)


def _audit_export(page, **filtered: str) -> list[dict[str, str]]:
    """The rows the page's audit log shows, read from its CSV export once the filters just set have
    applied (every row has the ``filtered`` column values; a filter's rerun can start after the page
    looked idle), or as they are after a minute."""
    deadline = time.monotonic() + 60
    while True:
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        applied = all(row[column] == value for row in rows for column, value in filtered.items())
        if (rows and applied) or time.monotonic() > deadline:
            return rows
        _idle(page)


def _pick(page, label: str, option: str) -> None:
    page.locator("[data-testid=stSelectbox]").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    _idle(page)


def test_rebuild_gate_swap_rollback_in_chromium(small_console, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    url, corpus, data_dir = small_console
    aliases = data_dir / "qdrant" / "aliases.json"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(url)
        # app.py's navigation replaces the first-paint page list once it has run: click only after that
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=90_000)
        page.get_by_role("link", name="Index Ops", exact=True).click()
        expect(page.get_by_role("heading", name="Index Ops")).to_be_visible(timeout=90_000)
        _idle(page)

        page.get_by_text("Rebuild a shadow version").click()
        _set(page, "Corpus folder", str(corpus))
        _set(page, "Min chunk chars", "250")
        _set(page, "Max chunk chars", "700")
        page.get_by_role("button", name="Rebuild", exact=True).click()
        expect(page.get_by_text("Built rag_chunks_v2")).to_be_visible(timeout=180_000)
        assert json.loads(aliases.read_text()) == {"rag_chunks": "rag_chunks_v1"}  # the shadow is not live

        _set(page, "Thresholds (optional)", "doc_hit_rate@1>1")  # no build can reach it
        page.get_by_role("button", name="Run gate").click()
        red = page.locator("[data-testid=stAlertContentError]").filter(
            has_text="Gate of rag_chunks_v2 failed"
        )
        expect(red.first).to_be_visible(timeout=180_000)
        expect(red.first).to_contain_text("doc_hit_rate@1")
        green = page.locator("[data-testid=stAlertContentSuccess]").filter(has_text="Gate of")
        expect(green).to_have_count(0)
        _idle(page)
        _pick(page, "Outcome", "failed")
        (failed,) = _audit_export(page, outcome="failed")
        assert (failed["action"], failed["target"], failed["outcome"]) == (
            "index.gate",
            "rag_chunks_v2",
            "failed",
        )
        assert "doc_hit_rate@1" in failed["after"]
        _pick(page, "Outcome", "any")
        _set(page, "Thresholds (optional)", "")

        _set(page, "Max drop of a headline metric vs live", "1.00")
        page.get_by_role("button", name="Run gate").click()
        expect(page.get_by_text("Gate of rag_chunks_v2 passed.")).to_be_visible(timeout=180_000)

        page.get_by_label("Reason", exact=True).fill("smaller chunks: 250-700 characters")
        page.get_by_role("button", name="Swap", exact=True).click()
        expect(page.get_by_text("rag_chunks: rag_chunks_v1 → rag_chunks_v2.")).to_be_visible(timeout=90_000)
        assert json.loads(aliases.read_text()) == {"rag_chunks": "rag_chunks_v2"}
        _idle(page)
        page.screenshot(path=str(tmp_path / "index_ops.png"), full_page=True)
        if os.environ.get("RAGDECK_SCREENSHOT_INDEX_OPS"):  # refresh the README picture
            page.screenshot(path=os.environ["RAGDECK_SCREENSHOT_INDEX_OPS"], full_page=False)

        _set(page, "Rollback reason", "answers got worse")
        page.get_by_text("Yes, point rag_chunks back at rag_chunks_v1 now").click()
        _idle(page)
        page.get_by_role("button", name="Roll back to rag_chunks_v1").click()
        expect(page.get_by_text("Rolled back: rag_chunks: rag_chunks_v2 → rag_chunks_v1.")).to_be_visible(
            timeout=90_000
        )
        assert json.loads(aliases.read_text()) == {"rag_chunks": "rag_chunks_v1"}
        text = page.inner_text("body")
        assert "Traceback" not in text
        browser.close()
    actions = [(e.action, e.outcome) for e in audit.entries(log=build_audit_log(Settings()))][:6]
    assert actions == [
        ("index.rollback", "ok"),
        ("index.swap", "ok"),
        ("index.gate", "ok"),
        ("index.gate", "failed"),
        ("index.rebuild", "ok"),
        ("index.rebuild.start", "ok"),
    ]


def test_login_then_an_engineer_is_refused_a_swap_in_chromium(
    small_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_browser()
    import streamlit_authenticator as stauth
    from playwright.sync_api import expect, sync_playwright

    from ragdeck.console.settings import Settings
    from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore as Store

    corpus, data_dir = small_data
    hashed = stauth.Hasher.hash("pw-for-ed")
    creds = tmp_path / "users.yaml"
    creds.write_text(
        f"credentials:\n  usernames:\n    ed:\n      password: '{hashed}'\n      roles: [engineer]\n"
    )
    monkeypatch.setenv("RAGDECK_AUTH_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("RAGDECK_AUTH_COOKIE_KEY", "a-test-signing-key-" + "x" * 24)
    with Store(data_dir / "qdrant") as store:  # a second version, so there is something to swap to
        ingest(corpus, store, _embedder(), collection="rag_chunks_v2")
    with running_console(tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(url)
        expect(page.get_by_text("Sign in to use the console.")).to_be_visible(timeout=90_000)
        assert "Stack" not in page.inner_text("[data-testid=stMain]")  # no page before the login
        page.get_by_role("textbox", name="Username").fill("ed")
        page.get_by_role("textbox", name="Password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible(timeout=60_000)
        page.get_by_role("textbox", name="Username").fill("ed")
        page.get_by_role("textbox", name="Password").fill("pw-for-ed")
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
        page.get_by_role("link", name="Index Ops", exact=True).click()
        expect(page.get_by_role("heading", name="Index Ops")).to_be_visible(timeout=90_000)
        _idle(page)
        page.get_by_label("Reason", exact=True).fill("let me")
        page.get_by_text("Override a failed or missing gate").click()
        _idle(page)
        page.get_by_role("button", name="Swap", exact=True).click()
        expect(page.get_by_text("ed has role engineer")).to_be_visible(timeout=60_000)
        browser.close()
    with Store(Settings().qdrant_dir) as store:
        assert store.resolve("rag_chunks") == "rag_chunks_v1"
    (entry,) = audit.entries(outcome="denied", log=build_audit_log(Settings()))
    assert (entry.actor, entry.role, entry.action) == ("ed", "engineer", "index.swap")


def _login(page, url: str, name: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_text("Sign in to use the console.")).to_be_visible(timeout=90_000)
    page.get_by_role("textbox", name="Username").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)


def test_a_signed_in_operator_rolls_back_and_the_audit_log_names_them_in_chromium(
    small_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_browser()
    import streamlit_authenticator as stauth
    from playwright.sync_api import expect, sync_playwright

    corpus, data_dir = small_data
    creds = tmp_path / "users.yaml"
    hashed = stauth.Hasher.hash("pw-for-olga")
    creds.write_text(
        f"credentials:\n  usernames:\n    olga:\n      password: '{hashed}'\n      roles: [operator]\n"
    )
    monkeypatch.setenv("RAGDECK_AUTH_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("RAGDECK_AUTH_COOKIE_KEY", "a-test-signing-key-" + "y" * 24)
    with EmbeddedQdrantStore(data_dir / "qdrant") as store:  # a second version to swap to and back from
        ingest(corpus, store, _embedder(), collection="rag_chunks_v2")
    reason = "answers got worse on v2"
    with running_console(tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        _login(page, url, "olga", "pw-for-olga")
        page.get_by_role("link", name="Index Ops", exact=True).click()
        expect(page.get_by_role("heading", name="Index Ops")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Signed in as olga (operator)")).to_be_visible(timeout=60_000)
        _idle(page)
        page.get_by_label("Reason", exact=True).fill("trying v2 without a gate")
        page.get_by_text("Override a failed or missing gate").click()
        _idle(page)
        page.get_by_role("button", name="Swap", exact=True).click()
        expect(page.get_by_text("rag_chunks: rag_chunks_v1 → rag_chunks_v2.")).to_be_visible(timeout=90_000)
        _idle(page)

        rollback = page.get_by_role("button", name="Roll back to rag_chunks_v1")
        expect(rollback).to_be_disabled()  # no reason, no tick yet
        _set(page, "Rollback reason", reason)
        expect(rollback).to_be_disabled()
        page.get_by_text("Yes, point rag_chunks back at rag_chunks_v1 now").click()
        _idle(page)
        rollback.click()
        expect(page.get_by_text("Rolled back: rag_chunks: rag_chunks_v2 → rag_chunks_v1.")).to_be_visible(
            timeout=90_000
        )
        _idle(page)
        _set(page, "Action", "index.rollback")
        _set(page, "User", "olga")
        (row,) = _audit_export(page, action="index.rollback", actor="olga")
        assert (row["actor"], row["role"], row["action"], row["reason"]) == (
            "olga", "operator", "index.rollback", reason,
        )  # fmt: skip
        assert row["outcome"] == "ok" and json.loads(row["before"])["collection"] == "rag_chunks_v2"
        assert "Traceback" not in page.inner_text("body")
        browser.close()
    (entry,) = audit.entries(action="index.rollback", log=build_audit_log(Settings()))
    assert (entry.actor, entry.role, entry.reason) == ("olga", "operator", reason)


def _embedder():
    from ragdeck.services.embedders import LocalEmbedder

    return LocalEmbedder()
