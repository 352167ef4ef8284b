"""Cross-validation of the model zoo: schemes, folds, and the leaderboard.

:func:`evaluate_zoo` fits every requested model of :mod:`ecpif.zoo` on every training fold of one
cross-validation *scheme* and scores the out-of-fold predictions, per target:

``"shuffled"``
    ``KFold(n_splits, shuffle=True, random_state)`` over patterns. Neighbouring patterns of the same
    run land in different folds, so this measures *interpolation in time*; it is what the reference
    study reported, and is kept for comparison.
``"grouped"``
    ``GroupKFold`` over the group column (default ``run id``): whole runs are held out.
``"loro"``
    Leave-one-rate-out, ``LeaveOneGroupOut`` over the C-rate column: the honest estimate of
    predicting a rate that was never measured.

Design decisions
----------------
* **Engine independent of the data source.** The input is one DataFrame (one row per diffraction
  pattern) and lists of feature and target columns; esd columns ``"esd <target>"`` are optional and
  only used to express RMSE in units of the refinement esd.
* **Every row is predicted exactly once** (all three schemes partition the rows), so each model's
  out-of-fold predictions form one column and the scores are computed on the pooled predictions.
* **Nested predictions for ensembles without extra leakage or cost.** With ``ensembles`` on, each
  model is also fitted on every union of ``K - 2`` folds. For the outer fold ``f``, the predictions
  of the fits that leave out ``{f, g}`` on fold ``g`` are an inner cross-validation of the outer
  training rows (grouped in the same way as the outer scheme). Ensemble members, voting and stacking
  weights and interval widths are chosen from those inner predictions only: the outer test fold
  never reaches them (see :mod:`ecpif.ensemble`). Each inner training set is shared by two outer
  folds, so K=5 costs 15 fits per model, not 5 + 5 x 4.
* **Deterministic**: each task builds its model from ``(name, random_state)`` and fits it on a
  fixed, sorted set of rows, so results do not depend on ``n_jobs`` or scheduling. Only the timing
  columns are measurements.
* **Parallel** across (model, training set) tasks with joblib; models themselves use one thread.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x [-]": rng.uniform(size=60)})
>>> df["y [-]"] = np.sin(3 * df["x [-]"]) + 0.01 * rng.normal(size=60)
>>> res = evaluate_zoo(df, ["x [-]"], ["y [-]"], models=["ols", "knn"], n_jobs=1,
...                    ensembles=False)
>>> res.leaderboard[["model", "rank"]].to_dict("list")
{'model': ['knn', 'ols'], 'rank': [1, 2]}
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from threadpoolctl import threadpool_limits

from ecpif import features as feat
from ecpif import schema
from ecpif.errors import ConfigError, DataError, ModelError, did_you_mean
from ecpif.zoo import available_models, make_model, model_spec

Scheme = Literal["shuffled", "grouped", "loro"]

#: Default model inputs: absolute quantities that exist for any cycler run, per sample and per
#: pattern window. Charge passed (not SOC normalised per run, which shifts with the rate's
#: accessible capacity and misleads extrapolation to a new rate), current and C-rate (which carry
#: the kinetic lag), voltage and direction.
DEFAULT_FEATURES: tuple[str, ...] = (
    schema.VOLTAGE,
    schema.CURRENT,
    schema.CHARGE,
    feat.DIRECTION,
    feat.C_RATE,
)
SCHEMES: tuple[str, ...] = ("shuffled", "grouped", "loro")

# Leaderboard columns, written once.
TARGET = "target"
MODEL = "model"
KIND = "kind"
SCHEME = "scheme"
R2 = "R²"
RMSE = "RMSE"
MAE = "MAE"
RMSE_ESD = "RMSE/esd"
FIT_TIME = "fit time [s]"
PREDICT_TIME = "predict time [s]"
RANK = "rank"
N_ROWS = "n rows"
N_FOLDS = "n folds"
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    TARGET, MODEL, KIND, SCHEME, R2, RMSE, MAE, RMSE_ESD, FIT_TIME, PREDICT_TIME, RANK,
    N_ROWS, N_FOLDS,
)  # fmt: skip


# --- scores --------------------------------------------------------------------------------------


def scores(y_true: np.ndarray, y_pred: np.ndarray, esd: float | None = None) -> dict[str, float]:
    """R², RMSE, MAE (target units) and RMSE/esd of a prediction.

    >>> scores(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), esd=0.5)["RMSE/esd"]
    1.1547005383792515
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    rmse = float(np.sqrt(np.mean(err**2)))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    return {
        R2: r2,
        RMSE: rmse,
        MAE: float(np.mean(np.abs(err))),
        RMSE_ESD: rmse / esd if esd else float("nan"),
    }


