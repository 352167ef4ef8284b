"""Bundles: round trip, refusal of untrusted types, version checks, the train/predict CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, RegressorMixin
from typer.testing import CliRunner

from ecpif import schema
from ecpif.bundle import FORMAT_VERSION, installed_versions, load_bundle, save_bundle
from ecpif.ensemble import fit_ensemble
from ecpif.errors import BundleError
from ecpif.validate import evaluate_zoo

FEATURES = ["charge [mA.h]", "current [A]"]


class Sneaky(RegressorMixin, BaseEstimator):
    """A type no ecpif bundle contains: loading must refuse to build it."""

    def predict(self, X):  # type: ignore[no-untyped-def]
        return np.zeros(len(X))


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for rate in (0.2, 0.5, 1.0):
        q = rng.uniform(0, 400, 25)
        parts.append(pd.DataFrame({
            schema.C_RATE_LABEL: rate, "charge [mA.h]": q,
            "current [A]": 0.43 * rate * np.sign(rng.uniform(-1, 1, 25)),
            "a [Å]": 2.864 - 6e-5 * q + 3e-4 * rng.normal(size=25),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def model():
    table = _table()
    res = evaluate_zoo(table, FEATURES, ["a"], models=["ridge", "knn", "decision_tree",
                       "gaussian_process", "lightgbm"], scheme="loro", top_k=3,
                       n_jobs=1)  # fmt: skip
    return table, fit_ensemble(table, res, kind="stacking")


def test_round_trip_predicts_identically(model, tmp_path) -> None:
    table, m = model
    path = save_bundle(m, tmp_path / "m.skops")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skops"]  # no temp file left
    back = load_bundle(path)
    pd.testing.assert_frame_equal(back.predict(table), m.predict(table))
    assert back.features == m.features and back.targets == m.targets
    assert back.units == {"charge [mA.h]": "mA.h", "current [A]": "A", "a [Å]": "Å"}
    assert back.training_hash == m.training_hash and len(back.training_hash) == 64
    assert back.members == m.members and back.weights == m.weights
    np.testing.assert_array_equal(back.residuals["a [Å]"], m.residuals["a [Å]"])
    assert back.info["versions"]["scikit-learn"] == installed_versions()["scikit-learn"]


def test_training_hash_changes_with_the_data(model) -> None:
    from ecpif.ensemble import data_hash

    table, m = model
    changed = table.copy()
    changed.loc[0, "a [Å]"] += 1e-6
    assert data_hash(changed, m.features + m.targets) != m.training_hash
    assert data_hash(table, m.features + m.targets) == m.training_hash


def _state(m, **meta_changes):  # type: ignore[no-untyped-def]
    """The state save_bundle writes, with metadata edits (to forge files for the tests)."""
    from ecpif.bundle import _metadata

    meta = {**_metadata(m), **meta_changes}
    return {"metadata": json.dumps(meta), "estimators": dict(m.estimators),
            "residuals": dict(m.residuals)}  # fmt: skip


def test_untrusted_types_are_refused_before_anything_is_built(model, tmp_path) -> None:
    _, m = model
    state = _state(m)
    state["estimators"] = {"a [Å]": Sneaky()}
    sio.dump(state, tmp_path / "evil.skops")
    with pytest.raises(BundleError, match=r"asks to build type\(s\) \['test_bundle\.Sneaky'\]"):
        load_bundle(tmp_path / "evil.skops")


def test_version_mismatch_is_a_clear_error_or_a_warning_on_request(model, tmp_path) -> None:
    _, m = model
    versions = {**installed_versions(), "scikit-learn": "0.24.2"}
    sio.dump(_state(m, versions=versions), tmp_path / "old.skops")
    with pytest.raises(BundleError, match=r"saved with scikit-learn 0\.24\.2 but .* is installed"):
        load_bundle(tmp_path / "old.skops")
    with pytest.warns(UserWarning, match=r"saved with scikit-learn 0\.24\.2"):
        loaded = load_bundle(tmp_path / "old.skops", allow_version_mismatch=True)
    assert loaded.targets == m.targets


def test_other_format_version(model, tmp_path) -> None:
    _, m = model
    sio.dump(_state(m, format_version=FORMAT_VERSION + 1), tmp_path / "new.skops")
    with pytest.raises(BundleError, match=r"has format version 2; this ecpif reads version 1"):
        load_bundle(tmp_path / "new.skops")


def test_not_a_bundle(tmp_path) -> None:
    with pytest.raises(BundleError, match="No bundle at"):
        load_bundle(tmp_path / "missing.skops")
    (tmp_path / "text.skops").write_text("hello", encoding="utf-8")
    with pytest.raises(BundleError, match="is not an ecpif bundle"):
        load_bundle(tmp_path / "text.skops")
    sio.dump({"metadata": json.dumps({"format": "other"})}, tmp_path / "other.skops")
    with pytest.raises(BundleError, match="skops file but not an ecpif bundle"):
        load_bundle(tmp_path / "other.skops")


def test_only_trained_ensembles_are_saved(tmp_path) -> None:
    with pytest.raises(BundleError, match="Only a TrainedEnsemble"):
        save_bundle({"a": 1}, tmp_path / "x.skops")  # type: ignore[arg-type]


@pytest.mark.slow
def test_cli_train_then_predict_on_the_demo(tmp_path) -> None:
    import ecpif.cli.train  # registers the commands on the app
    from ecpif.align import align_runs
    from ecpif.cli import app
    from ecpif.datasets import nca_demo_path

    aligned = tmp_path / "aligned.parquet"
    align_runs(ecpif.datasets.load_nca_demo()).to_parquet(aligned)
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(aligned), "--out", str(out), "--targets", "a,c",
                                 "--models", "ridge,knn,extra_trees", "--n-jobs", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["scheme"]) == {"loro"} and set(board["target"]) == {"a [Å]", "c [Å]"}
    assert (out / "model.skops").is_file() and (out / "coverage.csv").is_file()

    traj = tmp_path / "traj.csv"
    cycler = nca_demo_path() / "nca-2C_cycler.csv"
    result = runner.invoke(app, ["predict", str(out / "model.skops"), str(cycler), "--out",
                                 str(traj)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "outside the training domain" in result.output
    frame = pd.read_csv(traj)
    assert {"a [Å]", "lower a [Å]", "upper a [Å]", "c [Å]", "in domain [-]"} <= set(frame.columns)
    assert len(frame) == len(pd.read_csv(cycler))

    result = runner.invoke(app, ["train", str(aligned), "--models", "ridg"])
    assert isinstance(result.exception, ecpif.EcpifError)  # cli.main prints it as one line
    assert "Did you mean 'ridge'" in str(result.exception)
