"""HNSW tuning: what m, ef_construct and search-time ef cost and buy on one collection, and applying a choice.
Fronts: the Tune page and ``ragdeck hnsw``.

Owns the grid and the records of a sweep (``grid``), its queries (``queries``), measuring recall and latency
(``measure``), temporary copies built from the stored vectors (``copies``), running a sweep with cancel and
resume (``sweep``), the Pareto front and the recommendation (``choice``), a sweep as a background job
(``jobs``), sweeps kept in the state database so a partial one survives a restart (``saved``, through the
``SweepLog`` of ``ports``), and applying a choice, audited (``apply``). ``ports`` also names ``TuningStore``,
the vector store roles sweeps and applying use.

Per configuration a sweep reports: recall@k against exact search (``recall_exact``), recall@k against the
gold eval set when its queries come from one (``recall_gold``), P50 / P95 search latency in milliseconds,
build seconds (the index build once a copy holds every vector; None for the live index) and index bytes
(embedded: bytes allocated on disk by the HNSW graph files; server: None). Notes say when the figures cannot
differ: a collection under its ``full_scan_threshold`` is searched exactly whatever m and ef are.
"""

from ragdeck.console.hnsw.apply import apply_hnsw, apply_policy_ef, check_apply
from ragdeck.console.hnsw.choice import choose, pareto_front, recommend
from ragdeck.console.hnsw.copies import TEMP_PREFIX, remove_temporary, temporary_name
from ragdeck.console.hnsw.grid import (
    DEFAULT_EF_CONSTRUCTS,
    DEFAULT_EFS,
    DEFAULT_MS,
    LATENCY_KEYS,
    RECALL_KEYS,
    Config,
    Grid,
    Recommendation,
    SweepResult,
    SweepRow,
    parse_ints,
)
from ragdeck.console.hnsw.jobs import (
    Prepare,
    SweepJob,
    SweepRequest,
    job_key,
    start_sweep_job,
    sweep_job,
    sweep_running,
)
from ragdeck.console.hnsw.measure import LiveSearch, gold_recall, live_search
from ragdeck.console.hnsw.ports import SweepLog, TuningStore
from ragdeck.console.hnsw.queries import QuerySet, StoredVectors, eval_queries, sample_queries
from ragdeck.console.hnsw.saved import LoadedSweep, SavedSweep, load_sweep, resumable_sweeps, saved_sweeps
from ragdeck.console.hnsw.sweep import (
    check_sweep,
    discard_sweep,
    measure_grid,
    resume_sweep,
    run_sweep,
    sweep_notes,
)

__all__ = [
    "DEFAULT_EFS",
    "DEFAULT_EF_CONSTRUCTS",
    "DEFAULT_MS",
    "LATENCY_KEYS",
    "RECALL_KEYS",
    "TEMP_PREFIX",
    "Config",
    "Grid",
    "LiveSearch",
    "LoadedSweep",
    "Prepare",
    "QuerySet",
    "Recommendation",
    "SavedSweep",
    "StoredVectors",
    "SweepJob",
    "SweepLog",
    "SweepRequest",
    "SweepResult",
    "SweepRow",
    "TuningStore",
    "apply_hnsw",
    "apply_policy_ef",
    "check_apply",
    "check_sweep",
    "choose",
    "discard_sweep",
    "eval_queries",
    "gold_recall",
    "job_key",
    "live_search",
    "load_sweep",
    "measure_grid",
    "pareto_front",
    "parse_ints",
    "recommend",
    "remove_temporary",
    "resumable_sweeps",
    "resume_sweep",
    "run_sweep",
    "sample_queries",
    "saved_sweeps",
    "start_sweep_job",
    "sweep_job",
    "sweep_notes",
    "sweep_running",
    "temporary_name",
]
