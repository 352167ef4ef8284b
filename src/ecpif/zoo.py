"""The model zoo: a registry of named, ready-to-fit scikit-learn regressors.

``make_model("gaussian_process")`` returns a fresh, unfitted estimator with defaults chosen for
operando data (hundreds to tens of thousands of rows, a handful of features). Every estimator is a
plain scikit-learn object (a :class:`~sklearn.pipeline.Pipeline` where scaling matters), so it
composes with :class:`~sklearn.ensemble.VotingRegressor`, ``clone`` and ``cross_val_predict``.

Design decisions
----------------
* **Targets are standardised** (:class:`~sklearn.compose.TransformedTargetRegressor`) for every
  model whose penalty or tolerance is expressed in target units (lasso, elastic net, Huber, SVR,
  kernel ridge, MLP). A lattice parameter varies by ~0.02 Å around 2.8 Å, so an SVR's default
  ``epsilon=0.1`` would be wider than the whole signal; this, not the algorithm, made SVR the worst
  model of the prototype.
* **Features are standardised** for every distance-, kernel- or penalty-based model; trees get raw
  features (they are invariant to monotone transforms).
* **Deterministic**: every random model takes ``random_state``; every model runs on one thread
  (``n_jobs=1``), because ecpif parallelises across models and folds with joblib instead.
* **Optional boosting libraries** (xgboost, lightgbm, catboost, the ``boost`` extra) are registered
  with their import requirement; :func:`available_models` lists only what can be built here, and
  :func:`make_model` on a missing one raises :class:`~ecpif.errors.MissingDependencyError`.
* The Gaussian process uses an ARD kernel (one length scale per feature) plus a white-noise term;
  the number of length scales is only known at ``fit``, hence the small
  :class:`ARDGaussianProcessRegressor` wrapper. ``gaussian_process_linear`` adds a linear
  (dot-product) kernel so that predictions extrapolate linearly instead of reverting to the mean
  outside the training range (e.g. at a C-rate never trained on).
* Exact kernel methods scale as O(n³): the Gaussian processes are fitted on at most 600 rows
  and kernel ridge on at most 3,000 (:class:`SubsampledRegressor`, a seeded subset), so that the
  whole zoo stays usable on tens of thousands of rows. Operando datasets rarely exceed that.
  Their predictions need a kernel row per sample against every training row, so
  :class:`SubsampledRegressor` predicts in chunks of bounded memory: a 10-million-sample cycler
  record would otherwise need a 13 GB kernel matrix for 164 training patterns, and small chunks
  that stay in the processor's cache are also twice as fast.
* The Gaussian processes are fitted with **one BLAS thread**. The marginal-likelihood optimiser
  makes hundreds of Cholesky solves of matrices of at most 600 x 600, where multi-threaded BLAS
  only adds thread wake-ups (and spinning on a busy machine): a final fit on the 164 demo patterns
  took 3.3 s with two threads and 0.55 s with one. It also makes the fitted hyperparameters
  independent of the machine's core count, and equal to those of the cross-validation fits,
  which run single-threaded (:mod:`ecpif.validate`).

Examples
--------
>>> from ecpif.zoo import available_models, make_model
>>> "ridge" in available_models()
True
>>> model = make_model("ridge", random_state=0)
>>> type(model).__name__
'Pipeline'
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    AdaBoostRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    DotProduct,
    Kernel,
    WhiteKernel,
)
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    BayesianRidge,
    ElasticNet,
    HuberRegressor,
    Lasso,
    LinearRegression,
    RidgeCV,
)
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from ecpif.errors import ConfigError, MissingDependencyError, ModelError, did_you_mean

#: A factory builds a fresh, unfitted estimator from a seed.
ModelFactory = Callable[[int], BaseEstimator]

# Inspecting the loaded thread pools costs ~1 ms; the controller does it once, at import, after
# numpy and scipy (whose BLAS it limits) are loaded. Its limit() then costs microseconds.
_THREADPOOLS = ThreadpoolController()
#: Rows per prediction chunk of :class:`SubsampledRegressor`: the kernel block of one chunk
#: against the training rows stays below this many float64 values (3.2 MB). Blocks that stay in
#: the processor's cache predicted a million rows with a Gaussian process in half the CPU time of
#: 64 MB blocks (the kernel's temporaries are written and read several times).
_PREDICT_BLOCK_VALUES = 400_000


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory, what it is, and what it needs.

    Parameters
    ----------
    name
        Registry key, e.g. ``"extra_trees"``.
    factory
        ``factory(random_state) -> estimator``.
    family
        ``"linear"``, ``"kernel"``, ``"neighbours"``, ``"tree"``, ``"boosting"`` or ``"neural"``.
    description
        One line for listings.
    requires
        Importable module the factory needs (``None`` = scikit-learn only).
    extra
        pip extra that provides ``requires``.
    """

    name: str
    factory: ModelFactory
    family: str
    description: str = ""
    requires: str | None = None
    extra: str | None = None

    @property
    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    factory: ModelFactory,
    *,
    family: str = "custom",
    description: str = "",
    requires: str | None = None,
    extra: str | None = None,
    overwrite: bool = False,
) -> None:
    """Add a model to the zoo under ``name``.

    Parameters
    ----------
    name
        Registry key (letters, digits, ``_``).
    factory
        Callable taking the seed (``random_state``) and returning an unfitted scikit-learn
        regressor. It is called once per fit, so it must build a new object every time.
    family, description
        Shown in listings.
    requires, extra
        Optional import the factory needs and the pip extra providing it.
    overwrite
        Replace an existing entry of the same name (otherwise that is an error).

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> register_model("ridge_strong", lambda seed: Ridge(alpha=100.0), overwrite=True)
    >>> "ridge_strong" in available_models()
    True
    """
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ConfigError(
            f"Model names must be non-empty strings of letters, digits and '_'; got {name!r}."
        )
    if not callable(factory):
        raise ConfigError(
            f"The factory of model {name!r} must be callable as factory(random_state); got "
            f"{type(factory).__name__}."
        )
    if name in _REGISTRY and not overwrite:
        raise ConfigError(
            f"A model named {name!r} is already registered; pick another name or pass "
            f"overwrite=True to replace it."
        )
    _REGISTRY[name] = ModelSpec(name, factory, family, description, requires, extra)


