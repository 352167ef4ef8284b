"""Ensembles of zoo models: best single, voting, stacking (convex meta-learner), automatic choice.

Builders return scikit-learn's own :class:`~sklearn.ensemble.VotingRegressor` and
:class:`~sklearn.ensemble.StackingRegressor`; the meta-learner of stacking is
:class:`ConvexStacker`, a combination of the base predictions with **non-negative weights that
sum to one**.

Why a constrained meta-learner
------------------------------
Base models of a good zoo agree to within noise, so their predictions are nearly collinear. A
prototype stacked them with an unconstrained ``RidgeCV``: the lattice parameter *a* varies by
~0.02 Å, the base predictions' variance is ~1e-4 Å², far below the ridge penalty, so every weight
was shrunk to ~0 and the stack predicted the mean (R² 0.57 while every base had 0.998). A convex
combination cannot leave the hull of its members: it is never worse than the worst member, is
invariant to the target's offset and scale, and its weights stay interpretable.

Honest evaluation (no leakage)
------------------------------
:func:`add_ensembles` is called by :func:`ecpif.validate.evaluate_zoo` with the *inner*
cross-validated predictions of every model on the training rows of each outer fold. Inside each
outer fold it (1) ranks the models by inner RMSE and keeps the ``top_k``, (2) fits the stacking
weights on the inner predictions of those members, (3) for ``"auto"`` picks best single, voting or
stacking by inner RMSE (stacking's own inner score is cross-fitted over the inner folds), and then
(4) predicts the outer test fold with the members fitted on the whole outer training set, i.e. the
very fits the zoo already scored. This is exactly what ``VotingRegressor`` / ``StackingRegressor``
fitted on the outer training rows would predict (a test checks the equality), at no extra fitting
cost. The outer test fold reaches none of the choices.

Examples
--------
>>> import numpy as np
>>> P = np.column_stack([np.linspace(0, 1, 50), np.linspace(0, 1, 50) + 0.01])
>>> convex_weights(P, np.linspace(0, 1, 50) + 0.004).round(2).tolist()
[0.6, 0.4]
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import StackingRegressor, VotingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ecpif import features as feat
from ecpif import schema
from ecpif.errors import ConfigError, DataError, ModelError, did_you_mean
from ecpif.zoo import make_model, model_spec

if TYPE_CHECKING:
    from ecpif.validate import ZooResult

#: Names under which ensembles appear in the leaderboard.
BEST_SINGLE = "best_single"
VOTING = "voting"
STACKING = "stacking"
AUTO = "auto"
STUDY = "study"
ENSEMBLE_NAMES: tuple[str, ...] = (BEST_SINGLE, VOTING, STACKING, AUTO, STUDY)

#: The reference study's ensembles: voting for a, c, d; stacking for the Li occupancy.
PRESETS: dict[str, dict[str, str]] = {
    "study": {"a": VOTING, "c": VOTING, "d": VOTING, "li_occupancy": STACKING},
}


# --- the convex meta-learner ---------------------------------------------------------------------


def convex_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares weights ``w >= 0, sum(w) = 1`` such that ``P @ w ~ y``.

    Solved as a non-negative least-squares problem (:func:`scipy.optimize.nnls`) with the
    sum-to-one constraint appended as a heavily weighted equation. Centring ``P`` and ``y`` on the
    mean of ``y`` leaves the solution unchanged (the weights sum to one) and keeps the problem well
    conditioned for targets with a large offset, such as lattice parameters.

    >>> convex_weights(np.array([[1.0, 3.0], [2.0, 4.0]]), np.array([2.0, 3.0])).round(6).tolist()
    [0.5, 0.5]
    """
    P = np.asarray(P, dtype=float)
    y = np.asarray(y, dtype=float)
    k = P.shape[1]
    if k == 1:
        return np.ones(1)
    offset = float(np.mean(y))
    Pc, yc = P - offset, y - offset
    scale = float(np.sqrt(np.mean(Pc**2))) or 1.0
    lam = 1e3 * scale * np.sqrt(len(y))
    A = np.vstack([Pc, np.full((1, k), lam)])
    b = np.concatenate([yc, [lam]])
    w, _ = nnls(A, b, maxiter=50 * k)
    total = w.sum()
    return w / total if total > 0 else np.full(k, 1.0 / k)


