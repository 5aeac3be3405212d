"""Streamlit entry point: ``ragdeck console`` runs ``streamlit run`` on this file."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ragdeck.console.settings import Settings
from ragdeck.login import sidebar_identity
from ragdeck.ui import or_stop

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="ragdeck", page_icon="🗂️", layout="wide")
or_stop(Settings)  # a bad setting: one red box naming it and its variable, not a traceback on every page

navigation = st.navigation(
    [
        st.Page(PAGES / "stack.py", title="Stack", icon="🧱", default=True),
        st.Page(PAGES / "ask.py", title="Ask", icon="💬"),
        st.Page(PAGES / "annotate.py", title="Annotate", icon="🏷️"),
        st.Page(PAGES / "review.py", title="Review", icon="⚖️"),
        st.Page(PAGES / "publish.py", title="Publish", icon="📦"),
        st.Page(PAGES / "evaluate.py", title="Evaluate", icon="🧪"),
        st.Page(PAGES / "tune.py", title="Tune", icon="🎛️"),
        st.Page(PAGES / "compare.py", title="Compare", icon="🆚"),
        st.Page(PAGES / "canary.py", title="Canary", icon="🐤"),
        st.Page(PAGES / "slo.py", title="SLOs", icon="🎯"),
        st.Page(PAGES / "index_ops.py", title="Index Ops", icon="🔀"),
    ]
)
sidebar_identity()  # login (when configured) before any page; who is signed in
navigation.run()
