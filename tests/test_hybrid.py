"""Hybrid retrieval: BM25 sparse vectors in both stores, RRF and weighted fusion, policies, CLI, index ops."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as edge
from cli_runner import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from index_helpers import small_corpus
from qdrant_client import QdrantClient, models

from ragdeck.console import audit
from ragdeck.console.evalsets.model import EvalRecord, EvalSet
from ragdeck.console.evaluation.plan import EvalPlan
from ragdeck.console.ingest.chunking import ChunkingConfig
from ragdeck.console.ingest.pipeline import ingest
from ragdeck.console.retrieval.fusion import fuse, rrf_scores
from ragdeck.console.retrieval.pipeline import RetrievalParams, Retriever
from ragdeck.console.retrieval.policies import Policy, default_policy
from ragdeck.console.roles import Role, User
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import Stack, build_eval_runner, build_eval_store, build_index_ops, build_stack
from ragdeck.errors import DimensionMismatch, InputError
from ragdeck.services.lexical import encoder
from ragdeck.services.qdrant_embedded import EmbeddedQdrantStore
from ragdeck.services.qdrant_server import QdrantServerStore
from ragdeck.services.types import HnswConfig, ScoredHit, VectorPoint

OPERATOR = User("olga", Role.OPERATOR, "test")

# Terms that occur in one chunk of the demo corpus each; the dense model does not put that chunk in its
# top 10 for the bare term (found by scanning every such term of the demo collection).
RARE_TERMS = ("twemproxy", "skip_head", "ravendb")


def hits(*ids_scores: tuple[str, float]) -> list[ScoredHit]:
    return [ScoredHit(id=i, score=s, payload={"text": i}) for i, s in ids_scores]


# ------------------------------------------------------------------ fusion maths


def test_rrf_on_fixed_rankings_equals_the_hand_computation() -> None:
    dense = hits(("a", 0.9), ("b", 0.8), ("c", 0.7))
    lexical = hits(("c", 9.0), ("d", 5.0), ("a", 1.0))
    fused = fuse(dense, lexical, fusion="rrf", rrf_k=60)
    # rank counted from 0 (Qdrant): a = 1/60 + 1/62, c = 1/62 + 1/60, b = d = 1/61
    assert [f.hit.id for f in fused] == ["a", "c", "b", "d"]  # ties: the better dense rank first
    expected = {"a": 1 / 60 + 1 / 62, "c": 1 / 62 + 1 / 60, "b": 1 / 61, "d": 1 / 61}
    assert {f.hit.id: f.score for f in fused} == pytest.approx(expected, rel=1e-12)
    by_id = {f.hit.id: f for f in fused}
    assert (by_id["a"].dense_rank, by_id["a"].lexical_rank) == (1, 3)
    assert (by_id["d"].dense_rank, by_id["d"].lexical_rank, by_id["d"].lexical_score) == (None, 2, 5.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from("abcdefghij"), max_size=10, unique=True), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=100),
)
def test_rrf_equals_cormack_et_al_with_one_based_ranks(rankings: list[list[str]], k: int) -> None:
    """Cormack, Clarke and Buettcher (2009): sum of 1 / (k' + r), r from 1; here k' = k - 1."""
    reference: dict[str, float] = {}
    for ranking in rankings:
        for r, item in enumerate(ranking, start=1):
            reference[item] = reference.get(item, 0.0) + 1.0 / ((k - 1) + r)
    assert rrf_scores(rankings, k) == pytest.approx(reference, rel=1e-12)


def test_weighted_fusion_normalises_each_list_then_weighs() -> None:
    dense = hits(("a", 0.9), ("b", 0.7), ("c", 0.5))
    lexical = hits(("c", 12.0), ("d", 6.0), ("a", 2.0))
    fused = {f.hit.id: f.score for f in fuse(dense, lexical, fusion="weighted", dense_weight=0.7)}
    # min-max: dense a 1, b 0.5, c 0; lexical c 1, d 0.4, a 0
    assert fused == pytest.approx({"a": 0.7, "b": 0.35, "c": 0.3, "d": 0.12})
    only_dense = fuse(dense, lexical, fusion="weighted", dense_weight=1.0)
    assert [f.hit.id for f in only_dense][:3] == ["a", "b", "c"]


def test_fusion_options_are_checked() -> None:
    with pytest.raises(InputError, match="fusion must be one of rrf, weighted, dbsf"):
        fuse([], [], fusion="max")
    with pytest.raises(InputError, match="rrf_k must be an integer >= 1"):
        RetrievalParams(retrieval="hybrid", rrf_k=0)
    with pytest.raises(InputError, match="retrieval must be one of dense, lexical, hybrid"):
        RetrievalParams(retrieval="bm25")
    with pytest.raises(InputError, match=r"policy 'B': dense_weight must be a number from 0 to 1"):
        Policy(name="B", retrieval="hybrid", fusion="weighted", dense_weight=1.5)


def _engine_points(n: int, seed: int) -> tuple[list[list[float]], list[tuple[list[int], list[float]]]]:
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, 8)).tolist()
    sparse = []
    for _ in range(n):
        terms = sorted(rng.choice(30, size=4, replace=False).tolist())
        sparse.append((terms, rng.uniform(0.1, 3.0, size=4).tolist()))
    return dense, sparse


def _edge_shard(
    tmp_path: Path, dense: list[list[float]], sparse: list[tuple[list[int], list[float]]]
) -> edge.EdgeShard:
    """A qdrant-edge shard holding the points, each with its dense and its lexical (sparse) vector."""
    shard = edge.EdgeShard.create(
        str(tmp_path / "shard"),
        edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=8, distance=edge.Distance.Cosine),
            sparse_vectors={"lexical": edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        ),
    )
    shard.update(
        edge.UpdateOperation.upsert_points(
            [
                edge.Point(str(uuid.UUID(int=i + 1)), {"": d, "lexical": edge.SparseVector(*s)}, {"i": i})
                for i, (d, s) in enumerate(zip(dense, sparse, strict=True))
            ]
        )
    )
    return shard


def test_dbsf_scales_each_list_by_its_mean_and_three_deviations_then_sums() -> None:
    dense = hits(("a", 0.9), ("b", 0.7), ("c", 0.5))
    lexical = hits(("c", 12.0), ("d", 6.0))
    fused = {f.hit.id: f.score for f in fuse(dense, lexical, fusion="dbsf")}
    sd_dense, sd_lexical = 0.2, 18**0.5  # sample deviations (n - 1), as Qdrant: means 0.7 and 9
    assert fused == pytest.approx(
        {
            "a": (0.9 - 0.7 + 3 * sd_dense) / (6 * sd_dense),
            "b": 0.5,
            "c": (0.5 - 0.7 + 3 * sd_dense) / (6 * sd_dense) + (12 - 9 + 3 * sd_lexical) / (6 * sd_lexical),
            "d": (6 - 9 + 3 * sd_lexical) / (6 * sd_lexical),
        }
    )
    assert [f.score for f in fuse(hits(("x", 0.4)), [], fusion="dbsf")] == [0.5]  # one score: σ = 0


def test_dbsf_equals_qdrants_own_distribution_based_fusion(tmp_path: Path) -> None:
    """The same two candidate lists fused by qdrant-edge's prefetch + ``Fusion.Dbsf`` and by ``fuse``."""
    dense, sparse = _engine_points(60, seed=3)
    shard = _edge_shard(tmp_path, dense, sparse)
    for query_dense, terms in (([0.3] * 8, [1, 5, 7, 11, 20]), ([0.1, -0.4] * 4, [2, 3, 29])):
        by_dense = edge.Query.Nearest(query_dense)
        by_terms = edge.Query.Nearest(edge.SparseVector(terms, [1.0] * len(terms)), using="lexical")

        def listed(query: object) -> list[ScoredHit]:
            found = shard.query(edge.QueryRequest(limit=15, query=query, with_payload=True))
            return [ScoredHit(str(p.id), p.score, p.payload) for p in found]

        ours = {f.hit.id: f.score for f in fuse(listed(by_dense), listed(by_terms), fusion="dbsf")}
        engine = shard.query(
            edge.QueryRequest(
                limit=30,
                prefetches=[edge.Prefetch(limit=15, query=by_dense), edge.Prefetch(limit=15, query=by_terms)],
                query=edge.Fusion.Dbsf(),
            )
        )
        assert {str(p.id): p.score for p in engine} == pytest.approx(ours, rel=1e-4, abs=1e-6)
    shard.close()


@pytest.mark.parametrize("k", [1, 2, 60])
def test_rrf_equals_qdrants_own_fusion_in_both_engines(tmp_path: Path, k: int) -> None:
    """The same two candidate lists, fused by Qdrant's Query API (prefetch + RRF) and by us."""
    dense, sparse = _engine_points(60, seed=k)
    query_dense, query_sparse = [0.3] * 8, ([1, 5, 7, 11, 20], [1.0] * 5)

    shard = _edge_shard(tmp_path, dense, sparse)
    prefetch_dense = edge.Query.Nearest(query_dense)
    prefetch_lexical = edge.Query.Nearest(edge.SparseVector(*query_sparse), using="lexical")

    def listed(query: object) -> list[ScoredHit]:
        found = shard.query(edge.QueryRequest(limit=15, query=query, with_payload=True))
        return [ScoredHit(str(p.id), p.score, p.payload) for p in found]

    ours = {f.hit.id: f.score for f in fuse(listed(prefetch_dense), listed(prefetch_lexical), rrf_k=k)}
    engine = shard.query(
        edge.QueryRequest(
            limit=30,
            prefetches=[
                edge.Prefetch(limit=15, query=prefetch_dense),
                edge.Prefetch(limit=15, query=prefetch_lexical),
            ],
            query=edge.Fusion.Rrf(k=k),
        )
    )
    assert {str(p.id): p.score for p in engine} == pytest.approx(ours, rel=1e-5)
    shard.close()

    client = QdrantClient(":memory:")
    client.create_collection(
        "c",
        vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE),
        sparse_vectors_config={"lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.upsert(
        "c",
        [
            models.PointStruct(
                id=i + 1, vector={"": d, "lexical": models.SparseVector(indices=s[0], values=s[1])}
            )
            for i, (d, s) in enumerate(zip(dense, sparse, strict=True))
        ],
    )
    sparse_query = models.SparseVector(indices=query_sparse[0], values=query_sparse[1])

    def client_list(**query: object) -> list[ScoredHit]:
        points = client.query_points("c", limit=15, **query).points  # type: ignore[arg-type]
        return [ScoredHit(str(p.id), p.score, {}) for p in points]

    ours = {
        f.hit.id: f.score
        for f in fuse(
            client_list(query=query_dense), client_list(query=sparse_query, using="lexical"), rrf_k=k
        )
    }
    fused = client.query_points(
        "c",
        prefetch=[
            models.Prefetch(query=query_dense, limit=15),
            models.Prefetch(query=sparse_query, using="lexical", limit=15),
        ],
        query=models.RrfQuery(rrf=models.Rrf(k=k)),
        limit=30,
    ).points
    assert {str(p.id): p.score for p in fused} == pytest.approx(ours, rel=1e-5)


# ------------------------------------------------------------------ the tokeniser


def test_the_tokeniser_handles_punctuation_case_and_stemming() -> None:
    enc = encoder()
    document = set(enc.document("Indexes, RUNNING queries; the P95-latency (hnsw_ef=64) of the Café").indices)
    for query in ("index", "running", "runs", "p95", "latency", "cafe", "HNSW", "ef"):
        terms = enc.query(query).indices
        assert terms and set(terms) <= document, query
    assert not enc.query("the of and").indices  # stop words only: no terms
    assert not enc.document("").indices


# ------------------------------------------------------------------ both stores


@pytest.fixture(params=["embedded", "server"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "embedded":
        store: object = EmbeddedQdrantStore(tmp_path / "qdrant")
    else:
        store = QdrantServerStore(QdrantClient(path=str(tmp_path / "local")), meta_dir=tmp_path / "meta")
    yield store
    store.close()  # type: ignore[attr-defined]


TEXTS = [
    "Prometheus scrapes its targets every 15 seconds.",
    "The HNSW index trades recall for latency through ef.",
    "A zyxwvut appears in this chunk only.",
    "Alerting rules fire when their expression holds.",
    "",
]


def test_both_stores_search_lexically_and_refuse_collections_without_the_index(any_store) -> None:
    store = any_store
    store.create_collection("c", 4, HnswConfig())
    rng = np.random.default_rng(1)
    store.upsert(
        "c", [VectorPoint(f"p{i}", rng.normal(size=4).tolist(), {"text": t}) for i, t in enumerate(TEXTS)]
    )
    store.set_alias("live", "c")
    assert store.collection_info("live").lexical == "bm25-english-v1"
    assert [h.id for h in store.search_lexical("live", "ZYXWVUT?", 5)] == ["p2"]
    assert [h.id for h in store.search_lexical("c", "indexes", 5)] == ["p1"]
    assert [h.id for h in store.search_lexical("c", "rules", 5, payload_filter={"text": TEXTS[1]})] == []
    assert store.search_lexical("c", "the of", 5) == []  # no indexable term: nothing, no error
    assert len(store.search("c", [1.0, 0.0, 0.0, 0.0], 5)) == 5  # the dense side is unchanged
    for text in ("alerting rules", "the of"):
        both = store.search_both("live", [0.5, 0.1, 0.0, 0.3], text, 4, payload_filter=None)
        assert both == (store.search("c", [0.5, 0.1, 0.0, 0.3], 4), store.search_lexical("c", text, 4))
    with pytest.raises(DimensionMismatch):
        store.search_both("c", [1.0, 0.0], "rules", 4)
    assert store.retrieve("c", ["p0"], with_vectors=True)[0].vector is not None

    store.create_collection("old", 4, HnswConfig(), lexical=False)
    store.upsert("old", [VectorPoint("x", [1.0, 0.0, 0.0, 0.0], {"text": "zyxwvut"})])
    assert store.collection_info("old").lexical is None
    with pytest.raises(InputError, match=r"'old' has no lexical \(BM25\) index.*rebuild it"):
        store.search_lexical("old", "zyxwvut", 3)
    with pytest.raises(InputError, match=r"'old' has no lexical \(BM25\) index"):
        store.search_both("old", [1.0, 0.0, 0.0, 0.0], "zyxwvut", 3)


def test_an_in_place_hnsw_rebuild_keeps_the_lexical_index(tmp_path: Path) -> None:
    with EmbeddedQdrantStore(tmp_path / "qdrant") as store:
        store.create_collection("c", 4, HnswConfig())
        rng = np.random.default_rng(2)
        store.upsert(
            "c", [VectorPoint(f"p{i}", rng.normal(size=4).tolist(), {"text": t}) for i, t in enumerate(TEXTS)]
        )
        store.finish_indexing("c")
        before = [(h.id, h.score) for h in store.search_lexical("c", "alerting rules", 5)]
        info = store.collection_info("c")
        assert info.indexed_vectors <= info.points  # sparse vectors are not counted as HNSW-indexed
        store.update_hnsw("c", HnswConfig(m=8))
        assert [(h.id, h.score) for h in store.search_lexical("c", "alerting rules", 5)] == before
        assert store.collection_info("c").hnsw.m == 8


# ------------------------------------------------------------------ the demo collection


@pytest.fixture
def demo_store(demo_data_dir: Path) -> Iterator[EmbeddedQdrantStore]:
    with EmbeddedQdrantStore(demo_data_dir / "qdrant") as store:
        yield store


def test_lexical_finds_an_exact_rare_term_that_dense_misses(demo_store, local_embedder) -> None:
    retriever = Retriever(demo_store, local_embedder)
    for term in RARE_TERMS:
        holders = [p.id for p in demo_store.iter_points("rag_chunks") if term in p.payload["text"].lower()]
        assert len(holders) == 1, term
        (holder,) = holders

        def ranking(mode: str, term: str = term) -> list[str]:
            params = RetrievalParams(top_k=10, top_n=10, rerank=False, retrieval=mode)
            return [h.chunk_id for h in retriever.search(term, "rag_chunks", params).hits]

        assert holder not in ranking("dense"), term
        assert ranking("lexical")[0] == holder, term
        assert holder in ranking("hybrid"), term


def test_hybrid_hits_carry_their_ranks_in_both_lists(demo_store, local_embedder) -> None:
    retriever = Retriever(demo_store, local_embedder)
    question = "How long does Prometheus keep samples with the default retention?"
    dense = retriever.search(question, "rag_chunks", RetrievalParams(top_k=20, top_n=20, rerank=False))
    lexical = retriever.search(
        question, "rag_chunks", RetrievalParams(top_k=20, top_n=20, rerank=False, retrieval="lexical")
    )
    hybrid = retriever.search(
        question, "rag_chunks", RetrievalParams(top_k=20, top_n=10, rerank=False, retrieval="hybrid")
    )
    dense_rank = {h.chunk_id: h.rank for h in dense.hits}
    lexical_rank = {h.chunk_id: h.rank for h in lexical.hits}
    assert len(hybrid.hits) == 10
    for hit in hybrid.hits:
        assert hit.dense_rank == dense_rank.get(hit.chunk_id)
        assert hit.lexical_rank == lexical_rank.get(hit.chunk_id)
        expected = sum(1 / (60 + r - 1) for r in (hit.dense_rank, hit.lexical_rank) if r is not None)
        assert hit.fused_score == pytest.approx(expected) and hit.score == hit.fused_score
    assert [h.score for h in hybrid.hits] == sorted((h.score for h in hybrid.hits), reverse=True)
    assert all(h.fused_score is None and h.lexical_rank is None for h in dense.hits)


def test_cli_search_and_eval_take_the_retrieval_options(demo_data_dir: Path, monkeypatch, capsys) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "search", "twemproxy", "--retrieval", "lexical", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["params"]["retrieval"] == "lexical" and "twemproxy" in result["hits"][0]["text"].lower()
    assert result["hits"][0]["lexical_rank"] == 1 and result["hits"][0]["dense_rank"] is None

    code, out, err = run_cli(
        monkeypatch, capsys, "search", "twemproxy exporter", "-r", "hybrid", "--rrf-k", "10"
    )
    assert code == 0, err
    assert "(hybrid)" in out and "dense #" in out and "lexical #" in out

    code, _, err = run_cli(monkeypatch, capsys, "search", "x", "--retrieval", "bm25")
    assert code != 0 and "retrieval must be one of dense, lexical, hybrid" in err and "Traceback" not in err

    evalset = demo_data_dir.parent / "set.jsonl"
    evalset.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": "What is twemproxy_exporter for?",
                "gold_context_ids": ["prometheus-docs/docs/instrumenting/exporters"],
            }
        )
        + "\n"
    )
    code, out, err = run_cli(
        monkeypatch, capsys, "eval", "--set", str(evalset), "--retrieval", "hybrid", "--fusion", "weighted",
        "--dense-weight", "0.7", "--json", str(demo_data_dir.parent / "run.json"),
    )  # fmt: skip
    assert code == 0, err
    run = json.loads((demo_data_dir.parent / "run.json").read_text())
    policy = run["config"]["policy"]
    assert (policy["retrieval"], policy["fusion"], policy["dense_weight"]) == ("hybrid", "weighted", 0.7)
    assert "hybrid weighted 0.7 dense retrieval" in out
    assert run["queries"][0]["retrieved_chunk_ids"] and run["queries"][0]["error"] is None
    (stored,) = build_eval_store(Settings()).results(run["run_id"])  # what the Evaluate page drills into
    first = stored["retrieved"][0]
    assert first["fused_score"] is not None and (first["dense_rank"] or first["lexical_rank"])


