"""Opening a console page in Streamlit's AppTest with nothing cached from an earlier test."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "ragdeck" / "app.py")


def open_page(page: str | None = None, timeout_s: float = 120) -> AppTest:
    """The app, run once, then switched to ``pages/<page>.py`` when given (the default page otherwise).

    Every ``st.cache_resource`` of ``ragdeck.ui`` is cleared first: each test has its own data directory.
    """
    import ragdeck.ui as ui

    for cached in (ui._cached_stack, ui._cached_rag, ui.get_feedback_log, ui.get_annotation_store,
                   ui.get_span_index, ui.get_jobs, ui.get_eval_jobs, ui.get_eval_store, ui.get_replay_jobs,
                   ui._cached_index_ops, ui._cached_overrides, ui._cached_sweep_log,
                   ui.get_audit_log):  # fmt: skip
        cached.clear()
    at = AppTest.from_file(APP, default_timeout=timeout_s)
    if page is None:
        return at
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at
