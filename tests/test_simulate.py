"""The virtual operando experiment: electrochemistry, diffraction sampling, noise, seeds, errors."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest

from ecpif import schema
from ecpif.errors import ConfigError
from ecpif.simulate import simulate, write_experiment

RATES = (0.2, 0.5, 1.0, 2.0)


def by_rate(runs):
    return {r.metadata.c_rate: r for r in runs}


def test_one_run_per_rate_with_patterns_except_2c(simulated_runs):
    runs = by_rate(simulated_runs)
    assert sorted(runs) == list(RATES)
    assert [len(runs[r].patterns) > 0 for r in RATES] == [True, True, True, False]
    for run in simulated_runs:
        assert run.truth is not None and len(run.truth) == len(run.echem)


def test_voltage_limits_and_current_sign(simulated_runs):
    for run in simulated_runs:
        e = run.echem
        v, i, step = e[schema.VOLTAGE], e[schema.CURRENT], e[schema.STEP]
        assert v.max() <= 4.2 + 1e-6 and v.min() >= 2.7 - 1e-6
        # Charge ends at the upper cut-off, discharge at the lower one.
        assert v[step == 1].iloc[-1] == pytest.approx(4.2, abs=2e-3)
        assert v[step == 3].iloc[-1] == pytest.approx(2.7, abs=2e-3)
        expected = run.metadata.c_rate * run.metadata.nominal_capacity_Ah
        assert i[step == 1].median() == pytest.approx(expected, rel=1e-6)  # positive on charge
        assert i[step == 2].abs().max() < 1e-9
        assert i[step == 3].median() == pytest.approx(-expected, rel=1e-6)


def test_charge_passed_is_the_integral_of_current_and_falls_with_rate(simulated_runs):
    charged = {}
    for run in simulated_runs:
        e = run.echem
        t = e[schema.TIME].to_numpy()
        i_mA = e[schema.CURRENT].to_numpy() * 1000
        integral = (
            np.concatenate([[0], np.cumsum(0.5 * (i_mA[1:] + i_mA[:-1]) * np.diff(t))]) / 3600
        )
        # Samples are 10 s apart, with the step changes in between: trapezoid error stays small.
        assert np.max(np.abs(integral - e[schema.CHARGE].to_numpy())) < 2.5
        charged[run.metadata.c_rate] = e[schema.CHARGE][e[schema.STEP] == 1].iloc[-1]
    # 0.43 A.h nominal; slower charges reach the cut-off later and store more.
    assert 430 < charged[0.2] < 500
    assert charged[0.2] > charged[0.5] > charged[1.0] > charged[2.0] > 300


def test_bulk_lithium_range(simulated_runs):
    runs = by_rate(simulated_runs)
    for rate, run in runs.items():
        x = run.truth[schema.X_BULK]
        assert x.iloc[0] == pytest.approx(0.983, abs=0.002)
        assert 0.3 < x.min() < 0.6, rate
        np.testing.assert_allclose(run.truth["li_occupancy [-]"], x)
    assert runs[0.2].truth[schema.X_BULK].min() < runs[2.0].truth[schema.X_BULK].min() - 0.1


def test_pattern_windows_are_consecutive_exposures(simulated_runs):
    for run in simulated_runs:
        if not run.has_patterns:
            continue
        exposure = run.metadata.extra["exposure_s"]
        w = run.pattern_seconds()
        np.testing.assert_allclose(w["end [s]"] - w["start [s]"], exposure)
        np.testing.assert_allclose(w["start [s]"].iloc[1:].to_numpy(), w["end [s]"].iloc[:-1])
        duration = run.echem[schema.TIME].iloc[-1]
        assert len(w) == int(duration // exposure)


def _z_scores(run, column):
    """(refined - truth averaged over the window) / esd, truth averaged on a fine grid."""
    t = run.truth[schema.TIME].to_numpy()
    y = run.truth[column].to_numpy()
    w = run.pattern_seconds()
    means = []
    for start, end in zip(w["start [s]"], w["end [s]"], strict=True):
        grid = np.linspace(start, end, 2001)
        means.append(np.interp(grid, t, y).mean())
    esd = run.patterns[schema.esd_column(column)].to_numpy()
    return (run.patterns[column].to_numpy() - np.array(means)) / esd


@pytest.mark.parametrize("name", ["a", "c", "d", "li_occupancy"])
def test_measured_noise_matches_configured_esd(simulated_runs, name):
    column = schema.PARAMETERS[name].column
    z = np.concatenate([_z_scores(r, column) for r in simulated_runs if r.has_patterns])
    n = len(z)
    assert n > 150
    # Standard error of a sample std is ~ 1/sqrt(2n); allow 4 of them.
    assert abs(z.std(ddof=1) - 1) < 4 / np.sqrt(2 * n)
    assert abs(z.mean()) < 4 / np.sqrt(n)


def test_esd_scales_with_inverse_sqrt_exposure(simulated_runs):
    runs = by_rate(simulated_runs)
    esd_c = {r: runs[r].patterns["esd c [Å]"].iloc[0] for r in (0.2, 0.5, 1.0)}
    assert esd_c[0.5] == pytest.approx(2e-3)  # 5-minute reference
    assert esd_c[0.2] == pytest.approx(2e-3 * np.sqrt(300 / 600))
    assert esd_c[1.0] == pytest.approx(2e-3 * np.sqrt(300 / 180))


def test_2c_structure_lags_the_charge(simulated_runs):
    """Kinetic hysteresis emerges from the radial Li profile, not from a rule.

    At 2C the particle's outer shells run ahead of its core, so when the current stops the lattice
    keeps moving while no charge passes, and charge and discharge branches separate.
    """
    runs = by_rate(simulated_runs)

    def rest_relaxation(run, col):
        y = run.truth[col]
        step = run.echem[schema.STEP]
        return abs(y[step == 2].iloc[-1] - y[step == 1].iloc[-1])

    def hysteresis(run, col):
        q = run.echem[schema.CHARGE].to_numpy()
        y = run.truth[col].to_numpy()
        step = run.echem[schema.STEP].to_numpy()
        qc, yc = q[step == 1], y[step == 1]
        qd, yd = q[step == 3][::-1], y[step == 3][::-1]
        grid = np.linspace(max(qc.min(), qd.min()), min(qc.max(), qd.max()), 300)
        return np.mean(np.abs(np.interp(grid, qc, yc) - np.interp(grid, qd, yd)))

    for col in ("c [Å]", "d [Å]"):
        assert rest_relaxation(runs[2.0], col) > 5 * rest_relaxation(runs[0.2], col)
        assert hysteresis(runs[2.0], col) > 10 * hysteresis(runs[0.2], col)
    # The bulk Li content itself is set by charge conservation and shows no lag at all.
    assert rest_relaxation(runs[2.0], schema.X_BULK) < 1e-6
    # The lag is visible above the measurement noise of a 5-minute pattern for c.
    assert rest_relaxation(runs[2.0], "c [Å]") > 2e-3


def test_same_seed_identical_files_different_seed_different_noise_only(tmp_path):
    cfg = dict(rates=(1.0, 2.0), exposures={1.0: 180.0, 2.0: 120.0})
    a = write_experiment(simulate(seed=11, **cfg), tmp_path / "a")
    b = write_experiment(simulate(seed=11, **cfg), tmp_path / "b")
    c = write_experiment(simulate(seed=12, **cfg), tmp_path / "c")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert len(names) == 7  # 2 x (cycler, refinement, truth) + manifest
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in names:
        same = filecmp.cmp(a / name, c / name, shallow=False)
        assert same == ("refinement" not in name and name != "manifest.json"), name
    ra = pd.read_csv(a / "nca-1C_refinement.csv")
    rc = pd.read_csv(c / "nca-1C_refinement.csv")
    pd.testing.assert_frame_equal(
        ra[["pattern", "start_time", "end_time", "esd_c"]],
        rc[["pattern", "start_time", "end_time", "esd_c"]],
    )
    assert not np.allclose(ra["c"], rc["c"])
    assert np.abs(ra["c"] - rc["c"]).max() < 8 * ra["esd_c"].iloc[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"parameter_set": "NCA_Kim201"},
            r"Unknown PyBaMM parameter set 'NCA_Kim201'\. Did you mean 'NCA_Kim2011'",
        ),
        ({"exposures": {0.2: -60.0}}, r"exposure time at 0.2C must be a positive number"),
        ({"rates": (0.0, 1.0)}, r"C-rates must be positive numbers"),
        ({"rates": (-1.0,)}, r"C-rates must be positive numbers"),
        ({"rates": (2.0,), "exposures": {2.0: 36000.0}}, r"longer than the run itself"),
        ({"model": "SPMX"}, r"Unknown PyBaMM model 'SPMX'\. Did you mean"),
        ({"period_s": 0}, r"sampling period must be > 0 s"),
        ({"n_cycles": 0}, r"number of cycles must be an integer >= 1"),
        ({"start": "2026-01-01 09:00"}, r"has no time zone"),
        ({"ratez": (1.0,)}, r"Unknown setting 'ratez'.*Did you mean 'rates'"),
    ],
)
def test_bad_configuration_gets_one_clear_sentence(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        simulate(**overrides)
    text = str(info.value)
    assert ("\n" not in text and text.endswith((".", "?"))) or "Available:" in text


def test_other_parameter_set_particle_size_and_cycles():
    runs = simulate(
        rates=(1.0,),
        exposures={1.0: 240.0},
        parameter_set="Chen2020",
        particle_radius_m=8e-6,
        n_cycles=2,
        period_s=20.0,
    )
    run = runs[0]
    assert run.metadata.nominal_capacity_Ah == pytest.approx(5.0)
    assert sorted(run.echem[schema.CYCLE].unique()) == [1, 2]
    assert np.median(np.diff(run.echem[schema.TIME])) == pytest.approx(20.0)
    assert run.metadata.extra["parameter_set"] == "Chen2020"


@pytest.mark.slow
def test_dfn_option_runs_and_agrees_with_spme_on_bulk_lithium():
    dfn = simulate(rates=(1.0,), exposures={1.0: 180.0}, model="DFN")[0]
    spme = simulate(rates=(1.0,), exposures={1.0: 180.0}, model="SPMe")[0]
    assert dfn.metadata.extra["model"] == "DFN"
    q_dfn = dfn.echem[schema.CHARGE][dfn.echem[schema.STEP] == 1].iloc[-1]
    q_spme = spme.echem[schema.CHARGE][spme.echem[schema.STEP] == 1].iloc[-1]
    assert q_dfn == pytest.approx(q_spme, rel=0.1)
    assert 0.3 < dfn.truth[schema.X_BULK].min() < 0.7
