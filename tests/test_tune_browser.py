"""The Tune page in headless Chromium: a sweep from the form draws the Pareto chart and the recommendation."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hnsw_data import build_collection
from servers import free_port
from test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_tune_page_in_chromium(data_dir: Path, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    build_collection(data_dir / "qdrant", n=2000).close()
    port = free_port()
    log = (tmp_path / "console.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ragdeck"), "console", "--no-demo", "--no-llm",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None, (tmp_path / "console.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("console did not become healthy in 120 s")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/tune")
            expect(page.get_by_role("heading", name="Tune")).to_be_visible(timeout=90_000)
            page.get_by_role("button", name="Run sweep").click(timeout=60_000)
            expect(page.get_by_text("Pareto front")).to_be_visible(timeout=120_000)
            expect(page.locator(".js-plotly-plot")).to_have_count(1)
            expect(page.get_by_text("is the cheapest of the")).to_be_visible()
            expect(page.get_by_role("button", name="Set policy ef")).to_be_enabled()
            page.screenshot(path=str(tmp_path / "tune.png"))
            assert "Traceback" not in page.inner_text("body")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
