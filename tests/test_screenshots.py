"""``docs/screenshots.py`` covers every page of the app's navigation, and waits for each one's own title: a
new page without a screenshot, or a renamed title, fails here rather than in a stale picture."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    path = ROOT / "docs" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("ragdeck_docs_screenshots", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ragdeck_docs_screenshots"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def navigation() -> list[str]:
    """The page files ``app.py`` puts in ``st.navigation``, in order."""
    return re.findall(r'st\.Page\(PAGES / "(\w+)\.py"', (ROOT / "ragdeck" / "app.py").read_text())


def test_every_page_in_the_navigation_has_a_screenshot_in_the_same_order() -> None:
    script = load_script()
    pages = navigation()
    assert len(pages) >= 11
    assert [shot.page for shot in script.PAGES] == pages
    # every page file (one that draws a title; helpers like annotate_parts.py draw none) is in the navigation
    page_files = (ROOT / "ragdeck" / "pages").glob("*.py")
    on_disk = {p.stem for p in page_files if "st.title(" in p.read_text()}
    assert set(pages) == on_disk
    default = re.search(r'PAGES / "(\w+)\.py"[^)]*default=True', (ROOT / "ragdeck" / "app.py").read_text())
    assert default is not None and default.group(1) == script.DEFAULT_PAGE


def test_each_screenshot_waits_for_the_title_its_page_shows() -> None:
    for shot in load_script().PAGES:
        source = (ROOT / "ragdeck" / "pages" / f"{shot.page}.py").read_text()
        assert f'st.title("{shot.title}")' in source, shot


def test_the_committed_screenshots_are_there_for_every_page() -> None:
    shots = ROOT / "docs" / "screenshots"
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted(navigation())
