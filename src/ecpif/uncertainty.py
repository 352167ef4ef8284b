"""Conformal prediction intervals from out-of-fold residuals.

The interval of a prediction ``ŷ(x)`` at confidence ``1 - α`` is ``ŷ(x) ± q`` where ``q`` is the
conformal quantile of the absolute out-of-fold residuals ``|y_i - ŷ_{-k(i)}(x_i)|``: the
``ceil((n + 1)(1 - α))``-th smallest of the ``n`` residuals (Vovk et al.; Barber et al. 2021, Ann.
Statist. 49, 486, the "CV" interval). Intervals have MAPIE's documented shape ``(n_samples, 2)``:
column 0 the lower bound, column 1 the upper.

Design decisions
----------------
* **Residuals come from the scheme that matches the use.** With ``scheme="loro"`` the residuals are
  those of predicting a whole C-rate never trained on, so the width reflects rate extrapolation,
  which is what a 2C trajectory needs; shuffled-CV residuals would only reflect interpolation in
  time and give intervals far too narrow at a new rate.
* **Leak-free calibration.** The residuals are out-of-fold for the whole procedure (member choice,
  weights); :func:`held_out_coverage` calibrates each held-out fold's intervals on *inner*
  residuals of its training folds only, then counts how often the held-out observations fall
  inside. That is the number to trust.
* We use the CV interval rather than MAPIE's CV+ (``CrossConformalRegressor(method="plus")``):
  CV+ re-fits the whole ensemble per fold and needs every fold model at prediction time, while its
  guarantee assumes exchangeable rows, which a C-rate never trained on breaks anyway; coverage at
  held-out rates is measured instead of assumed.

Examples
--------
>>> import numpy as np
>>> residuals = np.array([-0.2, 0.1, 0.05, -0.1, 0.3, 0.0, -0.05, 0.15, 0.12, -0.25])
>>> conformal_interval(np.array([1.0]), residuals, confidence=0.8).round(2).tolist()
[[0.75, 1.25]]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ecpif.errors import ConfigError, ModelError, did_you_mean

if TYPE_CHECKING:
    from ecpif.validate import ZooResult


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ConfigError(
            f"The confidence level must be a number strictly between 0 and 1 (e.g. 0.9); got "
            f"{confidence!r}."
        )
    return float(confidence)


def conformal_quantile(residuals: np.ndarray, confidence: float = 0.9) -> float:
    """Half-width ``q``: the ``ceil((n+1) confidence)``-th smallest absolute residual.

    Returns ``inf`` when there are too few residuals for the requested confidence
    (``n < confidence / (1 - confidence)``), as conformal prediction prescribes.

    >>> conformal_quantile(np.arange(1.0, 10.0), 0.8)
    8.0
    """
    confidence = _check_confidence(confidence)
    r = np.abs(np.asarray(residuals, dtype=float))
    r = np.sort(r[np.isfinite(r)])
    n = len(r)
    if n == 0:
        raise ModelError("No finite residuals to calibrate the interval; evaluate the model first.")
    k = math.ceil((n + 1) * confidence)
    return float("inf") if k > n else float(r[k - 1])


def conformal_interval(
    prediction: np.ndarray, residuals: np.ndarray, confidence: float = 0.9
) -> np.ndarray:
    """Intervals ``(n_samples, 2)`` around ``prediction`` from out-of-fold ``residuals``."""
    q = conformal_quantile(residuals, confidence)
    p = np.asarray(prediction, dtype=float)
    return np.column_stack([p - q, p + q])


def coverage(y: np.ndarray, intervals: np.ndarray) -> float:
    """Fraction of ``y`` inside ``intervals`` (bounds included).

    >>> coverage(np.array([0.0, 1.0, 5.0]), np.array([[-1, 1], [0, 2], [0, 2]]))
    0.6666666666666666
    """
    y = np.asarray(y, dtype=float)
    iv = np.asarray(intervals, dtype=float)
    if iv.shape != (len(y), 2):
        raise ConfigError(
            f"Intervals must have shape (n_samples, 2) = ({len(y)}, 2); got {iv.shape}."
        )
    return float(np.mean((y >= iv[:, 0]) & (y <= iv[:, 1])))


def held_out_coverage(
    result: ZooResult, *, model: str = "auto", confidence: float = 0.9
) -> pd.DataFrame:
    """Coverage of conformal intervals on each held-out fold, calibrated without that fold.

    For outer fold ``f``: ``q_f`` = conformal quantile of the *inner* out-of-fold residuals of
    ``model`` on the training folds of ``f``; intervals = outer prediction ± ``q_f`` on fold ``f``.
    With ``scheme="loro"`` every fold is a C-rate never seen in training or calibration.

    Parameters
    ----------
    result
        From :func:`ecpif.validate.evaluate_zoo` with ``ensembles=True`` (needed for the inner
        predictions).
    model
        A zoo model or ensemble name of the leaderboard.
    confidence
        Nominal coverage.

    Returns
    -------
    DataFrame
        One row per (target, held-out fold) plus a pooled ``"all"`` row per target: ``coverage``,
        ``nominal``, ``mean half-width``, ``n``.
    """
    from ecpif.ensemble import inner_columns

    confidence = _check_confidence(confidence)
    if not result.inner:
        raise ConfigError(
            "Held-out coverage needs the inner cross-validation predictions; run evaluate_zoo "
            "with ensembles=True."
        )
    names = inner_columns(result)
    if model not in names:
        raise ModelError(
            f"Unknown model {model!r} for coverage.{did_you_mean(model, names)} Choose one of the "
            f"leaderboard's models."
        )
    j = names.index(model)
    rows = []
    folds = result.folds
    for t in result.targets:
        y = result.y[t]
        pred = result.predictions[t][model].to_numpy()
        inside = np.zeros(len(y), dtype=bool)
        half = np.zeros(len(y))
        for f in range(folds.n_folds):
            train = folds.fold != f
            test = folds.fold == f
            r = y[train] - result.inner[t][f, train, j]
            q = conformal_quantile(r, confidence)
            iv = np.column_stack([pred[test] - q, pred[test] + q])
            inside[test] = (y[test] >= iv[:, 0]) & (y[test] <= iv[:, 1])
            half[test] = q
            rows.append({"target": t, "model": model, "held out": folds.labels[f],
                         "coverage": float(inside[test].mean()), "nominal": confidence,
                         "mean half-width": q, "n": int(test.sum())})  # fmt: skip
        rows.append({"target": t, "model": model, "held out": "all",
                     "coverage": float(inside.mean()), "nominal": confidence,
                     "mean half-width": float(half.mean()), "n": len(y)})  # fmt: skip
    return pd.DataFrame(rows)


__all__ = ["conformal_interval", "conformal_quantile", "coverage", "held_out_coverage"]
