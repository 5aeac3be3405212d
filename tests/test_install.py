"""The installed wheel starts from any folder with every server down, as for a new user or the Docker image.

Builds the wheel, installs it without extras into a clean venv outside the repo (torch's CPU wheel first),
and from another folder starts ``ragdeck api serve`` and ``ragdeck console`` with every server URL pointing
at a closed local port: both start, ``/healthz`` is 200, ``/readyz`` is 503 naming the components that are
down (and their settings), and every console page renders without an exception. Then the same venv gets the
Docker image's install line (parsed from the Dockerfile, so the test follows it: a superset of the plain
install) and the same checks run again with REDIS_URL and OTEL_EXPORTER_OTLP_ENDPOINT set as in
docker-compose.yml. The working folder holds a hostile ``.streamlit/config.toml`` (another base URL path):
the console must use its own packaged config.

Slow (a few minutes: most of it pip). Runs in CI (``RAGDECK_REQUIRE_SERVERS=1``, see .ci/run) or with
``RAGDECK_INSTALL_TEST=1``; skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from servers import readyz_when_warm

ROOT = Path(__file__).resolve().parent.parent
TORCH_SPEC = os.environ.get("RAGDECK_TORCH_SPEC", "torch==2.13.0")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip
# The console's pages (ragdeck/app.py): URL path -> title.
PAGES = {
    "": "Stack", "ask": "Ask", "annotate": "Annotate", "review": "Review", "publish": "Publish",
    "evaluate": "Evaluate", "tune": "Tune", "compare": "Compare", "canary": "Canary", "slo": "SLOs",
    "index_ops": "Index Ops",
}  # fmt: skip
PIP_TIMEOUT_S = 1500
START_TIMEOUT_S = 180

pytestmark = pytest.mark.slow

if not (os.environ.get("RAGDECK_REQUIRE_SERVERS") == "1" or os.environ.get("RAGDECK_INSTALL_TEST") == "1"):
    pytest.skip(
        "installs the wheel into a fresh venv (minutes): runs in CI, or set RAGDECK_INSTALL_TEST=1",
        allow_module_level=True,
    )


def _free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], timeout_s: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return result


def dockerfile_install_extras() -> str:
    """The extras of the Dockerfile's ``pip install /tmp/src[...]`` line ("" when it installs none)."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^RUN pip install \"?/tmp/src(\[[A-Za-z0-9_,-]*\])?\"?(?:\s|$)", text, re.MULTILINE)
    assert match, "the Dockerfile has no `RUN pip install /tmp/src...` line: update tests/test_install.py"
    return match.group(1) or ""


class Timer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.phases: dict[str, float] = {}
        self._last = self.t0

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self._last, 1)
        self._last = now
        print(f"[install test] {name}: {self.phases[name]} s", flush=True)


