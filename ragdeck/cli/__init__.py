"""The ``ragdeck`` command: parses arguments and calls ``ragdeck.console``. No logic of its own."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragdeck.cli.compare import compare_cmd
from ragdeck.cli.eval import eval_cmd
from ragdeck.cli.evalset import app as evalset_app
from ragdeck.cli.hnsw import app as hnsw_app
from ragdeck.cli.index import app as index_app
from ragdeck.cli.index import audit_cmd
from ragdeck.cli.llm import app as llm_app
from ragdeck.cli.llm import model_path
from ragdeck.cli.replay import replay_cmd
from ragdeck.cli.retrieval import (
    DenseWeightOpt,
    FusionOpt,
    RetrievalOpt,
    RrfKOpt,
    retrieval_overrides,
)
from ragdeck.console import audit
from ragdeck.console.chunking import ChunkingConfig
from ragdeck.console.demo import ensure_demo
from ragdeck.console.ingest import IngestReport, ingest
from ragdeck.console.policies import default_policy
from ragdeck.console.retrieval import Retriever
from ragdeck.console.roles import Role, cli_user, require
from ragdeck.console.settings import Settings
from ragdeck.console.stack import collection_rows
from ragdeck.console.wiring import Stack, build_stack
from ragdeck.errors import InputError, RagdeckError
from ragdeck.services.llama_supervisor import LlmServerStatus
from ragdeck.services.types import HnswConfig

app = typer.Typer(
    name="ragdeck",
    help="Evaluation and operations console for self-hosted RAG stacks (Qdrant, TEI, vLLM, Prometheus).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "--alias", "-c", help="Collection or alias (default: the serving alias)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

STAGE_LABELS = {"chunk": "Chunking", "embed": "Embedding", "index": "Indexing"}


@contextmanager
def _stack():
    stack = build_stack(Settings())
    try:
        yield stack
    finally:
        stack.close()


@contextmanager
def _progress_bar():
    """A rich progress bar fed by the domain's ``progress(stage, done, total)`` callback."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_report(report: IngestReport) -> None:
    redacted = ", ".join(f"{k} {v}" for k, v in sorted(report.redactions.items())) or "nothing"
    target = f" (alias {report.alias} -> {report.collection})" if report.alias else ""
    out.print(
        f"Indexed {report.documents} documents as {report.chunks} chunks into {report.collection}{target} "
        f"in {report.seconds['total']:.1f} s ({report.chunks_per_second:.0f} chunks/s). Redacted: {redacted}."
    )