# --- input checks --------------------------------------------------------------------------------


def resolve_columns(data: pd.DataFrame, names: Sequence[str], what: str) -> list[str]:
    """Check that ``names`` are numeric columns of ``data``; short parameter names are resolved.

    ``what`` is ``"feature"`` or ``"target"`` and appears in the error messages.
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ConfigError(f"At least one {what} column is needed; got an empty list.")
    out = []
    for name in names:
        column = schema.parameter_column(str(name)) if what == "target" else str(name)
        if column not in data.columns:
            raise ModelError(
                f"The {what} {name!r} is not a column of the training data."
                f"{did_you_mean(column, [str(c) for c in data.columns])} The data has "
                f"{len(data.columns)} columns; pass names exactly as they appear."
            )
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise DataError(
                f"The {what} column {column!r} holds {data[column].dtype} values, not "
                f"numbers; convert or encode it before training."
            )
        if column in out:
            raise ConfigError(f"The {what} {column!r} is listed twice; list each column once.")
        out.append(column)
    return out


def check_finite(data: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise :class:`DataError` naming the first rows where ``columns`` hold NaN or infinity."""
    for column in columns:
        values = data[column].to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            rows = ", ".join(str(data.index[i]) for i in bad[:5])
            more = f" and {bad.size - 5} more" if bad.size > 5 else ""
            kind = "missing (NaN)" if np.isnan(values[bad[0]]) else "infinite"
            raise DataError(
                f"The {what} column {column!r} has {bad.size} {kind} value(s) at row(s) "
                f"{rows}{more}; drop those rows (e.g. data.dropna(subset=[{column!r}])) or fill "
                f"them before training."
            )


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ConfigError(
            f"Unknown cross-validation scheme {scheme!r}.{did_you_mean(str(scheme), SCHEMES)} "
            f"Choose one of {list(SCHEMES)}."
        )
    return scheme