@contextlib.contextmanager
def _process(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_for(url: str, proc: subprocess.Popen, log: Path, ok: Callable[[httpx.Response], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-6000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if ok(httpx.get(url, timeout=2)):
                return
        time.sleep(0.3)
    pytest.fail(f"{url} not up after {START_TIMEOUT_S} s:\n{log.read_text()[-6000:]}")


def _check_api(venv: Path, cwd: Path, env: dict[str, str], logs: Path) -> dict[str, object]:
    port = _free_closed_port()
    log = logs / "api.log"
    cmd = [str(venv / "bin" / "ragdeck"), "api", "serve", "--port", str(port), "--no-llm"]
    with _process(cmd, cwd, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", proc, log, lambda r: r.status_code == 200)
        ready = readyz_when_warm(lambda path: httpx.get(f"{base}{path}", timeout=120), START_TIMEOUT_S)
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert {"embedder", "vector store", "llm"} <= set(body["failed"]), body
        error = body["error"]
        for setting in ("TEI_URL", "QDRANT_URL", "LLM_BASE_URL"):
            assert setting in error, (setting, body)
        return body


def _check_console(venv: Path, cwd: Path, env: dict[str, str], logs: Path) -> None:
    port = _free_closed_port()
    log = logs / "console.log"
    cmd = [
        str(venv / "bin" / "ragdeck"), "console", "--port", str(port),
        "--no-demo", "--no-llm", "--no-prometheus",
    ]  # fmt: skip
    with _process(cmd, cwd, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        # at the root: the working folder's .streamlit (baseUrlPath "elsewhere") must not apply
        _wait_for(f"{base}/_stcore/health", proc, log, lambda r: r.status_code == 200)
        _render_pages(base, log)
        assert proc.poll() is None, log.read_text()[-6000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-6000:]


def _render_pages(base: str, log: Path) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        if os.environ.get("RAGDECK_REQUIRE_BROWSER"):
            pytest.fail("RAGDECK_REQUIRE_BROWSER is set but Playwright or /usr/bin/chromium is missing")
        page = httpx.get(base, timeout=30)  # at least the app's HTML is served
        assert page.status_code == 200 and "<html" in page.text.lower()
        return
    failed: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            for path, title in PAGES.items():
                page.goto(f"{base}/{path}")
                expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=90_000)
                app = page.locator("[data-testid=stApp]")  # the page's script has run to its end
                expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=90_000)
                body = page.inner_text("body")
                exceptions = page.locator("[data-testid=stException]")
                if exceptions.count() or "Traceback" in body:
                    text = exceptions.first.inner_text() if exceptions.count() else body
                    failed.append(f"/{path}: {text[:1500]}")
                    continue
                if path == "evaluate":  # the shipped demo set, found from this folder; errors name settings
                    # widgets mount after the script ends (lazily loaded components): wait for them
                    eval_set = page.get_by_role("combobox", name="Eval set")
                    expect(eval_set).to_be_visible(timeout=30_000)
                    tree = page.locator("[data-testid=stMain]").aria_snapshot()
                    assert 'combobox "Eval set": demo_gold.jsonl (demo_eval_sets)' in tree, tree
                    expect(page.get_by_text("vector store (QDRANT_URL)").first).to_be_visible()
        finally:
            browser.close()
    assert not failed, "pages that raised:\n" + "\n".join(failed)


def _environment(venv: Path, data: Path, closed: str, extra: dict[str, str]) -> dict[str, str]:
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "RAGDECK_CONFIG", "QDRANT_API_KEY", "REDIS_URL",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "LLM_API_KEY"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        RAGDECK_DATA_DIR=str(data),
        QDRANT_URL=closed, TEI_URL=closed, TEI_RERANK_URL=closed, LLM_BASE_URL=closed, PROMETHEUS_URL=closed,
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        PYTHONNOUSERSITE="1",
    )  # fmt: skip
    env.update(extra)
    return env


def test_wheel_and_docker_install_start_from_any_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    timer = Timer()
    work = tmp_path_factory.mktemp("install")
    assert ROOT not in work.parents
    pip_env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}

    wheels = work / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(wheels)]
    _run(build, PIP_TIMEOUT_S, env=pip_env)
    (wheel,) = wheels.glob("ragdeck-*.whl")
    timer.lap("build wheel")

    base_python = getattr(sys, "_base_executable", sys.executable)
    venv = work / "venv"
    _run([base_python, "-m", "venv", str(venv)], 120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, TORCH_SPEC], PIP_TIMEOUT_S, env=pip_env, cwd=work)
    timer.lap("venv + torch")
    _run([*pip, str(wheel)], PIP_TIMEOUT_S, env=pip_env, cwd=work)
    timer.lap("install wheel (no extras)")
    files = [
        "launch/.streamlit/config.toml", "demo_eval_sets/demo_gold.jsonl",
        "demo_eval_sets/demo_gold.versions.jsonl", "demo_eval_sets/history/demo_gold/v1.jsonl",
        "demo_corpus/SOURCES.md",
    ]  # fmt: skip
    probe = (
        "import ragdeck, pathlib; p = pathlib.Path(ragdeck.__file__).parent; "
        f"print([f for f in {files!r} if not (p / f).is_file()])"
    )
    shipped = _run([str(venv / "bin" / "python"), "-c", probe], 60, cwd=work)
    assert shipped.stdout.strip() == "[]", f"package data missing from the wheel: {shipped.stdout}"

    elsewhere = work / "elsewhere"
    (elsewhere / ".streamlit").mkdir(parents=True)
    (elsewhere / ".streamlit" / "config.toml").write_text('[server]\nbaseUrlPath = "elsewhere"\nport = 1\n')
    closed = f"http://127.0.0.1:{_free_closed_port()}"
    logs = work / "logs-plain"
    logs.mkdir()
    env = _environment(venv, work / "data-plain", closed, {})
    readyz = _check_api(venv, elsewhere, env, logs)
    timer.lap("plain install: api serve")
    _check_console(venv, elsewhere, env, logs)
    timer.lap("plain install: console pages")

    # The Docker image's install line, from a copy of what the Dockerfile copies.
    extras = dockerfile_install_extras()
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "ragdeck", src / "ragdeck", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([*pip, f"{src}{extras}"], PIP_TIMEOUT_S, env=pip_env, cwd=work)
    timer.lap(f"docker install line ({extras or 'no extras'})")
    compose_env = {"REDIS_URL": f"redis://127.0.0.1:{_free_closed_port()}/0"} if "redis" in extras else {}
    if "otel" in extras:
        compose_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{_free_closed_port()}"
    logs = work / "logs-docker"
    logs.mkdir()
    env = _environment(venv, work / "data-docker", closed, compose_env)
    _check_api(venv, elsewhere, env, logs)
    timer.lap("docker install: api serve")
    _check_console(venv, elsewhere, env, logs)
    timer.lap("docker install: console pages")
    total = round(time.monotonic() - timer.t0, 1)
    print(f"[install test] total {total} s; /readyz said: {json.dumps(readyz['failed'])}", flush=True)
