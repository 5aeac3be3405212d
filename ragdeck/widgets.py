"""Page building blocks shared by several pages: tables that show a missing value as "—", a deliberate delete
(what goes, a ticked confirmation), a job's button that follows the job, and the audit log view."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from ragdeck.console import audit

MISSING = "—"  # what a table cell shows for None / NaN (Streamlit's default is the word "None")


def table(
    data: pd.DataFrame | Styler | Iterable[Mapping[str, Any]], container: Any = None, **kwargs: Any
) -> Any:
    """``st.dataframe`` (index hidden) whose missing values read "—" instead of "None": rows (dicts), a
    frame, or a pandas ``Styler`` (its display values are used, so ``na_rep`` is set on it)."""
    if isinstance(data, Styler):
        data = data.format(na_rep=MISSING)
    elif not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(list(data))
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("placeholder", MISSING)
    return (container or st).dataframe(data, **kwargs)


def confirm_delete(what: str, *, key: str, container: Any = None, detail: str = "") -> bool:
    """Say what a delete removes and ask for a ticked confirmation; True once ticked. Put the delete
    button after it with ``disabled=not confirmed``."""
    box = container or st
    box.caption(f"🗑️ Deletes {what} for good{f': {detail}' if detail else ''}. It cannot be undone.")
    return bool(box.checkbox(f"Yes, delete {what}", key=key))


def job_button(
    container: Any,
    label: str,
    *,
    busy: bool,
    busy_label: str,
    key: str,
    disabled: bool = False,
    **kwargs: Any,
) -> bool:
    """A button that starts a job: while the job runs it is disabled and reads ``busy_label`` (e.g.
    "Replaying…"); the key stays the same, so the page can redraw it either way."""
    return bool(container.button(busy_label if busy else label, key=key, disabled=busy or disabled, **kwargs))


def audit_log_view(log: audit.AuditLog, *, key: str = "audit") -> None:
    """The audit log, filtered by action, user and outcome, with CSV and JSONL exports and the seal check."""
    cols = st.columns(3)
    action = cols[0].text_input("Action", "", placeholder="index.swap", key=f"{key}_action")
    actor = cols[1].text_input("User", "", key=f"{key}_user")
    outcome = cols[2].selectbox("Outcome", ["any", *audit.OUTCOMES], key=f"{key}_outcome")
    entries = audit.entries(
        limit=500,
        action=action.strip() or None,
        actor=actor.strip() or None,
        outcome=None if outcome == "any" else outcome,
        log=log,
    )
    if entries:
        table([e.table_row() for e in entries], width="stretch", key=f"{key}_table")
        cols = st.columns(2)
        cols[0].download_button(
            "Export CSV", audit.to_csv(entries), file_name="ragdeck-audit.csv", mime="text/csv"
        )
        cols[1].download_button(
            "Export JSONL", audit.to_jsonl(entries), file_name="ragdeck-audit.jsonl", mime="application/jsonl"
        )
    else:
        st.caption("No audit entries match.")
    if (broken := audit.verify(log)) is not None:
        st.error(f"The audit log was altered outside ragdeck: {broken}.", icon="⛔")