def resolve_models(models: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every available model; otherwise check each name (unknown -> ModelError)."""
    if isinstance(models, str):
        if models == "all":
            return available_models()
        models = [models]
    names = list(models)
    if not names:
        raise ConfigError("At least one model is needed; got an empty list.")
    for name in names:
        model_spec(name)  # raises ModelError with a suggestion
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"Model {dup!r} is listed twice; list each model once.")
    return names


# --- folds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Folds:
    """A partition of the rows into test folds.

    Attributes
    ----------
    scheme
        The scheme that produced it.
    fold
        Fold id of every row (``0 .. n_folds - 1``).
    labels
        One human-readable label per fold, e.g. ``"C-rate label [1/h] = 2"``.
    """

    scheme: str
    fold: np.ndarray
    labels: tuple[str, ...]

    @property
    def n_folds(self) -> int:
        return len(self.labels)

    def split(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(train, test)`` row positions per fold, as scikit-learn splitters yield them."""
        return [
            (np.flatnonzero(self.fold != k), np.flatnonzero(self.fold == k))
            for k in range(self.n_folds)
        ]

    def inner_split(self, outer: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Inner CV of the training rows of ``outer``: leave each other fold out in turn.

        Positions are relative to the outer training rows (as ``StackingRegressor(cv=...)``
        expects).
        """
        train = np.flatnonzero(self.fold != outer)
        inner_fold = self.fold[train]
        return [
            (np.flatnonzero(inner_fold != g), np.flatnonzero(inner_fold == g))
            for g in range(self.n_folds)
            if g != outer
        ]


def make_folds(
    data: pd.DataFrame,
    scheme: str = "shuffled",
    *,
    n_splits: int = 5,
    group_col: str = schema.RUN_ID,
    rate_col: str = schema.C_RATE_LABEL,
    random_state: int = 0,
) -> Folds:
    """Assign every row to one test fold of ``scheme``.

    Parameters
    ----------
    data
        Training frame (one row per pattern).
    scheme
        ``"shuffled"``, ``"grouped"`` or ``"loro"`` (see the module docstring).
    n_splits
        Folds of ``"shuffled"``; the maximum for ``"grouped"`` (capped at the number of groups).
        ``"loro"`` has one fold per rate.
    group_col, rate_col
        Columns holding the group (run) and the C-rate label.
    random_state
        Seed of the shuffle.

    Examples
    --------
    >>> df = pd.DataFrame({"C-rate label [1/h]": [0.2, 0.2, 0.5, 0.5, 1.0, 1.0]})
    >>> make_folds(df, "loro").fold.tolist()
    [0, 0, 1, 1, 2, 2]
    """
    _check_scheme(scheme)
    n = len(data)
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ConfigError(f"n_splits must be an integer >= 2; got {n_splits!r}.")
    fold = np.full(n, -1, dtype=int)
    if scheme == "shuffled":
        if n < n_splits:
            raise ModelError(
                f"The training data has {n} rows but the 'shuffled' scheme needs at least "
                f"{n_splits} (one per fold); add data or lower n_splits."
            )
        splitter = KFold(n_splits, shuffle=True, random_state=random_state)
        labels = tuple(f"shuffled fold {k + 1}/{n_splits}" for k in range(n_splits))
        for k, (_, test) in enumerate(splitter.split(np.zeros(n))):
            fold[test] = k
        return Folds(scheme, fold, labels)

    column = group_col if scheme == "grouped" else rate_col
    if column not in data.columns:
        raise ConfigError(
            f"The {scheme!r} scheme needs the column {column!r}, which the training data "
            f"lacks.{did_you_mean(column, [str(c) for c in data.columns])} Pass "
            f"{'group_col' if scheme == 'grouped' else 'rate_col'}= to name another column."
        )
    groups = data[column]
    if groups.isna().any():
        i = data.index[int(np.flatnonzero(groups.isna().to_numpy())[0])]
        raise DataError(
            f"The group column {column!r} has a missing value at row {i}; every row needs a "
            f"group for the {scheme!r} scheme."
        )
    uniques = sorted(pd.unique(groups), key=lambda v: (str(type(v)), v))
    if len(uniques) < 2:
        raise ModelError(
            f"The {scheme!r} scheme needs at least 2 distinct values in {column!r} but the data "
            f"has {len(uniques)} ({uniques}); use scheme='shuffled' or add runs."
        )
    codes = pd.Categorical(groups, categories=uniques).codes
    if scheme == "grouped":
        k = min(n_splits, len(uniques))
        for f, (_, test) in enumerate(GroupKFold(k).split(np.zeros(n), groups=codes)):
            fold[test] = f
        labels = tuple(
            f"{column} in {sorted({str(u) for u in pd.unique(groups.iloc[fold == f])})}"
            for f in range(k)
        )
        return Folds(scheme, fold, labels)
    for f, (_, test) in enumerate(LeaveOneGroupOut().split(np.zeros(n), groups=codes)):
        fold[test] = f
    labels = tuple(f"{column} = {uniques[f]:g}" if isinstance(uniques[f], float | int)
                   else f"{column} = {uniques[f]}" for f in range(len(uniques)))  # fmt: skip
    return Folds(scheme, fold, labels)


# --- the result ----------------------------------------------------------------------------------


@dataclass
class ZooResult:
    """Everything :func:`evaluate_zoo` measured.

    Attributes
    ----------
    leaderboard
        One row per (target, model or ensemble): scheme, R², RMSE, MAE (target units), RMSE/esd
        (RMSE divided by the median esd of the target, NaN without esd column), mean fit and
        predict CPU time per fold (one thread; for ensembles the members' cost), rank within the
        target (1 = lowest RMSE).
    predictions
        ``{target: DataFrame}`` of out-of-fold predictions, one column per model or ensemble,
        indexed like the input data.
    folds
        The :class:`Folds` used (same for every target and model).
    features, targets
        Columns used.
    y
        ``{target: observed values}``.
    esd
        ``{target: median esd}`` (NaN when absent).
    inner
        ``{target: array (n_folds, n_rows, n_models)}``: inner-CV predictions on the training
        rows of each outer fold (NaN elsewhere); empty unless ensembles were requested.
    ensemble_details
        Members, weights and the choice of "auto" per target and outer fold.
    fold_scores
        RMSE per (target, model, fold), with the fold's label (e.g. the held-out rate).
    """

    leaderboard: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    folds: Folds
    features: list[str]
    targets: list[str]
    models: list[str]
    y: dict[str, np.ndarray]
    esd: dict[str, float]
    random_state: int
    inner: dict[str, np.ndarray] = field(default_factory=dict)
    ensemble_details: pd.DataFrame = field(default_factory=pd.DataFrame)
    fold_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict[str, Any] = field(default_factory=dict)
    """Arguments of the run, plus ``n_fits`` and ``cpu_seconds`` (total CPU time of all fits)."""
    tuning: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per hyperparameter search of a tuned model (:mod:`ecpif.tune`): model, training
    folds, target, best settings, inner RMSE tuned and with defaults, trials, search time."""

    @property
    def scheme(self) -> str:
        return self.folds.scheme

    def for_target(self, target: str) -> pd.DataFrame:
        """The leaderboard of one target, best first."""
        column = self._target(target)
        lb = self.leaderboard[self.leaderboard[TARGET] == column]
        return lb.sort_values(RANK).reset_index(drop=True)

    def best(self, target: str, *, kind: str | None = None) -> str:
        """Name of the best model (or ensemble) of a target; ``kind="model"`` for zoo models."""
        lb = self.for_target(target)
        if kind is not None:
            lb = lb[lb[KIND] == kind]
        return str(lb[MODEL].iloc[0])

    def _target(self, target: str) -> str:
        column = schema.parameter_column(target)
        if column not in self.targets:
            raise ModelError(
                f"Target {target!r} was not evaluated.{did_you_mean(column, self.targets)} "
                f"Evaluated targets: {self.targets}."
            )
        return column

    def scores_table(self) -> pd.DataFrame:
        """Leaderboard as a wide table: one row per model, RMSE/esd (or RMSE) per target."""
        value = RMSE_ESD if self.leaderboard[RMSE_ESD].notna().all() else RMSE
        return self.leaderboard.pivot(index=MODEL, columns=TARGET, values=value)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the leaderboard to CSV atomically; returns the path."""
        return write_csv_atomic(self.leaderboard, path)

    def predictions_frame(self) -> pd.DataFrame:
        """Out-of-fold predictions in long form (row, target, fold, observed, model, predicted)."""
        parts = []
        for target, frame in self.predictions.items():
            long = frame.reset_index(names="row").melt(
                id_vars="row", var_name=MODEL, value_name="predicted"
            )
            long.insert(1, TARGET, target)
            pos = np.tile(np.arange(len(frame)), frame.shape[1])
            long.insert(2, "fold", self.folds.fold[pos])
            long.insert(3, "observed", self.y[target][pos])
            parts.append(long)
        return pd.concat(parts, ignore_index=True)


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` through a temporary file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- the work ------------------------------------------------------------------------------------


def _takes_groups(model: Any) -> bool:
    """Whether ``model.fit`` takes a ``groups`` argument (searching models of ecpif.tune do)."""
    import inspect

    try:
        return "groups" in inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False


def _fit_predict(
    name: str,
    key: tuple[int, ...],
    X: np.ndarray,
    Y: np.ndarray,
    fold: np.ndarray,
    random_state: int,
    factory: Any = None,
) -> tuple[str, tuple[int, ...], np.ndarray, float, float, list[dict[str, Any] | None]]:
    """Fit ``name`` once per target on the rows of folds ``key``; predict every other row.

    ``factory(random_state)`` builds the model when given: tasks then carry the model itself, so
    workers of a distributed backend need no registry entry for models registered at run time
    (plug-ins, tuned variants). The last element holds each target's search summary for tuned
    models (``None`` for others).
    """
    train = np.isin(fold, key)
    test = ~train
    preds = np.full((int(test.sum()), Y.shape[1]), np.nan)
    fit_time = predict_time = 0.0
    info: list[dict[str, Any] | None] = []
    with warnings.catch_warnings(), threadpool_limits(1):
        # One thread per fit: parallelism is across tasks, and OpenMP/BLAS threads on tiny
        # problems only add contention. Convergence chatter of individual fits is noise in a
        # 1000-fit sweep; the scores show it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        for j in range(Y.shape[1]):
            model = (
                factory(random_state)
                if factory is not None
                else make_model(name, random_state=random_state)
            )
            # A model that searches its own settings (ecpif.tune) gets the outer fold ids of its
            # training rows, so its inner CV holds out whole folds as the scheme does.
            fit_params = {"groups": fold[train]} if _takes_groups(model) else {}
            # CPU time of this (single-threaded) worker: robust to other jobs on the machine.
            t0 = time.process_time()
            model.fit(X[train], Y[train, j], **fit_params)
            t1 = time.process_time()
            preds[:, j] = model.predict(X[test])
            t2 = time.process_time()
            fit_time += t1 - t0
            predict_time += t2 - t1
            info.append(getattr(model, "tuning_info_", None))
    return name, key, preds, fit_time / Y.shape[1], predict_time / Y.shape[1], info


def _cache_keys(
    tasks: Sequence[tuple[str, tuple[int, ...]]],
    factories: dict[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    fold: np.ndarray,
    random_state: int,
    fit_cache: dict[Any, Any] | None,
) -> dict[tuple[str, tuple[int, ...]], tuple[Any, ...]]:
    """Key of each task's fit in ``fit_cache``: data, seed, model factory and training rows.

    A model that takes ``groups`` (a tuned one) also sees the fold ids of its training rows, so
    those are part of its key.
    """
    if fit_cache is None:
        return {}
    import hashlib

    data_key = hashlib.sha256(X.tobytes() + Y.tobytes() + repr(X.shape + Y.shape).encode())
    takes_groups = {m: _takes_groups(f(random_state)) for m, f in factories.items()}
    keys = {}
    for m, key in tasks:
        train = np.isin(fold, key)
        rows = train.tobytes() + (fold[train].tobytes() if takes_groups[m] else b"")
        keys[(m, key)] = (data_key.hexdigest(), random_state, m, factories[m], rows)
    return keys


def evaluate_zoo(
    data: pd.DataFrame,
    features: Sequence[str],
    targets: Sequence[str],
    *,
    models: str | Sequence[str] = "all",
    scheme: str = "shuffled",
    n_splits: int = 5,
    group_col: str = schema.RUN_ID,
    rate_col: str = schema.C_RATE_LABEL,
    ensembles: bool = True,
    top_k: int = 5,
    preset: str | None = None,
    n_jobs: int = 2,
    random_state: int = 0,
    fit_cache: dict[Any, Any] | None = None,
) -> ZooResult:
    """Cross-validate every model (and the ensembles) of the zoo on one scheme.

    Parameters
    ----------
    data
        Training frame, one row per diffraction pattern. It is not modified.
    features
        Feature columns (numeric, finite).
    targets
        Target columns or short parameter names (``"a"`` -> ``"a [Å]"``); numeric, no NaN.
    models
        ``"all"`` (every available zoo model) or a list of names.
    scheme
        ``"shuffled"``, ``"grouped"`` or ``"loro"``; recorded in every leaderboard row.
    n_splits
        Folds of the shuffled scheme (upper bound for grouped).
    group_col, rate_col
        Group (run) column for ``"grouped"``, C-rate column for ``"loro"``.
    ensembles
        Also evaluate best-single / voting / stacking / auto ensembles over the ``top_k`` models,
        chosen inside each outer training fold (needs >= 3 folds).
    top_k
        Members of the voting and stacking ensembles.
    preset
        ``"study"`` adds the reference study's choice (voting for a, c, d; stacking for
        li_occupancy) as the ensemble ``"study"``.
    n_jobs
        joblib workers (across models and folds). Results do not depend on it.
    random_state
        Seed of the shuffled folds and of every model.
    fit_cache
        A dict shared by calls on the same data, e.g. the schemes of one study: a fit of the
        same model, seed and training rows is taken from it instead of being repeated (grouped
        and leave-one-rate-out folds coincide when every run has its own rate). Fits are
        deterministic, so the results are identical with or without it.

    Returns
    -------
    ZooResult

    Raises
    ------
    ModelError
        Unknown model, feature or target; too few rows or groups for the folds.
    DataError
        Non-numeric columns, NaN or infinite values in features or targets.
    ConfigError
        Bad scheme or settings.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"q [mA.h]": rng.uniform(0, 100, 80)})
    >>> df["a [Å]"] = 2.86 - 2e-4 * df["q [mA.h]"] + 3e-4 * rng.normal(size=80)
    >>> res = evaluate_zoo(df, ["q [mA.h]"], ["a"], models=["ols", "ridge", "knn"], n_jobs=1)
    >>> res.best("a", kind="model") in {"ols", "ridge"}
    True
    """
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(f"The training data must be a pandas DataFrame; got {type(data)}.")
    _check_scheme(scheme)
    feature_cols = resolve_columns(data, features, "feature")
    target_cols = resolve_columns(data, targets, "target")
    overlap = sorted(set(feature_cols) & set(target_cols))
    if overlap:
        raise ConfigError(
            f"The column {overlap[0]!r} is both a feature and a target; a model must not see "
            f"what it predicts."
        )
    names = resolve_models(models)
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive integer or -1; got {n_jobs!r}.")
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be an integer >= 1; got {top_k!r}.")
    check_finite(data, feature_cols, "feature")
    check_finite(data, target_cols, "target")
    folds = make_folds(
        data, scheme, n_splits=n_splits, group_col=group_col, rate_col=rate_col,
        random_state=random_state,
    )  # fmt: skip
    if ensembles and folds.n_folds < 3:
        raise ModelError(
            f"Ensembles need at least 3 folds to choose members inside each training fold, but "
            f"the {scheme!r} scheme gives {folds.n_folds}; pass ensembles=False or add groups."
        )

    X = data[feature_cols].to_numpy(dtype=float)
    Y = data[target_cols].to_numpy(dtype=float)
    K = folds.n_folds
    all_folds = tuple(range(K))
    outer_keys = [tuple(g for g in all_folds if g != f) for f in all_folds]
    inner_keys = (
        [
            tuple(g for g in all_folds if g not in pair)
            for pair in itertools.combinations(all_folds, 2)
        ]
        if ensembles
        else []
    )  # fmt: skip
    tasks = [(m, key) for m in names for key in outer_keys + inner_keys]
    factories = {m: model_spec(m).factory for m in names}
    cache_keys = _cache_keys(tasks, factories, X, Y, folds.fold, random_state, fit_cache)
    reused = [
        (m, key, *fit_cache[cache_keys[(m, key)]])
        for m, key in tasks
        if fit_cache is not None and cache_keys[(m, key)] in fit_cache
    ]
    done = {(m, key) for m, key, *_ in reused}
    out = Parallel(n_jobs=n_jobs)(
        delayed(_fit_predict)(m, key, X, Y, folds.fold, random_state, factories[m])
        for m, key in tasks
        if (m, key) not in done
    )
    n_targets = len(target_cols)
    cpu_seconds = float(sum((ft + pt) * n_targets for _, _, _, ft, pt, _ in out))
    if fit_cache is not None:
        fit_cache.update({cache_keys[(m, key)]: tuple(rest) for m, key, *rest in out})
    by_task = {(row[0], row[1]): row for row in [*out, *reused]}
    out = [by_task[task] for task in tasks]  # task order, as without the cache
    fits = {(m, key): (preds, ft, pt) for m, key, preds, ft, pt, _ in out}
    tuning_rows = [
        {MODEL: m, "training folds": list(key), TARGET: target_cols[j], **summary}
        for m, key, _, _, _, summaries in out
        for j, summary in enumerate(summaries)
        if summary is not None
    ]

    n, M = len(data), len(names)
    esd = {}
    for t in target_cols:
        esd_col = schema.esd_column(t)
        esd[t] = (
            float(np.nanmedian(data[esd_col].to_numpy(dtype=float)))
            if esd_col in data.columns
            else float("nan")
        )
    predictions: dict[str, pd.DataFrame] = {}
    inner: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    fold_rows: list[dict[str, Any]] = []
    timings = {m: (0.0, 0.0) for m in names}
    for m in names:
        ft = np.mean([fits[(m, k)][1] for k in outer_keys])
        pt = np.mean([fits[(m, k)][2] for k in outer_keys])
        timings[m] = (float(ft), float(pt))
    for j, t in enumerate(target_cols):
        oof = np.full((n, M), np.nan)
        for i, m in enumerate(names):
            for f, key in zip(all_folds, outer_keys, strict=True):
                # Predictions are stored for the complement of the training folds, in row order.
                oof[folds.fold == f, i] = fits[(m, key)][0][:, j]
        predictions[t] = pd.DataFrame(oof, index=data.index, columns=names)
        if ensembles:
            nested = np.full((K, n, M), np.nan)
            for key in inner_keys:
                left = [g for g in all_folds if g not in key]
                test_mask = ~np.isin(folds.fold, key)
                for i, m in enumerate(names):
                    col = np.full(n, np.nan)
                    col[test_mask] = fits[(m, key)][0][:, j]
                    for f in left:
                        # Fit leaving out {f, g}: an inner prediction of fold g for outer fold f.
                        g = left[0] if left[1] == f else left[1]
                        nested[f, folds.fold == g, i] = col[folds.fold == g]
            inner[t] = nested

    for j, t in enumerate(target_cols):
        y = Y[:, j]
        for m in names:
            p = predictions[t][m].to_numpy()
            rows.append({
                TARGET: t, MODEL: m, KIND: "model", SCHEME: scheme,
                **scores(y, p, esd[t]), FIT_TIME: timings[m][0], PREDICT_TIME: timings[m][1],
            })  # fmt: skip
            for f in all_folds:
                sel = folds.fold == f
                fold_rows.append({
                    TARGET: t, MODEL: m, "fold": f, "held out": folds.labels[f],
                    RMSE: float(np.sqrt(np.mean((p[sel] - y[sel]) ** 2))),
                })  # fmt: skip

    result = ZooResult(
        leaderboard=pd.DataFrame(rows),
        predictions=predictions,
        folds=folds,
        features=feature_cols,
        targets=target_cols,
        models=names,
        y={t: Y[:, j].copy() for j, t in enumerate(target_cols)},
        esd=esd,
        random_state=random_state,
        inner=inner,
        fold_scores=pd.DataFrame(fold_rows),
        tuning=pd.DataFrame(tuning_rows),
        settings={
            "scheme": scheme, "n_splits": n_splits, "group_col": group_col,
            "rate_col": rate_col, "top_k": top_k, "preset": preset,
            "n_fits": len(tasks) * n_targets, "cpu_seconds": cpu_seconds,
            "n_reused_fits": len(reused) * n_targets,
        },
    )  # fmt: skip
    if ensembles:
        from ecpif.ensemble import add_ensembles  # ensemble builds on this module's result

        add_ensembles(result, top_k=top_k, preset=preset, timings=timings)
    finalize_leaderboard(result)
    return result


def finalize_leaderboard(result: ZooResult) -> None:
    """Rank within each target (RMSE, then name for ties) and order the columns."""
    lb = result.leaderboard.copy()
    lb[N_ROWS] = len(result.folds.fold)
    lb[N_FOLDS] = result.folds.n_folds
    lb = lb.sort_values([TARGET, RMSE, MODEL], kind="mergesort").reset_index(drop=True)
    lb[RANK] = lb.groupby(TARGET).cumcount() + 1
    order = {t: i for i, t in enumerate(result.targets)}
    lb = lb.sort_values([TARGET, RANK], key=lambda s: s.map(order) if s.name == TARGET else s)
    result.leaderboard = lb[list(LEADERBOARD_COLUMNS)].reset_index(drop=True)
    if len(result.fold_scores):
        result.fold_scores = result.fold_scores.reset_index(drop=True)


__all__ = [
    "DEFAULT_FEATURES",
    "LEADERBOARD_COLUMNS",
    "SCHEMES",
    "Folds",
    "ZooResult",
    "evaluate_zoo",
    "make_folds",
    "resolve_columns",
    "resolve_models",
    "scores",
    "write_csv_atomic",
]
