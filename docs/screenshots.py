"""Screenshots of every console page after a first start, for the docs: ``docs/screenshots/<page>.png``.

Usage (from the repository root, in the venv with the test extras; Debian's chromium at /usr/bin/chromium,
and fonts-noto-color-emoji for the page icons, as ``./dev test`` installs them)::

    python docs/screenshots.py [--out docs/screenshots] [--width 1280] [--seed DATA_DIR] [--llm]

It starts ``ragdeck console`` on a fresh temporary data directory, so the first start runs as a new user's
would: the demo collection is built (or, with ``--seed``, copied from a data directory that already holds
one) and the demo gold set is run once with dense and once with hybrid retrieval. Then each page of the
app's navigation is opened in headless Chromium; the script waits until the page has finished its run
(Streamlit's script state "notRunning", no spinner, each chart drawn) and its own content is shown, and
writes a full-page PNG (palette-reduced to keep it small). No component URLs are used: the console runs on
the embedded default, without the local LLM unless ``--llm`` (the Ask page then answers extractively).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip
COMPONENT_ENV = (
    "QDRANT_URL", "QDRANT_API_KEY", "TEI_URL", "TEI_RERANK_URL", "LLM_BASE_URL", "PROMETHEUS_URL",
    "REDIS_URL", "RAGDECK_CONFIG", "RAGDECK_API_URL",
)  # fmt: skip
MAX_HEIGHT = 8000  # px: a page taller than this is cut (a screenshot, not an archive)


@dataclass(frozen=True)
class Shot:
    """One page: its file in ``ragdeck/pages/`` (and so its URL path and PNG name), its title, and the
    element that shows its content is there (a CSS selector; "" when the title and a finished run suffice)."""

    page: str
    title: str
    ready: str = ""


PAGES = (
    Shot("stack", "Stack", "[data-testid=stDataFrame]"),
    Shot("ask", "Ask", "[data-testid=stTextInput], [data-testid=stTextArea]"),
    Shot("annotate", "Annotate", "[data-testid=stTextInput]"),
    Shot("review", "Review", "[data-testid=stAlert], [data-testid=stMetric]"),
    Shot("publish", "Publish", "[data-testid=stTextInput]"),
    Shot("evaluate", "Evaluate", "[data-testid=stMetric]"),
    Shot("tune", "Tune", "[data-testid=stSelectbox]"),
    Shot("compare", "Compare", "[data-testid=stPlotlyChart]"),
    Shot("canary", "Canary", "[data-testid=stAlert], [data-testid=stMetric]"),
    Shot("slo", "SLOs", "[data-testid=stMetric]"),
    Shot("index_ops", "Index Ops", "[data-testid=stDataFrame]"),
)
DEFAULT_PAGE = "stack"  # app.py's default page: served at "/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def console(data: Path, log: Path, *, llm: bool, timeout_s: float) -> Iterator[str]:
    """``ragdeck console`` on ``data`` (first start included) on a free port: its URL once healthy."""
    import httpx

    env = {k: v for k, v in os.environ.items() if k not in COMPONENT_ENV}
    env.update(RAGDECK_DATA_DIR=str(data), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="400")
    port = free_port()
    command = [sys.executable, "-m", "ragdeck.cli", "console", "--port", str(port)]
    command += [] if llm else ["--no-llm"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data.parent, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise SystemExit(f"ragdeck console exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"ragdeck console was not healthy in {timeout_s:.0f} s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()  # the CLI stops its Streamlit child (and Prometheus); the group kill is a safety net
        try:
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def settle(page: Page, shot: Shot, timeout_ms: int) -> None:
    """Wait until ``shot``'s page has drawn its content: title, a finished script run without spinners,
    its own element, and every chart drawn."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=shot.title, exact=True)).to_be_visible(timeout=timeout_ms)
    app = page.locator("[data-testid=stApp]")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout_ms)
    if shot.ready:
        expect(page.locator(shot.ready).first).to_be_visible(timeout=timeout_ms)
    expect(page.locator("[data-testid=stSpinner]")).to_have_count(0, timeout=timeout_ms)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
                 .every(c => c.querySelector('.main-svg'))""",
        timeout=timeout_ms,
    )
    page.wait_for_function(
        "() => document.fonts.status === 'loaded' && !document.querySelector('[data-testid=stSkeleton]')",
        timeout=timeout_ms,
    )
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout_ms)
    text = page.inner_text("body")
    if "Traceback" in text:
        raise SystemExit(f"the {shot.title} page shows a traceback:\n{text[:2000]}")


def content_height(page: Page) -> int:
    """The page's full height: Streamlit scrolls its main block, not the document."""
    return int(
        page.evaluate(
            """() => Math.max(document.body.scrollHeight,
                 ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer],'
                     + ' section.main')].map(e => e.scrollHeight))"""
        )
    )


def shrink(path: Path) -> None:
    """Palette-reduce the PNG (256 colours): about a third of the bytes, text still crisp."""
    from PIL import Image

    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    reduced.save(path, optimize=True)


def take(url: str, out: Path, width: int, timeout_ms: int, pages: tuple[Shot, ...] = PAGES) -> list[Path]:
    """One PNG per page under ``out``; returns the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for shot in pages:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(url if shot.page == DEFAULT_PAGE else f"{url}/{shot.page}")
                settle(page, shot, timeout_ms)
                height = min(MAX_HEIGHT, max(900, content_height(page)))
                page.set_viewport_size({"width": width, "height": height})
                settle(page, shot, timeout_ms)  # a taller viewport may redraw charts and tables
                target = out / f"{shot.page}.png"
                page.screenshot(path=str(target), full_page=True)
                shrink(target)
                written.append(target)
                print(f"{target}  {width}x{height}  {target.stat().st_size // 1024} KiB", flush=True)
                page.close()
        finally:
            browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--seed", type=Path, help="copy this data directory (with the demo built) first")
    parser.add_argument("--llm", action="store_true", help="start the packaged local LLM (slow)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each page")
    parser.add_argument("--start-timeout", type=float, default=1200.0, help="seconds for the first start")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium (./dev test does)")
    with tempfile.TemporaryDirectory(prefix="ragdeck-screenshots-") as tmp:
        data = Path(tmp) / "data"
        if args.seed:
            subprocess.run(["cp", "-a", "--sparse=always", str(args.seed), str(data)], check=True)
        log = Path(tmp) / "console.log"
        started = time.monotonic()
        with console(data, log, llm=args.llm, timeout_s=args.start_timeout) as url:
            print(f"console up in {time.monotonic() - started:.0f} s (first start included)", flush=True)
            take(url, args.out, args.width, int(args.timeout * 1000))
        first_start = [  # what the first start did (COLUMNS keeps rich from wrapping these lines)
            line for line in log.read_text().splitlines() if line.startswith(("Demo", "Indexed", "note:"))
        ]
        print("\n".join(first_start))
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
