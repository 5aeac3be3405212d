"""``ragdeck replay``: eval-set questions against a RAG API at a bounded rate; live and final summaries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.text import Text

from ragdeck.cli.common import EXIT_INTERRUPTED, err
from ragdeck.console.evalsets.files import resolve_eval_set
from ragdeck.console.evalsets.io import read_any
from ragdeck.console.online.replay import ReplayPlan, ReplaySummary, check_target, run_replay
from ragdeck.services.files import write_text_atomic
from ragdeck.services.redact import redact_url
from ragdeck.services.replay_client import RagApiClient


async def _replay(plan: ReplayPlan, target: str, timeout_s: float, live: Live) -> ReplaySummary:
    """Run the replay; Ctrl+C and SIGTERM stop it cleanly (the summary is still returned)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    client = RagApiClient(target, timeout_s=timeout_s, max_connections=plan.max_in_flight)
    try:
        return await run_replay(
            plan, client, stop=stop, on_tick=lambda s: live.update(Text("\n".join(s.lines())), refresh=True)
        )
    finally:
        await client.aclose()
        for sig in handled:
            loop.remove_signal_handler(sig)


def replay_cmd(
    set_path: Annotated[
        Path, typer.Option("--set", help="Eval set whose questions to send (.jsonl/.csv/.qrels).")
    ],
    qps: Annotated[float, typer.Option("--qps", help="Requests per second (never exceeded).")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds to send for; then it stops.")],
    target: Annotated[str, typer.Option("--target", help="Base URL of the RAG API (POST {target}/query).")],
    users: Annotated[int, typer.Option("--users", help="Synthetic users replay-user-0..N-1.")] = 10,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Force this policy by name (else the API routes users).")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a target that is not 127.0.0.1, ::1 or localhost.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the final summary here as JSON.")
    ] = None,
    max_in_flight: Annotated[int, typer.Option("--max-in-flight", help="Most requests outstanding.")] = 32,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for one answer.")] = 30.0,
) -> None:
    """Replay eval-set questions against a RAG API at a bounded open-loop rate (loopback unless
    --allow-remote); a live summary on stderr, the final one on stdout (per policy: count, P50/P95, error and
    no-answer rates)."""
    base = check_target(target, allow_remote)
    questions = [record.question for record in read_any(resolve_eval_set(set_path)).records]
    plan = ReplayPlan(questions, qps, duration, users=users, policy=policy, max_in_flight=max_in_flight)
    shown = redact_url(base)
    err.print(f"Replaying {len(questions)} questions at {qps:g} QPS for {duration:g} s against {shown} …")
    with Live(Text("starting …"), console=err, auto_refresh=False, transient=True) as live:
        summary = asyncio.run(_replay(plan, base, timeout, live))
    typer.echo("\n".join(summary.lines()))
    if json_out is not None:
        payload = {
            "target": shown,
            "set": str(set_path),
            "users": users,
            "policy": policy,
            **summary.to_json(),
        }
        write_text_atomic(json_out, json.dumps(payload, indent=2) + "\n")
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
