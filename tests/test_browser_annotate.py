"""The Annotate workspace in a real headless Chromium: label, skip, flag with a comment, go back to the
skipped question and finish it; the record list and the store agree."""

from __future__ import annotations

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _idle, _open_annotate, _require_browser, _wait_for
from test_browser import console_url as console_url  # the fixture: a running console on the demo data

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_label_skip_flag_and_finish_a_skipped_question_in_chromium(console_url: str) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from ragdeck.console import annotation
    from ragdeck.console.settings import Settings
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    texts = (
        "How long does Prometheus keep data by default?",
        "What does the /rerank route return?",
        "How do I write a recording rule?",
    )
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2, q3 = annotation.add_questions(store, list(texts), source="typed", actor="lead")

    def status(qid: str) -> str | None:
        return next((a.status for a in store.answers(qid, "mia")), None)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        _open_annotate(page, console_url, "mia")
        sidebar = page.locator("[data-testid=stSidebar]")
        expect(sidebar.get_by_text("Your records")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name=texts[0])).to_be_visible(timeout=60_000)
        expect(page.get_by_role("button", name="Save and next")).to_be_visible(timeout=90_000)
        # Chunk text is shown as typed: no Streamlit directive leaks into it, and terms are marked.
        body = page.inner_text("body")
        assert ":orange-background[" not in body
        expect(page.locator(".chunk-text mark:visible").first).to_be_visible()

        page.get_by_role("button", name="Mark relevant").first.click()  # candidate 1
        _wait_for(lambda: [x.relevance for x in store.labels(q1, "mia")] == [2], "the label of question 1")
        _idle(page)
        page.get_by_role("button", name="Save and next").click()
        expect(page.get_by_role("heading", name=texts[1])).to_be_visible(timeout=60_000)
        _idle(page)
        page.get_by_role("button", name="Skip").click()
        expect(page.get_by_role("heading", name=texts[2])).to_be_visible(timeout=60_000)
        _idle(page)
        comment = page.get_by_role("textbox", name="Why flag it?")
        comment.fill("asks two things at once")
        comment.press("Enter")
        _idle(page)
        page.get_by_role("button", name="Flag for review").click()
        expect(page.get_by_text("Nothing left in your queue")).to_be_visible(timeout=60_000)
        _idle(page)
        assert (status(q1), status(q2), status(q3)) == ("done", "skipped", "flagged")
        expect(sidebar.get_by_text("1 done · 1 skipped · 1 flagged")).to_be_visible()

        page.get_by_role("button", name="◀ Previous").click()  # the flagged one, with its comment
        expect(page.get_by_role("heading", name=texts[2])).to_be_visible(timeout=60_000)
        expect(page.get_by_text("asks two things at once").first).to_be_visible()
        _idle(page)
        page.get_by_role("button", name="◀ Previous").click()  # back to the skipped one
        expect(page.get_by_role("heading", name=texts[1])).to_be_visible(timeout=60_000)
        _idle(page)
        answer = page.get_by_role("textbox", name="Reference answer")
        answer.fill("A list of scores, one per text.")
        answer.press("Tab")
        _idle(page)
        page.get_by_role("button", name="Save and next").click()
        expect(page.get_by_text("Nothing left in your queue")).to_be_visible(timeout=60_000)
        expect(sidebar.get_by_text("2 done · 0 skipped · 1 flagged")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    assert (status(q1), status(q2), status(q3)) == ("done", "done", "flagged")
    [finished] = store.answers(q2, "mia")
    assert finished.reference_answer == "A list of scores, one per text."
    [flagged] = store.answers(q3, "mia")
    assert flagged.note == "asks two things at once"
