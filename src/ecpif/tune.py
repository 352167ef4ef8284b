"""Hyperparameter search per zoo model, nested inside cross-validation so tuned scores stay honest.

:class:`TunedRegressor` is a scikit-learn meta-estimator (like ``GridSearchCV``): ``fit(X, y)`` runs
an Optuna search over the model's :data:`SEARCH_SPACES` entry, judging each trial by an inner
cross-validation **of the rows given to fit only**, then refits the best settings on all of them.
:func:`evaluate_tuned` adds such tuned variants (``"extra_trees_tuned"``) to the zoo for one
:func:`ecpif.validate.evaluate_zoo` call, beside the untuned models, in the same outer folds.

Why this is nested (no leakage)
-------------------------------
``evaluate_zoo`` fits every model on the training folds of each outer fold and predicts the held-out
fold. A tuned variant *is* a model, so its whole search runs inside that ``fit``: the search's own
cross-validation sees only the outer training rows, and the outer test fold scores the outcome, as
in nested cross-validation. The inner fits that choose ensemble members run their own searches on
their own (smaller) training sets. The final model (``fit_ensemble``) searches again on all rows.

Design decisions
----------------
* **Optuna's TPE sampler, seeded, one trial at a time**: with a trial budget the search is
  deterministic for a seed. The zoo's default settings are always the first trial, so a search
  never returns something its inner cross-validation scored worse than the defaults.
* **Budget per model**: ``n_trials`` per search and/or ``timeout_s`` seconds. :func:`evaluate_tuned`
  takes the time budget *per model for the whole evaluation* and divides it over that model's
  searches (one per training set and target). A time budget makes the number of trials depend on
  the machine's speed, so only trial budgets are reproducible; every search records how many trials
  it completed (``ZooResult.tuning``).
* **Inner CV**: ``"blocked"`` by default: contiguous, unshuffled blocks of the training rows, which
  are ordered in time within each run. A shuffled inner CV lets a trial be judged on the neighbours
  of its training patterns and favours memorising settings (one nearest neighbour, unpruned
  trees); held-out stretches of cycling are closer to what the outer schemes ask. Pass ``groups``
  to ``fit`` (or ``cv=`` a splitter) for anything else.
* **Distributed for free**: searches run inside the zoo's joblib tasks, so
  :func:`ecpif.backend.parallel_backend` spreads them over a Dask cluster with no extra code. Tasks
  receive the model's factory (not its name), so workers need no registry of their own.
* The pooled inner RMSE (all inner test rows together) is the objective, as the leaderboard pools.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(size=(80, 2))
>>> y = np.sin(4 * X[:, 0]) + 0.05 * rng.normal(size=80)
>>> m = TunedRegressor("knn", n_trials=8, random_state=0).fit(X, y)
>>> sorted(m.best_params_)
['model__n_neighbors', 'model__p', 'model__weights']
>>> m.n_trials_
8
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GroupKFold, KFold
from sklearn.utils.validation import check_is_fitted, validate_data

from ecpif import schema
from ecpif.errors import ConfigError, ModelError, did_you_mean, require
from ecpif.zoo import ModelSpec, make_model, model_spec, register_model, unregister_model

if TYPE_CHECKING:
    import pandas as pd

    from ecpif.validate import ZooResult

#: Suffix of a tuned variant's zoo name: ``"extra_trees"`` -> ``"extra_trees_tuned"``.
SUFFIX = "_tuned"


# --- search spaces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter of a zoo estimator.

    Parameters
    ----------
    name
        The estimator's parameter, in scikit-learn's nested notation (``"model__n_neighbors"``).
    kind
        ``"int"``, ``"float"`` or ``"categorical"``.
    low, high
        Range of ``"int"`` / ``"float"`` (inclusive).
    log
        Sample on a log scale.
    choices
        Values of a ``"categorical"`` parameter (any Python values; tuples are fine).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float", "categorical"):
            raise ConfigError(
                f"Param.kind must be 'int', 'float' or 'categorical'; got {self.kind!r} for "
                f"{self.name!r}."
            )
        if self.kind == "categorical":
            if not self.choices:
                raise ConfigError(f"The categorical parameter {self.name!r} needs choices.")
        elif self.low is None or self.high is None or not self.low <= self.high:
            raise ConfigError(
                f"The {self.kind} parameter {self.name!r} needs low <= high; got "
                f"{self.low!r}, {self.high!r}."
            )

    def suggest(self, trial: Any) -> Any:
        """Draw a value from an Optuna trial."""
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        if self.kind == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]
        # Optuna stores only primitive choices: suggest an index label, map it back.
        labels = [repr(c) for c in self.choices]
        return self.choices[labels.index(trial.suggest_categorical(self.name, labels))]

    def encode(self, value: Any) -> Any:
        """The value as Optuna records it (for enqueueing the defaults)."""
        if self.kind == "categorical":
            return repr(value)
        return value

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        try:
            return bool(self.low <= value <= self.high)
        except TypeError:
            return False


def _forest() -> tuple[Param, ...]:
    return (
        Param("max_features", "float", 0.2, 1.0),
        Param("min_samples_leaf", "int", 1, 10),
        Param("max_depth", "categorical", choices=(None, 4, 8, 16)),
    )


def _boosting() -> tuple[Param, ...]:
    return (
        Param("n_estimators", "int", 50, 400, log=True),
        Param("learning_rate", "float", 0.01, 0.3, log=True),
        Param("max_depth", "int", 2, 6),
        Param("subsample", "float", 0.5, 1.0),
        Param("min_samples_leaf", "int", 1, 20),
    )


#: Searched hyperparameters of each zoo model. Models absent here have nothing worth searching:
#: least squares, ridge (its penalty is already chosen by leave-one-out), Bayesian ridge (by
#: evidence) and the Gaussian processes (by marginal likelihood).
SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "lasso": (Param("regressor__model__alpha", "float", 1e-6, 1e-1, log=True),),
    "elastic_net": (
        Param("regressor__model__alpha", "float", 1e-6, 1e-1, log=True),
        Param("regressor__model__l1_ratio", "float", 0.05, 0.95),
    ),
    "huber": (
        Param("regressor__model__epsilon", "float", 1.05, 3.0),
        Param("regressor__model__alpha", "float", 1e-6, 1e-1, log=True),
    ),
    "polynomial_ridge": (Param("poly__degree", "int", 1, 5),),
    "svr": (
        Param("regressor__model__C", "float", 0.1, 1000.0, log=True),
        Param("regressor__model__epsilon", "float", 1e-3, 0.5, log=True),
        Param("regressor__model__gamma", "categorical", choices=("scale", 0.01, 0.1, 1.0, 10.0)),
    ),
    "kernel_ridge": (
        Param("estimator__regressor__model__alpha", "float", 1e-6, 1.0, log=True),
        Param("estimator__regressor__model__gamma", "float", 1e-3, 10.0, log=True),
    ),
    "knn": (
        Param("model__n_neighbors", "int", 1, 30),
        Param("model__weights", "categorical", choices=("uniform", "distance")),
        Param("model__p", "categorical", choices=(1, 2)),
    ),
    "decision_tree": (
        Param("max_depth", "categorical", choices=(None, 3, 5, 8, 12)),
        Param("min_samples_leaf", "int", 1, 20),
    ),
    "random_forest": _forest(),
    "extra_trees": _forest(),
    "adaboost": (
        Param("n_estimators", "int", 20, 200, log=True),
        Param("learning_rate", "float", 0.01, 1.0, log=True),
        Param("estimator__max_depth", "int", 2, 6),
        Param("loss", "categorical", choices=("linear", "square", "exponential")),
    ),
    "gradient_boosting": _boosting(),
    "hist_gradient_boosting": (
        Param("max_iter", "int", 50, 300, log=True),
        Param("learning_rate", "float", 0.01, 0.3, log=True),
        Param("max_leaf_nodes", "int", 4, 63, log=True),
        Param("min_samples_leaf", "int", 2, 30),
        Param("l2_regularization", "categorical", choices=(0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0)),
    ),
    "mlp": (
        Param("regressor__model__alpha", "float", 1e-6, 1e-1, log=True),
        Param(
            "regressor__model__hidden_layer_sizes",
            "categorical",
            choices=((16,), (32,), (32, 32), (64, 64), (32, 32, 32)),
        ),
    ),
    "xgboost": (
        Param("n_estimators", "int", 50, 400, log=True),
        Param("learning_rate", "float", 0.01, 0.3, log=True),
        Param("max_depth", "int", 2, 8),
        Param("subsample", "float", 0.5, 1.0),
        # None = the library's default (1 for both), which the zoo keeps.
        Param("min_child_weight", "categorical", choices=(None, 0.3, 3.0, 10.0)),
        Param("reg_lambda", "categorical", choices=(None, 1e-3, 0.1, 10.0)),
    ),
    "lightgbm": (
        Param("n_estimators", "int", 50, 400, log=True),
        Param("learning_rate", "float", 0.01, 0.3, log=True),
        Param("num_leaves", "int", 4, 63, log=True),
        Param("min_child_samples", "int", 2, 30),
        Param("reg_lambda", "categorical", choices=(0.0, 1e-3, 0.1, 1.0, 10.0)),
    ),
    "catboost": (
        Param("iterations", "int", 50, 300, log=True),
        Param("learning_rate", "float", 0.01, 0.3, log=True),
        Param("depth", "int", 2, 8),
        # None = CatBoost's default (3), which the zoo keeps.
        Param("l2_leaf_reg", "categorical", choices=(None, 0.3, 1.0, 10.0)),
    ),
}


def register_search_space(name: str, params: Sequence[Param], *, overwrite: bool = False) -> None:
    """Declare the searched hyperparameters of a zoo model (e.g. one added with ``register_model``).

    Examples
    --------
    >>> register_search_space("knn", [Param("model__n_neighbors", "int", 2, 9)], overwrite=True)
    >>> [p.name for p in search_space("knn")]
    ['model__n_neighbors']
    >>> register_search_space("knn", SEARCH_SPACES_DEFAULT["knn"], overwrite=True)
    """
    model_spec(name)  # unknown model -> ModelError with a suggestion
    if name in SEARCH_SPACES and not overwrite:
        raise ConfigError(
            f"Model {name!r} already has a search space; pass overwrite=True to replace it."
        )
    params = tuple(params)
    if not params or not all(isinstance(p, Param) for p in params):
        raise ConfigError(f"A search space is a non-empty list of Param; got {params!r}.")
    SEARCH_SPACES[name] = params


#: The spaces as shipped (``register_search_space`` can restore one from here).
SEARCH_SPACES_DEFAULT: Mapping[str, tuple[Param, ...]] = dict(SEARCH_SPACES)


def search_space(name: str) -> tuple[Param, ...]:
    """The searched hyperparameters of a zoo model (raises :class:`ModelError` if it has none)."""
    model_spec(name)
    if name not in SEARCH_SPACES:
        raise ModelError(
            f"Model {name!r} has no hyperparameters to search (its fit already chooses them, or "
            f"none are declared); tunable models: {tunable_models()}. Declare a space with "
            f"ecpif.tune.register_search_space."
        )
    return SEARCH_SPACES[name]


def tunable_models(models: str | Sequence[str] = "all") -> list[str]:
    """The models among ``models`` (``"all"`` = every available zoo model) that have a space.

    >>> "extra_trees" in tunable_models() and "ridge" not in tunable_models()
    True
    """
    from ecpif.validate import resolve_models

    names = resolve_models(models)
    return [m for m in names if m in SEARCH_SPACES and not m.endswith(SUFFIX)]


def default_params(name: str) -> dict[str, Any]:
    """The zoo defaults of a model's searched parameters (the first trial of every search)."""
    current = make_model(name).get_params()
    # Libraries that list only explicitly set parameters (CatBoost) leave the rest at None.
    return {p.name: current.get(p.name) for p in search_space(name)}


