"""Optional parts of ragdeck: imported only when their setting is on, with an error naming the extra.

``ragdeck[redis]`` (``REDIS_URL``), ``ragdeck[otel]`` (``OTEL_EXPORTER_OTLP_ENDPOINT``), ``ragdeck[llm]``
(the local llama.cpp server) and ``ragdeck[datasets]`` (``ragdeck import hf``) are extras: a plain
``pip install ragdeck`` starts without them, and turning a part on without its extra raises an error
saying what to install (``ConfigError`` for a setting, ``InputError`` for a command's input).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ragdeck.errors import ConfigError, InputError

__all__ = ["datasets_module", "import_optional", "otlp_exporter_module", "redis_module"]


def import_optional(module: str, *, extra: str, setting: str, what: str) -> ModuleType:
    """``import module``; ConfigError naming ``setting`` and ``pip install 'ragdeck[extra]'`` when absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{setting} is set but {what} is not installed ({exc.name or module} is missing): "
            f"pip install 'ragdeck[{extra}]'"
        ) from exc


def redis_module() -> ModuleType:
    """redis-py, for ``REDIS_URL`` (the ``redis`` extra)."""
    return import_optional("redis", extra="redis", setting="REDIS_URL", what="the redis client")


def otlp_exporter_module() -> ModuleType:
    """OpenTelemetry's OTLP/HTTP span exporter (and so its SDK), for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the
    ``otel`` extra)."""
    return import_optional(
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        extra="otel",
        setting="OTEL_EXPORTER_OTLP_ENDPOINT",
        what="the OpenTelemetry OTLP exporter",
    )


def datasets_module() -> ModuleType:
    """Hugging Face ``datasets``, for ``ragdeck import hf`` (the ``datasets`` extra); InputError naming the
    extra when absent."""
    try:
        return importlib.import_module("datasets")
    except ImportError as exc:
        raise InputError(
            f"importing a Hugging Face dataset needs the datasets package ({exc.name or 'datasets'} is "
            "missing): pip install 'ragdeck[datasets]'"
        ) from exc
