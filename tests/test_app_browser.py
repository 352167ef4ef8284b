"""``ecpif app`` end to end in a real browser: Debian's headless Chromium driven by Playwright.

The app is served by the test itself on a free localhost port (a thread running the same WSGI
server as ``ecpif app``) and stopped afterwards. CI installs the browser with
``apt-get install -y chromium chromium-driver`` (see .ci/run); these tests are skipped only where
``/usr/bin/chromium`` is absent. Set ``ECPIF_SCREENSHOT_DIR`` to keep a copy of the screenshot
(``app_screenshot.png``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("dash", reason="the web app needs the 'app' extra (pip install 'ecpif[app]')")

from browser import ARGS, CHROMIUM, needs_chromium

SMALL_UPLOAD_MB = 1.0

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


def upload_input(slot: str) -> str:
    """CSS selector of the file input inside a dcc.Upload with a pattern-matching id."""
    return f"""[id='{{"slot":"{slot}","type":"upload"}}'] input[type=file]"""


@contextlib.contextmanager
def serving(root: Path, max_upload_mb: float) -> Iterator[str]:
    """The app on a free localhost port, served from a thread like ``ecpif app`` serves it."""
    from ecpif.app import create_app, make_server

    handle = create_app(max_upload_mb=max_upload_mb, root=root)
    server = make_server(handle, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        handle.store.close()
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Large enough for the bundle of the demo study (extra trees make it ~10 MB).
    with serving(tmp_path_factory.mktemp("app"), 50.0) as url:
        yield url


@pytest.fixture(scope="module")
def small_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("small-app"), SMALL_UPLOAD_MB) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url: str) -> Iterator[object]:
    errors: list[str] = []
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.set_default_timeout(30_000)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#load-demo")
    page.js_errors = errors  # type: ignore[attr-defined]
    page.requests = requests  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, app_url: str) -> Iterator[object]:
    yield from open_page(browser, app_url)


@pytest.fixture
def small_page(browser, small_app_url: str) -> Iterator[object]:
    """A page of an app whose upload limit is 1 MB."""
    yield from open_page(browser, small_app_url)


def load_demo(page) -> None:
    page.click("#load-demo")
    page.wait_for_selector("#data-ok")
    assert "4 runs" in page.inner_text("#data-ok")
    page.wait_for_selector("#heatmap-img img")
    page.wait_for_selector("#network-img img")


def tick(page, group: str, label: str) -> None:
    page.locator(f"#{group} label", has_text=label).click()


def checked(page, group: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#{group} input[type=checkbox]", "els => els.filter(e => e.checked).map(e => e.value)"
    )


def download(page, button: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(button)
    target = folder / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_demo_study_in_the_browser(page, app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ecpif.bundle import load_bundle
    from ecpif.datasets import load_nca_demo, nca_demo_path

    started = time.monotonic()
    load_demo(page)
    # What was read and the alignment with its quality report.
    expect(page.locator("#runs")).to_contain_text("nca-2C")
    expect(page.locator("#align-graph .js-plotly-plot")).to_be_visible()
    expect(page.locator("#align-counts")).to_contain_text("nca-0.2C")

    # Two targets, three fast models, the shuffled scheme only.
    tick(page, "targets", "a [Å]")
    tick(page, "targets", "d [Å]")
    assert checked(page, "targets") == ["c [Å]", "li_occupancy [-]"]
    page.click("#models-fast")
    expect(page.locator("#models input:checked")).to_have_count(3)
    assert sorted(checked(page, "models")) == ["extra_trees", "knn", "ridge"]
    tick(page, "schemes", "grouped")
    tick(page, "schemes", "leave one rate out")
    assert checked(page, "schemes") == ["shuffled"]
    expect(page.locator("#final-scheme")).to_contain_text("shuffled")

    page.click("#run-study")
    page.wait_for_selector("#job-running")
    expect(page.locator("#cancel-study")).to_be_enabled()
    # The page keeps answering while the study runs: another callback completes meanwhile.
    page.locator("#corr-method label", has_text="spearman").click()
    # Generous timeout: on a loaded 2-core CI machine the study's workers compete for the CPU.
    expect(page.locator("#heatmap-img figcaption")).to_have_text(
        "Spearman correlation", timeout=30_000
    )
    steps = set()
    deadline = time.monotonic() + 120
    while not page.locator("#job-done").count():
        assert not page.locator("#job-error").count(), page.inner_text("#job-status")
        assert time.monotonic() < deadline, "the study did not finish in 120 s"
        steps.add(page.inner_text("#job-status"))
        page.wait_for_timeout(250)
    assert any(s.startswith("Running: ") for s in steps), steps
    assert page.get_attribute("#progress", "value") == "100"

    # Leaderboard, ensembles, parity plots, evolution curves, Rabs.
    board = page.locator("#leaderboard")
    expect(board).to_be_visible()
    text = board.inner_text()
    for name in ("ridge", "knn", "extra_trees", "c [Å]", "li_occupancy [-]", "shuffled"):
        assert name in text
    assert "a [Å]" not in text
    expect(page.locator("#final-model")).to_contain_text("li_occupancy [-]")
    assert page.locator("#fig-validation img").count() >= 2
    assert page.locator("#fig-predictions img").count() >= 1
    expect(page.locator("#rabs-table")).to_be_visible()

    # Downloads: predictions, report, model bundle.
    runs = load_nca_demo()
    predictions = pd.read_csv(download(page, "#download-predictions", tmp_path))
    assert sorted(predictions["run id"].unique()) == sorted(r.run_id for r in runs)
    assert len(predictions) == sum(len(r.echem) for r in runs)
    for column in ("c [Å]", "lower c [Å]", "upper c [Å]", "li_occupancy [-]"):
        assert predictions[column].notna().all(), column
    assert (predictions["lower c [Å]"] <= predictions["upper c [Å]"]).all()
    report = download(page, "#download-report", tmp_path).read_text(encoding="utf-8")
    assert '<section id="leaderboard">' in report and "extra_trees" in report
    model = load_bundle(download(page, "#download-bundle", tmp_path))
    assert model.targets == ["c [Å]", "li_occupancy [-]"]

    # Predict an uploaded cycler-only file with the model just trained.
    page.set_input_files(upload_input("predict"), str(nca_demo_path() / "nca-2C_cycler.csv"))
    page.wait_for_selector("#predict-summary")
    expect(page.locator("#predict-run-id")).to_have_value("nca-2C")
    page.fill("#predict-c-rate", "2")
    page.click("#predict-button")
    page.wait_for_selector("#predict-ok")
    expect(page.locator("#predict-figure img")).to_be_visible()
    single = pd.read_csv(download(page, "#download-prediction", tmp_path))
    expected = predictions[predictions["run id"] == "nca-2C"]
    assert len(single) == len(expected)
    # Same model, same file, same features: the same trajectory as the study's own prediction.
    assert single["c [Å]"].to_numpy() == pytest.approx(expected["c [Å]"].to_numpy(), abs=1e-9)

    # ... and with the downloaded bundle: the saved model predicts the same trajectory.
    page.set_input_files(upload_input("bundle"), str(tmp_path / "ecpif_model.skops"))
    expect(page.locator("#bundle-summary")).to_contain_text("li_occupancy [-]")
    expect(page.locator("#predict-model input[value=bundle]")).to_be_checked()
    page.click("#predict-button")
    expect(page.locator("#predict-ok")).to_be_visible()
    again = pd.read_csv(download(page, "#download-prediction", tmp_path))
    assert again["li_occupancy [-]"].to_numpy() == pytest.approx(
        single["li_occupancy [-]"].to_numpy(), abs=1e-12
    )

    assert page.locator("#page-error").is_hidden()
    assert page.js_errors == []
    # Everything the page loaded came from the app itself (scripts, styles, figures).
    outside = [u for u in page.requests if not u.startswith((app_url, "data:", "blob:"))]
    assert outside == []
    shot = tmp_path / "app_screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("ECPIF_SCREENSHOT_DIR"):
        keep = Path(os.environ["ECPIF_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "app_screenshot.png")
    assert time.monotonic() - started < 150


def test_broken_files_show_a_message_and_the_app_keeps_working(small_page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ecpif.datasets import nca_demo_path

    page = small_page
    broken = tmp_path / "broken_cycler.csv"
    broken.write_text("this is not,a cycler export\nat all,\n", encoding="utf-8")
    page.set_input_files(upload_input("cycler"), str(broken))
    error = page.locator("#cycler-error")
    expect(error).to_contain_text("broken_cycler.csv")
    assert "Traceback" not in page.content()

    huge = tmp_path / "huge.csv"
    huge.write_bytes(b"0" * int(1.2 * SMALL_UPLOAD_MB * 1_000_000))
    page.set_input_files(upload_input("cycler"), str(huge))
    expect(error).to_contain_text("'huge.csv' is 1.2 MB, more than the upload limit of 1 MB")

    page.click("#add-run")
    expect(page.locator("#data-error")).to_contain_text("No cycler file uploaded yet")

    bundle = tmp_path / "model.skops"
    bundle.write_bytes(b"PK\x03\x04 not really a zip")
    page.set_input_files(upload_input("bundle"), str(bundle))
    expect(page.locator("#bundle-error")).to_contain_text("model.skops")

    # The same slot accepts a good file afterwards, and the rest of the page still works.
    page.set_input_files(upload_input("cycler"), str(nca_demo_path() / "nca-1C_cycler.csv"))
    expect(page.locator("#cycler-summary")).to_contain_text("nca-1C_cycler.csv")
    expect(page.locator("#run-id")).to_have_value("nca-1C")
    load_demo(page)
    assert page.locator("#page-error").is_hidden()
    assert "Traceback" not in page.content()
    assert page.js_errors == []


def test_real_files_ask_for_the_time_zone_then_align(page, data_dir: Path) -> None:
    """A real operando session (datalab-org, MIT): Neware .ndax and a pattern log in one zip,
    both with naive local times; the cycler starts after the first scan."""
    from playwright.sync_api import expect

    session = str(data_dir / "datalab-operando" / "coincell8_LDE2_reduced.zip")
    page.set_input_files(upload_input("cycler"), session)
    expect(page.locator("#cycler-ask-timezone")).to_be_visible()
    expect(page.locator("#cycler-error")).to_contain_text("carry no time zone")
    page.set_input_files(upload_input("refinement"), session)
    expect(page.locator("#refinement-ask-timezone")).to_be_visible()
    expect(page.locator("#timezone")).to_have_class("dash-dropdown tz needs-answer")
    page.click("#add-run")  # too early: the same question, naming the file, not a server path
    expect(page.locator("#data-ask-timezone")).to_be_visible()
    refusal = page.inner_text("#data-error")
    assert "coincell8_LDE2_reduced.zip" in refusal and "carry no time zone" in refusal
    assert "/runs/" not in refusal and "ecpif-app" not in refusal and "pytest" not in refusal

    page.click("#timezone")
    page.keyboard.type("London")
    page.get_by_role("option", name="Europe/London", exact=True).click()
    cycler = page.locator("#cycler-summary")
    expect(cycler).to_contain_text("neware")
    expect(cycler).to_contain_text("2025-07-02 18:08:11")  # 19:08:11 BST
    expect(cycler).to_contain_text("Europe/London")
    expect(page.locator("#refinement-summary")).to_contain_text("pattern-log")
    expect(page.locator("#cycler-ask-timezone")).to_have_count(0)

    page.fill("#c-rate", "0.1")
    page.click("#add-run")
    expect(page.locator("#data-ok")).to_contain_text("5 patterns")
    expect(page.locator("#runs")).to_contain_text("Europe/London")
    # The first scan started before the cycler: its window is reported, not silently used.
    counts = page.locator("#align-counts")
    expect(counts).to_contain_text("dropped")
    expect(page.locator("#align-issues")).to_contain_text("coincell8_LDE2_reduced")
    # A pattern log has times but no refined parameters: said so, instead of an empty heatmap.
    expect(page.locator("#explore-note")).to_contain_text("no refined parameter")
    assert page.locator("#page-error").is_hidden(), page.inner_text("#page-error")
    assert page.js_errors == []


def test_a_running_study_can_be_cancelled(page) -> None:
    from playwright.sync_api import expect

    load_demo(page)
    page.click("#models-fast")
    page.click("#run-study")
    page.wait_for_selector("#job-running")
    page.click("#cancel-study")
    expect(page.locator("#job-cancelled")).to_be_visible(timeout=90_000)
    expect(page.locator("#run-study")).to_be_enabled()
    expect(page.locator("#results-summary")).to_have_text("No results yet.")
    expect(page.locator("#download-predictions")).to_be_disabled()