# --- the search ----------------------------------------------------------------------------------


def _check_budget(n_trials: int | None, timeout_s: float | None) -> None:
    if n_trials is None and timeout_s is None:
        raise ConfigError(
            "A search needs a budget: n_trials (e.g. 20) and/or timeout_s (seconds); got neither."
        )
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1
    ):
        raise ConfigError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}.")
    if timeout_s is not None and not (
        isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0
    ):
        raise ConfigError(
            f"timeout_s must be a positive number of seconds or None; got {timeout_s!r}."
        )


class TunedRegressor(RegressorMixin, BaseEstimator):
    """A zoo model whose hyperparameters are searched (Optuna TPE) inside ``fit``.

    Parameters
    ----------
    model
        Zoo model name with a search space (:func:`tunable_models`).
    n_trials
        Trials per search (the first is always the zoo defaults). ``None`` = only ``timeout_s``.
    timeout_s
        Stop starting new trials after this many seconds (``None`` = only ``n_trials``).
    cv
        Inner cross-validation of the rows given to ``fit``: an int (folds of ``inner``), a
        scikit-learn splitter, or a list of ``(train, test)`` index pairs.
    inner
        ``"blocked"`` (contiguous blocks, default) or ``"shuffled"`` folds when ``cv`` is an int.
    random_state
        Seed of the model, the sampler and shuffled folds.

    Attributes
    ----------
    estimator_
        The zoo model with the best settings, fitted on all rows.
    best_params_
        The best settings (scikit-learn parameter names).
    best_score_, default_score_
        Inner-CV RMSE of the best trial and of the zoo defaults.
    n_trials_
        Trials completed. ``search_time_s_``: wall time of the search.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 40)[:, None]
    >>> m = TunedRegressor("decision_tree", n_trials=5).fit(X, X[:, 0] ** 2)
    >>> m.best_score_ <= m.default_score_
    True
    """

    def __init__(
        self,
        model: str = "extra_trees",
        n_trials: int | None = 20,
        timeout_s: float | None = None,
        cv: Any = 3,
        inner: str = "blocked",
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.n_trials = n_trials
        self.timeout_s = timeout_s
        self.cv = cv
        self.inner = inner
        self.random_state = random_state

    def _splits(self, n: int, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = self.cv
        if groups is not None and len(np.unique(groups)) >= 2:
            if isinstance(cv, int | np.integer) and not isinstance(cv, bool):
                # One inner fold per group: leave each group out, as the outer scheme does.
                k = len(np.unique(groups))
                return list(GroupKFold(k).split(np.zeros(n), groups=groups))
            if hasattr(cv, "split"):
                return list(cv.split(np.zeros(n), groups=groups))
        if isinstance(cv, int | np.integer) and not isinstance(cv, bool):
            k = int(cv)
            if k < 2:
                raise ConfigError(f"The inner cv of TunedRegressor must be >= 2 folds; got {cv!r}.")
            if self.inner not in ("blocked", "shuffled"):
                raise ConfigError(
                    f"inner must be 'blocked' or 'shuffled'; got {self.inner!r}."
                    f"{did_you_mean(str(self.inner), ['blocked', 'shuffled'])}"
                )
            if n < k:
                raise ModelError(
                    f"TunedRegressor got {n} rows, fewer than its {k} inner folds; lower cv or "
                    f"add data."
                )
            shuffle = self.inner == "shuffled"
            seed = self.random_state if shuffle else None
            splitter = KFold(k, shuffle=shuffle, random_state=seed)
            return list(splitter.split(np.zeros(n)))
        if hasattr(cv, "split"):
            return list(cv.split(np.zeros(n)))
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv]

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> TunedRegressor:
        """Search the settings on inner folds of ``(X, y)``, then refit the best on all rows."""
        require("optuna", "tune", "Hyperparameter search")
        import optuna

        X, y = validate_data(self, X, y, y_numeric=True)
        _check_budget(self.n_trials, self.timeout_s)
        space = search_space(self.model)
        splits = self._splits(len(y), None if groups is None else np.asarray(groups))
        defaults = default_params(self.model)

        def build(params: Mapping[str, Any]) -> BaseEstimator:
            return make_model(self.model, random_state=self.random_state).set_params(**params)

        def objective(trial: Any) -> float:
            params = {p.name: p.suggest(trial) for p in space}
            sse, n = 0.0, 0
            for train, test in splits:
                pred = build(params).fit(X[train], y[train]).predict(X[test])
                sse += float(np.sum((np.asarray(pred, dtype=float) - y[test]) ** 2))
                n += len(test)
            score = math.sqrt(sse / n)
            # A diverging trial (NaN) must lose, not crash the sampler.
            return score if math.isfinite(score) else math.inf

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        t0 = time.perf_counter()
        try:
            study = optuna.create_study(
                direction="minimize",
                sampler=optuna.samplers.TPESampler(seed=int(self.random_state)),
            )
            study.enqueue_trial(
                {p.name: p.encode(defaults[p.name]) for p in space if p.contains(defaults[p.name])}
            )
            study.optimize(
                objective,
                n_trials=None if self.n_trials is None else int(self.n_trials),
                timeout=self.timeout_s,
                catch=(ValueError, ArithmeticError),
            )
        finally:
            optuna.logging.set_verbosity(verbosity)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete or not math.isfinite(study.best_value):
            raise ModelError(
                f"Every trial of the {self.model!r} search failed on {len(y)} rows; check the "
                f"data (constant target?) or the model's search space."
            )
        best = study.best_trial
        self.best_params_ = {p.name: _decode(p, best.params[p.name]) for p in space}
        self.best_score_ = float(study.best_value)
        first = study.trials[0]
        self.default_score_ = float(first.value) if first.value is not None else float("nan")
        self.n_trials_ = len(complete)
        self.search_time_s_ = time.perf_counter() - t0
        self.estimator_ = build(self.best_params_).fit(X, y)
        return self

    @property
    def tuning_info_(self) -> dict[str, Any]:
        """A summary of the search (collected into ``ZooResult.tuning`` by the zoo)."""
        check_is_fitted(self, "estimator_")
        return {
            "best params": dict(self.best_params_),
            "inner RMSE (tuned)": self.best_score_,
            "inner RMSE (defaults)": self.default_score_,
            "trials": self.n_trials_,
            "search time [s]": self.search_time_s_,
        }

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False)
        return np.asarray(self.estimator_.predict(X))