@app.command("ingest")
def ingest_cmd(
    path: Annotated[
        Path, typer.Argument(help="A folder of Markdown/text files, one file, or a BEIR corpus.jsonl.")
    ],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Physical collection to create.")],
    alias: Annotated[str | None, typer.Option(help="Point this alias at the collection when done.")] = None,
    append: Annotated[
        bool, typer.Option(help="Add to an existing collection instead of creating one.")
    ] = False,
    min_chars: Annotated[int | None, typer.Option(help="Smallest chunk (characters).")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Largest chunk (characters).")] = None,
    overlap: Annotated[
        float | None, typer.Option(help="Overlap between chunks, as a share (0.1-0.2).")
    ] = None,
    prefix_title: Annotated[
        bool, typer.Option(help="Prefix title and section heading to each chunk.")
    ] = True,
    m: Annotated[int | None, typer.Option("--m", help="HNSW m (edges per node).")] = None,
    ef_construct: Annotated[int | None, typer.Option(help="HNSW ef_construct.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Chunks embedded per batch.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Chunk, embed and index a corpus into a collection."""
    settings = Settings()
    chunking = ChunkingConfig(
        min_chars=min_chars or settings.chunk_min_chars,
        max_chars=max_chars or settings.chunk_max_chars,
        overlap=settings.chunk_overlap if overlap is None else overlap,
        prefix_title=prefix_title,
        prefix_section=prefix_title,
    )
    hnsw = HnswConfig(m=m or settings.hnsw_m, ef_construct=ef_construct or settings.hnsw_ef_construct)
    if not path.exists():
        raise InputError(f"{path} does not exist: give a folder, a .md/.txt file or a BEIR corpus.jsonl")
    user = cli_user(settings)
    if alias:  # moving an alias is an index operation: operators only, audited (ragdeck index swap gates it)
        require(user, Role.OPERATOR, "ingest.alias", target=alias)
    with _stack() as stack, _progress_bar() as progress:
        before = stack.store.list_aliases().get(alias) if alias else None
        report = ingest(
            path,
            stack.store,
            stack.embedder,
            collection=collection,
            alias=alias,
            chunking=chunking,
            hnsw=hnsw,
            append=append,
            batch_size=batch_size or settings.embed_batch_size,
            progress=progress,
        )
    if alias:
        audit.record(user, "ingest.alias", alias, {"collection": before}, {"collection": collection})
    if as_json:
        out.print_json(data={**asdict(report), "chunks_per_second": report.chunks_per_second})
    else:
        _print_report(report)


def _parse_filters(values: list[str]) -> dict[str, str | int | bool] | None:
    parsed: dict[str, str | int | bool] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(
                f"--filter '{item}': expected KEY=VALUE, e.g. --filter doc_id=tei/docs/source/en/quick_tour"
            )
        value: str | int | bool = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lstrip("-").isdigit():
            value = int(raw)
        parsed[key] = value
    return parsed or None


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question to retrieve contexts for.")],
    collection: CollectionOpt = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Results to return (top-N).")] = None,
    candidates: Annotated[int | None, typer.Option(help="Candidates from the vector store (top-K).")] = None,
    ef: Annotated[int | None, typer.Option("--ef", help="HNSW ef at search time.")] = None,
    exact: Annotated[bool, typer.Option(help="Exact (brute-force) search instead of HNSW.")] = False,
    rerank: Annotated[bool, typer.Option(help="Rerank when a reranker is configured.")] = True,
    filter_: Annotated[
        list[str], typer.Option("--filter", help="Payload filter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006
    retrieval: RetrievalOpt = None,
    fusion: FusionOpt = None,
    rrf_k: RrfKOpt = None,
    dense_weight: DenseWeightOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the retrieval pipeline for one question (dense, lexical or hybrid)."""
    settings = Settings()
    params = replace(
        default_policy("cli", settings).retrieval_params(),
        top_k=candidates or settings.top_k,
        top_n=k or settings.top_n,
        hnsw_ef=ef if ef is not None else settings.hnsw_ef,
        exact=exact,
        rerank=rerank,
        payload_filter=_parse_filters(filter_),
        **retrieval_overrides(retrieval, fusion, rrf_k, dense_weight),
    )
    with _stack() as stack:
        result = Retriever(stack.store, stack.embedder, stack.reranker).search(
            question, collection or settings.alias, params
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    table = Table(title=f"{result.collection} ({params.retrieval}): {question}", show_lines=False)
    hybrid = params.retrieval == "hybrid"
    for column in ("#", "score", *(("dense #", "lexical #") if hybrid else ()), "chunk", "source"):
        table.add_column(column)
    for hit in result.hits:
        where = f"{hit.title} > {hit.section}" if hit.section else hit.title
        ranks = (_rank(hit.dense_rank), _rank(hit.lexical_rank)) if hybrid else ()
        table.add_row(str(hit.rank), f"{hit.score:.3f}", *ranks, hit.chunk_id, where)
    out.print(table)
    t = result.timings_ms
    out.print(
        f"embed {t['embed']:.1f} ms · search {t['search']:.1f} ms · rerank {t['rerank']:.1f} ms · "
        f"total {t['total']:.1f} ms"
    )


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


@app.command()
def collections(as_json: JsonOpt = False) -> None:
    """List collections and aliases with counts and HNSW config."""
    with _stack() as stack:
        rows = collection_rows(stack.store)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("No collections yet: run `ragdeck demo` or `ragdeck ingest PATH --collection NAME`.")
        return
    table = Table()
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@app.command("stack")
def stack_cmd(as_json: JsonOpt = False) -> None:
    """Show each component's mode, health, version and model."""
    with _stack() as stack:
        rows = [asdict(h) for h in stack.health()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        columns = ("component", "mode", "ok", "version", "model", "dimension", "detail")
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        out.print(table)
    if not all(row["ok"] for row in rows):
        raise typer.Exit(1)


def _build_demo(stack: Stack) -> None:
    with _progress_bar() as progress:
        report = ensure_demo(stack, progress)
    if report is None:
        alias = stack.settings.alias
        out.print(f"Demo collection ready: alias {alias} -> {stack.store.resolve(alias)}.")
    else:
        _print_report(report)


@app.command()
def demo() -> None:
    """Build the demo collection (shipped Prometheus and TEI docs) behind the serving alias if missing."""
    with _stack() as stack:
        _build_demo(stack)


AddressOpt = Annotated[str, typer.Option(help="Address to listen on.")]
AllInterfacesOpt = Annotated[
    bool, typer.Option("--all-interfaces", help="Listen on every interface (in a container; else loopback).")
]
DemoOpt = Annotated[
    bool, typer.Option("--demo/--no-demo", help="Build the demo collection first if missing.")
]
LlmOpt = Annotated[
    bool,
    typer.Option(
        "--llm/--no-llm",
        help="With LLM_BASE_URL unset, start the local llama.cpp server (ragdeck[llm]).",
    ),
]
ALL_INTERFACES = str(ipaddress.IPv4Address(0))


@contextmanager
def _local_llm(settings: Settings, enabled: bool) -> Iterator[None]:
    """Run the packaged model on loopback, supervised, for the duration and point LLM_BASE_URL at it.

    Nothing happens when LLM_BASE_URL is set or ``enabled`` is false. A server already answering on the
    local port is reused (not supervised: ragdeck did not start it). When the local LLM cannot be started
    at all, say why and go on with extractive answers; when it starts but crashes, the supervisor restarts
    it and, meanwhile, policies fall back to extractive answers (labelled so).
    """
    if settings.llm_base_url or not enabled:
        yield
        return
    from ragdeck.services.llama_local import LlamaServer, llama_cpp_available
    from ragdeck.services.llama_supervisor import LlamaSupervisor, status_file
    from ragdeck.services.llm import OpenAIChatModel

    url = f"http://127.0.0.1:{settings.llm_port}/v1"
    with OpenAIChatModel(url, timeout_s=2.0) as probe:
        running = probe.health().ok
    supervisor = None
    if running:
        out.print(f"Using the LLM already serving at {url} (not started by ragdeck, so not supervised).")
    elif not llama_cpp_available():
        err.print("note: no local LLM (install it with pip install 'ragdeck[llm]'): answers are extractive.")
        yield
        return
    else:
        try:
            path = model_path(settings, None)
        except RagdeckError as exc:
            err.print(f"note: the local LLM is not available ({exc}); answers are extractive.")
            yield
            return
        server = LlamaServer(
            path,
            port=settings.llm_port,
            ctx=settings.llm_ctx,
            threads=settings.llm_threads,
            log_path=settings.data_dir / "logs" / "llama-server.log",
        )
        supervisor = LlamaSupervisor(server, status_file(settings.data_dir), on_change=_report_llm)
        out.print(f"Starting the local LLM ({path.name}) on 127.0.0.1:{settings.llm_port} …")
        supervisor.start()
        url = server.base_url
    os.environ["LLM_BASE_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("LLM_BASE_URL", None)
        if supervisor is not None:
            supervisor.stop()


def _report_llm(status: LlmServerStatus) -> None:
    """Print the local LLM's transitions as they happen (ready, crashed and restarting, gave up)."""
    if status.state == "ready":
        out.print(f"Local LLM ready: {escape(status.summary())}.")
    elif status.state in ("restarting", "failed"):
        err.print(f"[bold red]local LLM:[/] {escape(status.summary())}", highlight=False, soft_wrap=True)
        if status.last_failure and status.last_failure.log_tail:
            err.print(escape(status.last_failure.log_tail), highlight=False, soft_wrap=True)
        err.print(
            "Answers are extractive (and labelled so) until it answers again. "
            f"Log: {escape(status.log_path)}; `ragdeck llm smoke` tests the build.",
            highlight=False,
            soft_wrap=True,
        )


def _run_foreground(command: list[str]) -> int:
    """Run ``command`` until it exits; Ctrl+C or SIGTERM stop it too (no orphaned child)."""
    proc = subprocess.Popen(command, env=os.environ.copy())

    def forward(signum: int, frame: object) -> None:
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.kill()


@contextmanager
def _local_prometheus(settings: Settings, enabled: bool) -> Iterator[None]:
    """Run Debian's Prometheus on loopback for the duration, scraping the API the console hosts, and point
    PROMETHEUS_URL at it. Nothing happens when PROMETHEUS_URL is set, ``enabled`` is false or the binary is
    missing; a Prometheus that will not start is reported and skipped."""
    from ragdeck.services.prometheus_local import LocalPrometheus, bundled_rules, find_prometheus

    binary = find_prometheus()
    if settings.prometheus_url or not enabled or binary is None:
        yield
        return
    local = LocalPrometheus(
        binary,
        settings.data_dir / "prometheus",
        [f"127.0.0.1:{settings.api_port}"],
        rule_files=bundled_rules(),
    )
    try:
        url = local.start()
    except RagdeckError as exc:
        err.print(f"note: Prometheus did not start ({exc}); the SLO page shows the API's /metrics only.")
        yield
        return
    out.print(f"Prometheus on {url}, scraping the RAG API the console hosts (port {settings.api_port}).")
    os.environ["PROMETHEUS_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_URL", None)
        local.stop()


@app.command()
def console(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    address: AddressOpt = "127.0.0.1",
    all_interfaces: AllInterfacesOpt = False,
    build_demo: DemoOpt = True,
    llm: LlmOpt = True,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus/--no-prometheus",
            help="Run Debian's Prometheus on loopback for the SLO page (if installed, PROMETHEUS_URL unset).",
        ),
    ] = True,
) -> None:
    """Start the web console (building the demo collection first unless --no-demo)."""
    if all_interfaces:
        address = ALL_INTERFACES
    if build_demo:
        with _stack() as stack:
            _build_demo(stack)
    app_file = Path(__file__).resolve().parent.parent / "launch" / "console.py"  # runs app.py (see there)
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    with _local_llm(Settings(), llm), _local_prometheus(Settings(), prometheus):
        out.print(f"ragdeck console on http://{address}:{port}  (Ctrl+C to stop)")
        code = _run_foreground(command)
    raise typer.Exit(code)


api_app = typer.Typer(help="The RAG API service (FastAPI): /query, /feedback, /healthz, /readyz, /metrics.")
app.add_typer(api_app, name="api")
app.add_typer(llm_app, name="llm")
app.add_typer(evalset_app, name="evalset")
app.add_typer(index_app, name="index")
app.command("audit")(audit_cmd)
app.add_typer(hnsw_app, name="hnsw")
app.command("eval")(eval_cmd)
app.command("compare")(compare_cmd)
app.command("replay")(replay_cmd)


@api_app.command("serve")
def api_serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    address: AddressOpt = "127.0.0.1",
    all_interfaces: AllInterfacesOpt = False,
    build_demo: DemoOpt = False,
    llm: LlmOpt = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the RAG API on the configured stack (one process; run replicas behind a gateway)."""
    import uvicorn

    from ragdeck.api.app import create_app
    from ragdeck.api.runtime import build_runtime

    if all_interfaces:
        address = ALL_INTERFACES
    with _local_llm(Settings(), llm):
        runtime = build_runtime(Settings())
        try:
            if build_demo:
                _build_demo(runtime.stack)
            out.print(f"ragdeck API on http://{address}:{port}  (docs at /docs; Ctrl+C to stop)")
            uvicorn.run(create_app(runtime), host=address, port=port, log_level=log_level)
        finally:
            runtime.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: user mistakes print one line and exit 1; bugs keep their traceback.

    SIGTERM unwinds like Ctrl+C, so what a command started (the local LLM server) is stopped too.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app()
    except RagdeckError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
