"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, the API sends its spans over OTLP/HTTP.

The collector here is a small server speaking OTLP/HTTP's documented protobuf shape (as Jaeger's 4318
port does); the API runs as its own process so the global tracer provider it installs stays there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from servers import free_port, serve_asgi, stop, wait_for_port


def otlp_collector() -> tuple[FastAPI, list[ExportTraceServiceRequest]]:
    received: list[ExportTraceServiceRequest] = []
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        body = ExportTraceServiceRequest.FromString(await request.body())
        with lock:
            received.append(body)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return app, received


@pytest.mark.slow
def test_api_exports_query_spans_over_otlp(demo_data_dir: Path, tmp_path: Path) -> None:
    app, received = otlp_collector()
    with serve_asgi(app, "otlp") as collector:
        port = free_port()
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        log = (tmp_path / "api.log").open("w")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "ragdeck"), "api", "serve", "--no-llm", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, timeout_s=120)
            answer = httpx.post(
                f"http://127.0.0.1:{port}/query", json={"question": "What is a histogram?"}, timeout=60
            )
            assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 20
            names: set[str] = set()
            while time.monotonic() < deadline and not {"rag.query", "rag.retrieve", "rag.generate"} <= names:
                time.sleep(0.2)
                names = {
                    span.name
                    for request in list(received)
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                    for span in scope.spans
                }
        finally:
            stop(proc)
            log.close()
    assert {"rag.query", "rag.retrieve", "rag.generate"} <= names, (tmp_path / "api.log").read_text()[-2000:]
    services = {
        attr.value.string_value
        for request in received
        for resource in request.resource_spans
        for attr in resource.resource.attributes
        if attr.key == "service.name"
    }
    assert services == {"ragdeck-api"}