def _decode(param: Param, value: Any) -> Any:
    if param.kind == "categorical":
        labels = [repr(c) for c in param.choices]
        return param.choices[labels.index(value)]
    return value


# --- tuned variants in the zoo -------------------------------------------------------------------


def tuned_name(model: str) -> str:
    """Zoo name of a model's tuned variant: ``"knn"`` -> ``"knn_tuned"``."""
    return f"{model}{SUFFIX}"


def _tuned_factory(
    seed: int, *, model: str, n_trials: int | None, timeout_s: float | None, cv: Any, inner: str
) -> TunedRegressor:
    return TunedRegressor(
        model, n_trials=n_trials, timeout_s=timeout_s, cv=cv, inner=inner, random_state=seed
    )


@contextlib.contextmanager
def tuned_variants(
    models: Sequence[str],
    *,
    n_trials: int | None = 20,
    timeout_s: float | None = None,
    cv: Any = 3,
    inner: str = "blocked",
) -> Iterator[list[str]]:
    """Register ``"<model>_tuned"`` zoo entries for the duration of the block.

    Inside, the names work everywhere a zoo name does (``evaluate_zoo``, ``fit_ensemble``,
    ``make_model``); on exit the registry is restored, so ``models="all"`` elsewhere never picks up
    a study's tuned variants. ``timeout_s`` is per search (per fit of one target).

    Examples
    --------
    >>> with tuned_variants(["knn"], n_trials=5) as names:
    ...     names, type(make_model("knn_tuned")).__name__
    (['knn_tuned'], 'TunedRegressor')
    >>> from ecpif.zoo import available_models
    >>> "knn_tuned" in available_models()
    False
    """
    _check_budget(n_trials, timeout_s)
    names: list[str] = []
    saved: dict[str, ModelSpec] = {}
    try:
        for m in models:
            search_space(m)  # raises for untunable / unknown models
            name = tuned_name(m)
            with contextlib.suppress(ModelError):
                saved[name] = model_spec(name)
            spec = model_spec(m)
            register_model(
                name,
                functools.partial(
                    _tuned_factory, model=m, n_trials=n_trials, timeout_s=timeout_s, cv=cv,
                    inner=inner,
                ),
                family=spec.family,
                description=f"{m} with hyperparameters searched in each training set (Optuna)",
                requires=spec.requires,
                extra=spec.extra,
                overwrite=True,
            )  # fmt: skip
            names.append(name)
        yield names
    finally:
        for name in names:
            unregister_model(name)
        for name, old in saved.items():
            register_model(name, old.factory, family=old.family, description=old.description,
                           requires=old.requires, extra=old.extra, overwrite=True)  # fmt: skip


