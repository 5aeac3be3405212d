"""The console in a real headless Chromium: start ``ragdeck console``, search, see ranked chunks; label,
import eval set files and use the keyboard shortcuts on the Annotate page."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from console_process import running_console

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
def console_url(demo_data_dir: Path, tmp_path: Path) -> Iterator[str]:
    with running_console(tmp_path) as url:
        yield url


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
        _idle(page)  # typed during a run, the question could be lost when the run ends
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
        _idle(page)
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
    from ragdeck.services.annotation_store import SqliteAnnotationStore

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
        # The first candidate's radio (the guidelines above also say "relevant").
        page.locator("[data-testid=stRadio]").first.get_by_text("relevant", exact=True).click()
        page.wait_for_timeout(1500)  # the radio's change runs a rerun that saves the label
        answer = page.get_by_role("textbox", name="Reference answer")
        answer.fill("15 days, unless --storage.tsdb.retention.time says otherwise.")
        answer.press("Tab")
        page.get_by_role("button", name="Save and next").click()
        expect(page.get_by_text("Nothing left in your queue")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    store = SqliteAnnotationStore(Settings().state_db)
    [question] = store.questions()
    [label] = store.labels(question.id, "carol")
    assert label.relevance == 2 and label.span is not None
    [saved] = store.answers(question.id, "carol")
    assert saved.status == "done" and saved.reference_answer.startswith("15 days")


def _wait_for(check: Callable[[], object], what: str, timeout_s: float = 60) -> None:
    """Poll ``check`` (reading the state store the console writes) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.3)


def _idle(page: Page) -> None:
    """Wait until the app's script run is over (the page shows the finished rerun)."""
    from playwright.sync_api import expect

    app = page.locator("[data-testid=stApp]")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=90_000)


def _radio_shows(page: Page, position: int, choice: str) -> None:
    """Wait until the candidate at ``position`` (from 0) shows ``choice`` checked and the run is over."""
    from playwright.sync_api import expect

    radios = page.locator("[data-testid=stRadio]").filter(has_text="partly relevant").nth(position)
    expect(radios.get_by_role("radio", name=choice, exact=True)).to_be_checked(timeout=60_000)
    _idle(page)


def _open_annotate(page: Page, console_url: str, name: str) -> None:
    """The Annotate page, the annotator's name typed."""
    from playwright.sync_api import expect

    page.goto(console_url)
    page.get_by_role("link", name="Annotate").click()
    expect(page.get_by_role("heading", name="Annotate")).to_be_visible(timeout=90_000)
    box = page.get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    # Enter only sends the value: the page shows "notRunning" until the server starts the rerun. The
    # progress line is drawn only once the name is in, so after it the state is that rerun's own.
    expect(page.get_by_text("questions handled", exact=False)).to_be_visible(timeout=90_000)
    _idle(page)


def test_eval_set_files_imported_in_chromium_join_the_queue(console_url: str, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from ragdeck.console import annotation
    from ragdeck.console.settings import Settings
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    first, second, third = (
        "How long does Prometheus keep data by default?",
        "What does the /rerank route of TEI return?",
        "Which flag enables the admin API?",
    )
    jsonl = tmp_path / "two.jsonl"
    jsonl.write_text(
        json.dumps({"id": "imp-1", "question": first, "gold_context_ids": ["a#b:0"], "tags": ["ops"]})
        + "\n"
        + json.dumps({"id": "imp-2", "question": second, "gold_context_ids": ["tei/quick_tour"]})
        + "\n",
        encoding="utf-8",
    )
    csv_file = tmp_path / "more.csv"  # one new question and one already imported (merged)
    csv_file.write_text(
        f"question,gold_context_ids,reference_answer,id\n{third},x#y:0,,imp-3\n{first.upper()},a#b:0,,imp-9\n",
        encoding="utf-8",
    )
    store = SqliteAnnotationStore(Settings().state_db)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        _open_annotate(page, console_url, "ivan")  # a file given during a rerun could be dropped
        for upload, count in ((jsonl, 2), (csv_file, 3)):
            import_button = page.get_by_role("button", name="Import", exact=True)
            if not import_button.is_visible():  # the expander closes once the store holds questions
                page.get_by_text("Add questions", exact=True).click()
            page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(upload))
            expect(page.get_by_text(upload.name)).to_be_visible(timeout=30_000)  # uploaded
            import_button.click()
            _wait_for(lambda n=count: len(store.questions()) == n, f"{count} questions in the store")
            expect(page.get_by_role("heading", name=first)).to_be_visible(timeout=60_000)
            _idle(page)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    questions = {q.id: q for q in store.questions()}
    assert [(q.question, q.source) for q in questions.values()] == [
        (first, "imported"), (second, "imported"), (third, "imported"),
    ]  # fmt: skip
    assert list(questions) == ["imp-1", "imp-2", "imp-3"] and list(questions["imp-1"].tags) == ["ops"]
    assert [q.id for q in annotation.queue(store, "ivan")] == ["imp-1", "imp-2", "imp-3"]


def test_annotate_keyboard_shortcuts_in_chromium(console_url: str) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from ragdeck.console import annotation
    from ragdeck.console.settings import Settings
    from ragdeck.services.annotation_store import SqliteAnnotationStore

    first, second = "How long does Prometheus keep data by default?", "What does the /rerank route return?"
    store = SqliteAnnotationStore(Settings().state_db)
    q1, q2 = annotation.add_questions(store, [first, second], source="typed", actor="lead")

    def grades(question_id: str) -> list[int]:
        return sorted(label.relevance for label in store.labels(question_id, "judy"))

    def status(question_id: str) -> str | None:
        return next((a.status for a in store.answers(question_id, "judy")), None)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        _open_annotate(page, console_url, "judy")
        heading = page.get_by_role("heading", name=first)
        expect(heading).to_be_visible(timeout=90_000)
        expect(page.get_by_role("button", name="Save and next")).to_be_visible(timeout=90_000)  # all drawn
        expect(page.get_by_text("Ctrl/⌘+Enter", exact=False)).to_be_visible()
        heading.click()  # the focus leaves the name box: letters and digits now act
        page.keyboard.press("1")  # candidate 1: relevant
        _wait_for(lambda: grades(q1) == [2], "the grade of key 1")
        # A key pressed during a rerun may reach a button that is being redrawn: wait until the rerun the
        # key started has drawn its result, then until it is over (the store is written before the browser
        # hears that a run began, so the script state alone can still read the last run's "notRunning").
        _radio_shows(page, 0, "relevant")
        page.keyboard.press("Shift+2")  # candidate 2: partly relevant
        _wait_for(lambda: grades(q1) == [1, 2], "the grade of Shift+2")
        _radio_shows(page, 1, "partly relevant")
        page.keyboard.press("s")  # skip
        expect(page.get_by_role("heading", name=second)).to_be_visible(timeout=60_000)
        assert status(q1) == "skipped"
        _idle(page)  # until then the answer box on screen may still be the last question's
        answer = page.get_by_role("textbox", name="Reference answer")
        answer.fill("A list of scores, one per text.")
        answer.press("Control+Enter")  # save and next, straight from the answer box
        expect(page.get_by_text("Nothing left in your queue")).to_be_visible(timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        browser.close()

    assert status(q2) == "done"
    [saved] = store.answers(q2, "judy")
    assert saved.reference_answer == "A list of scores, one per text."
