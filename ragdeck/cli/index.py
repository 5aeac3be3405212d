"""``ragdeck index``: versions behind the serving alias — rebuild, gate, swap, rollback, prune, snapshots.

The user is ``RAGDECK_USER`` (else the OS user) with the role the ``roles`` setting gives; changes need the
operator role. Every command first reports rebuilds that were interrupted (``ragdeck index recover``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import EllipsisType
from typing import Annotated

import typer

from ragdeck.cli.common import EXIT_FAILED, JsonOpt, rows_table
from ragdeck.cli.common import err_whole as err  # index operations name collections and commands: no wrap
from ragdeck.cli.common import out_whole as out
from ragdeck.console.index_ops.operations import IndexOps
from ragdeck.console.index_ops.records import DEFAULT_MAX_REGRESSION
from ragdeck.console.ingest.pipeline import chunking_from, hnsw_from
from ragdeck.console.roles import User, cli_user
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import (
    Stack,
    build_embedder,
    build_eval_runner_for,
    build_index_ops,
    build_stack,
    build_version_embedder,
)
from ragdeck.errors import InputError

app = typer.Typer(
    help="Index versions behind the serving alias: rebuild, gate, swap, rollback, prune, snapshots.",
    no_args_is_help=True,
)
VERSION_COLUMNS = (
    "collection",
    "state",
    "points",
    "chunk chars",
    "m",
    "ef_construct",
    "gate",
    "created",
    "by",
)
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history and audit log).")]
ExpectOpt = Annotated[
    str | None,
    typer.Option(
        "--expect",
        help="The version you saw live (`ragdeck index versions`; 'none' for no alias): refused, and "
        "nothing changed, if the alias moved since. Default: the one live when the command starts.",
    ),
]


def _expected(expect: str | None) -> str | EllipsisType | None:
    """``--expect`` as the domain takes it: ``...`` (live at the start), None (no alias) or a name."""
    if expect is None:
        return ...
    return None if expect.strip().lower() == "none" else expect.strip()


@contextmanager
def _ops() -> Iterator[tuple[IndexOps, Stack, User]]:
    stack = build_stack(Settings())
    try:
        ops = build_index_ops(stack.settings, stack)
        for item in ops.interrupted():
            err.print(
                f"[yellow]interrupted rebuild:[/] {item.collection} (pid {item.pid} on {item.host}, "
                f"stopped at {item.progress_text}); the live alias is untouched. Run "
                f"`ragdeck index recover --resume {item.collection}` or `--cleanup {item.collection}`.",
                highlight=False,
            )
        yield ops, stack, cli_user(stack.settings)
    finally:
        stack.close()


def _progress(stage: str, done: int, total: int) -> None:
    if total and (done == total or done % max(1, total // 10) == 0):
        err.print(f"{stage}: {done}/{total}", highlight=False)


@app.command("versions")
def versions_cmd(as_json: JsonOpt = False) -> None:
    """Every version behind the alias: live, previous (rollback target), how each was built, its gate."""
    with _ops() as (ops, _stack, _user):
        rows = [v.summary() for v in ops.versions()]
        alias = ops.alias
    if as_json:
        out.print_json(data=rows)
    elif rows:
        short = [{k: row[k] for k in VERSION_COLUMNS} for row in rows]
        for row in short:
            row["created"] = str(row["created"])[:16]
            row["by"] = "" if str(row["by"]).startswith("(") else row["by"]
        out.print(rows_table(short, title=f"versions of {alias} (--json for every field)"))
    else:
        out.print(f"no versions of {alias} yet: `ragdeck index rebuild CORPUS` builds one")


@app.command("rebuild")
def rebuild_cmd(
    corpus: Annotated[
        Path, typer.Argument(help="A folder of Markdown/text files, one file, or corpus.jsonl.")
    ],
    min_chars: Annotated[int | None, typer.Option(help="Smallest chunk (characters).")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Largest chunk (characters).")] = None,
    overlap: Annotated[float | None, typer.Option(help="Overlap between chunks (0.1-0.2).")] = None,
    m: Annotated[int | None, typer.Option("--m", help="HNSW m.")] = None,
    ef_construct: Annotated[int | None, typer.Option(help="HNSW ef_construct.")] = None,
    shards: Annotated[int | None, typer.Option(min=1, help="Shards (Qdrant server only).")] = None,
    replicas: Annotated[int | None, typer.Option(min=1, help="Replicas (Qdrant server only).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Chunks embedded per batch.")] = None,
    embedding_model: Annotated[
        Path | None,
        typer.Option(help="Local sentence-transformers model directory (default: the serving model)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the next version next to the live one (the alias keeps serving the old one)."""
    settings = Settings()
    chunking = chunking_from(settings, min_chars=min_chars, max_chars=max_chars, overlap=overlap)
    hnsw = hnsw_from(settings, m=m, ef_construct=ef_construct)
    with _ops() as (ops, stack, user):
        embedder = stack.embedder
        if embedding_model is not None:
            if settings.tei_url:
                raise InputError(
                    "--embedding-model names a local model, but TEI_URL is set: the embeddings come from the "
                    "TEI server's model (point TEI_URL at a server with the other model instead)"
                )
            embedder = build_embedder(settings.model_copy(update={"embedding_model": str(embedding_model)}))
        version = ops.rebuild(
            user,
            corpus,
            embedder,
            chunking=chunking,
            hnsw=hnsw,
            batch_size=batch_size or settings.embed_batch_size,
            shards=shards,
            replicas=replicas,
            progress=_progress,
        )
    if as_json:
        out.print_json(data=version.summary())
    else:
        out.print(
            f"built {version.collection}: {version.points} points (redacted: {version.redacted_text}); alias "
            f"{version.alias} unchanged. Next: "
            f"`ragdeck index gate {version.collection}`, then `ragdeck index swap {version.collection}`.",
            highlight=False,
        )


