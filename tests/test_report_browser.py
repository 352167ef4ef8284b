"""The report in a real browser: Debian's headless Chromium, driven by Playwright.

CI installs the browser with ``apt-get install -y chromium chromium-driver`` (see .ci/run); the
test is skipped only where ``/usr/bin/chromium`` is absent. Set ``ECPIF_SCREENSHOT_DIR`` to keep a
copy of the screenshot.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from browser import ARGS, CHROMIUM, needs_chromium
from ecpif.report import SECTIONS, Report

pytestmark = needs_chromium


def test_report_renders_every_section_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from test_report import EVIL, build_demo_content

    report = Report(build_demo_content(evil=True))
    path = report.write_html(tmp_path / "report.html")
    n_figures = sum(len(figures) for figures in report.figures.values())
    console: list[str] = []
    errors: list[str] = []
    dialogs: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")

            for section_id, title in SECTIONS:
                heading = page.locator(f"section#{section_id} > h2")
                assert heading.count() == 1, section_id
                assert heading.inner_text() == title
                assert page.locator(f"section#{section_id}").is_visible()
                assert (
                    "Not computed in this run."
                    not in page.locator(f"section#{section_id}").inner_text()
                )
            # Every figure decoded and laid out (an undecodable data URI has zero width).
            images = page.locator("img")
            assert images.count() == n_figures > 10
            for i in range(images.count()):
                box = images.nth(i).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100
            # The script-like column name is shown as text and never runs.
            assert EVIL in page.locator("section#data").inner_text()
            # The navigation works offline: anchors to each section.
            assert page.locator("nav a").count() == len(SECTIONS)

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert console == []
    assert errors == []
    assert dialogs == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert shot.stat().st_size > 50_000
    keep = os.environ.get("ECPIF_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report_screenshot.png")
