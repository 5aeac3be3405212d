"""Debian's Prometheus run by ragdeck itself on loopback, so the console's demo has metric history.

`ragdeck console` starts one when the ``prometheus`` binary is installed and ``PROMETHEUS_URL`` is not set: it
scrapes the RAG API the console hosts (``127.0.0.1:<RAGDECK_API_PORT>``), loads ragdeck's recording and
alert rules when they sit next to the package (a source checkout's ``monitoring/rules``), and keeps its data
under the data directory for 7 days.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from ragdeck.errors import ServiceUnavailable
from ragdeck.services.common import stop_process

CANDIDATES = ("/usr/bin/prometheus",)
RULES_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "rules"


def find_prometheus() -> str | None:
    """The ``prometheus`` binary on PATH (or Debian's path), or None."""
    found = shutil.which("prometheus")
    if found:
        return found
    return next((c for c in CANDIDATES if Path(c).is_file()), None)


def _port(preferred: int) -> int:
    """``preferred`` when it is free on loopback, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ServiceUnavailable("no free loopback port for Prometheus")


def bundled_rules() -> list[Path]:
    """ragdeck's rule files when the package runs from a source checkout; empty otherwise."""
    return sorted(RULES_DIR.glob("*.yml")) if RULES_DIR.is_dir() else []


class LocalPrometheus:
    """One Prometheus process on 127.0.0.1 scraping ``targets`` ("host:port") every ``scrape_interval_s``."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        targets: Sequence[str],
        *,
        rule_files: Sequence[Path] = (),
        port: int = 9090,
        scrape_interval_s: int = 5,
        retention: str = "7d",
    ) -> None:
        self.binary = binary
        self.workdir = Path(workdir)
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.preferred_port = port
        self.scrape_interval_s = scrape_interval_s
        self.retention = retention
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        """The prometheus.yml it runs with."""
        targets = ", ".join(f'"{t}"' for t in self.targets)
        rules = "".join(f'  - "{p}"\n' for p in self.rule_files)
        return (
            f"global:\n  scrape_interval: {self.scrape_interval_s}s\n"
            f"  evaluation_interval: {self.scrape_interval_s}s\n"
            + (f"rule_files:\n{rules}" if rules else "")
            + f"scrape_configs:\n  - job_name: rag-api\n    static_configs:\n      - targets: [{targets}]\n"
        )

    def start(self, timeout_s: float = 20.0) -> str:
        """Start and wait until ready; returns its URL. ServiceUnavailable with its log's tail on failure."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(self.config_text())
        port = _port(self.preferred_port)
        log = (self.workdir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.retention.time={self.retention}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                    self.url = url
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        text = (self.workdir / "prometheus.log").read_text(errors="replace")
        errors = [  # a bad flag prints "Error parsing ..." then its usage; a bad config logs level=error
            line.strip()
            for line in text.splitlines()
            if "level=error" in line or line.lower().startswith(("error", "prometheus: error"))
        ]
        detail = errors[-1] if errors else text[-600:].strip() or "no output"
        raise ServiceUnavailable(f"Prometheus did not become ready on {url}: {detail}")

    def stop(self) -> None:
        """Stop the process (its data stays for the next start)."""
        proc, self._proc = self._proc, None
        stop_process(proc)
