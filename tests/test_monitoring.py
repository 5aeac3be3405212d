"""The production files: Prometheus config, recording and alert rules (promtool checks and unit tests, plus a
real Prometheus evaluating them against the API's own exporter), docker-compose.yml, the Dockerfile and the
Grafana provisioning and dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from servers import free_port, require_binary, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
DASHBOARD = MONITORING / "grafana" / "dashboards" / "ragdeck.json"
COMPOSE = ROOT / "docker-compose.yml"

# The API's metrics contract (ragdeck/api/metrics.py): histograms, counters (exported with _total), gauges.
HISTOGRAMS = (
    "rag_retrieval_seconds", "rag_rerank_seconds", "rag_retrieval_rerank_seconds", "rag_generation_seconds",
    "rag_request_seconds", "rag_prompt_ctx_tokens",
)  # fmt: skip
COUNTERS = (
    "rag_requests_total", "rag_no_answer_total", "rag_feedback_total", "rag_cache_hits_total",
    "rag_cache_misses_total", "rag_guard_trips_total", "rag_llm_tokens_total", "rag_answers_total",
)  # fmt: skip
GAUGES = ("rag_policy_weight",)
EXPORTED = {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
EXPORTED |= set(COUNTERS) | set(GAUGES)
SCRAPE_BUILTINS = {"up"}  # series Prometheus itself writes for each target

SERVICES = ("qdrant", "tei-embeddings", "tei-reranker", "vllm", "rag-api", "console", "prometheus", "grafana",
            "jaeger", "redis")  # fmt: skip
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
SLIS = ("rag_availability_errors", "rag_retrieval_rerank_slow", "rag_generation_slow")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in _yaml(path)["groups"] for rule in group["rules"]]


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric (or recorded series) names a PromQL expression selects.

    Drops comments, string literals, label matchers ``{...}``, ranges ``[...]`` and grouping clauses, then
    keeps the identifiers that are neither keywords, function calls nor parts of numbers and durations.
    """
    text = re.sub(r"#[^\n]*", "", expr)
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end() :]):
            continue
        names.add(name)
    return names


def test_promql_metric_names_extracts_only_selectors() -> None:
    expr = (
        'sum by (policy, le) (rate(rag_x_bucket{policy=~"$policy", le="0.2"}[5m])) / on (policy) group_left '
        "policy:rec:ratio_rate5m > bool 1e-3 or max without (job) (up offset 10m) * 2.5 # rag_commented"
    )
    assert promql_metric_names(expr) == {"rag_x_bucket", "policy:rec:ratio_rate5m", "up"}


def test_the_api_exports_exactly_the_metrics_the_rules_assume() -> None:
    """ragdeck/api/metrics.py is the other side of this contract: names, types and the SLO buckets."""
    from ragdeck.api.metrics import ApiMetrics

    metrics = ApiMetrics()
    families = {family.name: family.type for family in metrics.registry.collect()}
    expected = {name: "histogram" for name in HISTOGRAMS}
    expected |= {name.removesuffix("_total"): "counter" for name in COUNTERS}
    expected |= {name: "gauge" for name in GAUGES}
    assert families == expected
    metrics.retrieval_rerank.labels("A").observe(0.1)
    metrics.generation.labels("A").observe(1.0)
    bounds = {
        sample.name.removesuffix("_bucket") + "@" + sample.labels["le"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    assert {"rag_retrieval_rerank_seconds@0.2", "rag_generation_seconds@2.5"} <= bounds


# ---------------------------------------------------------------- promtool: config, rules, rule unit tests


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool", "/usr/bin/promtool")


def _run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n{result.stdout}{result.stderr}"
    )


def test_promtool_check_config(promtool: str) -> None:
    _assert_ok(_run([promtool, "check", "config", str(PROMETHEUS_CONFIG)]))


def test_promtool_check_config_with_the_rules_loaded(promtool: str, tmp_path: Path) -> None:
    """The config as Prometheus sees it in compose: rule_files pointing at the rules folder."""
    config = _yaml(PROMETHEUS_CONFIG)
    config["rule_files"] = [str(MONITORING / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = _run([promtool, "check", "config", str(path)])
    _assert_ok(result)
    for rule_file in RULE_FILES:
        assert rule_file.name in result.stdout + result.stderr


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(promtool: str, rule_file: Path) -> None:
    _assert_ok(_run([promtool, "check", "rules", str(rule_file)]))


def test_promtool_rule_unit_tests(promtool: str) -> None:
    """`promtool test rules monitoring/tests/*.yml`, one process per file, two at a time."""
    assert len(RULE_TESTS) >= 4
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: _run([promtool, "test", "rules", str(p)], timeout=120), RULE_TESTS))
    failed = [r for r in results if r.returncode != 0]
    assert not failed, "\n\n".join(f"{' '.join(r.args)}\n{r.stdout}{r.stderr}" for r in failed)


def test_rule_unit_tests_cover_every_alert_firing_and_the_pages_not_firing() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in _yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts no unit test shows firing"
    assert {a for a in alerts if a.endswith("FastBurn")} - silent == set(), "pages never shown not firing"
    assert fires | silent <= alerts, "unit tests name alerts that do not exist"


# ---------------------------------------------------------------- rules: names, metrics, labels


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for name in _recorded():
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name


def test_rules_only_use_exported_or_recorded_series() -> None:
    known = EXPORTED | _recorded() | SCRAPE_BUILTINS
    for rule in _rules():
        unknown = promql_metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('record') or rule.get('alert')} uses {unknown}"


