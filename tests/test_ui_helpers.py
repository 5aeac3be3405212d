"""Small helpers of the console's pages (``ragdeck.ui``) that decide what a user reads."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def test_an_error_of_several_lines_keeps_one_problem_per_line() -> None:
    from ragdeck.ui import message_lines

    text = "eval set bad.jsonl has 2 problems:\n  line 2, question: empty\n  line 5, id: repeated"
    assert message_lines(text) == (
        "eval set bad.jsonl has 2 problems:  \n  line 2, question: empty  \n  line 5, id: repeated"
    )

    def page() -> None:
        from ragdeck.errors import InputError
        from ragdeck.ui import user_errors

        with user_errors():
            raise InputError("two problems:\nline 2, question: empty\nline 5, id: repeated")

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert at.error[0].value == "two problems:  \nline 2, question: empty  \nline 5, id: repeated"
