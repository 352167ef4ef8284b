"""The model zoo: registry, factories, determinism, error messages."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge

from ecpif.errors import ConfigError, MissingDependencyError, ModelError
from ecpif.zoo import (
    ARDGaussianProcessRegressor,
    available_models,
    make_model,
    model_spec,
    register_model,
    unregister_model,
)

# Tiny fits stop early on purpose; convergence chatter is not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

REQUIRED = [
    "ols", "ridge", "lasso", "elastic_net", "bayesian_ridge", "huber", "svr", "kernel_ridge",
    "gaussian_process", "knn", "decision_tree", "random_forest", "extra_trees", "adaboost",
    "gradient_boosting", "hist_gradient_boosting", "mlp",
]  # fmt: skip
BOOST = ["xgboost", "lightgbm", "catboost"]


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 2))
    # A lattice-like target: large offset, small smooth variation.
    y = 2.86 - 0.02 * X[:, 0] + 0.003 * np.sin(4 * X[:, 1]) + 3e-4 * rng.normal(size=n)
    return X, y


def test_zoo_has_at_least_18_models_including_the_required_ones() -> None:
    names = available_models()
    assert len(names) >= 18
    assert set(REQUIRED) <= set(names)
    for b in BOOST:
        assert (b in names) == (importlib.util.find_spec(b) is not None)


def test_every_model_fits_and_predicts_a_lattice_like_target() -> None:
    # Smoke test of the whole zoo on tiny data: every factory builds a working estimator.
    X, y = _data(40)
    for name in available_models():
        model = make_model(name, random_state=0).fit(X[:30], y[:30])
        pred = model.predict(X[30:])
        assert pred.shape == (10,), name
        assert np.all(np.isfinite(pred)), name
        # Any sane model stays within the range of lattice parameters seen in training +- 0.05 Å.
        assert np.all(np.abs(pred - 2.85) < 0.06), name


@pytest.mark.parametrize(
    "name", ["random_forest", "extra_trees", "mlp", "gaussian_process", "adaboost", "xgboost"]
)
def test_random_models_are_deterministic_for_a_seed(name: str) -> None:
    if name not in available_models():
        pytest.skip(f"{name} not installed")
    X, y = _data(40)
    p1 = make_model(name, random_state=3).fit(X, y).predict(X)
    p2 = make_model(name, random_state=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(p1, p2)


def test_make_model_returns_a_fresh_object_each_time() -> None:
    assert make_model("ridge") is not make_model("ridge")
    clone(make_model("gaussian_process"))  # a proper scikit-learn estimator


def test_target_scaling_makes_svr_usable_on_small_variations() -> None:
    # Without target standardisation SVR's epsilon tube (0.1) would swallow a 0.02 Å signal.
    X, y = _data(80)
    model = make_model("svr").fit(X[:60], y[:60])
    err = model.predict(X[60:]) - y[60:]
    assert np.sqrt(np.mean(err**2)) < 0.2 * np.std(y)


def test_ard_gp_learns_one_length_scale_per_feature() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(60, 3))
    y = np.sin(3 * X[:, 0])  # only the first feature matters
    gp = ARDGaussianProcessRegressor().fit(X, y)
    scales = gp.gp_.kernel_.k1.k2.length_scale  # (C * RBF) + White
    assert scales.shape == (3,)
    assert scales[0] < scales[1] and scales[0] < scales[2]


def test_unknown_model_name_suggests_the_closest() -> None:
    with pytest.raises(
        ModelError, match=r"Unknown model 'randm_forest'\. Did you mean 'random_forest'"
    ):
        make_model("randm_forest")


def test_register_and_unregister_a_custom_model() -> None:
    register_model("ridge_heavy", lambda seed: Ridge(alpha=1e3), family="linear")
    try:
        assert "ridge_heavy" in available_models(family="linear")
        assert isinstance(make_model("ridge_heavy"), Ridge)
        with pytest.raises(ConfigError, match="already registered"):
            register_model("ridge_heavy", lambda seed: Ridge())
    finally:
        unregister_model("ridge_heavy")
    assert "ridge_heavy" not in available_models()


@pytest.mark.parametrize("bad", ["", "has space", "dash-name"])
def test_register_rejects_bad_names(bad: str) -> None:
    with pytest.raises(ConfigError, match="Model names must be"):
        register_model(bad, lambda seed: Ridge())


def test_register_rejects_a_non_callable_factory() -> None:
    with pytest.raises(ConfigError, match="must be callable"):
        register_model("not_callable", Ridge())  # type: ignore[arg-type]


def test_model_with_missing_optional_library_is_skipped_cleanly() -> None:
    register_model(
        "needs_missing_lib", lambda seed: Ridge(), requires="ecpif_no_such_module", extra="boost"
    )
    try:
        assert "needs_missing_lib" not in available_models()
        assert not model_spec("needs_missing_lib").available
        with pytest.raises(MissingDependencyError, match=r"pip install 'ecpif\[boost\]'"):
            make_model("needs_missing_lib")
    finally:
        unregister_model("needs_missing_lib")


def test_subsampled_regressor_caps_rows_deterministically() -> None:
    from sklearn.linear_model import LinearRegression

    from ecpif.zoo import SubsampledRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(500, 2))
    y = X @ np.array([1.0, -2.0]) + 0.01 * rng.normal(size=500)
    capped = SubsampledRegressor(LinearRegression(), max_samples=50, random_state=1).fit(X, y)
    again = SubsampledRegressor(LinearRegression(), max_samples=50, random_state=1).fit(X, y)
    assert capped.n_samples_used_ == 50
    np.testing.assert_array_equal(capped.predict(X), again.predict(X))
    np.testing.assert_allclose(capped.estimator_.coef_, [1.0, -2.0], atol=0.02)
    whole = SubsampledRegressor(LinearRegression(), max_samples=1000).fit(X, y)
    np.testing.assert_allclose(whole.predict(X), LinearRegression().fit(X, y).predict(X))
