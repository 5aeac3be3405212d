"""The Prometheus that `ragdeck console` runs for its demo: Debian's binary on loopback, scraping the RAG
API's port with ragdeck's rules loaded; `ragdeck console` points PROMETHEUS_URL at it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from servers import free_port, require_binary, serve_asgi

from ragdeck.api.app import create_app
from ragdeck.errors import ServiceUnavailable
from ragdeck.services.prometheus import PrometheusReader
from ragdeck.services.prometheus_local import LocalPrometheus, bundled_rules


def test_scrapes_the_api_port_with_the_rules_loaded(
    demo_data_dir: Path, local_embedder, tmp_path: Path
) -> None:
    from ragdeck.api.runtime import build_runtime
    from ragdeck.console.settings import Settings

    binary = require_binary("prometheus", "/usr/bin/prometheus")
    assert {p.name for p in bundled_rules()} == {"ragdeck_alerts.yml", "ragdeck_recording.yml"}
    runtime = build_runtime(Settings(), embedder=local_embedder)
    try:
        with serve_asgi(create_app(runtime), "rag-api") as api:
            local = LocalPrometheus(
                binary, tmp_path / "prom", [api.removeprefix("http://")], rule_files=bundled_rules(),
                port=free_port(), scrape_interval_s=1,
            )  # fmt: skip
            url = local.start()
            try:
                reader = PrometheusReader(url)
                deadline = time.monotonic() + 30
                while not reader.by_labels('up{job="rag-api"} == 1', ("job",)):
                    assert time.monotonic() < deadline, "the API was never scraped"
                    time.sleep(0.2)
                rules = reader._session.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
                assert {"ragdeck_slo_burn_rate"} <= {g["name"] for g in rules}
                reader.close()
            finally:
                local.stop()
    finally:
        runtime.close()
    assert (tmp_path / "prom" / "data").is_dir()


def test_a_prometheus_that_cannot_start_says_why(tmp_path: Path) -> None:
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    workdir = tmp_path / "prom"
    broken = LocalPrometheus(binary, workdir, ["127.0.0.1:9"], port=free_port(), retention="forever")
    try:
        with pytest.raises(ServiceUnavailable, match=r"did not become ready.*not a valid duration"):
            broken.start(timeout_s=10)
    finally:
        broken.stop()


def test_console_points_prometheus_url_at_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragdeck.cli.local import local_prometheus
    from ragdeck.console.settings import Settings

    require_binary("prometheus", "/usr/bin/prometheus")
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    settings = Settings(data_dir=tmp_path / "data", api_port=free_port())
    with local_prometheus(settings, True):
        url = os.environ["PROMETHEUS_URL"]
        assert PrometheusReader(url).health().ok
    assert "PROMETHEUS_URL" not in os.environ
    with local_prometheus(settings, False):
        assert "PROMETHEUS_URL" not in os.environ