def test_slis_recorded_for_every_burn_rate_window_per_job_and_policy() -> None:
    recorded = _recorded()
    for level in ("job", "policy"):
        for sli in SLIS:
            for window in BURN_WINDOWS:
                assert f"{level}:{sli}:ratio_rate{window}" in recorded
    for stage in ("retrieval", "rerank", "retrieval_rerank", "generation", "request"):
        assert f"policy:rag_{stage}_seconds:p95_5m" in recorded


BURN_PAIRS = {
    "FastBurn": {("1h", "5m", 14.4), ("6h", "30m", 6.0)},
    "SlowBurn": {("1d", "2h", 3.0), ("3d", "6h", 1.0)},
}
BUDGETS = {"RagAvailability": ("rag_availability_errors", 0.001),
           "RagRetrievalRerankLatency": ("rag_retrieval_rerank_slow", 0.05),
           "RagGenerationLatency": ("rag_generation_slow", 0.05)}  # fmt: skip


def test_burn_rate_alerts_use_the_workbook_windows_factors_and_budgets() -> None:
    """Each SLO alert is (long > f and short > f) or (long > f and short > f) over ratio / budget."""
    alerts = _alerts()
    for prefix, (sli, budget) in BUDGETS.items():
        for kind, pairs in BURN_PAIRS.items():
            expr = alerts[f"{prefix}{kind}"]["expr"]
            terms = re.findall(rf"job:{sli}:ratio_rate(\w+) / ([\d.]+) > ([\d.]+)", expr)
            assert {float(b) for _, b, _ in terms} == {budget}, f"{prefix}{kind}"
            found = {(terms[i][0], terms[i + 1][0], float(terms[i][2])) for i in range(0, len(terms), 2)}
            assert all(terms[i][2] == terms[i + 1][2] for i in range(0, len(terms), 2))
            assert found == pairs, f"{prefix}{kind}"
            assert len(re.findall(r"\band\b", expr)) == 2 and len(re.findall(r"\bor\b", expr)) == 1, (
                f"{prefix}{kind}"
            )


def test_alerts_have_severity_summary_description_with_value_and_runbook() -> None:
    alerts = _alerts()
    for sli_alert in ("RagAvailability", "RagRetrievalRerankLatency", "RagGenerationLatency"):
        assert alerts[f"{sli_alert}FastBurn"]["labels"]["severity"] == "page"
        assert alerts[f"{sli_alert}SlowBurn"]["labels"]["severity"] == "ticket"
    assert {"RagApiDown", "RagCanaryGuardTripped"} <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), name
        assert "$value" in annotations["description"], name


# ---------------------------------------------------------------- prometheus.yml


