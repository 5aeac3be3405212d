"""The retrieval knobs defined once (ragdeck.console.knobs): settings, policies and the pipeline share their
defaults, bounds and checks, and every outside name (env vars, TOML keys, JSON) stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdeck.console.knobs import KNOBS, RETRIEVAL_MODES, RetrievalKnobs, check_fusion, knob_problem
from ragdeck.console.retrieval.pipeline import RetrievalParams
from ragdeck.console.retrieval.policies import Policy, default_policy
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.errors import ConfigError, InputError

SETTINGS_KNOBS = ("top_k", "top_n", "hnsw_ef", "retrieval", "fusion", "rrf_k", "dense_weight")


def test_the_knobs_and_their_defaults() -> None:
    assert list(KNOBS) == [
        "top_k",
        "top_n",
        "hnsw_ef",
        "rerank",
        "retrieval",
        "fusion",
        "rrf_k",
        "dense_weight",
    ]
    assert RetrievalKnobs().knobs() == {
        "top_k": 40, "top_n": 10, "hnsw_ef": None, "rerank": True,
        "retrieval": "dense", "fusion": "rrf", "rrf_k": 60, "dense_weight": 0.5,
    }  # fmt: skip


def test_settings_policies_and_params_share_the_defaults(data_dir: Path) -> None:
    settings = Settings()
    defaults = RetrievalKnobs().knobs()
    assert {name: getattr(settings, name) for name in SETTINGS_KNOBS} == {
        n: defaults[n] for n in SETTINGS_KNOBS
    }
    assert Policy("A").knobs() == defaults
    assert RetrievalParams().knobs() == defaults
    assert default_policy("A", settings).knobs() == defaults
    for name in SETTINGS_KNOBS:
        assert Settings.model_fields[name].description == KNOBS[name].help


@pytest.mark.parametrize(
    ("env", "value", "field", "expected"),
    [
        ("RAGDECK_TOP_K", "25", "top_k", 25),
        ("RAGDECK_TOP_N", "4", "top_n", 4),
        ("RAGDECK_HNSW_EF", "128", "hnsw_ef", 128),
        ("RAGDECK_RETRIEVAL", "hybrid", "retrieval", "hybrid"),
        ("RAGDECK_FUSION", "weighted", "fusion", "weighted"),
        ("RAGDECK_RRF_K", "10", "rrf_k", 10),
        ("RAGDECK_DENSE_WEIGHT", "0.7", "dense_weight", 0.7),
    ],
)
def test_the_environment_names_are_unchanged(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    assert getattr(Settings(), field) == expected
    assert getattr(default_policy("A", Settings()), field) == expected


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("top_k", 0),
        ("top_n", 0),
        ("hnsw_ef", 0),
        ("retrieval", "bm25"),
        ("fusion", "max"),
        ("rrf_k", 0),
        ("dense_weight", 1.5),
        ("dense_weight", -0.1),
    ],
)
def test_one_rule_refused_everywhere(data_dir: Path, field: str, bad: object) -> None:
    expected = KNOBS[field].expected
    with pytest.raises(ConfigError, match=f"setting {field} "):
        Settings(**{field: bad})
    with pytest.raises(InputError, match=rf"^{field} must be {expected}, got {bad!r}$"):
        RetrievalParams(**{field: bad})
    with pytest.raises(InputError, match=rf"^policy 'P': {field} must be {expected}, got {bad!r}; fix"):
        Policy("P", **{field: bad})
    assert knob_problem({field: bad}) == f"{field} must be {expected}, got {bad!r}"


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("top_k", "40"),
        ("top_k", True),
        ("top_n", 2.0),
        ("rerank", "yes"),
        ("rrf_k", True),
        ("dense_weight", "0.5"),
    ],
)
def test_types_are_exact(field: str, bad: object) -> None:
    with pytest.raises(InputError, match=f"{field} must be"):
        RetrievalParams(**{field: bad})


def test_bounds_are_inclusive() -> None:
    params = RetrievalParams(top_k=1, top_n=1, hnsw_ef=1, rrf_k=1, dense_weight=0)
    assert params.dense_weight == 0 and RetrievalParams(dense_weight=1).dense_weight == 1
    assert KNOBS["hnsw_ef"].expected == "an integer >= 1 or unset"
    assert KNOBS["retrieval"].choices == RETRIEVAL_MODES == ("dense", "lexical", "hybrid")


def test_the_pipeline_allows_more_results_than_candidates_a_policy_does_not() -> None:
    assert RetrievalParams(top_k=5, top_n=10).top_n == 10  # `ragdeck search --k 50` with 40 candidates
    with pytest.raises(InputError, match=r"policy 'P': top_n must be at most top_k \(5\)"):
        Policy("P", top_k=5, top_n=10)


def test_check_fusion_keeps_its_messages() -> None:
    check_fusion("hybrid", "weighted", 60, 0.3)
    with pytest.raises(InputError, match="fusion must be one of rrf, weighted, dbsf, got 'max'"):
        check_fusion("hybrid", "max", 60, 0.5)


def test_at_depth() -> None:
    policy = Policy("P", top_k=20, top_n=5)
    assert (policy.at_depth(10).top_k, policy.at_depth(10).top_n) == (20, 10)
    assert (policy.at_depth(50).top_k, policy.at_depth(50).top_n) == (50, 50)
    assert isinstance(policy.at_depth(3), Policy) and policy.at_depth(3).name == "P"
    assert RetrievalParams(exact=True).at_depth(100).exact is True


def test_a_policy_is_built_as_before() -> None:
    policy = Policy("A", alias="docs", top_k=30)  # the name positional, the rest by keyword
    assert list(policy.as_dict())[:2] == ["name", "alias"]
    assert set(policy.as_dict()) == {
        "name",
        "alias",
        *KNOBS,
        "system_prompt",
        "model",
        "max_tokens",
        "fallback",
    }
    assert policy.retrieval_params() == RetrievalParams(top_k=30)


def test_cache_ids_are_unchanged() -> None:
    """The digests the answer cache keys by, as before the knobs moved (no cached answer is lost)."""
    assert Policy("A").cache_id == "A@7a086a078f8c"
    hybrid = Policy(
        "B", retrieval="hybrid", fusion="weighted", dense_weight=0.7, top_k=20, top_n=5, hnsw_ef=64
    )
    assert hybrid.cache_id == "B@87553213e5e5"


def test_toml_policy_tables_use_the_knob_names(data_dir: Path) -> None:
    Path("ragdeck.toml").write_text(
        'retrieval = "hybrid"\nrrf_k = 30\n'
        '[policies.A]\n[policies.B]\nfusion = "weighted"\ndense_weight = 0.25\n'
    )
    policies = build_policies(Settings())
    assert (policies["A"].retrieval, policies["A"].rrf_k, policies["A"].fusion) == ("hybrid", 30, "rrf")
    assert (policies["B"].fusion, policies["B"].dense_weight) == ("weighted", 0.25)
