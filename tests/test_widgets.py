"""Shared page widgets: tables show a missing value as "—" (never the word None), every page table goes
through that helper, and a delete asks for a ticked confirmation that names what goes."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parent.parent / "ragdeck" / "pages"
NOT_YET: set[str] = set()


def _tables_app() -> None:
    import math

    import pandas as pd

    from ragdeck.widgets import table

    rows = [
        {"collection": "rag_chunks_v1", "points": 12, "gate": None, "p95_ms": 41.5},
        {"collection": "rag_chunks_v2", "points": None, "gate": "passed", "p95_ms": math.nan},
    ]
    table(rows, key="records")
    frame = pd.DataFrame(rows)
    table(frame.style.apply(lambda r: [""] * len(r), axis=1), key="styled")


def test_tables_show_missing_values_as_a_dash() -> None:
    at = AppTest.from_function(_tables_app).run()
    assert not at.exception, at.exception
    records, styled = at.dataframe
    assert records.proto.placeholder == "—"  # what the grid draws for None and NaN
    frame = records.value
    assert frame["gate"].isna().tolist() == [True, False]  # the data stays missing (sorting, downloads)
    assert frame["points"].isna().tolist() == [False, True]
    assert styled.proto.placeholder == "—"
    shown = styled.proto.arrow_data.styler.display_values  # a Styler is sent with its display values
    assert shown.count("—".encode()) == 3 and b"None" not in shown and b"nan" not in shown


def test_every_page_table_goes_through_the_helper() -> None:
    direct = {
        page.name: [
            n
            for n, line in enumerate(page.read_text().splitlines(), 1)
            if re.search(r"st\.(dataframe|table)\(", line)
        ]
        for page in PAGES.glob("*.py")
        if page.name not in NOT_YET
    }
    assert not {name: lines for name, lines in direct.items() if lines}, "use ragdeck.widgets.table"


def _delete_app() -> None:
    import streamlit as st

    from ragdeck.widgets import confirm_delete

    sure = confirm_delete("2 version(s)", key="sure", detail="rag_chunks_v1, rag_chunks_v2")
    if st.button("Delete", disabled=not sure):
        st.success("deleted")


def test_a_delete_names_what_goes_and_waits_for_the_tick() -> None:
    at = AppTest.from_function(_delete_app).run()
    assert "Deletes 2 version(s) for good: rag_chunks_v1, rag_chunks_v2" in at.caption[0].value
    assert at.button[0].disabled and at.checkbox[0].label == "Yes, delete 2 version(s)"
    at.checkbox[0].check().run()
    at.button[0].click().run()
    assert at.success[0].value == "deleted"