class ConvexStacker(RegressorMixin, BaseEstimator):
    """Meta-learner: a convex combination (``w >= 0``, ``sum(w) = 1``, no intercept) of its inputs.

    Attributes
    ----------
    coef_
        The weights, one per input column.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]])
    >>> ConvexStacker().fit(X, [2.0, 3.0, 4.0]).coef_.round(6).tolist()
    [0.5, 0.5]
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> ConvexStacker:
        X, y = validate_data(self, X, y, y_numeric=True)
        self.coef_ = convex_weights(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False)
        return np.asarray(X @ self.coef_)


def build_voting(members: Sequence[str], *, random_state: int = 0) -> VotingRegressor:
    """An unfitted ``VotingRegressor`` averaging zoo models ``members``.

    >>> build_voting(["ridge", "knn"]).estimators[1][0]
    'knn'
    """
    _check_members(members)
    return VotingRegressor([(m, make_model(m, random_state=random_state)) for m in members])


def build_stacking(
    members: Sequence[str], *, cv: Any = 5, random_state: int = 0
) -> StackingRegressor:
    """An unfitted ``StackingRegressor`` of zoo models with the :class:`ConvexStacker` on top.

    ``cv`` is passed to scikit-learn (an int, a splitter, or a list of ``(train, test)`` index
    pairs, e.g. ``Folds.split()``, so that the meta-weights follow the same grouping as the
    evaluation).

    >>> type(build_stacking(["ridge", "knn"]).final_estimator).__name__
    'ConvexStacker'
    """
    _check_members(members)
    return StackingRegressor(
        [(m, make_model(m, random_state=random_state)) for m in members],
        final_estimator=ConvexStacker(),
        cv=cv,
        passthrough=False,
    )


def _check_members(members: Sequence[str]) -> None:
    if isinstance(members, str) or len(members) == 0:
        raise ConfigError(f"An ensemble needs a list of at least one model name; got {members!r}.")
    for m in members:
        model_spec(m)


# --- leak-free evaluation from nested predictions ------------------------------------------------


def _rmse(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2)))


def _fold_choice(
    P_in: np.ndarray, y_in: np.ndarray, inner_fold: np.ndarray, top_k: int
) -> dict[str, Any]:
    """Members, weights and inner predictions of every ensemble kind, from inner data only."""
    rmse = np.array([_rmse(P_in[:, i], y_in) for i in range(P_in.shape[1])])
    order = np.argsort(rmse, kind="stable")
    top = order[: min(top_k, len(order))]
    w = convex_weights(P_in[:, top], y_in)
    stacked = np.empty_like(y_in)
    for g in np.unique(inner_fold):
        # Cross-fit the weights so that stacking's inner score is not judged on its own fit.
        sel = inner_fold == g
        w_g = convex_weights(P_in[~sel][:, top], y_in[~sel])
        stacked[sel] = P_in[sel][:, top] @ w_g
    inner_pred = {
        BEST_SINGLE: P_in[:, top[0]],
        VOTING: P_in[:, top].mean(axis=1),
        STACKING: stacked,
    }
    inner_rmse = {k: _rmse(v, y_in) for k, v in inner_pred.items()}
    auto = min((BEST_SINGLE, VOTING, STACKING), key=lambda k: inner_rmse[k])
    return {"top": top, "weights": w, "inner_pred": inner_pred, "inner_rmse": inner_rmse,
            "auto": auto}  # fmt: skip


def _combine(kind: str, P_out: np.ndarray, choice: Mapping[str, Any]) -> np.ndarray:
    top = choice["top"]
    if kind == BEST_SINGLE:
        return np.asarray(P_out[:, top[0]])
    if kind == VOTING:
        return np.asarray(P_out[:, top].mean(axis=1))
    return np.asarray(P_out[:, top] @ choice["weights"])


def _preset_kind(preset: str | None, target: str) -> str | None:
    if preset is None:
        return None
    if preset not in PRESETS:
        raise ConfigError(
            f"Unknown ensemble preset {preset!r}.{did_you_mean(preset, PRESETS)} "
            f"Choose one of {list(PRESETS)}."
        )
    return PRESETS[preset].get(schema.base_name(target), AUTO)


def add_ensembles(
    result: ZooResult,
    *,
    top_k: int = 5,
    preset: str | None = None,
    timings: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """Add best-single, voting, stacking and auto (and preset) ensembles to ``result`` in place.

    Uses only ``result.inner`` (inner-CV predictions) for every choice; see the module docstring.
    Adds leaderboard rows (kind ``"ensemble"``), out-of-fold prediction columns, inner prediction
    slices (for interval calibration) and ``result.ensemble_details``.
    """
    from ecpif.validate import FIT_TIME, KIND, MODEL, PREDICT_TIME, SCHEME, TARGET, scores

    if not result.inner:
        raise ConfigError(
            "The zoo result holds no inner cross-validation predictions; run evaluate_zoo with "
            "ensembles=True."
        )
    folds = result.folds
    names = list(result.models)
    timings = timings or {m: (float("nan"), float("nan")) for m in names}
    kinds = [BEST_SINGLE, VOTING, STACKING, AUTO]
    rows, details = [], []
    for t in result.targets:
        y = result.y[t]
        n = len(y)
        P_out = result.predictions[t][names].to_numpy()
        nested = result.inner[t]
        study_kind = _preset_kind(preset, t)
        out_names = kinds + ([STUDY] if study_kind else [])
        oof = {k: np.full(n, np.nan) for k in out_names}
        ens_inner = np.full((folds.n_folds, n, len(out_names)), np.nan)
        cost = {k: [] for k in out_names}  # type: dict[str, list[tuple[float, float]]]
        for f in range(folds.n_folds):
            train = folds.fold != f
            test = folds.fold == f
            choice = _fold_choice(nested[f, train], y[train], folds.fold[train], top_k)
            member_names = [names[i] for i in choice["top"]]
            fit_t = [timings[m][0] for m in member_names]
            pred_t = [timings[m][1] for m in member_names]
            per_kind_cost = {
                BEST_SINGLE: (fit_t[0], pred_t[0]),
                VOTING: (sum(fit_t), sum(pred_t)),
                # Stacking refits every member once per inner fold to get its meta-features.
                STACKING: (sum(fit_t) * folds.n_folds, sum(pred_t)),
            }
            for k in out_names:
                resolved = choice["auto"] if k == AUTO else (study_kind if k == STUDY else k)
                assert resolved is not None
                if resolved == AUTO:
                    resolved = choice["auto"]
                oof[k][test] = _combine(resolved, P_out[test], choice)
                ens_inner[f, train, out_names.index(k)] = choice["inner_pred"][resolved]
                cost[k].append(per_kind_cost[resolved])
                details.append({
                    "target": t, "ensemble": k, "fold": f, "held out": folds.labels[f],
                    "uses": resolved, "members": member_names if resolved != BEST_SINGLE
                    else member_names[:1],
                    "weights": [round(float(w), 4) for w in choice["weights"]]
                    if resolved == STACKING else None,
                    "inner RMSE": choice["inner_rmse"][resolved],
                })  # fmt: skip
        for k in out_names:
            result.predictions[t][k] = oof[k]
            rows.append({
                TARGET: t, MODEL: k, KIND: "ensemble", SCHEME: folds.scheme,
                **scores(y, oof[k], result.esd[t]),
                FIT_TIME: float(np.mean([c[0] for c in cost[k]])),
                PREDICT_TIME: float(np.mean([c[1] for c in cost[k]])),
            })  # fmt: skip
        result.inner[t] = np.concatenate([nested, ens_inner], axis=2)
    result.leaderboard = pd.concat([result.leaderboard, pd.DataFrame(rows)], ignore_index=True)
    result.ensemble_details = pd.DataFrame(details)
    fold_rows = []
    for t in result.targets:
        y = result.y[t]
        for k in [c for c in result.predictions[t].columns if c not in names]:
            p = result.predictions[t][k].to_numpy()
            for f in range(folds.n_folds):
                sel = folds.fold == f
                fold_rows.append({TARGET: t, MODEL: k, "fold": f, "held out": folds.labels[f],
                                  "RMSE": _rmse(p[sel], y[sel])})  # fmt: skip
    result.fold_scores = pd.concat([result.fold_scores, pd.DataFrame(fold_rows)], ignore_index=True)


def inner_columns(result: ZooResult) -> list[str]:
    """Names of the last axis of ``result.inner[target]`` (models, then ensembles)."""
    t = result.targets[0]
    extra = [c for c in result.predictions[t].columns if c not in result.models]
    return list(result.models) + extra


# --- the trained ensemble ------------------------------------------------------------------------


def data_hash(data: pd.DataFrame, columns: Sequence[str]) -> str:
    """SHA-256 of the values of ``columns`` (order-sensitive), to identify training data."""
    hashed = pd.util.hash_pandas_object(data[list(columns)], index=False).to_numpy()
    h = hashlib.sha256(hashed.tobytes())
    h.update("\x1f".join(columns).encode("utf-8"))
    return h.hexdigest()


@dataclass
class TrainedEnsemble:
    """Fitted models for every target, with what is needed to predict and explain.

    Attributes
    ----------
    features, targets
        Column names, in the order the estimators expect / produce.
    estimators
        ``{target: fitted scikit-learn regressor}``.
    kinds
        ``{target: "best_single" | "voting" | "stacking" | "model"}``.
    members, weights
        Zoo models of each target's estimator and their weights.
    scheme
        Cross-validation scheme that chose members and produced the residuals.
    residuals
        ``{target: out-of-fold residuals (observed - predicted)}`` of the chosen procedure under
        ``scheme``; they calibrate the conformal intervals (:mod:`ecpif.uncertainty`).
    feature_min, feature_max
        Training range of each feature (applicability domain).
    units
        Unit of every feature and target (from the column name).
    training_hash
        :func:`data_hash` of the training features and targets.
    """

    features: list[str]
    targets: list[str]
    estimators: dict[str, Any]
    kinds: dict[str, str]
    members: dict[str, list[str]]
    weights: dict[str, list[float]]
    scheme: str
    residuals: dict[str, np.ndarray]
    feature_min: dict[str, float]
    feature_max: dict[str, float]
    units: dict[str, str | None]
    training_hash: str
    n_rows: int
    random_state: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def check_features(self, frame: pd.DataFrame) -> None:
        """Raise :class:`ModelError` naming the features ``frame`` lacks (a diff of names)."""
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            hints = "".join(did_you_mean(m, [str(c) for c in frame.columns]) for m in missing[:1])
            raise ModelError(
                f"The data to predict lacks the feature column(s) {missing} that the model was "
                f"trained on.{hints} Compute the same features (ecpif.features) before predicting."
            )

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Point predictions, one column per target, indexed like ``frame``.

        Raises :class:`ModelError` for missing features and :class:`DataError` for NaN features.
        """
        from ecpif.validate import check_finite

        self.check_features(frame)
        check_finite(frame, self.features, "feature")
        X = frame[self.features].to_numpy(dtype=float)
        out = pd.DataFrame(index=frame.index)
        for t in self.targets:
            out[t] = self.estimators[t].predict(X)
        return out