def test_a_policy_cache_id_changes_with_its_retrieval_mode() -> None:
    dense = Policy(name="A")
    hybrid = Policy(name="A", retrieval="hybrid")
    assert dense.cache_id != hybrid.cache_id and dense.cache_id == Policy(name="A").cache_id
    assert hybrid.retrieval_params().retrieval == "hybrid"


# ------------------------------------------------------------------ index operations


@pytest.fixture
def stack(data_dir: Path, tmp_path: Path, local_embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    import ragdeck.console.wiring as wiring

    monkeypatch.setattr(wiring, "build_embedder", lambda settings: local_embedder)
    stack = build_stack(Settings())
    stack.use_embedder(local_embedder)
    ingest(small_corpus(tmp_path / "corpus"), stack.store, local_embedder, collection="rag_chunks_v1")
    stack.store.set_alias("rag_chunks", "rag_chunks_v1")
    yield stack
    stack.close()


def test_the_lexical_index_survives_rebuild_swap_rollback_and_snapshot_restore(
    stack: Stack, tmp_path: Path
) -> None:
    store = stack.store
    ops = build_index_ops(stack.settings, stack)
    question = "sccache docker build arguments"

    def lexical() -> list[tuple[str, float]]:
        return [(h.id, round(h.score, 5)) for h in store.search_lexical("rag_chunks", question, 5)]

    v1 = lexical()
    assert v1 and all(h[0].startswith("custom_container") for h in v1[:1])
    ops.rebuild(
        OPERATOR, tmp_path / "corpus", stack.embedder, chunking=ChunkingConfig(), hnsw=HnswConfig(m=8)
    )
    assert store.collection_info("rag_chunks_v2").lexical == "bm25-english-v1"
    ops.swap(OPERATOR, "rag_chunks_v2", reason="no gate in this test", override=True)
    assert store.resolve("rag_chunks") == "rag_chunks_v2" and lexical() == v1  # same chunking, same scores
    ops.rollback(OPERATOR, reason="back")
    assert store.resolve("rag_chunks") == "rag_chunks_v1" and lexical() == v1

    snapshot = ops.create_snapshot(OPERATOR)
    store.delete_collection("rag_chunks_v1")
    with pytest.raises(Exception, match="rag_chunks"):
        store.search_lexical("rag_chunks", question, 5)
    ops.restore_snapshot(OPERATOR, "rag_chunks_v1", snapshot.name)
    assert store.resolve("rag_chunks") == "rag_chunks_v1" and lexical() == v1
    assert audit.entries(action="snapshot.restore", log=ops.log)


def test_an_eval_in_lexical_mode_is_refused_up_front_on_a_collection_without_the_index(stack: Stack) -> None:
    store = stack.store
    store.create_collection("old", stack.embedder.dimension, HnswConfig(), lexical=False)
    runner = build_eval_runner(stack.settings, stack)
    policy = Policy.from_mapping(
        "L", {"alias": "old", "retrieval": "lexical"}, default_policy("L", stack.settings)
    )
    evalset = EvalSet(name="s", records=[EvalRecord(id="q", question="anything?", gold_context_ids=[])])
    with pytest.raises(InputError, match="'old' has no lexical"):
        runner.start(evalset, EvalPlan(policy, (1,), False, 1))


# ------------------------------------------------------------------ the engine's own fusion


@pytest.mark.parametrize("k", [1, 2, 60])
def test_native_hybrid_equals_ragdeck_fusion_of_both_lists(any_store, k: int) -> None:
    """``search_hybrid`` (the engine's prefetch + RRF: qdrant-edge, or the server's Query API with k passed
    explicitly, here qdrant-client's local mode) gives what ``fuse`` of ``search_both`` gives: the same
    chunks in the same order, the same scores and ranks, also where scores tie at the cut."""
    rng = np.random.default_rng(k)
    words = [f"w{i}" for i in range(12)]  # a small vocabulary: many chunks share terms, so scores tie
    store = any_store
    assert store.capabilities.native_fusion
    store.create_collection("c", 8, HnswConfig(m=4, ef_construct=16, full_scan_threshold=1))
    store.upsert(
        "c",
        [
            VectorPoint(
                f"d{i % 9}#s:{i}",
                rng.normal(size=8).tolist(),
                {"text": " ".join(rng.choice(words, size=3)), "doc_id": f"d{i % 9}", "even": i % 2 == 0},
            )
            for i in range(80)
        ],
    )
    store.finish_indexing("c")
    store.set_alias("live", "c")
    ties_at_cut, fused_alone = 0, {True: 0, False: 0}
    for q in range(40):
        vector = rng.normal(size=8).tolist()
        text = " ".join(rng.choice(words, size=2))
        limit, depth = int(rng.integers(1, 12)), int(rng.integers(5, 30))
        where = {"even": True} if q % 4 == 0 else None
        dense, lexical = store.search_both("c", vector, text, depth, exact=True, payload_filter=where)
        expected = fuse(dense, lexical, fusion="rrf", rrf_k=k)
        native = store.search_hybrid(
            "live", vector, text, limit, depth=depth, rrf_k=k, exact=True, payload_filter=where
        )
        assert [f.hit.id for f in native] == [f.hit.id for f in expected[:limit]]
        for got, want in zip(native, expected, strict=False):
            assert got.score == pytest.approx(want.score, abs=1e-6)
            assert (got.dense_rank, got.lexical_rank) == (want.dense_rank, want.lexical_rank)
            for ours, theirs in (
                (got.dense_score, want.dense_score),
                (got.lexical_score, want.lexical_score),
            ):
                assert ours == theirs or ours == pytest.approx(theirs, abs=1e-6)  # None or close
            assert (got.hit.id, got.hit.payload) == (want.hit.id, want.hit.payload)
            assert got.hit.score == pytest.approx(want.hit.score, abs=1e-6)  # the list it came from
        if len(expected) > limit and expected[limit - 1].score == expected[limit].score:
            ties_at_cut += 1
        cheap = store.search_hybrid(
            "live", vector, text, limit, depth=depth, rrf_k=k, exact=True, payload_filter=where, ranks=False
        )
        assert [f.hit.id for f in cheap] == [f.hit.id for f in expected[:limit]]
        assert [f.score for f in cheap] == pytest.approx([f.score for f in expected[:limit]], abs=1e-6)
        assert [f.hit.payload for f in cheap] == [f.hit.payload for f in expected[:limit]]
        fused_alone[all(f.dense_rank is None and f.lexical_rank is None for f in cheap)] += 1
    assert ties_at_cut > 0  # the cut fell inside a tie at least once: ragdeck's tie-break was tested
    assert fused_alone[True] and fused_alone[False]  # without ranks: the fused query alone, and on a tie both
    assert store.search_hybrid("c", [0.1] * 8, "zzz", 5, depth=10, rrf_k=k)  # no term: dense alone
