"""OpenTelemetry tracing over OTLP/HTTP, switched on by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g. Jaeger's 4318).

The console's spans (``rag.query``, ``rag.retrieve``, ``rag.generate``) use the global tracer provider; this
installs one that batches spans to the collector. The exporter reads the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

import logging

from opentelemetry import trace

log = logging.getLogger("ragdeck.api")
_installed = False


def setup_tracing(service_name: str) -> None:
    """Install a tracer provider exporting to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (once per process)."""
    global _installed
    if _installed:
        return
    from ragdeck.services.optional import otlp_exporter_module

    exporter = otlp_exporter_module().OTLPSpanExporter  # ConfigError naming ragdeck[otel] when absent
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter()))
    trace.set_tracer_provider(provider)
    _installed = True
    log.info("tracing to %s", "OTEL_EXPORTER_OTLP_ENDPOINT")
