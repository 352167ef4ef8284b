"""The whole chain as one call, on the bundled demo with a few fast models."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from ecpif import schema
from ecpif.errors import ConfigError
from ecpif.pipeline import Cancelled, RunSpec, StudyConfig, run, write_results

FAST = ("ridge", "knn", "extra_trees")


@pytest.fixture(scope="module")
def results():
    steps = []
    res = run(
        StudyConfig(models=FAST, schemes=("shuffled", "loro"), explore=True, n_jobs=1),
        progress=lambda step, fraction: steps.append((step, fraction)),
    )
    res.steps = steps  # type: ignore[attr-defined]
    return res


def test_progress_is_reported_in_order(results):
    fractions = [f for _, f in results.steps]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any("leave" in s or "loro" in s for s, _ in results.steps)


def test_every_scheme_is_evaluated_and_recorded(results):
    assert set(results.leaderboard["scheme"]) == {"shuffled", "loro"}
    for scheme in ("shuffled", "loro"):
        part = results.leaderboard[results.leaderboard["scheme"] == scheme]
        assert set(FAST) <= set(part["model"])
    assert results.model.scheme == "loro"


def test_trajectories_for_every_run_with_intervals_and_truth_scores(results):
    assert set(results.predictions) == {"nca-0.2C", "nca-0.5C", "nca-1C", "nca-2C"}
    traj = results.predictions["nca-2C"]
    assert len(traj) == 415
    for target in results.model.targets:
        assert (traj[f"lower {target}"] <= traj[target]).all()
        assert (traj[target] <= traj[f"upper {target}"]).all()
    scores = results.truth_scores
    assert set(scores["regime"]) == {"interpolation (trained rate)", "extrapolation (no patterns)"}
    assert scores["esd 5 min"].tolist()[:4] == pytest.approx([3e-4, 2e-3, 2e-3, 0.01], rel=1e-6)
    # Even fast models track the truth at the trained rates to within ~2 esd.
    interp = scores[scores["regime"].str.startswith("interp")]
    assert (interp["RMSE/esd"] < 2.5).all()


def test_rabs_compares_all_rates(results):
    rates = set(results.rabs[schema.C_RATE_LABEL])
    assert rates == {0.2, 0.5, 1.0, 2.0}
    assert results.rabs_truth is not None
    charge = results.rabs_truth[results.rabs_truth["segment"] == "charge"]
    per_h = charge.set_index(schema.C_RATE_LABEL)["Rabs a [Å/h]"]
    # Faster charge -> faster change per hour (truth).
    assert per_h[2.0] > per_h[1.0] > per_h[0.5] > per_h[0.2]


def test_exploration_results(results):
    ex = results.exploration
    assert ex["pearson"].shape[0] == ex["pearson"].shape[1]
    assert not ex["mutual_information"].empty


def test_write_results_is_atomic(results, tmp_path):
    out = tmp_path / "out"
    write_results(results, out, report=False)
    names = {p.name for p in out.iterdir()}
    assert {
        "leaderboard.csv",
        "predictions.csv",
        "model.skops",
        "config.toml",
        "provenance.json",
        "aligned.parquet",
    } <= names
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # A real failure half-way: a column pyarrow cannot write makes the parquet step raise.
    broken = results.aligned.copy()
    broken["bad [-]"] = [object()] * len(broken)
    original = results.aligned
    results.aligned = broken
    try:
        with pytest.raises(Exception):  # noqa: B017 - any writer error will do
            write_results(results, out, report=False)
    finally:
        results.aligned = original
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind
    table = pd.read_csv(out / "predictions.csv")
    assert set(table["run id"]) == set(results.predictions)


def test_config_round_trips_through_toml(tmp_path):
    cfg = StudyConfig(
        models=("ridge", "knn"),
        schemes=("grouped", "loro"),
        seed=3,
        runs=(RunSpec("r1", "cyc.csv", "ref.csv", c_rate=1.0),),
    )
    path = tmp_path / "study.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    back = StudyConfig.from_toml(path)
    assert back.models == ("ridge", "knn") and back.seed == 3
    assert back.runs[0].cycler == str(tmp_path / "cyc.csv")
    assert StudyConfig.from_toml(path, seed=9).seed == 9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"schemes": ("shuffle",)},
            r"Unknown validation scheme 'shuffle'\. Did you mean 'shuffled'",
        ),
        ({"schemes": ("shuffled",), "final_scheme": "loro"}, r"final scheme 'loro' must be one of"),
        ({"confidence": 1.5}, r"confidence must lie in \(0, 1\)"),
        ({"runs": (RunSpec("a", "x"), RunSpec("a", "y"))}, r"Run ids must be unique"),
    ],
)
def test_bad_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig(**kwargs)


def test_bad_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('modles = ["ridge"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Unknown setting 'modles' in .*Did you mean 'models'"):
        StudyConfig.from_toml(path)
    path.write_text("models = [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        StudyConfig.from_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        StudyConfig.from_toml(tmp_path / "nope.toml")


def test_unknown_feature_names_the_available_ones():
    with pytest.raises(
        ConfigError, match=r"Unknown feature 'voltage \[mV\]'.*Did you mean 'voltage \[V\]'"
    ):
        run(
            StudyConfig(
                models=("ridge",),
                schemes=("shuffled",),
                final_scheme="shuffled",
                features=("voltage [mV]",),
                explore=False,
            )
        )


def test_cancel_stops_before_the_next_step():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="cancelled"):
        run(StudyConfig(models=("ridge",)), cancel=cancel)


def test_same_seed_same_leaderboard(results):
    again = run(StudyConfig(models=FAST, schemes=("shuffled", "loro"), explore=True, n_jobs=1))
    cols = ["target", "model", "scheme", "R2", "RMSE", "MAE"]
    cols = [c for c in cols if c in again.leaderboard.columns]
    pd.testing.assert_frame_equal(results.leaderboard[cols], again.leaderboard[cols])
    np.testing.assert_array_equal(
        results.predictions["nca-2C"]["c [Å]"], again.predictions["nca-2C"]["c [Å]"]
    )