@dataclass(frozen=True)
class TuningBudget:
    """How much searching each tuned model gets in one evaluation.

    Parameters
    ----------
    n_trials
        Trials per search (per training set and target). ``None`` = time budget only.
    budget_s
        Seconds per model for the whole evaluation, divided evenly over its searches (one per
        training set and target); ``None`` = trial budget only. Makes trial counts, and so
        results, depend on machine speed.
    cv, inner
        Inner cross-validation of each search (see :class:`TunedRegressor`).

    >>> TuningBudget(n_trials=10).per_search_timeout(6)
    """

    n_trials: int | None = 20
    budget_s: float | None = None
    cv: int = 3
    inner: str = "blocked"

    def __post_init__(self) -> None:
        _check_budget(self.n_trials, self.budget_s)

    def per_search_timeout(self, n_searches: int) -> float | None:
        """Seconds per search when ``n_searches`` share the model's budget."""
        return None if self.budget_s is None else self.budget_s / max(int(n_searches), 1)

    def to_dict(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "budget_s": self.budget_s, "cv": self.cv,
                "inner": self.inner}  # fmt: skip


def n_training_sets(n_folds: int, ensembles: bool) -> int:
    """Training sets per model in ``evaluate_zoo``: the outer ones, plus ``K - 2`` unions with
    ensembles.

    >>> n_training_sets(5, True), n_training_sets(3, False)
    (15, 3)
    """
    return n_folds + (math.comb(n_folds, 2) if ensembles else 0)


