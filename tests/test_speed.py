"""Speed-ups that must not change results: fits shared between schemes, chunked kernel
prediction, one-thread Gaussian-process fits, and the figure render cache (issue 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from ecpif import zoo
from ecpif.report.figures import figure_bytes
from ecpif.validate import evaluate_zoo

MODELS = ("ols", "knn", "decision_tree")


def three_runs(seed: int = 0) -> pd.DataFrame:
    """Three runs, one per C-rate, so grouped and leave-one-rate-out folds coincide."""
    rng = np.random.default_rng(seed)
    parts = []
    for run, rate in (("r-0.2C", 0.2), ("r-0.5C", 0.5), ("r-1C", 1.0)):
        q = np.linspace(0, 400, 30)
        parts.append(pd.DataFrame({
            "run id": run, "C-rate label [1/h]": rate, "charge [mA.h]": q,
            "C-rate [1/h]": rate + 0.01 * rng.normal(size=30),
            "c [Å]": 14.2 + 1e-3 * q - 0.01 * rate + 1e-3 * rng.normal(size=30),
            "a [Å]": 2.86 - 1e-4 * q + 3e-4 * rng.normal(size=30),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    cols = [c for c in a.leaderboard.columns if "time" not in c]
    return (
        a.leaderboard[cols].equals(b.leaderboard[cols])
        and all(a.predictions[t].equals(b.predictions[t]) for t in a.targets)
        and a.inner.keys() == b.inner.keys()
        and all(np.array_equal(a.inner[t], b.inner[t], equal_nan=True) for t in a.inner)
        and a.ensemble_details.equals(b.ensemble_details)
    )


def test_fit_cache_reuses_fits_between_schemes_without_changing_results() -> None:
    data = three_runs()
    kwargs = dict(features=["charge [mA.h]", "C-rate [1/h]"], targets=["c", "a"], models=MODELS,
                  n_jobs=1)  # fmt: skip
    plain = {s: evaluate_zoo(data, scheme=s, **kwargs) for s in ("grouped", "loro")}
    cache: dict = {}
    cached = {
        s: evaluate_zoo(data, scheme=s, fit_cache=cache, **kwargs) for s in ("grouped", "loro")
    }
    assert cached["grouped"].settings["n_reused_fits"] == 0
    # Every training set of LORO is one of grouped's: 3 models x (3 outer + 3 inner) x 2 targets.
    assert cached["loro"].settings["n_reused_fits"] == 3 * 6 * 2
    assert cached["loro"].settings["n_fits"] == plain["loro"].settings["n_fits"]
    for scheme in plain:
        assert _same(plain[scheme], cached[scheme])


def test_fit_cache_does_not_reuse_across_data_or_seeds() -> None:
    data = three_runs()
    kwargs = dict(features=["charge [mA.h]"], targets=["c"], models=MODELS, scheme="loro",
                  ensembles=False, n_jobs=1)  # fmt: skip
    cache: dict = {}
    evaluate_zoo(data, fit_cache=cache, **kwargs)
    other = data.copy()
    other.loc[0, "c [Å]"] += 1e-6  # one target value differs: another training set
    res = evaluate_zoo(other, fit_cache=cache, **kwargs)
    assert res.settings["n_reused_fits"] == 0
    res = evaluate_zoo(data, fit_cache=cache, random_state=1, **kwargs)
    assert res.settings["n_reused_fits"] == 0
    again = evaluate_zoo(data, fit_cache=cache, **kwargs)
    assert again.settings["n_reused_fits"] == 3 * 3  # models x folds, one target
    assert _same(again, evaluate_zoo(data, **kwargs))


@settings(max_examples=15, deadline=None)
@given(n_rows=st.integers(1, 5000), block=st.sampled_from([10_000, 40_000, 400_000]))
def test_chunked_kernel_prediction_equals_one_block(n_rows: int, block: int) -> None:
    rng = np.random.default_rng(n_rows)
    X = rng.uniform(size=(40, 3))
    model = zoo.make_model("kernel_ridge").fit(X, X.sum(axis=1))
    Xp = rng.uniform(size=(n_rows, 3))
    whole = model.estimator_.predict(Xp)
    saved = zoo._PREDICT_BLOCK_VALUES
    zoo._PREDICT_BLOCK_VALUES = block  # 40 training rows: chunks of 1024 rows and more
    try:
        chunked = model.predict(Xp)
    finally:
        zoo._PREDICT_BLOCK_VALUES = saved
    assert chunked.shape == (n_rows,)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=0)


def test_gaussian_process_fit_does_not_depend_on_blas_threads() -> None:
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(150, 4))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * rng.normal(size=150)
    preds = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            model = zoo.make_model("gaussian_process_linear", random_state=0).fit(X, y)
        preds.append(model.predict(X))
    # Bitwise: the fit always runs on one BLAS thread, whatever the caller allows.
    assert np.array_equal(preds[0], preds[1])


def _figure(title: str) -> Figure:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 4])
    ax.set_title(title)
    return fig


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_figure_bytes_cache_returns_a_fresh_render_until_the_figure_changes(fmt: str) -> None:
    fig = _figure("first")
    first = figure_bytes(fig, fmt)
    assert figure_bytes(fig, fmt) is first  # unchanged figure: the same bytes, not re-rendered
    assert first == figure_bytes(_figure("first"), fmt)  # and they equal a fresh render
    fig.axes[0].set_title("second")
    changed = figure_bytes(fig, fmt)
    assert changed != first
    assert changed == figure_bytes(_figure("second"), fmt)
    fig.axes[0].lines[0].set_ydata([4, 1, 0])
    assert figure_bytes(fig, fmt) != changed


def test_figure_bytes_cache_keys_on_resolution() -> None:
    fig = _figure("dpi")
    low = figure_bytes(fig, "png", dpi=50)
    high = figure_bytes(fig, "png", dpi=100)
    assert len(high) > len(low)
    assert figure_bytes(fig, "png", dpi=50) is low