def test_prometheus_scrapes_the_stack_every_15s() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert all(path.startswith("/etc/prometheus/rules/") for path in config["rule_files"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        "rag-api": "rag-api:8000", "prometheus": "localhost:9090", "qdrant": "qdrant:6333",
        "tei-embeddings": "tei-embeddings:80", "tei-reranker": "tei-reranker:80", "vllm": "vllm:8000",
    }  # fmt: skip
    for job, target in expected.items():
        assert jobs[job]["static_configs"][0]["targets"] == [target], job
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics", job
    services = set(_yaml(COMPOSE)["services"])
    for job in jobs.values():
        for static in job["static_configs"]:
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in services, f"{target} is not a compose service"


# ---------------------------------------------------------------- compose, Dockerfile, .env.example


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(COMPOSE)


def test_compose_has_every_service_with_an_image_or_build(compose: dict) -> None:
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    for name in ("rag-api", "console"):
        assert services[name]["image"] == services["rag-api"]["image"]
    assert services["rag-api"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / services["rag-api"]["build"]["context"] / "Dockerfile").is_file()
    for name, prefix in (("qdrant", "qdrant/qdrant:v1."), ("prometheus", "prom/prometheus:"),
                         ("grafana", "grafana/grafana:"), ("jaeger", "jaegertracing/all-in-one:"),
                         ("vllm", "vllm/vllm-openai:"), ("tei-embeddings", "ghcr.io/huggingface/"
                          "text-embeddings-inference:cpu-")):  # fmt: skip
        assert services[name]["image"].startswith(prefix), name
        assert not services[name]["image"].endswith(":latest"), name


def test_compose_services_are_healthchecked_and_ports_loopback_only(compose: dict) -> None:
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    health = {name: " ".join(s["healthcheck"]["test"]) for name, s in compose["services"].items()}
    assert "/healthz" in health["rag-api"]
    assert "/_stcore/health" in health["console"]
    assert "/readyz" in health["qdrant"]


def test_compose_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used and used <= declared, f"undeclared volumes: {used - declared}"


def test_compose_prometheus_mounts_the_config_and_rules(compose: dict) -> None:
    volumes = compose["services"]["prometheus"]["volumes"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in volumes}
    assert (ROOT / mounts["/etc/prometheus/rules"]).resolve() == (MONITORING / "rules").resolve()
    assert (ROOT / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS_CONFIG.resolve()
    assert "--config.file=/etc/prometheus/prometheus.yml" in compose["services"]["prometheus"]["command"]


def test_compose_vllm_reserves_a_gpu_and_serves_qwen(compose: dict) -> None:
    vllm = compose["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d.get("capabilities", []) and d.get("driver") == "nvidia" for d in devices)
    assert "Qwen/Qwen2.5-1.5B-Instruct" in " ".join(vllm["command"])
    commands = {n: " ".join(compose["services"][n]["command"]) for n in ("tei-embeddings", "tei-reranker")}
    assert "sentence-transformers/all-MiniLM-L6-v2" in commands["tei-embeddings"]
    assert "BAAI/bge-reranker-base" in commands["tei-reranker"]


def test_compose_ragdeck_services_run_the_cli_against_the_stack(compose: dict) -> None:
    services = compose["services"]
    assert services["rag-api"]["command"] == ["ragdeck", "api", "serve", "--all-interfaces", "--port", "8000"]
    assert services["console"]["command"] == [
        "ragdeck", "console", "--all-interfaces", "--port", "8501", "--no-demo"
    ]  # fmt: skip
    expected = {
        "QDRANT_URL": "http://qdrant:6333", "TEI_URL": "http://tei-embeddings:80",
        "TEI_RERANK_URL": "http://tei-reranker:80", "LLM_BASE_URL": "http://vllm:8000/v1",
        "PROMETHEUS_URL": "http://prometheus:9090", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
        "RAGDECK_DATA_DIR": "/data", "REDIS_URL": "redis://redis:6379/0",
    }  # fmt: skip
    for name in ("rag-api", "console"):
        env = services[name]["environment"]
        assert {k: env[k] for k in expected} == expected, name
        assert env["RAGDECK_ADMIN_TOKEN"].startswith("${RAGDECK_ADMIN_TOKEN"), "the token must come from .env"
        for key in expected:  # every URL host is a compose service
            host = re.sub(r"^\w+://", "", expected[key]).split(":")[0].split("/")[0]
            assert host in services or key == "RAGDECK_DATA_DIR", key


def test_compose_grafana_is_provisioned_and_not_anonymous(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == (
        MONITORING / "grafana/provisioning"
    ).resolve()
    provider = _yaml(MONITORING / "grafana/provisioning/dashboards/ragdeck.yml")["providers"][0]
    dashboards_dir = mounts[provider["options"]["path"]]
    assert (ROOT / dashboards_dir / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    datasource = _yaml(MONITORING / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    assert (datasource["uid"], datasource["type"], datasource["url"]) == (
        "prometheus", "prometheus", "http://prometheus:9090"
    )  # fmt: skip
    jaeger = compose["services"]["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_env_example_documents_every_compose_variable_with_placeholders(compose: dict) -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    assert example["RAGDECK_ADMIN_TOKEN"] == "change-me"
    assert example["GRAFANA_ADMIN_PASSWORD"] == "change-me"


def test_dockerfile_cpu_torch_first_non_root_data_volume() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    instructions = [line.split(None, 1) for line in logical.splitlines() if line.strip()]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    assert {"USER", "VOLUME", "EXPOSE", "CMD"} <= {word for word, _ in instructions}
    torch = text.index("torch==2.13.0")
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    ragdeck = re.search(r'pip install "?/tmp/src', text)
    assert ragdeck and torch < ragdeck.start(), "torch (CPU) must be installed before ragdeck"
    user = next(rest for word, rest in instructions if word == "USER")
    assert user.strip() not in {"root", "0"}
    assert next(rest for word, rest in instructions if word == "VOLUME").strip() == "/data"
    assert set(next(rest for word, rest in instructions if word == "EXPOSE").split()) == {"8000", "8501"}
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in dockerignore if line.strip() and not line.startswith("#")]
    assert {".env", ".venv", ".git"} <= set(ignored)
    assert not {"README.md", "pyproject.toml", "ragdeck"} & set(ignored)


# ---------------------------------------------------------------- Grafana dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboard_panels_query_only_exported_metrics_or_recording_rules(dashboard: dict) -> None:
    known = EXPORTED | _recorded()
    assert 38 <= dashboard["schemaVersion"] <= 41
    panels = _panels(dashboard)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus"
            names = promql_metric_names(target["expr"])
            assert names and names <= known, f"{panel['title']}: {names - known}"
    for variable in dashboard["templating"]["list"]:
        metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"]).group(1)
        assert metric in EXPORTED


def test_dashboard_covers_the_operators_questions(dashboard: dict) -> None:
    used: dict[str, set[str]] = {}
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            for name in promql_metric_names(target["expr"]):
                used.setdefault(name, set()).add(panel["title"])
    for name in (
        "policy_status:rag_requests:rate5m", "job:rag_availability_errors:ratio_rate1h",
        "policy:rag_retrieval_rerank_seconds:p95_5m", "policy:rag_generation_seconds:p95_5m",
        "job:rag_retrieval_rerank_slow:ratio_rate1h", "job:rag_generation_slow:ratio_rate1h",
        "policy:rag_no_answer:ratio_rate5m", "policy_vote:rag_feedback:rate1h",
        "policy:rag_cache_hits:ratio_rate5m",
        "rag_policy_weight", "rag_guard_trips_total",
    ):  # fmt: skip
        assert name in used, f"no panel shows {name}"
    thresholds = {}
    for panel in _panels(dashboard):
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        thresholds[panel["title"]] = {s["value"] for s in steps}
    (rr,) = used["policy:rag_retrieval_rerank_seconds:p95_5m"]
    (gen,) = used["policy:rag_generation_seconds:p95_5m"]
    assert 0.2 in thresholds[rr] and 2.5 in thresholds[gen], "latency panels show the SLO targets"


# ---------------------------------------------------------------- real Prometheus over the API's exporter


def _query(url: str, expr: str) -> dict[str, float]:
    """Instant query; {policy-or-job label value or '': value}."""
    data = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]
    return {(r["metric"].get("policy") or r["metric"].get("job", "")): float(r["value"][1]) for r in data}


def _wait_for(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check.__doc__ or check}")
        time.sleep(0.2)


@pytest.mark.slow
def test_real_prometheus_evaluates_the_rules_on_the_api_exporter(tmp_path: Path) -> None:
    """Debian's Prometheus scrapes ragdeck's real ApiMetrics registry (prometheus_client exposition, the
    real bucket labels) every second and evaluates both rule files: P95, SLI ratios and an alert come out
    as computed by hand, and no rule reports an evaluation error."""
    from prometheus_client import start_http_server

    from ragdeck.api.metrics import ApiMetrics

    binary = require_binary("prometheus", "/usr/bin/prometheus")
    metrics = ApiMetrics()
    for status in ("ok", "error"):  # children exist at 0 before the first scrape (a baseline for rate())
        metrics.requests.labels("A", status)
    metrics.guard_trips.labels("B")
    for histogram in (metrics.retrieval_rerank, metrics.generation):
        histogram.labels("A")
    exporter_port = free_port()
    server, _thread = start_http_server(exporter_port, addr="127.0.0.1", registry=metrics.registry)

    config = _yaml(PROMETHEUS_CONFIG)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(p) for p in RULE_FILES]
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "rag-api"]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1d"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)

        def scraped() -> bool:
            """the first scrape of the exporter"""
            return _query(url, 'up{job="rag-api"} == 1') != {}

        _wait_for(scraped)
        # After the baseline scrape: 90 fast (0.08 s) and 10 slower (0.12 s) retrievals+reranks, 80
        # generations of 1 s and 20 of 3 s, 999 answered and 1 failed request, one guard trip of policy B.
        for seconds, count in ((0.08, 90), (0.12, 10)):
            for _ in range(count):
                metrics.retrieval_rerank.labels("A").observe(seconds)
        for seconds, count in ((1.0, 80), (3.0, 20)):
            for _ in range(count):
                metrics.generation.labels("A").observe(seconds)
        metrics.requests.labels("A", "ok").inc(999)
        metrics.requests.labels("A", "error").inc(1)
        metrics.guard_trips.labels("B").inc()

        def recorded() -> dict[str, float]:
            """the recording rules over the new samples"""
            values = {
                "p95": _query(url, "policy:rag_retrieval_rerank_seconds:p95_5m").get("A"),
                "errors": _query(url, "job:rag_availability_errors:ratio_rate5m").get("rag-api"),
                "slow_gen": _query(url, "job:rag_generation_slow:ratio_rate5m").get("rag-api"),
            }
            return values if all(v is not None and v == v and v > 0 for v in values.values()) else {}

        values = _wait_for(recorded)
        assert values["p95"] == pytest.approx(0.125)  # 0.1 + 0.05 * (95 - 90) / (100 - 90)
        assert values["errors"] == pytest.approx(0.001)
        assert values["slow_gen"] == pytest.approx(0.2)

        def slow_share() -> dict[str, float]:
            """policy:rag_retrieval_rerank_slow:ratio_rate1h (its group may evaluate a tick later)"""
            return _query(url, "policy:rag_retrieval_rerank_slow:ratio_rate1h")

        assert _wait_for(slow_share) == {"A": 0.0}  # none over 0.2 s

        def guard_alert() -> dict[str, float]:
            """RagCanaryGuardTripped firing for policy B"""
            return _query(url, 'ALERTS{alertname="RagCanaryGuardTripped", alertstate="firing"}')

        assert set(_wait_for(guard_alert)) == {"B"}
        groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) == len(_rules())
        broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] == "err"}
        assert not broken
        # The two availability pages: 0.1 % errors is a 1x burn, far from 14.4x and 6x.
        assert _query(url, 'ALERTS{alertname="RagAvailabilityFastBurn"}') == {}
    finally:
        stop(proc)
        log.close()
        server.shutdown()
