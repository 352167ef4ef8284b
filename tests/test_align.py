"""Alignment of pattern windows with cycler data: exactness, invariants, policies, real data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ecpif import align, io, schema
from ecpif import features as feat
from ecpif.errors import AlignmentError, ConfigError, DataError
from ecpif.run import OperandoRun, RunMetadata

DATA = Path(__file__).parent / "data"
DATALAB = DATA / "datalab-operando" / "coincell8_LDE2_reduced.zip"
T0 = pd.Timestamp("2024-01-01 08:00", tz="UTC")


def make_run(
    t: np.ndarray,
    voltage: np.ndarray,
    current: np.ndarray,
    windows: list[tuple[float, float]],
    *,
    params: np.ndarray | None = None,
    allow_partial: bool = True,
    run_id: str = "r1",
    nominal: float | None = 1.0,
) -> OperandoRun:
    dt = np.diff(t, prepend=t[0])
    charge = np.cumsum(current * dt) / 3.6
    echem = pd.DataFrame(
        {
            schema.TIMESTAMP: T0 + pd.to_timedelta(t, unit="s"),
            schema.TIME: t - t[0],
            schema.VOLTAGE: voltage,
            schema.CURRENT: current,
            schema.CHARGE: charge - charge[0],
        }
    )
    starts = np.array([w[0] for w in windows])
    ends = np.array([w[1] for w in windows])
    patterns = pd.DataFrame(
        {
            schema.PATTERN_ID: [f"p{i:03d}" for i in range(len(windows))],
            schema.START: T0 + pd.to_timedelta(starts, unit="s"),
            schema.END: T0 + pd.to_timedelta(ends, unit="s"),
        }
    )
    if params is not None:
        patterns["c [Å]"] = params
        patterns["esd c [Å]"] = 0.001
    return OperandoRun(
        echem=echem,
        patterns=patterns,
        metadata=RunMetadata(run_id, nominal_capacity_Ah=nominal, c_rate=0.5),
        allow_partial_windows=allow_partial,
    )


def brute_force_mean(t: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    """Time-weighted mean of the linear interpolant, by dense numerical integration."""
    grid = np.linspace(a, b, 200_001)
    return float(np.trapezoid(np.interp(grid, t, y), grid) / (b - a))


# --- exactness ---------------------------------------------------------------------------------


def test_window_means_match_dense_integration() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.5, 20.0, 400))  # irregular sampling
    v = 3.5 + 0.1 * np.sin(t / 300.0) + rng.normal(0, 0.002, t.size)
    i = np.where(t < t[200], 0.5, -0.25)
    windows = [(t[10] + 3.3, t[60] - 1.1), (t[150] + 0.2, t[151] - 0.1), (t[190], t[260])]
    run = make_run(t, v, i, windows)
    out = align.align_run(run, features=False).frame
    for k, (a, b) in enumerate(windows):
        a0, b0 = a - t[0], b - t[0]
        ts = t - t[0]
        assert out[schema.VOLTAGE].iloc[k] == pytest.approx(
            brute_force_mean(ts, v, a0, b0), abs=1e-9
        )
        assert out[schema.CURRENT].iloc[k] == pytest.approx(
            brute_force_mean(ts, i, a0, b0), abs=1e-9
        )
        q = run.echem[schema.CHARGE].to_numpy()
        assert out[align.CHARGE_AT_START].iloc[k] == pytest.approx(np.interp(a0, ts, q))
        assert out[align.CHARGE_AT_END].iloc[k] == pytest.approx(np.interp(b0, ts, q))
        assert out[align.WINDOW_CHARGE].iloc[k] == pytest.approx(
            np.interp(b0, ts, q) - np.interp(a0, ts, q)
        )
        inside = int(((ts >= a0) & (ts <= b0)).sum())
        assert out[align.N_SAMPLES].iloc[k] == inside
    assert out[align.DURATION].tolist() == pytest.approx([b - a for a, b in windows])


def test_linear_signal_mean_is_the_midpoint() -> None:
    t = np.arange(0.0, 1000.0, 7.0)
    run = make_run(t, 3.0 + t / 1000.0, np.ones_like(t), [(100.5, 333.3)])
    out = align.align_run(run, features=False).frame
    assert out[schema.VOLTAGE].iloc[0] == pytest.approx(3.0 + 0.5 * (100.5 + 333.3) / 1000.0)
    assert out[schema.TIME].iloc[0] == pytest.approx(0.5 * (100.5 + 333.3))


# --- invariants (hypothesis) -------------------------------------------------------------------


@st.composite
def runs_and_windows(draw: st.DrawFn) -> tuple[OperandoRun, np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=3, max_value=60))
    gaps = draw(st.lists(st.floats(0.1, 50.0), min_size=n - 1, max_size=n - 1))
    t = np.concatenate([[0.0], np.cumsum(gaps)])
    v = np.array(draw(st.lists(st.floats(2.5, 4.5), min_size=n, max_size=n)))
    i = np.array(draw(st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n)))
    m = draw(st.integers(min_value=1, max_value=12))
    span = t[-1]
    # Window edges on a millisecond grid, so distinct starts stay distinct as timestamps.
    lo, hi = int(-200 * span), int(1100 * span)
    starts = np.sort(draw(st.lists(st.integers(lo, hi), min_size=m, max_size=m, unique=True)))
    starts = starts / 1000.0
    lengths = draw(st.lists(st.floats(0.01, 0.5 * span + 0.02), min_size=m, max_size=m))
    windows = [(float(s), float(s + d)) for s, d in zip(starts, lengths, strict=True)]
    return make_run(t, v, i, windows), t, v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=runs_and_windows(), policy=st.sampled_from(["drop", "clip", "keep"]))
def test_alignment_keeps_order_count_and_bounds(
    data: tuple[OperandoRun, np.ndarray, np.ndarray], policy: str
) -> None:
    run, t, v = data
    result = align.align_run(run, policy=policy, max_gap_s=1e9)  # type: ignore[arg-type]
    frame, report = result.frame, result.report
    ids = run.patterns[schema.PATTERN_ID].tolist()
    assert report[schema.PATTERN_ID].tolist() == ids  # every pattern is reported, in order
    kept = report.loc[report[align.STATUS] != "dropped", schema.PATTERN_ID].tolist()
    assert frame[schema.PATTERN_ID].tolist() == kept  # kept rows keep pattern order
    if policy == "keep":
        assert len(frame) == len(ids)
    a = (run.patterns[schema.START] - T0).dt.total_seconds().to_numpy()
    b = (run.patterns[schema.END] - T0).dt.total_seconds().to_numpy()
    rows = {pid: k for k, pid in enumerate(ids)}
    status = report.set_index(schema.PATTERN_ID)[align.STATUS]
    for _, row in frame.iterrows():
        if status[row[schema.PATTERN_ID]] == "kept-nan":
            assert np.isnan(row[schema.VOLTAGE])
            continue
        k = rows[row[schema.PATTERN_ID]]
        lo = np.searchsorted(t, max(a[k], t[0]), side="right") - 1
        hi = np.searchsorted(t, min(b[k], t[-1]), side="left")
        bracket = v[max(lo, 0) : min(hi, len(t) - 1) + 1]
        assert bracket.min() - 1e-9 <= row[schema.VOLTAGE] <= bracket.max() + 1e-9
        assert 0.0 <= row[align.COVERAGE] <= 1.0
    statuses = set(report[align.STATUS])
    allowed = {
        "drop": {"kept", "dropped"},
        "clip": {"kept", "clipped", "dropped"},
        "keep": {"kept", "kept-nan"},
    }[policy]
    assert statuses <= allowed


# --- coverage, gaps and policies ---------------------------------------------------------------


def _gappy_run() -> OperandoRun:
    t = np.concatenate([np.arange(0.0, 1000.0, 10.0), np.arange(2000.0, 3000.0, 10.0)])
    windows = [
        (-100.0, 100.0),
        (200.0, 400.0),
        (900.0, 1100.0),
        (2500.0, 2600.0),
        (2950.0, 3200.0),
        (3300.0, 3400.0),
    ]
    return make_run(t, 3.0 + t / 1e4, np.full(t.size, 0.1), windows)


def test_report_says_which_and_why() -> None:
    result = align.align_run(_gappy_run(), policy="drop")
    report = result.report.set_index(schema.PATTERN_ID)
    assert report[align.STATUS].tolist() == [
        "dropped",
        "kept",
        "dropped",
        "kept",
        "dropped",
        "dropped",
    ]
    assert report.loc["p000", align.COVERAGE] == pytest.approx(0.5)
    assert (
        "starts 100.0 s before the first cycler sample (coverage 50%)"
        in report.loc["p000", align.REASON]
    )
    assert "a gap of more than 100 s" in report.loc["p002", align.REASON]
    assert report.loc["p002", align.COVERAGE] == pytest.approx(90 / 200)
    assert (
        "ends 210.0 s after the last cycler sample (coverage 16%)"
        in report.loc["p004", align.REASON]
    )
    assert (
        "starts 310.0 s after the last cycler sample (coverage 0%)"
        in report.loc["p005", align.REASON]
    )
    assert result.frame[schema.PATTERN_ID].tolist() == ["p001", "p003"]


def test_clip_uses_the_covered_part() -> None:
    result = align.align_run(_gappy_run(), policy="clip")
    frame = result.frame.set_index(schema.PATTERN_ID)
    assert list(frame.index) == ["p000", "p001", "p002", "p003", "p004"]
    assert frame.loc["p000", align.WINDOW_START] == 0.0
    # Mean over [0, 100] of 3 + t/1e4: the covered half only.
    assert frame.loc["p000", schema.VOLTAGE] == pytest.approx(3.0 + 50.0 / 1e4)
    # The gap (990 -> 2000 s) contributes nothing: covered parts are [900, 990].
    assert frame.loc["p002", schema.VOLTAGE] == pytest.approx(3.0 + 945.0 / 1e4)
    assert result.report.set_index(schema.PATTERN_ID).loc["p005", align.STATUS] == "dropped"


def test_keep_policy_gives_nan_rows() -> None:
    result = align.align_run(_gappy_run(), policy="keep")
    frame = result.frame.set_index(schema.PATTERN_ID)
    assert len(frame) == 6
    assert np.isnan(frame.loc["p005", schema.VOLTAGE])
    assert np.isnan(frame.loc["p000", align.CHARGE_AT_START])
    assert frame.loc["p001", schema.VOLTAGE] == pytest.approx(3.0 + 300.0 / 1e4)


def test_error_policy_names_the_pattern() -> None:
    with pytest.raises(AlignmentError, match=r"Pattern 'p000' of run 'r1' .*starts 100.0 s before"):
        align.align_run(_gappy_run(), policy="error")


def test_bad_settings() -> None:
    run = _gappy_run()
    with pytest.raises(ConfigError, match=r"'policy' parameter of align_run must be one of"):
        align.align_run(run, policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"min_coverage must be in \(0, 1\]; got 0"):
        align.align_run(run, min_coverage=0)
    with pytest.raises(ConfigError, match=r"max_gap_s must be > 0 seconds"):
        align.align_run(run, max_gap_s=-1.0)


def test_strict_run_rejects_windows_outside_cycler_range() -> None:
    t = np.arange(0.0, 100.0, 1.0)
    with pytest.raises(DataError, match=r"outside the cycler data.*clock offset"):
        make_run(t, np.full(t.size, 3.0), np.zeros(t.size), [(-5.0, 10.0)], allow_partial=False)


def test_clock_offset_moves_windows_onto_the_cycler_clock() -> None:
    t = np.arange(0.0, 3600.0, 5.0)
    v = 3.0 + np.sin(t / 500.0)
    base = make_run(t, v, np.ones(t.size), [(100.0, 400.0), (500.0, 800.0)])
    shifted = make_run(t, v, np.ones(t.size), [(40.0, 340.0), (440.0, 740.0)])
    a = align.align_run(base).frame
    b = align.align_run(shifted, clock_offset_s=60.0).frame
    cols = [schema.VOLTAGE, align.CHARGE_AT_MID, feat.DQDV, align.N_SAMPLES]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_window_frame_carries_labels_features_and_parameters() -> None:
    t = np.arange(0.0, 7200.0, 10.0)
    current = np.where(t < 3600.0, 1.0, -1.0)
    run = make_run(
        t,
        3.0 + np.abs(t - 3600) / 1e4,
        current,
        [(100.0, 700.0), (4000.0, 4600.0)],
        params=np.array([14.2, 14.3]),
    )
    result = align.align_run(run)
    f = result.frame
    assert f[schema.RUN_ID].tolist() == ["r1", "r1"]
    assert f[feat.DIRECTION].tolist() == [1, -1]
    assert f[schema.C_RATE_LABEL].tolist() == [0.5, 0.5]
    assert f["c [Å]"].tolist() == [14.2, 14.3]
    assert f["esd c [Å]"].tolist() == [0.001, 0.001]
    assert f[feat.C_RATE].tolist() == pytest.approx([1.0, 1.0])
    assert result.parameter_columns == ("c [Å]",)
    assert set(feat.FEATURE_COLUMNS) <= set(result.feature_columns)


# --- real data: the datalab session ------------------------------------------------------------


@pytest.fixture(scope="module")
def datalab_run() -> OperandoRun:
    return io.read_run(
        DATALAB,
        DATALAB,
        metadata=RunMetadata("coincell8_LDE2", nominal_capacity_Ah=0.0015),
        timezone="Europe/London",
        allow_partial_windows=True,
    )


def test_datalab_strict_run_refuses_the_early_window() -> None:
    with pytest.raises(DataError, match=r"Pattern 1355639 \(row 0\).*outside the cycler data"):
        io.read_run(DATALAB, DATALAB, metadata=RunMetadata("cc8"), timezone="Europe/London")


def test_datalab_windows_pair_with_the_neware_data(datalab_run: OperandoRun) -> None:
    result = align.align_run(datalab_run, policy="drop")
    report = result.report
    assert report[schema.PATTERN_ID].tolist() == [1355639, 1355647, 1355655, 1355663, 1355671]
    first = report.iloc[0]
    assert first[align.STATUS] == "dropped"
    assert first[align.COVERAGE] == 0.0
    # The first scan ends at 19:06:56.167 local, the cycler starts at 19:08:11.
    assert first[align.REASON] == (
        "window ends 74.8 s before the first cycler sample (coverage 0%)"
    )
    assert report[align.STATUS].tolist()[1:] == ["kept"] * 4
    f = result.frame
    assert f[schema.PATTERN_ID].tolist() == [1355647, 1355655, 1355663, 1355671]
    assert f[align.N_SAMPLES].tolist() == [5, 6, 5, 6]  # 10 s sampling, ~56 s scans
    # Three scans fall in the initial 30 min rest (3.098 V), the last in the CC charge.
    assert f[schema.VOLTAGE].iloc[0] == pytest.approx(3.0978, abs=2e-4)
    assert f[feat.DIRECTION].tolist() == [0, 0, 0, 1]
    assert f[schema.CURRENT].iloc[-1] == pytest.approx(0.3059e-3, rel=1e-3)
    assert f[align.WINDOW_CHARGE].iloc[-1] == pytest.approx(0.3059 * 56.343 / 3600, rel=1e-2)
    keep = align.align_run(datalab_run, policy="keep").frame
    assert len(keep) == 5 and np.isnan(keep[schema.VOLTAGE].iloc[0])
    with pytest.raises(AlignmentError, match=r"Pattern 1355639 .*74.8 s before the first"):
        align.align_run(datalab_run, policy="error")


# --- round trips -----------------------------------------------------------------------------


def _demo_like_files(run: OperandoRun, folder: Path) -> tuple[Path, Path]:
    """Write a run in the demo layout (BioLogic-like cycler CSV + refinement CSV)."""
    e, p = run.echem, run.patterns

    def iso(ts: pd.Series) -> pd.Series:
        return ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"

    cycler = folder / f"{run.run_id}_cycler.csv"
    pd.DataFrame(
        {
            "Date Time": iso(e[schema.TIMESTAMP]),
            "time/s": e[schema.TIME],
            "Ewe/V": e[schema.VOLTAGE],
            "I/mA": e[schema.CURRENT] * 1000.0,
            "(Q-Qo)/mA.h": e[schema.CHARGE],
        }
    ).to_csv(cycler, index=False, float_format="%.17g")
    refinement = folder / f"{run.run_id}_refinement.csv"
    pd.DataFrame(
        {
            "pattern": p[schema.PATTERN_ID],
            "start_time": iso(p[schema.START]),
            "end_time": iso(p[schema.END]),
            "c": p["c [Å]"],
            "esd_c": p["esd c [Å]"],
        }
    ).to_csv(refinement, index=False, float_format="%.17g")
    return cycler, refinement


def test_round_trip_in_memory_run_through_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    t = np.arange(0.0, 7200.0, 10.0)
    current = np.where(t < 4000.0, 0.5, -0.5)
    v = 3.4 + 0.2 * np.tanh((t - 2000.0) / 1500.0) + rng.normal(0, 1e-3, t.size)
    windows = [(s, s + 300.0) for s in np.arange(0.0, 6900.0, 300.0)]
    run = make_run(
        t, v, current, windows, params=rng.normal(14.2, 0.01, len(windows)), allow_partial=False
    )
    cycler, refinement = _demo_like_files(run, tmp_path)
    back = io.read_run(cycler, refinement, metadata=run.metadata)
    expected = align.align_run(run).frame
    got = align.align_run(back).frame
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def test_round_trip_with_the_simulator(tmp_path: Path, simulated_runs: list[OperandoRun]) -> None:
    from ecpif.datasets import load_experiment
    from ecpif.simulate import write_experiment

    folder = write_experiment(simulated_runs, tmp_path / "sim")
    back = load_experiment(folder)
    expected = align.align_runs(simulated_runs)
    got = align.align_runs(back)
    assert got[schema.RUN_ID].value_counts().to_dict() == {
        r.run_id: len(r.patterns) for r in simulated_runs if r.has_patterns
    }
    # The files round values (1 ms, 1 µV, 10 nA): compare to that precision; derivatives
    # amplify the rounding, so they get a looser (still tight) tolerance.
    slopes = [feat.DQDV, feat.DVDT]
    pd.testing.assert_frame_equal(
        got.drop(columns=slopes),
        expected.drop(columns=slopes),
        check_exact=False,
        rtol=1e-4,
        atol=1e-4,
    )
    pd.testing.assert_frame_equal(
        got[slopes], expected[slopes], check_exact=False, rtol=1e-2, atol=0.5
    )


# --- several runs, writing, CLI --------------------------------------------------------------


def test_align_runs_stacks_runs_and_takes_per_run_offsets() -> None:
    t = np.arange(0.0, 3600.0, 10.0)
    r1 = make_run(t, 3.0 + t / 1e4, np.ones(t.size), [(100.0, 200.0)], run_id="a")
    r2 = make_run(t, 3.0 + t / 1e4, np.ones(t.size), [(100.0, 200.0), (300.0, 400.0)], run_id="b")
    table = align.align_runs([r1, r2], clock_offset_s={"b": 50.0})
    assert table[schema.RUN_ID].tolist() == ["a", "b", "b"]
    assert table[schema.VOLTAGE].tolist() == pytest.approx([3.015, 3.02, 3.04])


def test_write_aligned_csv_and_parquet(tmp_path: Path, datalab_run: OperandoRun) -> None:
    frame = align.align_run(datalab_run).frame
    paths = align.write_aligned(frame, tmp_path / "out" / "aligned.csv")
    assert [p.name for p in paths] == ["aligned.csv", "aligned.parquet"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "aligned.csv",
        "aligned.parquet",
    ]  # no temporary files left behind
    parquet = pd.read_parquet(paths[1])
    pd.testing.assert_frame_equal(parquet, frame, check_dtype=False)
    csv = pd.read_csv(paths[0])
    assert pd.to_datetime(csv[schema.START], utc=True).tolist() == frame[schema.START].tolist()
    assert csv[schema.VOLTAGE].to_numpy() == pytest.approx(frame[schema.VOLTAGE].to_numpy())
    with pytest.raises(ConfigError, match=r"formats must be a non-empty subset"):
        align.write_aligned(frame, tmp_path / "x", formats=["xlsx"])


def test_cli_align_writes_the_dataset(tmp_path: Path) -> None:
    import ecpif.cli.align  # noqa: F401  (registers the command)
    from ecpif.cli import app

    out = tmp_path / "cc8"
    result = CliRunner().invoke(
        app,
        [
            "align",
            str(DATALAB),
            str(DATALAB),
            "--timezone",
            "Europe/London",
            "--out",
            str(out),
            "--run-id",
            "cc8",
            "--nominal-capacity",
            "0.0015",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "74.8 s before the first cycler sample" in " ".join(result.output.split())
    frame = pd.read_parquet(tmp_path / "cc8.parquet")
    assert frame[schema.PATTERN_ID].tolist() == [1355647, 1355655, 1355663, 1355671]
    report = pd.read_csv(tmp_path / "cc8_report.csv")
    assert report[align.STATUS].tolist() == ["dropped", "kept", "kept", "kept", "kept"]
    assert len(pd.read_csv(tmp_path / "cc8.csv")) == 4


def test_cli_error_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ecpif.cli.align  # noqa: F401
    from ecpif.cli import main

    monkeypatch.setattr(
        sys, "argv", ["ecpif", "align", str(DATALAB), str(DATALAB), "--out", str(tmp_path / "x")]
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "carry no time zone" in " ".join(capsys.readouterr().err.split())


# --- clock offset estimation -------------------------------------------------------------------


def test_estimate_clock_offset_recovers_a_known_shift() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 4 * 3600.0, 10.0)
    # Charge 1.5 h, rest 30 min, discharge 1.5 h, rest: the reversal makes the offset visible.
    current = np.select([t < 5400, t < 7200, t < 12600], [1.0, 0.0, -1.0], 0.0)
    q = np.cumsum(current * 10.0) / 3.6
    c_true = 14.2 + 0.3 * (q / q.max()) ** 2
    true_offset = 240.0
    starts = np.arange(600.0, 13800.0, 300.0)
    ends = starts + 280.0
    c_obs = np.array(
        [np.interp(0.5 * (s + e), t, c_true) for s, e in zip(starts, ends, strict=True)]
    ) + rng.normal(0.0, 0.002, starts.size)
    recorded = [(s - true_offset, e - true_offset) for s, e in zip(starts, ends, strict=True)]
    run = make_run(t, 3.5 + q / 1e4, current, recorded, params=c_obs)
    est = align.estimate_clock_offset(run, "c", offsets=np.arange(-600.0, 601.0, 10.0))
    assert abs(est.offset_s - true_offset) < max(3 * est.uncertainty_s, 15.0)
    assert 0 < est.uncertainty_s < 60.0
    assert est.n_patterns > 30
    assert est.score.argmin() == np.abs(est.grid_s - est.offset_s).argmin()
    with pytest.raises(ConfigError, match=r"no refined parameter 'a'"):
        align.estimate_clock_offset(run, "a")
    with pytest.raises(ConfigError, match=r"at least 3 evenly spaced"):
        align.estimate_clock_offset(run, "c", offsets=[0.0, 10.0])
    with pytest.raises(AlignmentError, match=r"Only \d+ pattern\(s\).*narrow the offsets"):
        align.estimate_clock_offset(run, "c", offsets=np.arange(-20000.0, 20001.0, 1000.0))
