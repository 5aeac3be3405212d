"""A retrieval study the way a user runs one, in headless Chromium: the Tune page's Retrieval study tab on
the demo set with the default knobs, the background job's progress, the held-out verdict, the JSON report
downloaded; the chosen configuration saved as a draft, then tried as the canary from the Canary page and
undone there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, _require_browser, console_url  # noqa: F401 (fixture)

from ragdeck.console.online.drafts import standing_draft
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policy_drafts

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_study_run_in_chromium_becomes_the_canary_and_is_undone(
    console_url: str,  # noqa: F811 (the fixture)
) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
        page.goto(console_url)
        page.get_by_role("link", name="Tune", exact=True).click()
        expect(page.get_by_role("heading", name="Tune")).to_be_visible(timeout=90_000)
        _idle(page)
        page.get_by_role("tab", name="Retrieval study").click()
        expect(page.get_by_text("No study yet")).to_be_visible(timeout=60_000)
        study_form = page.locator("[data-testid=stForm]").filter(has_text="Run study")
        study_form.locator("[data-testid=stSelectbox]").filter(has_text="Eval set").click()
        page.get_by_role("option", name="demo_gold.jsonl").click()
        _idle(page)
        page.get_by_role("button", name="Run study").click()

        # The job runs in the background; the verdict shows when it ends.
        gain = page.locator("[data-testid=stMetric]").filter(has_text="Held-out gain")
        expect(gain).to_be_visible(timeout=300_000)
        _idle(page)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download JSON").click()
        study = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        tune, test = set(study["split"]["tune_ids"]), set(study["split"]["test_ids"])
        assert tune and test and not tune & test and study["status"] == "done"
        assert len(study["trials"]) >= 2 and study["chosen_knobs"], study["decision"]
        expect(gain).to_contain_text(f"{study['test']['difference']:+.4f}")
        expect(page.get_by_text(study["decision"]).first).to_be_visible()

        draft_name = page.get_by_label("Draft name")
        draft_name.fill("from-chromium")
        draft_name.press("Tab")
        page.get_by_role("button", name="Save as draft policy").click()
        expect(page.get_by_text("Saved draft from-chromium")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")

        page.get_by_role("link", name="Canary", exact=True).click()
        # No RAG API is configured: the page offers to serve one from this console, over the same stack.
        page.get_by_role("button", name="Start the RAG API in this console").click()
        expect(page.get_by_role("heading", name="Drafts from studies")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("now → with", exact=False)).to_contain_text("from-chromium", timeout=60_000)
        _idle(page)
        page.get_by_role("button", name="Try draft from-chromium as the canary").click()
        expect(page.get_by_text("Applied draft")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("runs with draft")).to_contain_text(f"(study {study['study_id']})")
        settings = Settings()
        standing = standing_draft(build_policy_drafts(settings), settings.canary_policy)
        assert standing is not None and standing["draft"] == "from-chromium"
        _idle(page)
        page.get_by_role("button", name="Undo the draft on").click()
        expect(page.get_by_text("Undid draft")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("runs with draft")).to_have_count(0)
        assert "Traceback" not in page.inner_text("body")
        browser.close()
    assert standing["study_id"] == study["study_id"]
    assert standing_draft(build_policy_drafts(settings), settings.canary_policy) is None
