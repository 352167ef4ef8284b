"""Cross-validation schemes, the leaderboard, determinism and bad requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import cross_val_predict

from ecpif import schema
from ecpif.errors import ConfigError, DataError, ModelError
from ecpif.validate import (
    LEADERBOARD_COLUMNS,
    evaluate_zoo,
    make_folds,
    scores,
)
from ecpif.zoo import make_model

FEATURES = ["charge [mA.h]", "current [A]", "voltage [V]", "C-rate [1/h]"]
FAST = ["ols", "ridge", "knn", "extra_trees"]


def synthetic_table(n_per_rate: int = 30, rates=(0.2, 0.5, 1.0), seed: int = 0) -> pd.DataFrame:
    """Pattern table: smooth nonlinear lattice/occupancy functions of charge, current, voltage."""
    rng = np.random.default_rng(seed)
    parts = []
    for rate in rates:
        q = np.sort(rng.uniform(0, 400, n_per_rate))
        direction = np.where(rng.uniform(size=n_per_rate) < 0.5, 1.0, -1.0)
        current = 0.43 * rate * direction
        voltage = 3.5 + 0.0015 * q + 0.1 * current
        a = 2.864 - 6e-5 * q + 2e-3 * np.sin(q / 80) + 1e-3 * current * q / 400
        li = 0.98 - 1.4e-3 * q
        parts.append(pd.DataFrame({
            schema.RUN_ID: f"run-{rate:g}C", schema.C_RATE_LABEL: rate,
            "charge [mA.h]": q, "current [A]": current, "voltage [V]": voltage,
            "C-rate [1/h]": rate,
            "a [Å]": a + 3e-4 * rng.normal(size=n_per_rate), "esd a [Å]": 3e-4,
            "li_occupancy [-]": li + 0.01 * rng.normal(size=n_per_rate),
            "esd li_occupancy [-]": 0.01,
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return synthetic_table()


@pytest.fixture(scope="module")
def shuffled_result(table: pd.DataFrame):
    return evaluate_zoo(table, FEATURES, ["a", "li_occupancy"], models=FAST, scheme="shuffled",
                        n_jobs=1, ensembles=False)  # fmt: skip


# --- folds ---------------------------------------------------------------------------------------


def test_shuffled_folds_partition_rows(table: pd.DataFrame) -> None:
    folds = make_folds(table, "shuffled", n_splits=5, random_state=0)
    assert folds.n_folds == 5
    assert sorted(np.concatenate([te for _, te in folds.split()]).tolist()) == list(range(90))
    sizes = np.bincount(folds.fold)
    assert sizes.min() == sizes.max() == 18


def test_loro_folds_hold_out_exactly_one_rate(table: pd.DataFrame) -> None:
    folds = make_folds(table, "loro")
    assert folds.n_folds == 3
    for f, (train, test) in enumerate(folds.split()):
        held = set(table[schema.C_RATE_LABEL].iloc[test])
        assert len(held) == 1
        assert held.isdisjoint(set(table[schema.C_RATE_LABEL].iloc[train]))
        assert folds.labels[f].endswith(f"= {held.pop():g}")


@settings(max_examples=30, deadline=None)
@given(
    groups=st.lists(st.sampled_from(["r1", "r2", "r3", "r4", "r5", "r6"]), min_size=8,
                    max_size=40),
    n_splits=st.integers(2, 5),
)  # fmt: skip
def test_grouped_folds_never_split_a_group(groups: list[str], n_splits: int) -> None:
    df = pd.DataFrame({schema.RUN_ID: groups})
    if len(set(groups)) < 2:
        with pytest.raises(ModelError, match="at least 2 distinct values"):
            make_folds(df, "grouped", n_splits=n_splits)
        return
    folds = make_folds(df, "grouped", n_splits=n_splits)
    assert folds.n_folds == min(n_splits, len(set(groups)))
    assert np.all(folds.fold >= 0)
    for g in set(groups):
        assert len(set(folds.fold[df[schema.RUN_ID] == g])) == 1


@settings(max_examples=20, deadline=None)
@given(n=st.integers(10, 60), k=st.integers(3, 6), seed=st.integers(0, 1000))
def test_inner_splits_partition_the_outer_training_rows(n: int, k: int, seed: int) -> None:
    folds = make_folds(pd.DataFrame({"x": range(n)}), "shuffled", n_splits=min(k, n),
                       random_state=seed)  # fmt: skip
    for f, (train, test) in enumerate(folds.split()):
        inner = folds.inner_split(f)
        assert len(inner) == folds.n_folds - 1
        covered = np.sort(np.concatenate([te for _, te in inner]))
        np.testing.assert_array_equal(covered, np.arange(len(train)))
        # Inner positions map back to outer training rows only, never to the test fold.
        for itr, ite in inner:
            assert set(train[itr]).isdisjoint(test) and set(train[ite]).isdisjoint(test)


# --- leaderboard ---------------------------------------------------------------------------------


def test_leaderboard_has_scores_scheme_and_ranks(shuffled_result) -> None:
    lb = shuffled_result.leaderboard
    assert tuple(lb.columns) == LEADERBOARD_COLUMNS
    assert set(lb["scheme"]) == {"shuffled"}
    assert len(lb) == 2 * len(FAST)
    for t in ["a [Å]", "li_occupancy [-]"]:
        sub = lb[lb["target"] == t]
        assert sub["rank"].tolist() == list(range(1, len(FAST) + 1))
        assert sub["RMSE"].is_monotonic_increasing
    # Nonlinear smooth signal: the tree ensemble beats the straight line on a.
    a = shuffled_result.for_target("a").set_index("model")
    assert a.loc["extra_trees", "RMSE"] < a.loc["ols", "RMSE"]


def test_scores_are_those_of_the_out_of_fold_predictions(shuffled_result, table) -> None:
    y = table["a [Å]"].to_numpy()
    pred = shuffled_result.predictions["a [Å]"]["knn"].to_numpy()
    row = shuffled_result.for_target("a").set_index("model").loc["knn"]
    assert row["RMSE"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))
    assert row["RMSE/esd"] == pytest.approx(row["RMSE"] / 3e-4)
    assert row["R²"] == pytest.approx(scores(y, pred)["R²"])


def test_out_of_fold_predictions_match_scikit_learn(shuffled_result, table) -> None:
    # No test-fold row reaches training: identical to cross_val_predict on the same folds.
    X = table[FEATURES].to_numpy(dtype=float)
    y = table["a [Å]"].to_numpy()
    expected = cross_val_predict(make_model("extra_trees"), X, y, cv=shuffled_result.folds.split())
    np.testing.assert_allclose(shuffled_result.predictions["a [Å]"]["extra_trees"], expected)


def test_same_seed_gives_identical_leaderboard_whatever_n_jobs(table) -> None:
    kwargs = dict(models=["ridge", "extra_trees", "knn"], scheme="shuffled", random_state=7)
    r1 = evaluate_zoo(table, FEATURES, ["a"], n_jobs=1, **kwargs)  # type: ignore[arg-type]
    r2 = evaluate_zoo(table, FEATURES, ["a"], n_jobs=2, **kwargs)  # type: ignore[arg-type]
    cols = [c for c in r1.leaderboard.columns if "time" not in c]
    pd.testing.assert_frame_equal(r1.leaderboard[cols], r2.leaderboard[cols])
    r3 = evaluate_zoo(table, FEATURES, ["a"], n_jobs=1, **{**kwargs, "random_state": 8})  # type: ignore[arg-type]
    assert not r1.leaderboard[cols].equals(r3.leaderboard[cols])


def test_input_is_not_modified_and_csv_is_written(shuffled_result, table, tmp_path) -> None:
    before = synthetic_table()
    pd.testing.assert_frame_equal(table, before)
    path = shuffled_result.to_csv(tmp_path / "sub" / "leaderboard.csv")
    back = pd.read_csv(path)
    assert back["model"].tolist() == shuffled_result.leaderboard["model"].tolist()
    assert [p.name for p in path.parent.iterdir()] == ["leaderboard.csv"]  # no temp file left
    long = shuffled_result.predictions_frame()
    assert len(long) == 2 * len(FAST) * len(table)


def test_loro_scheme_recorded_and_fold_scores_name_the_rate(table) -> None:
    res = evaluate_zoo(table, FEATURES, ["a"], models=["ridge", "knn"], scheme="loro", n_jobs=1,
                       ensembles=False)  # fmt: skip
    assert set(res.leaderboard["scheme"]) == {"loro"}
    assert set(res.fold_scores["held out"]) == {
        "C-rate label [1/h] = 0.2", "C-rate label [1/h] = 0.5", "C-rate label [1/h] = 1",
    }  # fmt: skip


# --- bad requests: one clear sentence each -----------------------------------------------------


def test_unknown_model(table) -> None:
    with pytest.raises(
        ModelError, match=r"Unknown model 'extra_tree'\. Did you mean 'extra_trees'"
    ):
        evaluate_zoo(table, FEATURES, ["a"], models=["extra_tree"], n_jobs=1)


def test_unknown_feature(table) -> None:
    with pytest.raises(
        ModelError, match=r"feature 'voltag \[V\]' is not a column.*'voltage \[V\]'"
    ):
        evaluate_zoo(table, ["voltag [V]"], ["a"], models=["ols"], n_jobs=1)


def test_unknown_target(table) -> None:
    with pytest.raises(ModelError, match=r"target 'cc' is not a column"):
        evaluate_zoo(table, FEATURES, ["cc"], models=["ols"], n_jobs=1)


def test_nan_target_names_the_rows(table) -> None:
    bad = table.copy()
    bad.loc[[4, 17], "a [Å]"] = np.nan
    with pytest.raises(
        DataError, match=r"'a \[Å\]' has 2 missing \(NaN\) value\(s\) at row\(s\) 4, 17"
    ):
        evaluate_zoo(bad, FEATURES, ["a"], models=["ols"], n_jobs=1)


def test_infinite_feature(table) -> None:
    bad = table.copy()
    bad.loc[3, "voltage [V]"] = np.inf
    with pytest.raises(DataError, match=r"'voltage \[V\]' has 1 infinite value"):
        evaluate_zoo(bad, FEATURES, ["a"], models=["ols"], n_jobs=1)


def test_too_few_rows_for_the_folds(table) -> None:
    with pytest.raises(ModelError, match=r"has 3 rows but the 'shuffled' scheme needs at least 5"):
        evaluate_zoo(table.head(3), FEATURES, ["a"], models=["ols"], n_jobs=1)


def test_loro_with_a_single_rate(table) -> None:
    one = table[table[schema.C_RATE_LABEL] == 0.2]
    with pytest.raises(ModelError, match=r"'loro' scheme needs at least 2 distinct values"):
        evaluate_zoo(one, FEATURES, ["a"], models=["ols"], scheme="loro", n_jobs=1)


def test_ensembles_need_three_folds(table) -> None:
    two = table[table[schema.C_RATE_LABEL] != 0.2]
    with pytest.raises(ModelError, match=r"Ensembles need at least 3 folds"):
        evaluate_zoo(two, FEATURES, ["a"], models=["ols"], scheme="loro", n_jobs=1)


def test_unknown_scheme(table) -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown cross-validation scheme 'lor'\. Did you mean 'loro'"
    ):
        evaluate_zoo(table, FEATURES, ["a"], models=["ols"], scheme="lor", n_jobs=1)


def test_missing_group_column(table) -> None:
    with pytest.raises(ConfigError, match=r"'grouped' scheme needs the column 'cell id'"):
        evaluate_zoo(table, FEATURES, ["a"], models=["ols"], scheme="grouped",
                     group_col="cell id", n_jobs=1)  # fmt: skip


def test_feature_that_is_also_a_target(table) -> None:
    with pytest.raises(ConfigError, match=r"both a feature and a target"):
        evaluate_zoo(table, [*FEATURES, "a [Å]"], ["a"], models=["ols"], n_jobs=1)


def test_non_numeric_feature(table) -> None:
    with pytest.raises(DataError, match=r"holds .* values, not numbers"):
        evaluate_zoo(table, [schema.RUN_ID], ["a"], models=["ols"], n_jobs=1)
