"""Conformal intervals: the quantile rule, shape, coverage, held-out calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecpif import schema
from ecpif.errors import ConfigError, ModelError
from ecpif.uncertainty import (
    conformal_interval,
    conformal_quantile,
    coverage,
    held_out_coverage,
)
from ecpif.validate import evaluate_zoo


def test_quantile_is_the_finite_sample_conformal_order_statistic() -> None:
    r = np.array([0.5, -0.1, 0.3, -0.9, 0.2, 0.7, -0.4, 0.6, 0.8])
    # n = 9, 80 %: ceil(10 * 0.8) = 8th smallest |r| of 0.1 .. 0.9 -> 0.8
    assert conformal_quantile(r, 0.8) == pytest.approx(0.8)
    assert conformal_quantile(r, 0.5) == pytest.approx(0.5)


def test_too_few_residuals_give_an_infinite_interval() -> None:
    assert conformal_quantile(np.array([0.1, 0.2, 0.3]), 0.9) == np.inf


def test_interval_shape_and_order() -> None:
    iv = conformal_interval(np.array([1.0, 2.0, 3.0]), np.linspace(-1, 1, 21), 0.9)
    assert iv.shape == (3, 2)
    assert np.all(iv[:, 0] < iv[:, 1])
    np.testing.assert_allclose(iv.mean(axis=1), [1.0, 2.0, 3.0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), confidence=st.sampled_from([0.8, 0.9, 0.95]))
def test_exchangeable_residuals_reach_nominal_coverage(seed: int, confidence: float) -> None:
    # Marginal guarantee: over many calibration sets, P(new point inside) >= confidence.
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(200):
        calib = rng.standard_t(3, size=40)
        new = rng.standard_t(3)
        iv = conformal_interval(np.array([0.0]), calib, confidence)
        hits.append(iv[0, 0] <= new <= iv[0, 1])
    # 200 Bernoulli draws: allow 3.5 standard errors below nominal.
    se = np.sqrt(confidence * (1 - confidence) / 200)
    assert np.mean(hits) >= confidence - 3.5 * se


def test_coverage_counts_bounds_as_inside() -> None:
    assert coverage(np.array([0.0, 1.0, 2.0]), np.array([[0, 1], [0, 1], [0, 1]])) == pytest.approx(
        2 / 3
    )
    with pytest.raises(ConfigError, match=r"shape \(n_samples, 2\) = \(3, 2\)"):
        coverage(np.zeros(3), np.zeros((3, 3)))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "0.9"])
def test_bad_confidence(bad) -> None:
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        conformal_quantile(np.ones(10), bad)


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for rate in (0.2, 0.5, 1.0, 1.5):
        q = rng.uniform(0, 1, 40)
        parts.append(pd.DataFrame({
            schema.C_RATE_LABEL: rate, "q [-]": q, "rate [1/h]": rate,
            "y [-]": np.sin(3 * q) + 0.05 * rate + 0.05 * rng.normal(size=40),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def test_held_out_rate_coverage_is_calibrated_without_the_held_out_rate() -> None:
    models = ["ridge", "knn", "polynomial_ridge"]
    res = evaluate_zoo(_table(), ["q [-]", "rate [1/h]"], ["y [-]"], models=models,
                       scheme="loro", n_jobs=1)  # fmt: skip
    cov = held_out_coverage(res, model="auto", confidence=0.9)
    assert len(cov) == 4 + 1
    pooled = cov[cov["held out"] == "all"].iloc[0]
    # Noise-dominated data: held-out rates are nearly exchangeable, so coverage is near nominal.
    assert 0.75 <= pooled["coverage"] <= 1.0
    assert pooled["mean half-width"] > 0
    # Each fold's width comes from its own calibration: they differ between folds.
    assert cov[cov["held out"] != "all"]["mean half-width"].nunique() > 1
    with pytest.raises(
        ModelError, match=r"Unknown model 'autto' for coverage\. Did you mean 'auto'"
    ):
        held_out_coverage(res, model="autto")


def test_held_out_coverage_needs_inner_predictions() -> None:
    res = evaluate_zoo(_table(), ["q [-]"], ["y [-]"], models=["ridge"], n_jobs=1,
                       ensembles=False)  # fmt: skip
    with pytest.raises(ConfigError, match="ensembles=True"):
        held_out_coverage(res)
