"""Live pages in headless Chromium: the timed refresh redraws only the live figures, so a dropdown the user
opened stays open across refreshes (Canary, SLOs); the replay button follows the replay job by itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, _require_browser, console_url  # noqa: F401
from test_canary_browser import api_for_console  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
DEMO_SETS = Path(__file__).resolve().parent.parent / "ragdeck" / "demo_eval_sets"


@pytest.fixture
def eval_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo eval set listed on the Canary page's replay (set before the console starts)."""
    monkeypatch.setenv("RAGDECK_EVAL_SETS_DIR", str(DEMO_SETS))


def _refreshed(page, stamp: re.Pattern[str], times: int) -> None:
    """Wait until the text matching ``stamp`` (drawn by the refreshing part) has changed ``times`` times."""
    from playwright.sync_api import expect

    shown = page.get_by_text(stamp)
    for _ in range(times):
        before = shown.inner_text(timeout=60_000)
        expect(shown).not_to_have_text(before, timeout=60_000)


def _open_dropdown(page, label: str):
    """Open the selectbox labelled ``label``; returns its listbox (visible)."""
    from playwright.sync_api import expect

    page.locator("[data-testid=stSelectbox]").filter(has_text=label).click()
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible(timeout=10_000)
    return listbox


def test_refresh_keeps_dropdowns_open_and_the_replay_button_follows_the_job(
    eval_sets: None,
    api_for_console: str,  # noqa: F811
    console_url: str,  # noqa: F811 (after the API and the eval sets: the console inherits both)
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(console_url)
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=90_000)
        page.get_by_role("link", name="Canary").click()
        expect(page.get_by_text(f"RAG API: {api_for_console}")).to_be_visible(timeout=90_000)
        stamp = re.compile(r"Figures updated at \d\d:\d\d:\d\d UTC")
        expect(page.get_by_text(stamp)).to_be_visible(timeout=60_000)
        _idle(page)
        listbox = _open_dropdown(page, "Window")
        _refreshed(page, stamp, 2)  # two refreshes (every 5 s) while the dropdown is open
        expect(listbox).to_be_visible()
        listbox.get_by_text("last 15 min").click()  # and it still works
        expect(page.get_by_role("combobox", name="Window")).to_have_value("last 15 min")
        _idle(page)

        page.get_by_text("Replay eval-set questions").click()
        page.get_by_label("Requests per second").fill("4")
        page.get_by_label("Duration (s)").fill("3")
        page.get_by_label("Duration (s)").press("Tab")
        _idle(page)
        page.get_by_role("button", name="Start replay").click()
        busy = page.get_by_role("button", name="Replaying…")
        expect(busy).to_be_visible(timeout=30_000)
        expect(busy).to_be_disabled()
        expect(page.get_by_text("Replaying to ")).to_be_visible()
        # no click from here: the replay ends and the button comes back by itself, the outcome in green
        expect(page.get_by_text(re.compile(r"Replay done: \d+ sent, \d+ ok"))).to_be_visible(timeout=60_000)
        expect(page.get_by_role("button", name="Start replay")).to_be_enabled()
        expect(page.get_by_role("button", name="Stop replay")).to_be_disabled()
        alert = page.locator("[data-testid=stAlertContentSuccess]").filter(has_text="Replay done")
        expect(alert).to_be_visible()

        page.get_by_role("link", name="SLOs").click()
        expect(page.get_by_role("heading", name="SLOs")).to_be_visible(timeout=60_000)
        slo_stamp = re.compile(r"Source: .* · \d\d:\d\d:\d\d UTC")
        expect(page.get_by_text(slo_stamp)).to_be_visible(timeout=90_000)
        _idle(page)
        listbox = _open_dropdown(page, "Time range")
        _refreshed(page, slo_stamp, 2)  # every 15 s
        expect(listbox).to_be_visible()
        assert "Traceback" not in page.inner_text("body")
        browser.close()
