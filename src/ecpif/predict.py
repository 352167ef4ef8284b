"""Structural trajectories for cycler-only runs, with intervals and an applicability-domain check.

A model trained on pattern-averaged features (:mod:`ecpif.align`) is applied here to the *same*
features computed at every cycler sample (:func:`ecpif.features.echem_features`), so the
trajectory has the cycler's own time resolution, e.g. one point every 10 s at 2C where no pattern
could be measured.

Applicability domain
--------------------
A model is only trustworthy inside the range of its training features. :func:`check_domain`
compares every feature with its training ``[min, max]`` and reports, per feature, how many rows lie
outside and in which row ranges (e.g. a C-rate of 2 when training covered 0.2-1).
:func:`predict_frame` emits one :class:`ApplicabilityWarning` naming them, and marks each row in
the ``in domain [-]`` column. Predictions are still made: extrapolation is sometimes the point
(2C), but never silently.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from ecpif.validate import evaluate_zoo
>>> from ecpif.ensemble import fit_ensemble
>>> df = pd.DataFrame({"charge [mA.h]": np.linspace(0, 100, 40)})
>>> df["a [Å]"] = 2.86 - 3e-4 * df["charge [mA.h]"]
>>> res = evaluate_zoo(df, ["charge [mA.h]"], ["a"], models=["ols", "ridge", "knn"], n_jobs=1)
>>> model = fit_ensemble(df, res, kind="best_single")
>>> out = predict_frame(model, pd.DataFrame({"charge [mA.h]": [50.0]}))
>>> out.columns.tolist()
['charge [mA.h]', 'a [Å]', 'lower a [Å]', 'upper a [Å]', 'in domain [-]']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.ensemble import TrainedEnsemble
from ecpif.errors import ConfigError, DataError
from ecpif.run import OperandoRun
from ecpif.uncertainty import conformal_interval

IN_DOMAIN = "in domain [-]"


class ApplicabilityWarning(UserWarning):
    """Some rows to predict lie outside the training range of one or more features."""


def lower_column(target: str) -> str:
    """Column of the interval's lower bound: ``"a [Å]"`` -> ``"lower a [Å]"``."""
    return f"lower {target}"


def upper_column(target: str) -> str:
    """Column of the interval's upper bound: ``"a [Å]"`` -> ``"upper a [Å]"``."""
    return f"upper {target}"


def _row_ranges(positions: np.ndarray, index: pd.Index, limit: int = 3) -> str:
    """Compress sorted row positions into ``"0-414, 500-512"`` (index labels)."""
    if positions.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(positions) > 1)
    starts = np.concatenate([[positions[0]], positions[breaks + 1]])
    ends = np.concatenate([positions[breaks], [positions[-1]]])
    parts = [
        f"{index[s]}" if s == e else f"{index[s]}-{index[e]}"
        for s, e in zip(starts[:limit], ends[:limit], strict=True)
    ]
    if len(starts) > limit:
        parts.append(f"... ({len(starts) - limit} more ranges)")
    return ", ".join(parts)


@dataclass(frozen=True)
class DomainReport:
    """Where a frame leaves the training range of a model's features.

    Attributes
    ----------
    table
        One row per feature with rows outside: ``feature``, ``training min``, ``training max``,
        ``min``, ``max`` (of the new data), ``rows outside``, ``row ranges``.
    inside
        Boolean per row: every feature within its training range.
    """

    table: pd.DataFrame
    inside: np.ndarray

    @property
    def ok(self) -> bool:
        return len(self.table) == 0

    def message(self) -> str:
        """One sentence naming the features, their training range and the rows outside it."""
        if self.ok:
            return "All rows lie within the training range of every feature."
        parts = [
            f"{r['feature']!r} spans {r['min']:.4g} to {r['max']:.4g} but training covered "
            f"{r['training min']:.4g} to {r['training max']:.4g} (rows {r['row ranges']})"
            for _, r in self.table.iterrows()
        ]
        return (
            f"{int((~self.inside).sum())} of {len(self.inside)} rows lie outside the training "
            f"domain: " + "; ".join(parts) + "; predictions there are extrapolations."
        )


def check_domain(
    model: TrainedEnsemble, frame: pd.DataFrame, *, tolerance: float = 1e-9
) -> DomainReport:
    """Compare ``frame``'s features with the training range of ``model``.

    ``tolerance`` is relative to each feature's training span (so constant features and rounding
    do not trigger false alarms).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from ecpif.ensemble import TrainedEnsemble
    >>> m = TrainedEnsemble(["C-rate label [1/h]"], [], {}, {}, {}, {}, "loro", {},
    ...                     {"C-rate label [1/h]": 0.2}, {"C-rate label [1/h]": 1.0}, {}, "", 0)
    >>> new = pd.DataFrame({"C-rate label [1/h]": [1.0, 2.0, 2.0]})
    >>> check_domain(m, new).table["row ranges"][0]
    '1-2'
    """
    model.check_features(frame)
    inside = np.ones(len(frame), dtype=bool)
    rows = []
    for f in model.features:
        lo, hi = model.feature_min[f], model.feature_max[f]
        tol = tolerance * max(hi - lo, abs(hi), abs(lo), 1e-300)
        values = frame[f].to_numpy(dtype=float)
        outside = (values < lo - tol) | (values > hi + tol)
        if outside.any():
            inside &= ~outside
            pos = np.flatnonzero(outside)
            rows.append({
                "feature": f, "training min": lo, "training max": hi,
                "min": float(np.nanmin(values)), "max": float(np.nanmax(values)),
                "rows outside": int(outside.sum()), "row ranges": _row_ranges(pos, frame.index),
            })  # fmt: skip
    columns = ["feature", "training min", "training max", "min", "max", "rows outside",
               "row ranges"]  # fmt: skip
    return DomainReport(pd.DataFrame(rows, columns=columns), inside)