def evaluate_tuned(
    data: pd.DataFrame,
    features: Sequence[str],
    targets: Sequence[str],
    *,
    models: str | Sequence[str] = ("ridge", "knn", "extra_trees"),
    tune: str | Sequence[str] = "all",
    budget: TuningBudget | None = None,
    include_untuned: bool = True,
    scheme: str = "shuffled",
    ensembles: bool = True,
    **kwargs: Any,
) -> ZooResult:
    """Cross-validate zoo models and their tuned variants in the same outer folds.

    Parameters
    ----------
    data, features, targets
        As :func:`ecpif.validate.evaluate_zoo`.
    models
        Zoo models to evaluate (``"all"`` or names).
    tune
        Which of ``models`` get a tuned variant: ``"all"`` (every one with a search space) or
        names.
    budget
        Trials and/or seconds per model (default: 20 trials per search).
    include_untuned
        Also evaluate the models as they are (for the tuned-vs-untuned comparison).
    scheme, ensembles, **kwargs
        Passed to :func:`~ecpif.validate.evaluate_zoo` (``n_splits``, ``group_col``, ``top_k``,
        ``n_jobs``, ``random_state`` ...).

    Returns
    -------
    ZooResult
        Leaderboard rows ``"<model>_tuned"`` beside the untuned ones; ``result.tuning`` lists every
        search (training folds, target, best settings, inner RMSE tuned vs defaults, trials, time);
        ``result.settings["tuning"]`` records the budget.

    Examples
    --------
    >>> res = evaluate_tuned(table, features, ["a"], models=["knn"], scheme="loro",
    ...                      budget=TuningBudget(n_trials=10))  # doctest: +SKIP
    >>> res.leaderboard[["model", "RMSE"]]  # doctest: +SKIP
    """
    from ecpif.validate import evaluate_zoo, make_folds, resolve_columns, resolve_models

    budget = budget or TuningBudget()
    base = resolve_models(models)
    to_tune = tunable_models(base) if tune == "all" else resolve_models(tune)
    if tune != "all":
        outside = [m for m in to_tune if m not in base]
        if outside:
            raise ConfigError(
                f"Model {outside[0]!r} is to be tuned but is not among the evaluated models "
                f"{base}; add it to models."
            )
        for m in to_tune:
            search_space(m)
    if not to_tune:
        raise ConfigError(
            f"None of the models {base} has hyperparameters to search; tunable models are "
            f"{tunable_models()}."
        )
    folds = make_folds(
        data, scheme, n_splits=kwargs.get("n_splits", 5),
        group_col=kwargs.get("group_col", schema.RUN_ID),
        rate_col=kwargs.get("rate_col", schema.C_RATE_LABEL),
        random_state=kwargs.get("random_state", 0),
    )  # fmt: skip
    n_targets = len(resolve_columns(data, targets, "target"))
    searches = n_training_sets(folds.n_folds, ensembles) * n_targets
    timeout = budget.per_search_timeout(searches)
    with tuned_variants(
        to_tune, n_trials=budget.n_trials, timeout_s=timeout, cv=budget.cv, inner=budget.inner
    ) as names:
        evaluated = (base if include_untuned else []) + names
        result = evaluate_zoo(
            data, features, targets, models=evaluated, scheme=scheme, ensembles=ensembles,
            **kwargs,
        )  # fmt: skip
    result.settings["tuning"] = {**budget.to_dict(), "models": to_tune,
                                 "searches per model": searches,
                                 "timeout per search [s]": timeout}  # fmt: skip
    return result


