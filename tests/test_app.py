"""The web app's logic without a browser: job runner, uploads, readers' summaries, sessions, config.

Real files from tests/data (see each folder's LICENSE): an EC-Lab export with naive local times
(GhostDeini/perex, BSD-3-Clause), a datalab operando session with a naive pattern log
(datalab-org, MIT), the PASCal NMC811 table that is not a cycler file (MJCliffe/PASCal, MIT).
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("dash", reason="the web app needs the 'app' extra (pip install 'ecpif[app]')")

from ecpif.app import jobs
from ecpif.app.callbacks import build_config, honest_default, study_work
from ecpif.app.jobs import Job, user_message
from ecpif.app.state import Session, SessionStore, new_session_id, valid_session_id
from ecpif.app.uploads import (
    NAIVE_TIME_TEXT,
    UploadError,
    clean_message,
    decode_upload,
    limit_bytes,
    needs_timezone,
    read_cycler_file,
    read_structure_file,
    safe_name,
    save_upload,
)
from ecpif.errors import ConfigError, DataError, EcpifError

MPT = "biologic-mpt/220726cell4operandoxascontinuation_C06.mpt"
DATALAB = "datalab-operando/coincell8_LDE2_reduced.zip"
NOT_CYCLER = "pascal-nmc811/nmc811_lattice_vs_charge.tsv"


def data_url(raw: bytes, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def wait_finished(job: Job, timeout: float = 30.0) -> None:
    assert job.wait(timeout), "the job's thread did not end in time"


# --- job runner -----------------------------------------------------------------------------------


def test_job_reports_monotonic_progress_and_its_result() -> None:
    seen: list[float] = []

    def work(progress, cancel):
        for f in (0.1, 0.5, 0.3, 0.9):  # 0.3 goes backwards on purpose
            progress(f"step {f}", f)
            seen.append(job.snapshot().fraction)
        return {"answer": 42}

    job = Job(work, name="t")
    assert job.snapshot().status == jobs.QUEUED
    job.start()
    wait_finished(job)
    snap = job.snapshot()
    assert snap.status == jobs.DONE and snap.finished
    assert job.result == {"answer": 42}
    assert snap.fraction == 1.0
    assert seen == [0.1, 0.5, 0.5, 0.9]


def test_failed_job_stores_one_sentence_and_no_traceback() -> None:
    def work(progress, cancel):
        progress("reading", 0.2)
        raise DataError("The file 'x.csv' has NaN in 'voltage [V]' at row 12; clean it.")

    job = Job(work).start()
    wait_finished(job)
    snap = job.snapshot()
    assert snap.status == jobs.FAILED
    assert snap.message == "The file 'x.csv' has NaN in 'voltage [V]' at row 12; clean it."
    assert isinstance(job.error, DataError)
    assert job.result is None


def test_unexpected_exception_is_named_by_type_on_one_line() -> None:
    def work(progress, cancel):
        raise KeyError("voltage [V]")

    job = Job(work, action="running the study").start()
    wait_finished(job)
    message = job.snapshot().message
    assert message.startswith("Unexpected error while running the study (KeyError:")
    assert "\n" not in message and "Traceback" not in message


def test_cancel_is_cooperative_and_discards_a_late_result() -> None:
    started = threading.Event()
    release = threading.Event()

    def work(progress, cancel):
        started.set()
        release.wait(10)  # a step that cannot be interrupted
        return "late result"

    job = Job(work).start()
    assert started.wait(5)
    assert job.cancel() is True
    assert job.snapshot().status == jobs.CANCELLING
    assert job.alive
    release.set()
    wait_finished(job)
    assert job.snapshot().status == jobs.CANCELLED
    assert job.result is None
    assert job.cancel() is False


def test_cancel_before_a_real_pipeline_step_stops_it(tmp_path: Path) -> None:
    from ecpif.pipeline import Cancelled, StudyConfig

    gate = threading.Event()
    config = StudyConfig(models=("ridge",), schemes=("shuffled",), final_scheme="shuffled")
    work = study_work(config, tmp_path)

    def gated(progress, cancel):
        gate.wait(5)
        return work(progress, cancel)

    job = Job(gated).start()
    job.cancel()
    gate.set()
    wait_finished(job)
    assert job.snapshot().status == jobs.CANCELLED
    assert job.error is None
    assert not (tmp_path / "results").exists()
    assert issubclass(Cancelled, EcpifError)


def test_user_message_keeps_ecpif_sentences_and_first_lines_only() -> None:
    assert user_message(ConfigError("Pick a model; got none.")) == "Pick a model; got none."
    text = user_message(ValueError("first line\nsecond line"), "drawing")
    assert text == "Unexpected error while drawing (ValueError: first line)."
    assert user_message(RuntimeError(), "x") == "Unexpected error while x (RuntimeError)."


# --- uploads --------------------------------------------------------------------------------------


def test_decode_upload_round_trips_and_checks_the_limit_before_decoding() -> None:
    raw = b"time/s,Ewe/V\n0,3.5\n"
    assert decode_upload(data_url(raw), "a.csv", 100) == raw
    with pytest.raises(UploadError, match=r"'big.csv' is 0\.0 MB, more than the upload limit"):
        decode_upload(data_url(b"x" * 200), "big.csv", 100)
    with pytest.raises(UploadError, match="not valid base64"):
        decode_upload("data:text/csv;base64,@@@@", "a.csv", 100)
    with pytest.raises(UploadError, match="not a base64 data URL"):
        decode_upload("hello,world", "a.csv", 100)
    with pytest.raises(UploadError, match="arrived empty"):
        decode_upload(None, "a.csv", 100)
    with pytest.raises(UploadError, match=r"is empty \(0 bytes\)"):
        decode_upload("data:text/csv;base64,", "a.csv", 100)


def test_limit_bytes_rejects_a_non_positive_limit() -> None:
    assert limit_bytes(1.5) == 1_500_000
    with pytest.raises(ConfigError, match="upload limit must be > 0 MB"):
        limit_bytes(0)


@given(st.text(max_size=80))
def test_safe_name_is_a_plain_non_empty_base_name(name: str) -> None:
    out = safe_name(name)
    assert out and len(out) <= 120
    assert "/" not in out and "\\" not in out
    assert not out.startswith(".")
    assert set(out) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def test_save_upload_stays_in_its_folder_and_replaces_the_slot(tmp_path: Path) -> None:
    first = save_upload(tmp_path, "cycler", "../../evil/../a.csv", b"one")
    assert first.path.parent == tmp_path / "cycler"
    assert first.path.read_bytes() == b"one" and first.size == 3
    second = save_upload(tmp_path, "cycler", "b.csv", b"two")
    assert sorted(p.name for p in (tmp_path / "cycler").iterdir()) == ["b.csv"]
    assert second.path.read_bytes() == b"two"


def test_clean_message_leaves_only_the_uploaded_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "session" / "uploads"
    text = f"File '{folder}/cycler/cell.csv' has no voltage column; pass column_map."
    assert clean_message(text, folder) == "File 'cell.csv' has no voltage column; pass column_map."
    assert clean_message(text, None) == text
    nested = f"No bundle at '{folder}/runs/cell-1C/cycler/cell.csv'; check the path."
    assert clean_message(nested, folder) == "No bundle at 'cell.csv'; check the path."


def test_naive_times_ask_for_a_time_zone_then_read(tmp_path: Path, data_dir: Path) -> None:
    upload = save_upload(tmp_path, "cycler", Path(MPT).name, (data_dir / MPT).read_bytes())
    outcome = read_cycler_file(upload)
    assert not outcome.ok and outcome.ask_timezone
    assert NAIVE_TIME_TEXT in outcome.message
    assert str(tmp_path) not in outcome.message
    assert "'220726cell4operandoxascontinuation_C06.mpt'" in outcome.message

    outcome = read_cycler_file(upload, "Europe/Paris")
    summary = outcome.summary
    assert summary is not None and not outcome.ask_timezone
    assert (summary.format, summary.rows, summary.timezone) == (
        "biologic-mpt",
        1402,
        "Europe/Paris",
    )
    # 13:31:45 local summer time in Paris is 11:31:45 UTC.
    assert summary.first is not None and summary.first.isoformat().startswith("2022-07-28T11:31:45")
    sources = {row["column"]: row["from"] for row in summary.columns}
    assert sources["voltage [V]"] == "Ewe/V"
    units = {row["column"]: row["unit in file"] for row in summary.columns}
    assert units["current [A]"] == "mA"
    facts = dict(summary.facts())
    assert facts["samples"] == "1,402" and facts["time zone"] == "Europe/Paris"


def test_pattern_log_in_an_archive_is_summarised(tmp_path: Path, data_dir: Path) -> None:
    upload = save_upload(tmp_path, "refinement", "session.zip", (data_dir / DATALAB).read_bytes())
    assert read_structure_file(upload).ask_timezone
    outcome = read_structure_file(upload, "Europe/London")
    assert outcome.summary is not None
    assert (outcome.summary.kind, outcome.summary.format) == ("structure", "pattern-log")
    assert outcome.summary.rows == 5
    assert outcome.summary.first < outcome.summary.last


def test_a_file_that_is_not_a_cycler_file_becomes_one_message(
    tmp_path: Path, data_dir: Path
) -> None:
    upload = save_upload(tmp_path, "cycler", "lattice.tsv", (data_dir / NOT_CYCLER).read_bytes())
    outcome = read_cycler_file(upload)
    assert not outcome.ok and not outcome.ask_timezone
    assert outcome.message.startswith("File 'lattice.tsv' has no recognisable time")
    garbage = save_upload(tmp_path, "cycler", "junk.mpr", bytes(range(256)) * 8)
    outcome = read_cycler_file(garbage)
    assert not outcome.ok
    assert "junk.mpr" in outcome.message and "Traceback" not in outcome.message
    assert str(tmp_path) not in outcome.message


def test_needs_timezone_only_for_the_readers_refusal_of_naive_times() -> None:
    assert needs_timezone(DataError(f"The times in 'Date' of x.csv {NAIVE_TIME_TEXT} (..)."))
    assert not needs_timezone(DataError("The file has NaN."))
    assert not needs_timezone(ValueError(NAIVE_TIME_TEXT))


# --- sessions -------------------------------------------------------------------------------------


def test_session_ids_are_checked_before_use(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "root")
    assert valid_session_id(new_session_id())
    for bad in (None, "", "../etc", "A" * 32, 42):
        with pytest.raises(ConfigError, match="reload the page"):
            store.get(bad)
    sid = new_session_id()
    assert store.get(sid) is store.get(sid)
    assert (tmp_path / "root" / sid).is_dir()


def test_store_drops_the_least_recently_used_idle_session(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, max_sessions=2)
    a, b = store.get(new_session_id()), store.get(new_session_id())
    release = threading.Event()
    a.job = Job(lambda p, c: release.wait(10)).start()  # a is busy: never dropped
    store.get(new_session_id())
    assert a.folder.is_dir() and not b.folder.exists()
    assert len(store) == 2
    release.set()
    wait_finished(a.job)


def test_store_close_cancels_jobs_and_removes_its_own_root() -> None:
    store = SessionStore()
    session = store.get(new_session_id())
    session.job = Job(lambda p, c: c.wait(10)).start()
    root = store.root
    store.close()
    wait_finished(session.job)
    assert session.job.snapshot().status == jobs.CANCELLED
    assert not root.exists()


# --- study configuration from the page's choices --------------------------------------------------


def demo_session(tmp_path: Path) -> Session:
    from ecpif.datasets import load_nca_demo

    session = Session(id=new_session_id(), folder=tmp_path)
    session.set_runs(load_nca_demo(), "demo", [])
    return session


def test_build_config_names_what_is_missing(tmp_path: Path) -> None:
    empty = Session(id=new_session_id(), folder=tmp_path)
    choice = dict(
        features=["voltage [V]"], targets=["c [Å]"], models=["ridge"], all_models=["ridge", "knn"],
        schemes=["shuffled"], final_scheme=None, ensemble="auto", confidence=0.9, policy="drop",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="No data loaded yet"):
        build_config(empty, **choice)
    session = demo_session(tmp_path)
    for key, match in (
        ("features", "No feature is ticked"),
        ("targets", "No target is ticked"),
        ("models", "No model is ticked"),
        ("schemes", "No validation scheme is ticked"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_config(session, **{**choice, key: []})


def test_build_config_for_the_demo(tmp_path: Path) -> None:
    session = demo_session(tmp_path)
    config = build_config(
        session, features=["voltage [V]", "charge [mA.h]"], targets=["c [Å]", "li_occupancy [-]"],
        models=["knn", "ridge"], all_models=["ridge", "knn"], schemes=["loro", "shuffled"],
        final_scheme=None, ensemble="voting", confidence=0.8, policy="clip",
    )  # fmt: skip
    assert config.runs == ()  # the pipeline loads the demo itself
    assert config.models == "all"  # every available model ticked
    assert config.schemes == ("shuffled", "loro") and config.final_scheme == "loro"
    assert (config.ensemble, config.confidence, config.policy) == ("voting", 0.8, "clip")
    assert config.target_columns == ("c [Å]", "li_occupancy [-]")
    assert honest_default(["shuffled", "grouped"]) == "grouped"
    assert honest_default([]) is None


# --- the app object -------------------------------------------------------------------------------


def test_app_serves_the_page_and_caps_request_size(tmp_path: Path) -> None:
    from ecpif.app import create_app

    handle = create_app(max_upload_mb=1, root=tmp_path)
    try:
        assert handle.server.config["MAX_CONTENT_LENGTH"] == 1_000_000 * 4 // 3 + 1_000_000
        client = handle.server.test_client()
        page = client.get("/")
        assert page.status_code == 200 and b"ecpif" in page.data
        layout = client.get("/_dash-layout").get_data(as_text=True)
        for control in ("load-demo", "run-study", "cancel-study", "download-predictions"):
            assert f'"{control}"' in layout
        too_big = client.post(
            "/_dash-update-component", data=b"x" * 2_400_000, content_type="application/json"
        )
        assert too_big.status_code == 413
    finally:
        handle.store.close()


def test_a_failing_callback_shows_one_sentence_at_the_top_of_the_page(tmp_path: Path) -> None:
    from ecpif.app import create_app

    handle = create_app(max_upload_mb=1, root=tmp_path)
    try:
        client = handle.server.test_client()
        request = {
            "output": "leaderboard-box.children",
            "outputs": {"id": "leaderboard-box", "property": "children"},
            "inputs": [
                {"id": "results-version", "property": "data", "value": 0},
                {"id": "lb-scheme", "property": "value", "value": None},
                {"id": "lb-target", "property": "value", "value": None},
            ],
            "changedPropIds": ["results-version.data"],
            "state": [{"id": "session", "property": "data", "value": "not-a-session-id"}],
        }
        response = client.post("/_dash-update-component", json=request)
        assert response.status_code == 200
        banner = response.get_json()["sideUpdate"]["page-error"]
        assert banner["hidden"] is False
        assert banner["children"].startswith("This page lost its session id; reload the page")
        assert "Traceback" not in response.get_data(as_text=True)
    finally:
        handle.store.close()


def test_cli_refuses_a_bad_port_before_starting() -> None:
    from typer.testing import CliRunner

    import ecpif.cli.webapp  # noqa: F401  # registers the command
    from ecpif.cli import app as cli

    result = CliRunner().invoke(cli, ["app", "--port", "70000"])
    assert isinstance(result.exception, ConfigError)
    assert "--port must be in 0-65535" in str(result.exception)
    result = CliRunner().invoke(cli, ["app", "--max-upload-mb", "0"])
    assert "--max-upload-mb must be > 0" in str(result.exception)
