"""The Tune page in headless Chromium: a sweep from the form runs as a job (progress, Cancel button), then the
page draws the Pareto chart and the recommendation by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_process import running_console
from hnsw_data import build_collection
from test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_tune_page_in_chromium(data_dir: Path, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    build_collection(data_dir / "qdrant", n=2000).close()
    with running_console(tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/tune")
        expect(page.get_by_role("heading", name="Tune")).to_be_visible(timeout=90_000)
        page.get_by_label("Sampled queries").fill("1000")  # a sweep of several seconds: the job is seen
        page.get_by_role("button", name="Run sweep").click(timeout=60_000)
        expect(page.get_by_role("button", name="Cancel")).to_be_visible(timeout=60_000)  # the job runs
        expect(page.get_by_text("Pareto front")).to_be_visible(timeout=120_000)
        expect(page.locator(".js-plotly-plot")).to_have_count(1)
        expect(page.get_by_text("Queries: 1000 stored vectors sampled")).to_be_visible()
        expect(page.get_by_text("is the cheapest of the")).to_be_visible()
        expect(page.get_by_role("button", name="Set policy ef")).to_be_enabled()
        page.screenshot(path=str(tmp_path / "tune.png"))
        assert "Traceback" not in page.inner_text("body")
        browser.close()
