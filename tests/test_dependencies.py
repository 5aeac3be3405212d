"""Every module ragdeck imports is a declared dependency: a runtime one, or an extra imported only lazily.

Walks every ``import`` in ragdeck/ (function-local ones included), maps each to the distribution that
ships it (``importlib.metadata``) and compares with pyproject.toml. A new undeclared import fails here, not
in a user's fresh install; so does a declared dependency nothing imports unless it is listed below with
the reason it stays.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ragdeck"
SKIP_DIRS = {"demo_corpus"}

# Declared but not imported by ragdeck's own code, and why they stay declared.
NOT_IMPORTED = {
    "langchain-community": "pinned: newer releases break `import ragas`",
    "instructor": "floored: without it pip backtracks to instructor 1.3 (caps openai, tenacity, rich)",
    "rapidfuzz": "Ragas' NonLLMStringSimilarity / NonLLMContextRecall import it when the offline judge runs",
    "rouge-score": "Ragas' RougeScore imports it when the offline judge runs",
}
# Extras whose modules ragdeck imports lazily, and the setting that turns each on.
OPTIONAL_EXTRAS = {
    "redis": "REDIS_URL",
    "otel": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "llm": "the local LLM",
    "datasets": "ragdeck import hf",
}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return canonical(match.group(1))


@functools.cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def runtime_deps() -> set[str]:
    return {requirement_name(spec) for spec in pyproject()["project"]["dependencies"]}


def extra_deps(extra: str) -> set[str]:
    return {requirement_name(spec) for spec in pyproject()["project"]["optional-dependencies"][extra]}


@dataclass(frozen=True)
class Import:
    module: str  # dotted, absolute
    where: str  # file:line
    top_level: bool  # at module level (runs on import), not inside a function


def ragdeck_imports() -> list[Import]:
    """Every absolute import statement in ragdeck's sources (relative ones stay inside ragdeck)."""
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if SKIP_DIRS & set(path.relative_to(PACKAGE).parts):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        function_nodes = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from opentelemetry import trace` may name a submodule (tells namespace packages apart)
                modules = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found += [Import(m, where, id(node) not in function_nodes) for m in modules]
    return found


@functools.cache
def _top_level_owners() -> dict[str, list[str]]:
    return md.packages_distributions()


@functools.cache
def distribution_of(module: str) -> str | None:
    """The installed distribution that ships ``module`` (the deepest match, so namespace packages such as
    ``opentelemetry.sdk`` map to their own distribution); None for the standard library and ragdeck."""
    top = module.split(".")[0]
    if top == "ragdeck" or top in sys.stdlib_module_names:
        return None
    owners = _top_level_owners().get(top)
    if not owners:
        pytest.fail(
            f"no installed distribution provides {module!r}: install ragdeck's extras to run this test"
        )
    if len(set(owners)) == 1:
        return canonical(owners[0])
    parts = module.split(".")
    best: tuple[int, str] | None = None
    for owner in set(owners):
        files = md.distribution(owner).files or []
        paths = {tuple(Path(str(f)).with_suffix("").parts) for f in files}
        for depth in range(len(parts), 0, -1):
            prefix = tuple(parts[:depth])
            if any(p[:depth] == prefix for p in paths):
                if best is None or depth > best[0]:
                    best = (depth, canonical(owner))
                break
    assert best is not None and best[0] > 1, f"cannot tell which of {owners} ships {module}"
    return best[1]


def test_every_import_is_declared() -> None:
    runtime = runtime_deps()
    optional = {dist: extra for extra in OPTIONAL_EXTRAS for dist in extra_deps(extra)}
    problems: list[str] = []
    for imp in ragdeck_imports():
        dist = distribution_of(imp.module)
        if dist is None or dist in runtime:
            continue
        if dist in optional:
            if imp.top_level:
                problems.append(
                    f"{imp.where}: `{imp.module}` ({dist}, extra [{optional[dist]}]) is imported at module "
                    "level; import it where it is used, with ragdeck.services.optional.import_optional"
                )
            continue
        problems.append(f"{imp.where}: {dist} is imported but pyproject.toml does not declare it")
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_declared_dependency_is_used() -> None:
    imported = {d for imp in ragdeck_imports() if (d := distribution_of(imp.module))}
    unused = runtime_deps() - imported - set(NOT_IMPORTED)
    assert not unused, f"declared in [project].dependencies but never imported by ragdeck: {sorted(unused)}"
    stale = {name for name in NOT_IMPORTED if name in imported or name not in runtime_deps()}
    assert not stale, f"NOT_IMPORTED lists {sorted(stale)}, which ragdeck imports or no longer declares"


def test_optional_parts_are_extras_not_runtime() -> None:
    runtime = runtime_deps()
    for extra in OPTIONAL_EXTRAS:
        assert not extra_deps(extra) & runtime, f"[{extra}] parts are also runtime dependencies"
    assert "scipy" not in runtime  # only the tests compare with scipy


def test_missing_redis_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragdeck.errors import ConfigError
    from ragdeck.services.kv import RedisKV
    from ragdeck.services.routing_state import RedisRoutingState

    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now raises ImportError
    for build in (
        lambda: RedisKV("redis://127.0.0.1:1/0"),
        lambda: RedisRoutingState("redis://127.0.0.1:1/0"),
    ):
        with pytest.raises(ConfigError) as info:
            build()
        message = str(info.value)
        assert "REDIS_URL is set but the redis client is not installed" in message
        assert "pip install 'ragdeck[redis]'" in message


def test_missing_otlp_exporter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragdeck.errors import ConfigError
    from ragdeck.services.optional import otlp_exporter_module

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(
        ConfigError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT is set .*pip install 'ragdeck\[otel\]'"
    ):
        otlp_exporter_module()


def test_missing_datasets_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ragdeck.console.imports.hf import read_datasets
    from ragdeck.errors import InputError

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now raises ImportError
    with pytest.raises(InputError, match=r"needs the datasets package .*pip install 'ragdeck\[datasets\]'"):
        read_datasets(tmp_path)


def test_memory_stores_need_no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without REDIS_URL nothing imports redis: the in-process cache works with the client absent."""
    monkeypatch.setitem(sys.modules, "redis", None)
    from ragdeck.services.kv import MemoryKV

    kv = MemoryKV(max_entries=2)
    kv.set("a", "1")
    assert kv.get("a") == "1"