@app.command("recover")
def recover_cmd(
    resume: Annotated[str | None, typer.Option(help="Finish this interrupted rebuild.")] = None,
    cleanup: Annotated[str | None, typer.Option(help="Delete what this interrupted rebuild left.")] = None,
) -> None:
    """List interrupted rebuilds, or resume / clean one up."""
    with _ops() as (ops, stack, user):
        if resume and cleanup:
            raise InputError("give --resume or --cleanup, not both")
        if resume:
            embedder = build_version_embedder(stack, ops.version(resume))
            version = ops.resume(user, resume, embedder, progress=_progress)
            out.print(
                f"resumed {version.collection}: {version.points} points, ready to gate", highlight=False
            )
        elif cleanup:
            ops.cleanup(user, cleanup)
            out.print(f"cleaned up {cleanup}", highlight=False)
        elif not ops.interrupted():
            out.print("no interrupted rebuild")


def _default_set(settings: Settings) -> Path:
    """The one JSONL set published in eval_sets_dir; with none published, the shipped demo set."""
    from ragdeck.console.evalsets.files import DEMO_EVAL_SETS

    folder = settings.eval_sets_dir
    files = (
        sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".versions.jsonl"))
        if folder.is_dir()
        else []
    )
    if not files and (DEMO_EVAL_SETS / "demo_gold.jsonl").is_file():
        return DEMO_EVAL_SETS / "demo_gold.jsonl"
    if len(files) != 1:
        have = ", ".join(p.name for p in files) or "none"
        raise InputError(f"name the eval set with --set (published sets in {folder}: {have})")
    return files[0]


