"""``ragdeck policy draft list | apply | undo``: draft policies a retrieval study saved, and trying one as the
canary policy's run-time overrides (the Canary page's "Drafts from studies" panel, from a shell)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ragdeck.console.online.drafts import (
    DraftApplication,
    apply_draft,
    summary_text,
    undo_draft,
)
from ragdeck.console.roles import cli_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import (
    build_audit_log,
    build_policy_drafts,
    build_policy_overrides,
    build_routing_state,
)

app = typer.Typer(
    help="Policies: draft policies from retrieval studies, tried as the canary.", no_args_is_help=True
)
draft_app = typer.Typer(
    help="Draft policies from studies: list, apply to the canary, undo.", no_args_is_help=True
)
app.add_typer(draft_app, name="draft")

PolicyOpt = Annotated[
    str | None, typer.Option("--policy", "-p", help="The policy to change (default: the canary policy).")
]


@draft_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every draft, newest first, with its study's verdict."""
    drafts = build_policy_drafts(Settings()).list_drafts()
    if as_json:
        sys.stdout.write(json.dumps([d.__dict__ for d in drafts], indent=2) + "\n")
        return
    if not drafts:
        typer.echo("no draft yet: a retrieval study (`ragdeck tune`) saves one")
    for d in drafts:
        typer.echo(f"{d.name}  study {d.study_id or '—'}  by {d.created_by}")
        typer.echo(f"  knobs: {d.knobs_text()}")
        typer.echo(f"  verdict: {summary_text(d.summary)}")


def _print(result: DraftApplication, verb: str, settings: Settings) -> None:
    typer.echo(f"{verb} draft {result.draft} (study {result.study_id or '—'}) on policy {result.policy}:")
    for line in result.lines():
        typer.echo(f"  {line}")
    if result.kept:
        typer.echo(f"  left as changed since the draft was applied: {', '.join(result.kept)}")
    if verb == "applied":
        weights = build_routing_state(settings).weights()
        share = weights.get(result.policy, settings.canary_weight)
        if result.policy == settings.canary_policy and share <= 0:
            typer.echo(
                f"note: {result.policy} gets 0 % of users: no user is served by the draft until its share is "
                "raised (Canary page, or the API's admin routes)"
            )


@draft_app.command("apply")
def apply_cmd(
    name: Annotated[str, typer.Argument(help="The draft to try.")], policy: PolicyOpt = None
) -> None:
    """Make a draft's knobs the canary policy's run-time overrides (operator; audited). Every process's
    policy loader, the RAG API's included, picks them up."""
    settings = Settings()
    target = policy or settings.canary_policy
    result = apply_draft(
        settings, name, target, actor=cli_user(settings), drafts=build_policy_drafts(settings),
        overrides=build_policy_overrides(settings), log=build_audit_log(settings),
    )  # fmt: skip
    _print(result, "applied", settings)


@draft_app.command("undo")
def undo_cmd(policy: PolicyOpt = None) -> None:
    """Put back the overrides the last draft applied to the policy replaced (operator; audited)."""
    settings = Settings()
    target = policy or settings.canary_policy
    result = undo_draft(
        settings, target, actor=cli_user(settings), drafts=build_policy_drafts(settings),
        overrides=build_policy_overrides(settings), log=build_audit_log(settings),
    )  # fmt: skip
    _print(result, "undid", settings)