def predict_frame(
    model: TrainedEnsemble,
    frame: pd.DataFrame,
    *,
    confidence: float | None = 0.9,
    keep: Sequence[str] | None = None,
    warn: bool = True,
) -> pd.DataFrame:
    """Predict every target for every row of a feature frame, with conformal intervals.

    Parameters
    ----------
    model
        A fitted :class:`~ecpif.ensemble.TrainedEnsemble` (or one loaded from a bundle).
    frame
        One row per sample, holding at least the model's features. Not modified.
    confidence
        Interval confidence (``None`` = no intervals).
    keep
        Columns of ``frame`` copied to the output first (default: time, timestamp, charge,
        current, voltage when present, plus the features).
    warn
        Emit an :class:`ApplicabilityWarning` when rows leave the training domain.

    Returns
    -------
    DataFrame
        ``keep`` columns, then per target the prediction, ``lower <target>`` and
        ``upper <target>``, then ``in domain [-]``.

    Raises
    ------
    ModelError
        ``frame`` lacks features the model needs (the message names them).
    DataError
        NaN or infinite feature values.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"The data to predict must be a pandas DataFrame; got {type(frame)}.")
    domain = check_domain(model, frame)
    if warn and not domain.ok:
        warnings.warn(domain.message(), ApplicabilityWarning, stacklevel=2)
    point = model.predict(frame)
    if keep is None:
        default = (schema.TIMESTAMP, schema.TIME, schema.VOLTAGE, schema.CURRENT, schema.CHARGE)
        keep = [c for c in default if c in frame.columns]
        keep += [f for f in model.features if f not in keep]
    missing = [c for c in keep if c not in frame.columns]
    if missing:
        raise DataError(f"Cannot keep column(s) {missing}: the data to predict lacks them.")
    out = frame[list(keep)].copy()
    for t in model.targets:
        out[t] = point[t].to_numpy()
        if confidence is not None:
            iv = conformal_interval(point[t].to_numpy(), model.residuals[t], confidence)
            out[lower_column(t)] = iv[:, 0]
            out[upper_column(t)] = iv[:, 1]
    out[IN_DOMAIN] = domain.inside
    return out


def run_features(
    model: TrainedEnsemble,
    run: OperandoRun | pd.DataFrame,
    *,
    nominal_capacity_Ah: float | None = None,
    c_rate: float | None = None,
) -> pd.DataFrame:
    """Per-sample features of a cycler-only run, as the model expects them.

    Uses :func:`ecpif.features.echem_features`; a constant C-rate label feature is filled from
    ``c_rate`` or the run's metadata when the model was trained with one.
    """
    from ecpif.features import echem_features

    if isinstance(run, OperandoRun):
        echem = run.echem
        nominal_capacity_Ah = nominal_capacity_Ah or run.metadata.nominal_capacity_Ah
        c_rate = c_rate if c_rate is not None else run.metadata.c_rate
    elif isinstance(run, pd.DataFrame):
        echem = run
    else:
        raise ConfigError(
            f"Expected an OperandoRun or a cycler DataFrame to predict; got {type(run).__name__}."
        )
    if nominal_capacity_Ah is None:
        nominal_capacity_Ah = model.info.get("nominal_capacity_Ah")
    feats = echem_features(echem, nominal_capacity_Ah=nominal_capacity_Ah)
    if schema.C_RATE_LABEL in model.features and schema.C_RATE_LABEL not in feats.columns:
        if c_rate is None:
            raise ConfigError(
                f"The model uses the feature {schema.C_RATE_LABEL!r}, but the run carries no "
                f"C-rate; pass c_rate= (e.g. c_rate=2.0 for a 2C run)."
            )
        feats[schema.C_RATE_LABEL] = float(c_rate)
    return feats


def predict_run(
    model: TrainedEnsemble,
    run: OperandoRun | pd.DataFrame,
    *,
    nominal_capacity_Ah: float | None = None,
    c_rate: float | None = None,
    confidence: float | None = 0.9,
    warn: bool = True,
) -> pd.DataFrame:
    """Continuous structural trajectories of a cycler-only run, at the cycler's own sampling.

    Parameters
    ----------
    model
        Trained model (:func:`ecpif.ensemble.fit_ensemble` or :func:`ecpif.bundle.load_bundle`).
    run
        An :class:`~ecpif.run.OperandoRun` (patterns may be empty) or its cycler frame.
    nominal_capacity_Ah, c_rate
        Override / supply what the run's metadata would give.
    confidence
        Interval confidence (``None`` = no intervals).
    warn
        Warn about rows outside the training domain.

    Examples
    --------
    >>> runs = ecpif.datasets.load_nca_demo()  # doctest: +SKIP
    >>> traj = predict_run(model, runs[-1])  # doctest: +SKIP
    """
    feats = run_features(model, run, nominal_capacity_Ah=nominal_capacity_Ah, c_rate=c_rate)
    return predict_frame(model, feats, confidence=confidence, warn=warn)


__all__ = [
    "IN_DOMAIN",
    "ApplicabilityWarning",
    "DomainReport",
    "check_domain",
    "lower_column",
    "predict_frame",
    "predict_run",
    "run_features",
    "upper_column",
]
