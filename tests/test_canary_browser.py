"""The Canary page in headless Chromium: a weight typed on the page changes how the real RAG API routes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import serve_asgi
from test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser, console_url  # noqa: F401 (fixture)

from ragdeck.console.online.routing import stable_bucket

pytestmark = [pytest.mark.slow, pytest.mark.browser]
TOKEN = "canary-browser-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_for_console(api_data: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The RAG API on its own copy of the demo data, named to the console by RAGDECK_API_URL (set before the
    console starts)."""
    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    runtime = build_runtime(Settings(data_dir=api_data, admin_token=TOKEN), embedder=local_embedder)
    try:
        with serve_asgi(create_app(runtime), "rag-api") as url:
            monkeypatch.setenv("RAGDECK_API_URL", url)
            monkeypatch.setenv("RAGDECK_ADMIN_TOKEN", TOKEN)
            yield url
    finally:
        runtime.close()


def _canary_weight(api: str) -> float:
    return float(httpx.get(f"{api}/admin/routing", headers=ADMIN, timeout=10).json()["weights"]["B"])


def test_canary_weight_set_in_chromium_changes_the_api_routing(
    api_for_console: str,
    console_url: str,  # noqa: F811 (the fixture, after the API so the console inherits its URL)
    tmp_path: Path,
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    api = api_for_console
    users = [f"browser-user-{i}" for i in range(40)]
    with httpx.Client(base_url=api, timeout=60) as client:
        for user in users[:6]:
            body = client.post("/query", json={"question": "What is PromQL?", "user_id": user}).json()
            assert body["policy"] == "A"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(console_url)
        page.get_by_role("link", name="Canary").click()
        expect(page.get_by_role("heading", name="Canary")).to_be_visible(timeout=90_000)
        expect(page.get_by_text(f"RAG API: {api}")).to_be_visible(timeout=60_000)
        page.get_by_label("Reason for a change (kept in the audit log)").fill("browser test")
        share = page.get_by_label("Share of users on B (%)")
        share.fill("60")
        page.get_by_role("button", name="Apply weight").click()
        deadline = time.monotonic() + 60
        while _canary_weight(api) != 0.6:
            assert time.monotonic() < deadline, "the weight set in the browser never reached the API"
            time.sleep(0.25)
        expect(page.get_by_text("60%", exact=True)).to_be_visible(timeout=60_000)
        page.screenshot(path=str(tmp_path / "canary.png"), full_page=True)
        if os.environ.get("RAGDECK_SCREENSHOT_CANARY"):  # refresh the README picture
            page.screenshot(path=os.environ["RAGDECK_SCREENSHOT_CANARY"], full_page=False)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    with httpx.Client(base_url=api, timeout=60) as client:
        for user in users:
            want = "B" if stable_bucket(user) < 0.6 else "A"
            assert (
                client.get("/admin/routing/assign", params={"user_id": user}, headers=ADMIN).json()["policy"]
                == want
            )
        canary_user = next(u for u in users if stable_bucket(u) < 0.6)
        answer = client.post("/query", json={"question": "What is PromQL?", "user_id": canary_user}).json()
        assert answer["policy"] == "B" and answer["routing_reason"] == "canary"
        event = client.get("/admin/routing", headers=ADMIN).json()["events"][0]
        assert event["kind"] == "weight" and event["weight"] == 0.6 and "browser test" in event["reason"]