def unregister_model(name: str) -> None:
    """Remove a model from the zoo (mainly for tests and plug-ins)."""
    _spec(name)
    del _REGISTRY[name]


def available_models(*, family: str | None = None) -> list[str]:
    """Names of the models that can be built in this environment, in registry order.

    Models whose optional library is missing are left out.

    >>> len(available_models()) >= 18
    True
    """
    return [
        s.name for s in _REGISTRY.values() if s.available and (family is None or s.family == family)
    ]


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name`` (raises :class:`ModelError` for unknown names)."""
    return _spec(name)


def _spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ModelError(
            f"Unknown model {name!r}.{did_you_mean(str(name), _REGISTRY)} "
            f"Call ecpif.zoo.available_models() for the list."
        )
    return _REGISTRY[name]


def make_model(name: str, *, random_state: int = 0) -> BaseEstimator:
    """A fresh, unfitted regressor from the zoo.

    Parameters
    ----------
    name
        One of :func:`available_models`.
    random_state
        Seed for every random element of the model (bootstraps, initialisations, restarts).

    Raises
    ------
    ModelError
        Unknown name (the message suggests the closest names).
    MissingDependencyError
        The model needs an optional library that is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 20)[:, None]
    >>> make_model("ols").fit(X, 2 * X[:, 0]).predict([[0.5]]).round(6).tolist()
    [1.0]
    """
    spec = _spec(name)
    if not spec.available:
        raise MissingDependencyError(
            f"Model {name!r} needs the optional package '{spec.requires}', which is not "
            f"installed; install it with: pip install 'ecpif[{spec.extra or 'all'}]'."
        )
    return spec.factory(int(random_state))


# --- building blocks ---------------------------------------------------------------------------


def _scaled(model: BaseEstimator) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _scaled_xy(model: BaseEstimator) -> TransformedTargetRegressor:
    # check_inverse=False: StandardScaler is exactly invertible, and the check costs a refit.
    return TransformedTargetRegressor(
        regressor=_scaled(model), transformer=StandardScaler(), check_inverse=False
    )


class ARDGaussianProcessRegressor(RegressorMixin, BaseEstimator):
    """Gaussian process with an ARD RBF kernel (+ optional linear term) and white noise.

    The kernel is ``C * RBF(l_1..l_p) [+ DotProduct] + White`` with one length scale per feature,
    built at ``fit`` time when the number of features is known. Inputs should be standardised
    (the zoo wraps it in a scaling pipeline); ``normalize_y`` standardises the target.

    Parameters
    ----------
    linear
        Add a dot-product kernel so that the mean extrapolates linearly.
    n_restarts_optimizer
        Extra random restarts of the marginal-likelihood optimiser.
    random_state
        Seed of the restarts.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 30)[:, None]
    >>> gp = ARDGaussianProcessRegressor().fit(X, np.sin(3 * X[:, 0]))
    >>> bool(abs(gp.predict([[0.2]])[0] - np.sin(0.6)) < 0.05)
    True
    """

    def __init__(
        self,
        linear: bool = False,
        n_restarts_optimizer: int = 0,
        random_state: int | None = 0,
    ) -> None:
        self.linear = linear
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state

    def _kernel(self, n_features: int) -> Kernel:
        kernel: Kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(
            length_scale=np.ones(n_features), length_scale_bounds=(1e-2, 1e3)
        )
        if self.linear:
            kernel = kernel + ConstantKernel(0.1, (1e-5, 1e2)) * DotProduct(
                sigma_0=1.0, sigma_0_bounds="fixed"
            )
        return kernel + WhiteKernel(noise_level=1e-2, noise_level_bounds=(1e-8, 1e1))

    def fit(self, X: np.ndarray, y: np.ndarray) -> ARDGaussianProcessRegressor:
        X, y = validate_data(self, X, y, y_numeric=True)
        # One BLAS thread: faster on these small matrices and independent of the core count
        # (see the module docstring).
        with warnings.catch_warnings(), _THREADPOOLS.limit(limits=1, user_api="blas"):
            # With ARD an irrelevant feature's length scale *should* run to its upper bound, and
            # a noise-free target's noise level to its lower bound: expected, not a failure.
            warnings.filterwarnings("ignore", message=".*close to the specified .* bound")
            self.gp_ = self._fit_gp(X, y)
        return self

    def _fit_gp(self, X: np.ndarray, y: np.ndarray) -> GaussianProcessRegressor:
        return GaussianProcessRegressor(
            kernel=self._kernel(X.shape[1]),
            normalize_y=True,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        ).fit(X, y)

    def predict(
        self, X: np.ndarray, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean (and standard deviation with ``return_std=True``)."""
        check_is_fitted(self, "gp_")
        X = validate_data(self, X, reset=False)
        return self.gp_.predict(X, return_std=return_std)


