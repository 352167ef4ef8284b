"""Trajectories for cycler-only runs, intervals, and the applicability-domain warning."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import ecpif
from ecpif import schema
from ecpif.align import align_runs
from ecpif.ensemble import fit_ensemble
from ecpif.errors import ConfigError, DataError, ModelError
from ecpif.predict import (
    IN_DOMAIN,
    ApplicabilityWarning,
    check_domain,
    lower_column,
    predict_frame,
    predict_run,
    upper_column,
)
from ecpif.validate import DEFAULT_FEATURES, evaluate_zoo

TARGETS = ["a", "li_occupancy"]


@pytest.fixture(scope="module")
def demo():
    runs = ecpif.datasets.load_nca_demo()
    train = align_runs(runs)
    res = evaluate_zoo(train, list(DEFAULT_FEATURES), TARGETS, models=["ols", "ridge", "knn"],
                       scheme="loro", n_jobs=1)  # fmt: skip
    return runs, train, fit_ensemble(train, res, kind="auto")


def test_predict_run_gives_a_trajectory_at_the_cycler_sampling(demo) -> None:
    runs, _, model = demo
    run_2c = runs[-1]
    assert not run_2c.has_patterns
    with pytest.warns(ApplicabilityWarning, match=r"'C-rate \[1/h\]' spans 0 to 2 .*rows"):
        traj = predict_run(model, run_2c)
    assert len(traj) == len(run_2c.echem)
    np.testing.assert_array_equal(traj[schema.TIME], run_2c.echem[schema.TIME])
    for t in ["a [Å]", "li_occupancy [-]"]:
        assert np.all(traj[lower_column(t)] < traj[t])
        assert np.all(traj[t] < traj[upper_column(t)])
    # The Li occupancy follows the charge passed: even simple linear models track the 2C truth
    # (which spans 0.53-0.98) to a few esd.
    truth = run_2c.truth["li_occupancy [-]"]
    err = traj["li_occupancy [-]"] - truth
    assert np.sqrt(np.mean(err**2)) < 0.05
    assert np.corrcoef(traj["li_occupancy [-]"], truth)[0, 1] > 0.99
    # Rows at 2C current are flagged as outside the domain; rest rows (C-rate 0) are not.
    rate = traj["C-rate [1/h]"].to_numpy()
    assert not traj[IN_DOMAIN][rate > 1.5].any()
    assert run_2c.echem is not traj  # input untouched
    assert list(run_2c.echem.columns) == list(runs[-1].echem.columns)


def test_predict_run_accepts_a_cycler_frame_and_uses_the_training_capacity(demo) -> None:
    runs, _, model = demo
    assert model.info["nominal_capacity_Ah"] == pytest.approx(runs[0].metadata.nominal_capacity_Ah)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApplicabilityWarning)
        from_frame = predict_run(model, runs[1].echem)
        from_run = predict_run(model, runs[1])
    pd.testing.assert_frame_equal(from_frame, from_run)


def test_domain_report_names_features_and_row_ranges(demo) -> None:
    _, train, model = demo
    frame = train[model.features].head(20).copy()
    frame.loc[5:9, "current [A]"] = 5.0
    frame.loc[15, "voltage [V]"] = 9.0
    report = check_domain(model, frame)
    assert not report.ok
    table = report.table.set_index("feature")
    assert table.loc["current [A]", "row ranges"] == "5-9"
    assert table.loc["voltage [V]", "row ranges"] == "15"
    assert report.inside.sum() == 14
    assert "6 of 20 rows lie outside the training domain" in report.message()
    assert check_domain(model, train[model.features]).ok


def test_predict_frame_without_intervals(demo) -> None:
    _, train, model = demo
    out = predict_frame(model, train[model.features].head(3), confidence=None)
    assert lower_column("a [Å]") not in out.columns
    assert out[IN_DOMAIN].all()


def test_predict_with_missing_features_is_one_sentence(demo) -> None:
    _, train, model = demo
    frame = train[model.features].drop(columns=["direction [-]", "C-rate [1/h]"])
    with pytest.raises(
        ModelError,
        match=r"lacks the feature column\(s\) \['direction \[-\]', 'C-rate \[1/h\]'\] that the "
        r"model was trained on\.",
    ):
        predict_frame(model, frame)


def test_predict_with_nan_feature(demo) -> None:
    _, train, model = demo
    frame = train[model.features].head(5).copy()
    frame.loc[2, "voltage [V]"] = np.nan
    with pytest.raises(
        DataError, match=r"'voltage \[V\]' has 1 missing \(NaN\) value\(s\) at row\(s\) 2"
    ):
        predict_frame(model, frame, warn=False)


def test_predict_run_rejects_other_inputs(demo) -> None:
    _, _, model = demo
    with pytest.raises(ConfigError, match="Expected an OperandoRun or a cycler DataFrame"):
        predict_run(model, [1, 2, 3])  # type: ignore[arg-type]
