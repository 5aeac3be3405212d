"""Retrieval policies: validation, defaults from settings, and [policies.*] tables from ragdeck.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdeck.console.retrieval.pipeline import RetrievalParams
from ragdeck.console.retrieval.policies import Policy, default_policy
from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_policies
from ragdeck.errors import ConfigError, InputError


def test_defaults_are_two_identical_policies_from_the_retrieval_settings(data_dir: Path) -> None:
    settings = Settings(alias="docs", top_k=30, top_n=5, hnsw_ef=64)
    policies = build_policies(settings)
    assert sorted(policies) == ["A", "B"]
    for name, policy in policies.items():
        assert policy.name == name
        assert (policy.alias, policy.top_k, policy.top_n, policy.hnsw_ef) == ("docs", 30, 5, 64)
        assert policy.rerank is True and policy.system_prompt is None and policy.model is None
        assert policy.max_tokens == 384
    assert policies["B"].as_dict() == {
        "name": "B", "alias": "docs", "top_k": 30, "top_n": 5, "hnsw_ef": 64, "rerank": True,
        "system_prompt": None, "model": None, "max_tokens": 384,
        "retrieval": "dense", "fusion": "rrf", "rrf_k": 60, "dense_weight": 0.5, "fallback": None,
    }  # fmt: skip
    assert policies["A"].retrieval_params() == RetrievalParams(top_k=30, top_n=5, hnsw_ef=64, rerank=True)


def test_policy_defaults() -> None:
    policy = Policy("A")
    assert (policy.alias, policy.top_k, policy.top_n, policy.hnsw_ef, policy.rerank) == (
        "rag_chunks",
        40,
        10,
        None,
        True,
    )
    assert policy.max_tokens == 384


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_n": 0}, "top_n"),
        ({"top_k": 5, "top_n": 10}, "top_n"),
        ({"hnsw_ef": 0}, "hnsw_ef"),
        ({"top_k": "40"}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"rerank": "yes"}, "rerank"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"alias": " "}, "alias"),
        ({"model": ""}, "model"),
    ],
)
def test_invalid_values_name_the_policy_and_field(values: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        Policy("canary-1", **values)
    assert "canary-1" in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("name", ["", "a b", 'x"y', "-lead", "x" * 65])
def test_invalid_policy_names(name: str) -> None:
    with pytest.raises(InputError, match="policy name"):
        Policy(name)


def test_toml_tables_override_the_settings_defaults(data_dir: Path) -> None:
    Path("ragdeck.toml").write_text(
        'alias = "rag_chunks"\ntop_k = 50\ncontrol_policy = "base"\ncanary_policy = "wide"\n'
        "[policies.base]\n"
        "[policies.wide]\n"
        'top_n = 20\nhnsw_ef = 256\nrerank = false\nsystem_prompt = "Answer tersely."\n'
        'model = "qwen"\nmax_tokens = 200\nalias = "rag_chunks_v2"\n'
    )
    settings = Settings()
    policies = build_policies(settings)
    assert sorted(policies) == ["base", "wide"]
    base, wide = policies["base"], policies["wide"]
    assert (base.alias, base.top_k, base.top_n, base.hnsw_ef, base.rerank) == (
        "rag_chunks",
        50,
        10,
        None,
        True,
    )
    assert (wide.alias, wide.top_k, wide.top_n, wide.hnsw_ef, wide.rerank) == (
        "rag_chunks_v2",
        50,
        20,
        256,
        False,
    )
    assert (wide.system_prompt, wide.model, wide.max_tokens) == ("Answer tersely.", "qwen", 200)


def test_unknown_field_in_a_table_is_refused(data_dir: Path) -> None:
    settings = Settings(policies={"A": {}, "B": {"topk": 5}})
    with pytest.raises(InputError, match=r"policy 'B': unknown field\(s\) topk"):
        build_policies(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"canary_policy": "C"}, "canary_policy is 'C'"),
        ({"control_policy": "Z"}, "control_policy is 'Z'"),
        ({"control_policy": "B"}, "both 'B'"),
        ({"policies": {"X": {}, "Y": {}}}, "control_policy is 'A'"),
    ],
)
def test_unknown_or_equal_control_and_canary_are_config_errors(
    data_dir: Path, overrides: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_policies(Settings(**overrides))


def test_default_policy_caps_top_n_at_top_k(data_dir: Path) -> None:
    policy = default_policy("A", Settings(top_k=3, top_n=10))
    assert (policy.top_k, policy.top_n) == (3, 3)
