"""Nested hyperparameter search: honest by construction, deterministic, within budget."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest

import ecpif
from ecpif import schema
from ecpif.align import align_runs
from ecpif.bundle import load_bundle
from ecpif.errors import ConfigError, ModelError
from ecpif.pipeline import DEFAULT_FEATURES, StudyConfig, run, write_results
from ecpif.tune import (
    SEARCH_SPACES,
    Param,
    TunedRegressor,
    TuningBudget,
    default_params,
    evaluate_tuned,
    n_training_sets,
    search_space,
    tunable_models,
    tuned_variants,
    tuning_summary,
)
from ecpif.validate import KIND, MODEL, RMSE, SCHEME, TARGET
from ecpif.zoo import available_models, make_model

FEATURES = list(DEFAULT_FEATURES)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return align_runs(ecpif.datasets.load_nca_demo())


@pytest.fixture(scope="module")
def tuned(table):
    return evaluate_tuned(table, FEATURES, ["a", "c"], models=["ridge", "knn"], tune=["knn"],
                          scheme="loro", budget=TuningBudget(n_trials=6), n_jobs=2)  # fmt: skip


def smooth(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2))
    return X, np.sin(4 * X[:, 0]) + 0.3 * X[:, 1] + 0.05 * rng.normal(size=n)


def test_search_starts_from_the_defaults_and_never_scores_worse() -> None:
    X, y = smooth()
    m = TunedRegressor("knn", n_trials=8, random_state=3).fit(X, y)
    assert m.n_trials_ == 8
    assert m.best_score_ <= m.default_score_
    assert set(m.best_params_) == {p.name for p in search_space("knn")}
    # The refit is the zoo model with the chosen settings, on all rows.
    ref = make_model("knn").set_params(**m.best_params_).fit(X, y)
    np.testing.assert_array_equal(m.predict(X[:10]), ref.predict(X[:10]))


def test_search_is_deterministic_for_a_seed() -> None:
    X, y = smooth()
    a = TunedRegressor("decision_tree", n_trials=6, random_state=1).fit(X, y)
    b = TunedRegressor("decision_tree", n_trials=6, random_state=1).fit(X, y)
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_groups_make_the_inner_cv_leave_each_group_out() -> None:
    groups = np.repeat([0, 1, 2], 10)
    splits = TunedRegressor("knn")._splits(30, groups)
    assert len(splits) == 3
    for train, test in splits:
        assert len(set(groups[test])) == 1 and set(groups[test]).isdisjoint(groups[train])
    # A single group cannot be held out: the blocked folds are used instead.
    blocked = TunedRegressor("knn", cv=3)._splits(30, np.zeros(30))
    assert [t.tolist() for _, t in blocked] == [list(range(k, k + 10)) for k in (0, 10, 20)]


def test_time_budget_stops_the_search() -> None:
    X, y = smooth(200)
    m = TunedRegressor("extra_trees", n_trials=None, timeout_s=0.3).fit(X, y)
    assert m.n_trials_ >= 1
    assert m.search_time_s_ < 0.3 + 2.0  # at most one trial runs past the budget


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_every_search_space_applies_to_its_zoo_model() -> None:
    X, y = smooth(40)
    for name in tunable_models():
        space = search_space(name)
        defaults = default_params(name)
        assert all(p.contains(defaults[p.name]) for p in space), name
        for end in (0, -1):  # both ends of every range
            trial = optuna.trial.FixedTrial(
                {p.name: p.encode(p.choices[end] if p.kind == "categorical"
                                  else (p.low, p.high)[end]) for p in space}
            )  # fmt: skip
            params = {p.name: p.suggest(trial) for p in space}
            model = make_model(name).set_params(**params)  # raises on a misspelt parameter
            if end == 0:  # the cheap end: fitting checks the values too
                model.fit(X, y)


def test_untunable_models_and_budgets_are_refused() -> None:
    X, y = smooth()
    assert "ridge" not in tunable_models() and "gaussian_process" not in SEARCH_SPACES
    with pytest.raises(ModelError, match="'ridge' has no hyperparameters to search"):
        TunedRegressor("ridge").fit(X, y)
    with pytest.raises(ConfigError, match="needs a budget"):
        TunedRegressor("knn", n_trials=None, timeout_s=None).fit(X, y)
    with pytest.raises(ConfigError, match="n_trials must be an integer >= 1"):
        TuningBudget(n_trials=0)
    with pytest.raises(ConfigError, match="timeout_s must be a positive number"):
        TuningBudget(n_trials=None, budget_s=-1.0)
    with pytest.raises(ConfigError, match="inner must be 'blocked' or 'shuffled'"):
        TunedRegressor("knn", inner="random").fit(X, y)
    with pytest.raises(ModelError, match="fewer than its 3 inner folds"):
        TunedRegressor("knn").fit(X[:2], y[:2])
    with pytest.raises(ConfigError, match="needs low <= high"):
        Param("alpha", "float", 1.0, 0.1)
    with pytest.raises(ConfigError, match="kind must be"):
        Param("alpha", "uniform", 0.0, 1.0)


def test_tuned_variants_are_registered_only_inside_the_block() -> None:
    with tuned_variants(["knn", "svr"], n_trials=2) as names:
        assert names == ["knn_tuned", "svr_tuned"]
        assert isinstance(make_model("svr_tuned", random_state=4), TunedRegressor)
        assert make_model("svr_tuned", random_state=4).random_state == 4
    assert "knn_tuned" not in available_models()
    with (
        pytest.raises(ModelError, match="'ridge' has no hyperparameters"),
        tuned_variants(["knn", "ridge"]),
    ):
        pass
    assert "knn_tuned" not in available_models()


def test_tuned_rows_sit_in_the_leaderboard_beside_the_untuned(tuned) -> None:
    lb = tuned.leaderboard
    rows = lb[lb[MODEL] == "knn_tuned"]
    assert len(rows) == 2 and set(rows[KIND]) == {"model"} and set(rows[SCHEME]) == {"loro"}
    assert {"ridge", "knn", "voting", "stacking"} <= set(lb[MODEL])
    # One search per training set (3 outer + 3 inner for the ensembles) and target.
    assert len(tuned.tuning) == n_training_sets(3, True) * 2 == 12
    # Trials that fail (more neighbours than training rows) are caught and not counted.
    assert tuned.tuning["trials"].between(4, 6).all() and (tuned.tuning["trials"] == 6).any()
    assert (tuned.tuning["inner RMSE (tuned)"] <= tuned.tuning["inner RMSE (defaults)"]).all()
    summary = tuning_summary(tuned)
    assert summary[MODEL].tolist() == ["knn", "knn"]
    gain = 100 * (1 - summary["RMSE tuned"] / summary["RMSE untuned"])
    np.testing.assert_allclose(summary["gain [%]"], gain)
    assert tuned.settings["tuning"]["searches per model"] == 12


def test_tuned_scores_are_nested(tuned, table) -> None:
    # Reproduce each outer fold by hand: a search that only ever receives the outer training
    # rows (grouped by their outer fold) must give exactly the leaderboard's predictions.
    X = table[FEATURES].to_numpy(dtype=float)
    folds = tuned.folds
    for target in tuned.targets:
        y = table[target].to_numpy(dtype=float)
        oof = np.full(len(y), np.nan)
        for train, test in folds.split():
            m = TunedRegressor("knn", n_trials=6, random_state=0)
            m.fit(X[train], y[train], groups=folds.fold[train])
            oof[test] = m.predict(X[test])
        np.testing.assert_allclose(tuned.predictions[target]["knn_tuned"], oof, rtol=0, atol=0)
        rmse = float(np.sqrt(np.mean((oof - y) ** 2)))
        lb = tuned.for_target(target).set_index(MODEL)
        assert lb.loc["knn_tuned", RMSE] == pytest.approx(rmse, rel=1e-12)


def test_same_seed_same_tuned_leaderboard(tuned, table) -> None:
    again = evaluate_tuned(table, FEATURES, ["a", "c"], models=["ridge", "knn"], tune=["knn"],
                           scheme="loro", budget=TuningBudget(n_trials=6), n_jobs=1)  # fmt: skip
    cols = [TARGET, MODEL, RMSE, "rank"]
    pd.testing.assert_frame_equal(tuned.leaderboard[cols], again.leaderboard[cols])


def test_evaluate_tuned_checks_its_models(table) -> None:
    with pytest.raises(ConfigError, match="'svr' is to be tuned but is not among"):
        evaluate_tuned(table, FEATURES, ["a"], models=["knn"], tune=["svr"])
    with pytest.raises(ConfigError, match="None of the models"):
        evaluate_tuned(table, FEATURES, ["a"], models=["ridge", "ols"])


def test_time_budget_is_shared_over_a_models_searches() -> None:
    budget = TuningBudget(n_trials=None, budget_s=60.0)
    assert budget.per_search_timeout(n_training_sets(5, True) * 4) == pytest.approx(1.0)
    assert TuningBudget().per_search_timeout(10) is None


def test_pipeline_with_tuning_writes_the_searches(tmp_path) -> None:
    cfg = StudyConfig(models=("ridge", "knn"), schemes=("loro",), targets=("a",), explore=False,
                      tune=True, tune_models=("knn",), tune_trials=3, n_jobs=2,
                      ensemble="knn_tuned")  # fmt: skip
    res = run(cfg)
    assert "knn_tuned" in set(res.leaderboard[MODEL])
    # The final model is the tuned variant itself, refitted (with a search) on all rows.
    assert res.model.kinds["a [Å]"] == "model" and res.model.members["a [Å]"] == ["knn_tuned"]
    assert isinstance(res.model.estimators["a [Å]"], TunedRegressor)
    assert "knn_tuned" not in available_models()
    out = write_results(res, tmp_path / "out", report=False)
    searches = pd.read_csv(out / "tuning.csv")
    assert len(searches) == n_training_sets(3, True) and set(searches["scheme"]) == {"loro"}
    assert StudyConfig.from_toml(out / "config.toml").tune_models == ("knn",)
    # The bundle of a tuned model loads (TunedRegressor is on the bundle's allow-list).
    loaded = load_bundle(out / "model.skops")
    X = res.aligned[res.model.features].head(5)
    np.testing.assert_array_equal(loaded.predict(X)["a [Å]"], res.model.predict(X)["a [Å]"])
    with pytest.raises(ConfigError, match="n_trials must be an integer"):
        StudyConfig(tune=True, tune_trials=0)
    assert schema.CELL in res.aligned.columns


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # A separate process: registering the command family must not change this session's app.
    code = "import ecpif.cli.scale; from ecpif.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.mark.slow
def test_cli_tune_writes_the_comparison(table, tmp_path) -> None:
    src = tmp_path / "aligned.parquet"
    table.to_parquet(src, index=False)
    out = tmp_path / "tuning"
    proc = run_cli("tune", str(src), "--models", "ridge,knn", "--tune-models", "knn", "--trials",
                   "3", "--targets", "a", "--out", str(out), "--n-jobs", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Tuned vs untuned (loro, local)" in proc.stdout
    lb = pd.read_csv(out / "leaderboard.csv")
    assert "knn_tuned" in set(lb[MODEL])
    assert len(pd.read_csv(out / "tuning.csv")) == n_training_sets(3, True)
    assert pd.read_csv(out / "tuning_summary.csv")[MODEL].tolist() == ["knn"]
    bad = run_cli("tune", str(src), "--backend", "ray", "--out", str(out))
    assert bad.returncode == 2 and "Ray is not supported yet" in bad.stderr


@pytest.mark.slow
def test_cli_study_overrides_reach_the_config(tmp_path) -> None:
    cfg = tmp_path / "study.toml"
    cfg.write_text('models = ["ridge"]\nschemes = ["loro"]\ntargets = ["a"]\nexplore = false\n')
    bad = run_cli("study", str(cfg), "--group-by", "cells", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "Unknown group_by 'cells'" in bad.stderr
    bad = run_cli("study", str(cfg), "--tune", "--tune-trials", "0", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "n_trials must be an integer >= 1" in bad.stderr
