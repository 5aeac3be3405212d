"""The console in a real headless Chromium: start ``ragdeck console``, search, see ranked chunks."""

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
from servers import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _require_browser() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("RAGDECK_REQUIRE_BROWSER"):
            pytest.fail("RAGDECK_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
        pytest.skip("Debian chromium is not installed (./dev test installs it)")


@pytest.fixture
def console_url(demo_data_dir: Path, tmp_path: Path):
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
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "console.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("console did not become healthy in 120 s")
        yield url
    finally:
        proc.terminate()  # the CLI stops its Streamlit child; the group kill is a safety net
        try:
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()


def test_stack_page_in_chromium(console_url: str, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(console_url)
        expect(page.get_by_role("heading", name="Stack")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Components")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Collections", exact=True)).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid=stDataFrame]")).to_have_count(2)
        box = page.get_by_label("Question")
        expect(box).to_be_visible(timeout=60_000)
        box.fill("How do I write a recording rule?")
        box.press("Enter")
        expect(page.get_by_text("Download results (JSON)")).to_be_visible(timeout=90_000)
        expect(page.locator("[data-testid=stExpander]")).to_have_count(10)
        page.screenshot(path=str(tmp_path / "stack.png"), full_page=True)
        if os.environ.get(
            "RAGDECK_SCREENSHOT"
        ):  # refresh the README picture: RAGDECK_SCREENSHOT=docs/stack.png
            page.screenshot(path=os.environ["RAGDECK_SCREENSHOT"], full_page=False)
        text = page.inner_text("body")
        assert "recording" in text.lower()
        assert "Traceback" not in text

        page.get_by_role("link", name="Ask").click()
        expect(page.get_by_role("heading", name="Ask")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Extractive answers", exact=False)).to_be_visible(timeout=60_000)
        question = page.get_by_label("Question")
        question.fill("How do I expose TEI metrics to Prometheus?")
        question.press("Enter")
        expect(page.get_by_text("Download answer (JSON)")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Extractive · no LLM")).to_be_visible()
        expect(page.locator("[data-testid=stExpander]").first).to_be_visible()
        assert "Traceback" not in page.inner_text("body")
        browser.close()
    assert (tmp_path / "stack.png").stat().st_size > 10_000


def test_one_question_labelled_in_chromium_lands_in_the_store(console_url: str) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from ragdeck.console.settings import Settings
    from ragdeck.services.annotation_store import AnnotationStore

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(console_url)
        page.get_by_role("link", name="Annotate").click()
        expect(page.get_by_role("heading", name="Annotate")).to_be_visible(timeout=90_000)
        name = page.get_by_role("textbox", name="Your name")
        name.fill("carol")
        name.press("Enter")
        questions = page.get_by_role("textbox", name="One question per line")
        questions.fill("How long does Prometheus keep data by default?")
        page.get_by_role("button", name="Add").click()
        expect(
            page.get_by_role("heading", name="How long does Prometheus keep data by default?")
        ).to_be_visible(timeout=90_000)
        page.get_by_text("relevant", exact=True).first.click()
        page.wait_for_timeout(1500)  # the radio's change runs a rerun that saves the label
        answer = page.get_by_role("textbox", name="Reference answer")
        answer.fill("15 days, unless --storage.tsdb.retention.time says otherwise.")
        answer.press("Tab")
        page.get_by_role("button", name="Save and next").click()
        expect(page.get_by_text("Nothing left in your queue")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    store = AnnotationStore(Settings().state_db)
    [question] = store.questions()
    [label] = store.labels(question.id, "carol")
    assert label.relevance == 2 and label.span is not None
    [saved] = store.answers(question.id, "carol")
    assert saved.status == "done" and saved.reference_answer.startswith("15 days")
