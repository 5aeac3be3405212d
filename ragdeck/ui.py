"""Shared helpers for the Streamlit pages: the cached stack and user-error rendering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_stack
from ragdeck.errors import RagdeckError


@st.cache_resource(show_spinner="Connecting to the stack…")
def _cached_stack(settings_json: str) -> Stack:
    return build_stack(Settings.model_validate_json(settings_json))


def get_stack() -> Stack:
    """The process-wide stack for the current settings (built once, shared by every session)."""
    return _cached_stack(Settings().model_dump_json())


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a ragdeck error as a red box with its message instead of a traceback."""
    try:
        yield
    except RagdeckError as exc:
        st.error(str(exc), icon="⚠️")


def progress_callback(bar: st.delta_generator.DeltaGenerator) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback that drives a Streamlit progress bar."""

    def update(stage: str, done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{stage}: {done}/{total}")

    return update
