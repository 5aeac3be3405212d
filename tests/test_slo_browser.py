"""The SLO page in headless Chromium with live data: the console runs its own Prometheus, serves the RAG API,
replays eval-set questions into it from the Canary page, and the SLO page shows the objectives from PromQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from servers import free_port, require_binary
from test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser, console_url  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
DEMO_GOLD = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets" / "demo_gold.jsonl"


@pytest.fixture
def console_env(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free port for the API the console will host (set before the console starts), and the demo set."""
    require_binary("prometheus", "/usr/bin/prometheus")
    port = free_port()
    monkeypatch.setenv("RAGDECK_API_PORT", str(port))
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(DEMO_GOLD.parent))
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    return port


def test_slo_page_with_live_data_in_chromium(
    console_env: int,
    console_url: str,  # noqa: F811 (the fixture, after the environment is set)
    tmp_path: Path,
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    api = f"http://127.0.0.1:{console_env}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(console_url)
        page.get_by_role("link", name="Canary").click()
        page.get_by_role("button", name="Start the RAG API in this console").click()
        expect(page.get_by_text(f"RAG API: {api}")).to_be_visible(timeout=120_000)
        page.get_by_text("Replay eval-set questions").click()
        page.get_by_label("Requests per second").fill("3")
        page.get_by_label("Duration (s)").fill("20")
        page.get_by_role("button", name="Start replay").click()
        deadline = time.monotonic() + 120
        while True:  # the replay's requests, as the API counts them
            text = httpx.get(f"{api}/metrics", timeout=10).text
            served = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("rag_requests_total{") and 'status="ok"' in line
            )
            if served >= 30 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert served >= 30, f"only {served} answers in the replay"
        time.sleep(12)  # two scrapes of the console's Prometheus (every 5 s) after the traffic

        page.get_by_role("link", name="SLOs").click()
        expect(page.get_by_role("heading", name="SLOs")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Source: Prometheus at http://127.0.0.1:")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("100.000%").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Burn rate by window")).to_be_visible(timeout=60_000)
        body = page.inner_text("body")
        assert "Traceback" not in body and "no data" not in body.split("faithfulness")[0]
        page.screenshot(path=str(tmp_path / "slo.png"), full_page=False)
        if os.environ.get("RAGDECK_SCREENSHOT_SLO"):  # refresh the README picture
            page.screenshot(path=os.environ["RAGDECK_SCREENSHOT_SLO"], full_page=False)
        browser.close()
    assert (tmp_path / "slo.png").stat().st_size > 10_000