def _nominal_capacity(data: pd.DataFrame) -> float | None:
    """Nominal capacity implied by the training features (|current| / C-rate), if both exist.

    Stored so that predicting a cycler-only run computes the C-rate feature the same way.
    """
    rate_col = feat.C_RATE
    if schema.CURRENT not in data.columns or rate_col not in data.columns:
        return None
    current = data[schema.CURRENT].abs().to_numpy(dtype=float)
    rate = data[rate_col].to_numpy(dtype=float)
    ok = np.isfinite(current) & np.isfinite(rate) & (rate > 1e-6)
    if not ok.any():
        return None
    return float(np.median(current[ok] / rate[ok]))


def fit_ensemble(
    data: pd.DataFrame,
    result: ZooResult,
    *,
    kind: str = AUTO,
    top_k: int | None = None,
) -> TrainedEnsemble:
    """Fit the final model of every target on all rows, choosing as the evaluation did.

    Parameters
    ----------
    data
        The training frame ``result`` was computed on.
    result
        Output of :func:`ecpif.validate.evaluate_zoo` on ``data`` (its scheme decides members,
        weights and the residuals that calibrate intervals).
    kind
        ``"auto"`` (the kind among best single / voting / stacking with the lowest out-of-fold
        RMSE), ``"best_single"``, ``"voting"``, ``"stacking"``, ``"study"`` (the reference
        study's preset) or the name of one zoo model.
    top_k
        Members of voting and stacking (default: the value used in ``result``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from ecpif.validate import evaluate_zoo
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"q [mA.h]": rng.uniform(0, 1, 60)})
    >>> df["a [Å]"] = 2.8 + 0.01 * np.sin(3 * df["q [mA.h]"])
    >>> res = evaluate_zoo(df, ["q [mA.h]"], ["a"], models=["ols", "knn", "ridge"], n_jobs=1)
    >>> model = fit_ensemble(df, res, kind="voting")
    >>> model.predict(df.head(2)).shape
    (2, 1)
    """
    from ecpif.validate import RMSE, check_finite, resolve_columns

    top_k = int(result.settings.get("top_k", 5) if top_k is None else top_k)
    features = resolve_columns(data, result.features, "feature")
    targets = resolve_columns(data, result.targets, "target")
    check_finite(data, features, "feature")
    check_finite(data, targets, "target")
    if len(data) != len(result.folds.fold) or any(
        not np.array_equal(data[t].to_numpy(dtype=float), result.y[t]) for t in targets
    ):
        raise DataError(
            f"The zoo result was computed on other data ({len(result.folds.fold)} rows) than the "
            f"frame given ({len(data)} rows); pass the same frame to evaluate_zoo and fit_ensemble."
        )
    kinds_allowed = (AUTO, BEST_SINGLE, VOTING, STACKING, STUDY)
    if kind not in kinds_allowed and kind not in result.models:
        raise ModelError(
            f"Unknown ensemble kind {kind!r}."
            f"{did_you_mean(kind, list(kinds_allowed) + list(result.models))} Choose one of "
            f"{list(kinds_allowed)} or a model evaluated in the result."
        )
    X = data[features].to_numpy(dtype=float)
    estimators: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    weights: dict[str, list[float]] = {}
    residuals: dict[str, np.ndarray] = {}
    for t in targets:
        y = result.y[t]
        preds = result.predictions[t]
        model_rmse = {m: _rmse(preds[m].to_numpy(), y) for m in result.models}
        ranked = sorted(result.models, key=lambda m: (model_rmse[m], result.models.index(m)))
        top = ranked[: min(top_k, len(ranked))]
        chosen = kind
        if kind == STUDY:
            chosen = _preset_kind("study", t) or AUTO
        if chosen == AUTO:
            lb = result.for_target(t)
            candidates = lb[lb["model"].isin([BEST_SINGLE, VOTING, STACKING])]
            if len(candidates):
                chosen = str(candidates.sort_values(RMSE)["model"].iloc[0])
            else:  # evaluated without ensembles: compare the procedures on all data
                chosen = BEST_SINGLE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if chosen in result.models:
                est = make_model(chosen, random_state=result.random_state).fit(X, y)
                members[t], weights[t], kinds[t] = [chosen], [1.0], "model"
            elif chosen == BEST_SINGLE:
                est = make_model(top[0], random_state=result.random_state).fit(X, y)
                members[t], weights[t], kinds[t] = top[:1], [1.0], BEST_SINGLE
            elif chosen == VOTING:
                est = build_voting(top, random_state=result.random_state).fit(X, y)
                members[t], weights[t], kinds[t] = top, [1.0 / len(top)] * len(top), VOTING
            else:
                est = build_stacking(
                    top, cv=result.folds.split(), random_state=result.random_state
                ).fit(X, y)
                members[t], kinds[t] = top, STACKING
                weights[t] = [float(w) for w in est.final_estimator_.coef_]
        estimators[t] = est
        # Residuals of the same procedure, out of fold: the evaluated column of that name.
        column = chosen if chosen in preds.columns else (top[0] if chosen == BEST_SINGLE else None)
        if column is None or preds[column].isna().any():
            column = top[0]
        residuals[t] = y - preds[column].to_numpy()
    return TrainedEnsemble(
        features=features,
        targets=targets,
        estimators=estimators,
        kinds=kinds,
        members=members,
        weights=weights,
        scheme=result.scheme,
        residuals=residuals,
        feature_min={f: float(data[f].min()) for f in features},
        feature_max={f: float(data[f].max()) for f in features},
        units={c: schema.unit_of(c) for c in features + targets},
        training_hash=data_hash(data, features + targets),
        n_rows=len(data),
        random_state=result.random_state,
        info={
            "top_k": top_k,
            "kind_requested": kind,
            "nominal_capacity_Ah": _nominal_capacity(data),
        },
    )


__all__ = [
    "ENSEMBLE_NAMES",
    "PRESETS",
    "ConvexStacker",
    "TrainedEnsemble",
    "add_ensembles",
    "build_stacking",
    "build_voting",
    "convex_weights",
    "data_hash",
    "fit_ensemble",
]
