"""All of ragdeck's settings in one typed object (pydantic-settings).

Sources, strongest first: explicit arguments, environment, ``.env`` in the working directory, a TOML file
(``RAGDECK_CONFIG`` or ``./ragdeck.toml``), defaults. Component URLs use the stack's usual names
(``QDRANT_URL``, ``TEI_URL``, ...); everything else is ``RAGDECK_<FIELD>``. With no URL set, every
component runs embedded in this process.

An empty or blank value is unset, from every source alike (``RAGDECK_DATA_DIR=`` keeps the default data
directory, never the working directory). A value that does not fit raises ConfigError naming the setting and
its variable, one line, so the CLI and the pages show it without a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from ragdeck.console.knobs import KNOBS, Fusion, RetrievalMode
from ragdeck.errors import ConfigError
from ragdeck.services.redact import redact_url, url_addresses, url_secrets

# Settings naming a server; their credentials (userinfo, token parameters) are secrets, shown redacted.
URL_FIELDS = (
    "qdrant_url", "tei_url", "tei_rerank_url", "llm_base_url", "prometheus_url", "redis_url", "api_url",
    "judge_base_url",
)  # fmt: skip


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/ragdeck``, else ``~/.local/share/ragdeck``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ragdeck"


def config_file() -> Path:
    """The TOML settings file: ``RAGDECK_CONFIG`` if set, else ``ragdeck.toml`` in the working directory."""
    return Path(os.environ.get("RAGDECK_CONFIG", "").strip() or "ragdeck.toml")


def _env(name: str, field: str) -> AliasChoices:
    return AliasChoices(name, field)


def _knob(name: str) -> Any:
    """The field of a retrieval knob: its default, bounds and help as ``console.knobs`` defines them."""
    knob = KNOBS[name]
    return Field(knob.default, ge=knob.minimum, le=knob.maximum, description=knob.help)


class Settings(BaseSettings):
    """ragdeck settings; see the README's settings table for each one."""

    model_config = SettingsConfigDict(
        env_prefix="RAGDECK_", env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_problems(exc)) from None
        except SettingsError as exc:  # a table setting (policies, roles, llm_prices) that is not JSON
            found = re.search(r'field "(\w+)"', str(exc))
            field = found.group(1) if found else "?"
            raise ConfigError(
                f"setting {field} ({_variable(field)}): not valid JSON ({exc.__cause__ or exc}); give a JSON "
                f"object, or leave it unset"
            ) from None
        except (tomllib.TOMLDecodeError, OSError, RecursionError) as exc:  # the TOML settings file
            what = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ConfigError(
                f"settings file {config_file()}: cannot be read ({what}); fix it, or point RAGDECK_CONFIG "
                f"at another file"
            ) from None

    data_dir: Path = Field(default_factory=default_data_dir, description="Where ragdeck keeps its state.")

    # Component endpoints: unset means embedded / in-process.
    qdrant_url: str | None = Field(None, validation_alias=_env("QDRANT_URL", "qdrant_url"))
    qdrant_api_key: SecretStr | None = Field(None, validation_alias=_env("QDRANT_API_KEY", "qdrant_api_key"))
    tei_url: str | None = Field(None, validation_alias=_env("TEI_URL", "tei_url"))
    tei_rerank_url: str | None = Field(None, validation_alias=_env("TEI_RERANK_URL", "tei_rerank_url"))
    llm_base_url: str | None = Field(None, validation_alias=_env("LLM_BASE_URL", "llm_base_url"))
    prometheus_url: str | None = Field(None, validation_alias=_env("PROMETHEUS_URL", "prometheus_url"))

    # Models.
    embedding_model: str | None = Field(
        None, description="Local sentence-transformers model dir; unset = packaged all-MiniLM-L6-v2."
    )
    reranker_model_dir: Path | None = Field(None, description="Local CrossEncoder model directory.")
    embed_batch_size: int = Field(64, ge=1)
    embed_device: str = "cpu"
    # Local inference under concurrent requests (issue 21): threads sized to the cores, micro-batching.
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Intra-op threads of local models (ONNX Runtime or torch); unset = usable cores / workers"
        " - 1.",
    )
    embed_batching: bool = Field(True, description="Gather concurrent embed/rerank calls in one model call.")
    embed_batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="Longest wait to fill a batch, only while calls are queued."
    )
    embed_max_batch: int = Field(32, ge=1, description="Texts per gathered embedding batch at most.")
    # The in-process embedder's runtime (bench/README.md "ONNX"): auto = ONNX Runtime (same rankings, half
    # the query latency) for a Transformer + mean-pooling model on the CPU, else torch, saying why.
    embed_backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="In-process embedder: auto (ONNX Runtime where the model allows, else torch), torch "
        "(sentence-transformers) or onnx (ONNX Runtime, an error where it cannot run the model).",
    )
    embed_onnx_dir: Path | None = Field(
        None,
        description="Where the ONNX export of the model is cached; unset = $XDG_CACHE_HOME/ragdeck/onnx "
        "(~/.cache/ragdeck/onnx), shared by every data directory.",
    )

    # Retrieval defaults.
    alias: str = Field("rag_chunks", description="Alias the console and API serve from.")
    # The retrieval knobs: defaults, bounds and help from console.knobs (as policies and the pipeline).
    top_k: int = _knob("top_k")
    top_n: int = _knob("top_n")
    hnsw_ef: int | None = _knob("hnsw_ef")
    retrieval: RetrievalMode = _knob("retrieval")
    fusion: Fusion = _knob("fusion")
    rrf_k: int = _knob("rrf_k")
    dense_weight: float = _knob("dense_weight")

    # Index defaults for new collections.
    hnsw_m: int = Field(16, ge=2)
    hnsw_ef_construct: int = Field(100, ge=4)

    # Chunking (DESIGN.md: 600-1500 characters, 10-20 % overlap).
    chunk_min_chars: int = Field(600, ge=50)
    chunk_max_chars: int = Field(1500, ge=100)
    chunk_overlap: float = Field(0.15, ge=0.0, lt=0.5)

    # Network calls.
    http_timeout_s: float = Field(30.0, gt=0)
    http_retries: int = Field(4, ge=0)

    # The LLM: any OpenAI-compatible server at LLM_BASE_URL; `ragdeck llm serve` runs llama.cpp locally.
    llm_model: str | None = Field(None, description="Model name to request; unset = the server's first.")
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("LLM_API_KEY", "llm_api_key"))
    llm_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one completion.")
    llm_max_tokens: int = Field(384, ge=1, description="Completion length cap per answer.")
    llm_context_chars: int = Field(
        4000, ge=200, description="Characters of retrieved context put into a prompt (lowest ranks dropped)."
    )
    llm_gguf_path: Path | None = Field(None, description="GGUF for `ragdeck llm serve`; unset = packaged.")
    llm_port: int = Field(8088, ge=1, le=65535, description="Port of the local llama.cpp server.")
    llm_ctx: int = Field(4096, ge=256, description="Context length of the local llama.cpp server.")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads of the local server; unset = auto.")
    llm_fallback: bool | None = Field(
        None,
        description="Answer extractively (labelled so) while the LLM is down; unset = on for the local LLM "
        "ragdeck started and supervises, off for an external LLM_BASE_URL (then /query answers 503).",
    )
    llm_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='USD per 1M tokens by model: TOML [llm_prices."name"] prompt = 0.1, completion = 0.4.',
    )

    # Published eval sets (reviewed in git).
    eval_sets_dir: Path = Field(Path("eval_sets"), description="Where published eval sets are written.")

    # Shared state across API replicas (routing state, answer cache); unset = local only.
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL", "redis_url"))

    # Answer cache (Redis when REDIS_URL is set, else in process).
    cache_ttl_s: float = Field(600.0, gt=0, description="Seconds a cached answer is served.")
    cache_max_entries: int = Field(2048, ge=1, description="Bound of the in-process answer cache (LRU).")

    # Canary routing and its guard (shared across replicas through REDIS_URL, else SQLite in data_dir).
    policies: dict[str, dict] = Field(
        default_factory=dict, description="Retrieval policies by name (TOML [policies.A] tables)."
    )
    control_policy: str = Field("A", description="Policy every user gets unless routed to the canary.")
    canary_policy: str = Field("B", description="Policy a share of users (canary_weight) is routed to.")
    canary_weight: float = Field(0.0, ge=0.0, le=1.0, description="Default canary share until one is set.")
    guard_p95_ms: float = Field(2500.0, gt=0, description="Canary P95 latency above which the guard trips.")
    guard_error_rate: float = Field(0.05, ge=0.0, le=1.0, description="Canary error share that trips it.")
    guard_min_samples: int = Field(100, ge=1, description="Canary requests needed before the guard judges.")
    guard_window_s: float = Field(300.0, gt=0, description="Sliding window the guard judges over.")
    admin_token: SecretStr | None = Field(None, description="Bearer token for the API's admin endpoints.")
    api_url: str | None = Field(
        None, description="The RAG API the console's Canary page drives; unset = one started in the console."
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the RAG API started inside the console.")
    ready_refresh_s: float = Field(
        10.0, gt=0, description="Seconds between the API's background self-tests, which /readyz answers from."
    )

    # The answer judge (Ragas) of eval runs: a judge model on an OpenAI-compatible server, else offline.
    judge_base_url: str | None = Field(
        None,
        validation_alias=_env("JUDGE_BASE_URL", "judge_base_url"),
        description="Judge model's server; unset = the RAG LLM at LLM_BASE_URL.",
    )
    judge_api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("JUDGE_API_KEY", "judge_api_key"),
        description="API key of JUDGE_BASE_URL (LLM_API_KEY is never sent to another server).",
    )
    judge_model: str | None = Field(
        None, description="Judge model; unset = llm_model (on the RAG LLM's server), else the first served."
    )
    judge_timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one judge completion.")
    judge_enabled: bool = Field(True, description="False forces the offline judge (string metrics, no LLM).")
    judge_per_claim: bool = Field(
        False, description="One verdict call per claim: small judges err less (claims + 1 calls, not 2)."
    )

    # Service level objectives (the SLO page; editable there, saved under the data directory).
    slo_availability: float = Field(0.999, gt=0, lt=1, description="Share of served requests that succeed.")
    slo_retrieval_p95_ms: float = Field(200.0, gt=0, description="P95 of retrieval + rerank, milliseconds.")
    slo_generation_p95_s: float = Field(2.5, gt=0, description="P95 of answer generation, seconds.")
    slo_error_rate: float = Field(0.001, gt=0, lt=1, description="Error rate of served requests over 1 h.")
    slo_faithfulness: float = Field(0.8, ge=0, le=1, description="Mean faithfulness of the latest eval run.")
    slo_recall: float = Field(0.85, ge=0, le=1, description="Mean recall of the latest eval run.")
    slo_recall_metric: str = Field("recall@10", description="The eval metric the recall objective reads.")
    slo_period_days: float = Field(30.0, gt=0, description="The SLO period the error budget covers.")

    # Roles and login (annotator < engineer < operator). No login configured: the local user has default_role.
    default_role: str = Field(
        "operator",
        description="Role of the local user when no login is configured, and of CLI users not in `roles` "
        "(operator suits the single-user embedded default; set annotator for shared machines).",
    )
    roles: dict[str, str] = Field(
        default_factory=dict, description='Role by user name: TOML [roles] alice = "operator".'
    )
    login_default_role: str = Field(
        "annotator", description="Role of a logged-in or proxy-authenticated user not in `roles`."
    )
    auth_header: str | None = Field(
        None, description="Header naming the user, set by a trusted auth proxy (e.g. X-Forwarded-User)."
    )
    auth_trust_header: bool = Field(
        False, description="Honour auth_header: only when every request reaches the console via the proxy."
    )
    auth_credentials_file: Path | None = Field(
        None, description="streamlit-authenticator YAML of users with bcrypt-hashed passwords and roles."
    )
    auth_cookie_key: SecretStr | None = Field(None, description="Secret signing the login cookie.")
    audit_key_file: Path | None = Field(
        None,
        description="Key sealing the audit log (unset: audit.key in data_dir); keep it where the database's "
        "writers cannot read it.",
    )
    index_retention: int = Field(3, ge=1, description="Index versions kept by `ragdeck index prune`.")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_default(cls, values: Any) -> Any:
        """A blank string from any source (environment, .env, TOML, arguments) leaves the setting unset."""
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator("qdrant_url", "tei_url", "tei_rerank_url", "llm_base_url", "prometheus_url", "redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value.rstrip("/") or None

    @field_validator("admin_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("llm_model", "llm_api_key", mode="before")
    @classmethod
    def _blank_llm_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("judge_base_url")
    @classmethod
    def _blank_judge_url_is_unset(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value.rstrip("/") or None

    @field_validator("judge_model", "judge_api_key", mode="before")
    @classmethod
    def _blank_judge_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return init_settings, env_settings, dotenv_settings, toml, file_secret_settings

    def secret_values(self) -> set[str]:
        """Every secret these settings hold: API keys and tokens, and the credentials inside URL settings."""
        values = {
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        }
        for name in URL_FIELDS:
            values |= url_secrets(getattr(self, name))
        return {value for value in values if value}

    def fingerprint(self) -> str:
        """A digest of every value, secrets included: a cache key that changes with the settings and never
        holds a secret in clear (``model_dump_json`` masks secrets, so two keys would look alike)."""
        data = self.model_dump()  # python mode: URLs as configured
        for name, value in data.items():
            if isinstance(value, SecretStr):
                data[name] = value.get_secret_value()
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    def endpoint_addresses(self) -> set[str]:
        """Hosts (and ``host:port``) of the configured servers, which unauthenticated answers never show."""
        return {address for name in URL_FIELDS for address in url_addresses(getattr(self, name))}

    @field_serializer(*URL_FIELDS, when_used="json")
    def _shown_url(self, value: str | None) -> str | None:
        """JSON dumps show URLs redacted, as they show secrets masked (``fingerprint`` sees every value)."""
        return redact_url(value) if value else value

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in URL_FIELDS and isinstance(value, str) else value

    @property
    def qdrant_dir(self) -> Path:
        """Root of the embedded vector store."""
        return self.data_dir / "qdrant"

    @property
    def state_db(self) -> Path:
        """The SQLite state store."""
        return self.data_dir / "ragdeck.sqlite3"

    @property
    def audit_key_path(self) -> Path:
        """The file of the key that seals the audit log (``audit_key_file``, else in ``data_dir``)."""
        return self.audit_key_file or self.data_dir / "audit.key"


def _variable(field: str) -> str:
    """The environment variable of a setting: its alias (``QDRANT_URL``), else ``RAGDECK_<FIELD>``."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"RAGDECK_{field.upper()}"


def _problems(exc: ValidationError) -> str:
    """Every invalid setting on one line: name, variable, what is wrong, the value given, where to fix it."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        where = ".".join(str(part) for part in error["loc"])
        given = error.get("input")
        shown = "" if isinstance(given, dict) else f", got {str(given)[:60]!r}"
        parts.append(f"setting {where} ({_variable(field)}): {error['msg']}{shown}")
    return "; ".join(parts) + "; fix it in the environment, .env or the TOML settings file"