def tuning_summary(result: ZooResult) -> pd.DataFrame:
    """Tuned vs untuned, per target and model: RMSE (outer folds), gain, trials, search time.

    One row per (target, model) that has both an untuned and a ``_tuned`` leaderboard row.

    >>> tuning_summary(res)  # doctest: +SKIP
    """
    import pandas as pd

    from ecpif.validate import FIT_TIME, MODEL, RMSE, RMSE_ESD, TARGET

    lb = {(r[TARGET], r[MODEL]): r for r in result.leaderboard.to_dict("records")}
    rows = []
    for t in result.targets:
        for m in result.models:
            if not m.endswith(SUFFIX):
                continue
            base = m[: -len(SUFFIX)]
            tuned_row = lb[(t, m)]
            row: dict[str, Any] = {TARGET: t, MODEL: base,
                                   "RMSE tuned": float(tuned_row[RMSE]),
                                   "RMSE/esd tuned": float(tuned_row[RMSE_ESD]),
                                   "fit time tuned [s]": float(tuned_row[FIT_TIME])}  # fmt: skip
            if (t, base) in lb:
                r = lb[(t, base)]
                row.update({"RMSE untuned": float(r[RMSE]), "RMSE/esd untuned": float(r[RMSE_ESD]),
                            "fit time untuned [s]": float(r[FIT_TIME])})  # fmt: skip
                row["gain [%]"] = 100.0 * (1.0 - row["RMSE tuned"] / row["RMSE untuned"])
            info = result.tuning
            if len(info):
                sel = info[(info[MODEL] == m) & (info[TARGET] == t)]
                row["mean trials"] = float(sel["trials"].mean()) if len(sel) else float("nan")
                row["search time [s]"] = float(sel["search time [s]"].sum()) if len(sel) else 0.0
            rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "SEARCH_SPACES",
    "SEARCH_SPACES_DEFAULT",
    "SUFFIX",
    "Param",
    "TunedRegressor",
    "TuningBudget",
    "default_params",
    "evaluate_tuned",
    "n_training_sets",
    "register_search_space",
    "search_space",
    "tunable_models",
    "tuned_name",
    "tuned_variants",
    "tuning_summary",
]