class SubsampledRegressor(RegressorMixin, BaseEstimator):
    """Fit ``estimator`` on at most ``max_samples`` rows (a seeded random subset).

    Exact kernel methods cost O(n²) memory and O(n³) time: a Gaussian process on 20,000 patterns
    would take hours. Above ``max_samples`` rows a fixed random subset (sorted, so row order is
    kept) is used instead; below it the wrapper is a no-op. The subset depends only on the number
    of rows and ``random_state``, so fits stay deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.arange(100.0)[:, None]
    >>> m = SubsampledRegressor(LinearRegression(), max_samples=10).fit(X, 2 * X[:, 0])
    >>> m.n_samples_used_, round(float(m.predict([[3.0]])[0]), 6)
    (10, 6.0)
    """

    def __init__(
        self, estimator: BaseEstimator, max_samples: int = 1000, random_state: int | None = 0
    ) -> None:
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> SubsampledRegressor:
        from sklearn.base import clone

        X, y = validate_data(self, X, y, y_numeric=True)
        n = len(y)
        if n > self.max_samples:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(n, size=self.max_samples, replace=False))
            X, y = X[rows], y[rows]
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.n_samples_used_ = len(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions of the fitted estimator, computed in chunks of bounded memory.

        A kernel model needs one kernel value per (sample, training row); chunks of
        ``max(1024, 4e5 / n_samples_used_)`` rows keep that block near 3 MB, in the processor's
        cache, whatever the number of samples.
        Each row's prediction depends on that row alone, so chunking changes the values only in
        the last bits (BLAS may sum a block of rows in another order; ~1e-15 relative).
        """
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False)
        chunk = max(1024, _PREDICT_BLOCK_VALUES // max(int(self.n_samples_used_), 1))
        if len(X) <= chunk:
            return np.asarray(self.estimator_.predict(X))
        parts = [
            np.asarray(self.estimator_.predict(X[start : start + chunk]))
            for start in range(0, len(X), chunk)
        ]
        return np.concatenate(parts, axis=0)


# --- the zoo -------------------------------------------------------------------------------------


def _xgboost(seed: int) -> BaseEstimator:
    from xgboost import XGBRegressor

    return XGBRegressor(
        n_estimators=200,
        learning_rate=0.05,
        max_depth=4,
        subsample=0.8,
        colsample_bytree=1.0,
        tree_method="hist",
        n_jobs=1,
        random_state=seed,
        verbosity=0,
    )


def _lightgbm(seed: int) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=5,
        subsample=0.8,
        subsample_freq=1,
        n_jobs=1,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def _catboost(seed: int) -> BaseEstimator:
    from catboost import CatBoostRegressor

    return CatBoostRegressor(
        iterations=150,
        learning_rate=0.1,
        depth=4,
        random_seed=seed,
        thread_count=1,
        verbose=0,
        allow_writing_files=False,
    )


def _register_builtin() -> None:
    alphas = np.logspace(-6, 3, 19)
    builtin: list[tuple[str, ModelFactory, str, str]] = [
        ("ols", lambda s: _scaled(LinearRegression()), "linear", "ordinary least squares"),
        (
            "ridge",
            lambda s: _scaled(RidgeCV(alphas=alphas)),
            "linear",
            "ridge, penalty chosen by efficient leave-one-out",
        ),
        (
            "lasso",
            lambda s: _scaled_xy(Lasso(alpha=1e-3, max_iter=20_000)),
            "linear",
            "L1-penalised linear model",
        ),
        (
            "elastic_net",
            lambda s: _scaled_xy(ElasticNet(alpha=1e-3, l1_ratio=0.5, max_iter=20_000)),
            "linear",
            "L1+L2-penalised linear model",
        ),
        (
            "bayesian_ridge",
            lambda s: _scaled_xy(BayesianRidge()),
            "linear",
            "Bayesian ridge regression",
        ),
        (
            "huber",
            lambda s: _scaled_xy(HuberRegressor(alpha=1e-4, max_iter=2_000)),
            "linear",
            "outlier-robust linear model",
        ),
        (
            "polynomial_ridge",
            lambda s: Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("poly", PolynomialFeatures(degree=3, include_bias=False)),
                    ("scale_poly", StandardScaler()),
                    ("model", RidgeCV(alphas=alphas)),
                ]
            ),
            "linear",
            "cubic polynomial features + ridge",
        ),
        (
            "svr",
            lambda s: _scaled_xy(SVR(C=10.0, epsilon=0.01, gamma="scale")),
            "kernel",
            "support vector regression, RBF kernel",
        ),
        (
            "kernel_ridge",
            lambda s: SubsampledRegressor(
                _scaled_xy(KernelRidge(alpha=1e-3, kernel="rbf", gamma=0.2)),
                max_samples=3000,
                random_state=s,
            ),
            "kernel",
            "kernel ridge regression, RBF kernel",
        ),
        (
            "gaussian_process",
            lambda s: SubsampledRegressor(
                _scaled(ARDGaussianProcessRegressor(random_state=s)),
                max_samples=600,
                random_state=s,
            ),
            "kernel",
            "Gaussian process, ARD RBF + white noise",
        ),
        (
            "gaussian_process_linear",
            lambda s: SubsampledRegressor(
                _scaled(ARDGaussianProcessRegressor(linear=True, random_state=s)),
                max_samples=600,
                random_state=s,
            ),
            "kernel",
            "Gaussian process, ARD RBF + linear + white noise (extrapolates linearly)",
        ),
        (
            "knn",
            lambda s: _scaled(KNeighborsRegressor(n_neighbors=5, weights="distance")),
            "neighbours",
            "k nearest neighbours, distance-weighted",
        ),
        (
            "decision_tree",
            lambda s: DecisionTreeRegressor(min_samples_leaf=2, random_state=s),
            "tree",
            "single regression tree",
        ),
        (
            "random_forest",
            lambda s: RandomForestRegressor(n_estimators=100, n_jobs=1, random_state=s),
            "tree",
            "random forest",
        ),
        (
            "extra_trees",
            lambda s: ExtraTreesRegressor(n_estimators=100, n_jobs=1, random_state=s),
            "tree",
            "extremely randomised trees",
        ),
        (
            "adaboost",
            lambda s: AdaBoostRegressor(
                DecisionTreeRegressor(max_depth=4), n_estimators=50, random_state=s
            ),
            "boosting",
            "AdaBoost.R2 on depth-4 trees",
        ),
        (
            "gradient_boosting",
            lambda s: GradientBoostingRegressor(
                n_estimators=200, learning_rate=0.05, max_depth=3, random_state=s
            ),
            "boosting",
            "gradient boosting (scikit-learn)",
        ),
        (
            "hist_gradient_boosting",
            lambda s: HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.1,
                min_samples_leaf=5,
                early_stopping=False,
                random_state=s,
            ),
            "boosting",
            "histogram gradient boosting (scikit-learn)",
        ),
        (
            "mlp",
            lambda s: _scaled_xy(
                MLPRegressor(
                    hidden_layer_sizes=(32, 32),
                    solver="lbfgs",
                    alpha=1e-3,
                    max_iter=300,
                    random_state=s,
                )
            ),
            "neural",
            "multi-layer perceptron (2 x 32, L-BFGS)",
        ),
    ]
    for name, factory, family, description in builtin:
        register_model(name, factory, family=family, description=description, overwrite=True)
    register_model(
        "xgboost",
        _xgboost,
        family="boosting",
        description="XGBoost",
        requires="xgboost",
        extra="boost",
        overwrite=True,
    )
    register_model(
        "lightgbm",
        _lightgbm,
        family="boosting",
        description="LightGBM",
        requires="lightgbm",
        extra="boost",
        overwrite=True,
    )
    register_model(
        "catboost",
        _catboost,
        family="boosting",
        description="CatBoost",
        requires="catboost",
        extra="boost",
        overwrite=True,
    )


_register_builtin()

__all__ = [
    "ARDGaussianProcessRegressor",
    "ModelFactory",
    "ModelSpec",
    "SubsampledRegressor",
    "available_models",
    "make_model",
    "model_spec",
    "register_model",
    "unregister_model",
]