@app.command("gate")
def gate_cmd(
    collection: Annotated[str, typer.Argument(help="The shadow version to gate.")],
    set_file: Annotated[
        Path | None,
        typer.Option("--set", "-s", help="Eval set; default: the one published, else the shipped demo set."),
    ] = None,
    gate: Annotated[str | None, typer.Option("--gate", help='Thresholds, e.g. "recall@10>=0.8".')] = None,
    max_regression: Annotated[
        float, typer.Option(min=0.0, help="Largest allowed drop of a headline metric against the live one.")
    ] = DEFAULT_MAX_REGRESSION,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the shadow and the live version on the eval set, compare, check the gate (exit 1: failed)."""
    from ragdeck.console.evalsets.files import resolve_eval_set
    from ragdeck.console.evalsets.io import read_any
    from ragdeck.console.evaluation.gate import parse_gate
    from ragdeck.console.retrieval.policies import default_policy
    from ragdeck.console.wiring import build_eval_runner

    settings = Settings()
    conditions = parse_gate(gate) if gate else []
    evalset = read_any(resolve_eval_set(set_file) if set_file else _default_set(settings))
    with _ops() as (ops, stack, user):
        result = ops.gate(
            user,
            collection,
            evalset,
            build_eval_runner(settings, stack),
            default_policy("gate", settings),
            conditions=conditions,
            max_regression=max_regression,
            progress=_progress,
            shadow_runner=build_eval_runner_for(
                stack, build_version_embedder(stack, ops.version(collection))
            ),
        )
    if as_json:
        out.print_json(data=result.to_json())
    else:
        out.print(result.comparison_md or "(no live version to compare with)", highlight=False, markup=False)
        verdict = "PASSED" if result.passed else "FAILED: " + "; ".join(result.failures)
        out.print(f"gate of {collection}: {verdict}", highlight=False, markup=False)
    if not result.passed:
        raise typer.Exit(EXIT_FAILED)


@app.command("swap")
def swap_cmd(
    collection: Annotated[str, typer.Argument(help="The version to make live.")],
    reason: ReasonOpt = "",
    override: Annotated[
        bool, typer.Option("--override", help="Swap without a passed gate (needs --reason).")
    ] = False,
    expect: ExpectOpt = None,
) -> None:
    """Point the serving alias at a gated version, atomically (operators only)."""
    with _ops() as (ops, _stack, user):
        move = ops.swap(user, collection, reason=reason, override=override, expected=_expected(expect))
    out.print(f"{move.alias}: {move.before} -> {move.after}", highlight=False)


@app.command("rollback")
def rollback_cmd(
    to: Annotated[
        str | None, typer.Option("--to", help="Version to go back to (default: the previous).")
    ] = None,
    reason: ReasonOpt = "",
    expect: ExpectOpt = None,
) -> None:
    """Point the serving alias back at the previous version, atomically (operators only)."""
    with _ops() as (ops, _stack, user):
        move = ops.rollback(user, reason=reason, to=to, expected=_expected(expect))
    out.print(f"{move.alias}: {move.before} -> {move.after} (rolled back)", highlight=False)


@app.command("history")
def history_cmd(limit: Annotated[int, typer.Option(min=1)] = 50, as_json: JsonOpt = False) -> None:
    """Swaps and rollbacks of the alias: when, who, from, to, why, and state (pending: not settled yet)."""
    with _ops() as (ops, _stack, _user):
        rows = [
            {
                k: r.get(k)
                for k in ("time", "action", "from_collection", "to_collection", "actor", "reason", "state")
            }
            for r in ops.history(limit)
        ]
    if as_json:
        out.print_json(data=rows)
    else:
        out.print(rows_table(rows) if rows else "no swap or rollback yet")


@app.command("prune")
def prune_cmd(
    keep: Annotated[
        int | None, typer.Option(min=1, help="Versions to keep (default: index_retention).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete them (without it, only list them).")] = False,
) -> None:
    """Delete all but the newest N versions (never the live one or its rollback target)."""
    keep = keep or Settings().index_retention
    with _ops() as (ops, _stack, user):
        plan = ops.prune(user, keep, confirm=yes)
    if not plan:
        out.print(f"nothing to delete: at most {keep} versions besides the live and previous ones")
    elif yes:
        out.print(f"deleted {', '.join(plan)}", highlight=False)
    else:
        out.print(f"would delete {', '.join(plan)}; run again with --yes to delete them", highlight=False)


@app.command("snapshot")
def snapshot_cmd(
    collection: Annotated[str | None, typer.Argument(help="Collection (default: the live version).")] = None,
) -> None:
    """Snapshot a version with the alias mapping recorded next to it (operators only)."""
    with _ops() as (ops, _stack, user):
        info = ops.create_snapshot(user, collection)
    out.print(f"snapshot {info.name} of {info.collection} ({info.size_bytes} bytes)", highlight=False)


@app.command("snapshots")
def snapshots_cmd(
    collection: Annotated[str | None, typer.Argument(help="Collection (default: the live version).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a version's snapshots (newest first) with the alias mapping each recorded."""
    with _ops() as (ops, _stack, _user):
        rows = [
            {
                "snapshot": s.name,
                "collection": s.collection,
                "created": s.created_at,
                "bytes": s.size_bytes,
                "aliases": json.dumps(s.aliases),
            }
            for s in ops.snapshots(collection)
        ]
    if as_json:
        out.print_json(data=rows)
    else:
        out.print(rows_table(rows) if rows else "no snapshots")


@app.command("download")
def download_cmd(
    collection: Annotated[str, typer.Argument(help="Collection the snapshot is of.")],
    snapshot: Annotated[str, typer.Argument(help="Snapshot name (see `ragdeck index snapshots`).")],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="File to write, or a folder to write it into (default: its name, here)."
        ),
    ] = None,
) -> None:
    """Download a snapshot (embedded: its tar; server: streamed from Qdrant's snapshot API)."""
    with _ops() as (ops, _stack, _user):
        path = ops.download_snapshot(collection, snapshot, out_path)
    out.print(f"wrote {path} ({path.stat().st_size} bytes)", highlight=False)


@app.command("restore")
def restore_cmd(
    collection: Annotated[str, typer.Argument(help="Collection to replace or recreate.")],
    snapshot: Annotated[str, typer.Argument(help="Snapshot name (see `ragdeck index snapshots`).")],
    aliases: Annotated[
        bool, typer.Option("--aliases/--no-aliases", help="Put the recorded aliases back.")
    ] = True,
    expect: ExpectOpt = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the history and the audit log).")] = "",
) -> None:
    """Restore a version from a snapshot, with its recorded alias mapping (operators only)."""
    with _ops() as (ops, _stack, user):
        ops.restore_snapshot(
            user, collection, snapshot, restore_aliases=aliases, expected=_expected(expect), reason=reason
        )
        live = ops.live()
    out.print(f"restored {collection} from {snapshot}; {ops.alias} -> {live}", highlight=False)
