"""The Canary page's "Drafts from studies" panel: the draft policies retrieval studies saved, each with its
study's verdict; one click makes a draft the canary policy's run-time overrides, another undoes it. Not a
page itself (``app.py`` lists the pages); the rules live in ``console.online.drafts``."""

from __future__ import annotations

import time

import streamlit as st

from ragdeck.console.online.drafts import (
    DraftApplication,
    apply_draft,
    standing_draft,
    summary_text,
    undo_draft,
)
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies, build_policy_drafts
from ragdeck.ui import get_audit_log, get_policy_overrides, user_errors
from ragdeck.widgets import table

RESULT_KEY = "canary_draft_result"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) + " UTC"


def _report(result: DraftApplication, verb: str, weight: float) -> None:
    """Say what the last try or undo did, and whether any user gets the canary now."""
    st.success(
        f"{verb} draft `{result.draft}` (study {result.study_id or '—'}) on policy {result.policy}: "
        + "; ".join(result.lines()),
        icon="✅",
    )
    if result.kept:
        st.warning(
            f"Left as they are (changed by someone after the draft was applied): {', '.join(result.kept)}.",
            icon="⚠️",
        )
    if verb == "Applied" and weight <= 0:
        st.warning(
            f"{result.policy} gets 0 % of users, so no user is served by this draft yet: raise its share "
            "under Routing above.",
            icon="⚠️",
        )


def drafts_panel(canary: str, weight: float, user: User, *, remote_api: bool) -> None:
    """Draw the panel for canary policy ``canary`` (``weight``: its share of users now)."""
    st.subheader("Drafts from studies")
    settings = Settings()
    drafts = build_policy_drafts(settings)
    saved = drafts.list_drafts()
    if not saved:
        st.caption(
            "No draft yet: a retrieval study (`ragdeck tune`, the Tune page) saves the configuration it "
            "chose on held-out questions as a draft; it shows here, ready to try as the canary."
        )
    else:
        table(
            [
                {
                    "draft": d.name,
                    "study": d.study_id,
                    "knobs": d.knobs_text(),
                    "study verdict": summary_text(d.summary),
                    "by": d.created_by,
                    "saved": _when(d.created_at),
                }
                for d in saved
            ],
            width="stretch",
        )
    standing = standing_draft(drafts, canary)
    if standing is not None:
        st.info(
            f"{canary} runs with draft `{standing['draft']}` (study {standing['study_id'] or '—'}), "
            f"applied by {standing['applied_by']} at {_when(standing['applied_at'])}.",
            icon="🧪",
        )
    if remote_api:
        st.caption(
            "Drafts are applied as run-time overrides in this console's state database: the RAG API at "
            "RAGDECK_API_URL sees them only when it uses the same data directory."
        )
    can_operate = user.can(Role.OPERATOR)
    if not can_operate and (saved or standing):
        st.info(f"Trying a draft as the canary needs the operator role; you are {user.role.label}.")
    cols = st.columns([3, 2, 2])
    name = None
    if saved:
        name = cols[0].selectbox(
            "Draft", [d.name for d in saved], key="canary_draft", label_visibility="collapsed"
        )
    with user_errors():
        if name is not None:
            current = build_policies(settings).get(canary)
            draft = next(d for d in saved if d.name == name)
            if current is not None:
                st.caption(
                    f"{canary} now → with `{name}`: "
                    + ", ".join(f"{k} {getattr(current, k)} → {v}" for k, v in draft.knobs.items())
                )
        if cols[1].button(
            f"Try draft {name} as the canary" if name else "Try a draft as the canary",
            type="primary",
            disabled=name is None or not can_operate,
            key="canary_draft_apply",
        ):
            result = apply_draft(
                settings, str(name), canary, actor=user, drafts=drafts,
                overrides=get_policy_overrides(), log=get_audit_log(),
            )  # fmt: skip
            st.session_state[RESULT_KEY] = ("Applied", result)
            st.rerun()
        if cols[2].button(
            f"Undo the draft on {canary}",
            disabled=standing is None or not can_operate,
            key="canary_draft_undo",
            help="Puts back the overrides the draft replaced.",
        ):
            result = undo_draft(
                settings, canary, actor=user, drafts=drafts, overrides=get_policy_overrides(),
                log=get_audit_log(),
            )  # fmt: skip
            st.session_state[RESULT_KEY] = ("Undid", result)
            st.rerun()
    if RESULT_KEY in st.session_state:  # shown once, after the rerun that follows the click
        verb, result = st.session_state.pop(RESULT_KEY)
        _report(result, verb, weight)
