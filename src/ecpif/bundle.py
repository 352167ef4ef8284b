"""Save and load a trained model safely (skops format, no pickle).

A bundle is one ``.skops`` file holding the fitted estimators of every target, the residuals that
calibrate their intervals, and JSON metadata: features, targets, units, ensemble kinds, members and
weights, the cross-validation scheme, the training range of each feature, a SHA-256 of the training
data and the versions of the packages that fitted it.

Design decisions
----------------
* **No code runs from an untrusted file.** ``pickle`` executes whatever a file asks; skops instead
  lists the types a file would build. :func:`load_bundle` accepts a file only when every type it
  needs is on ecpif's explicit allow-list (the scikit-learn, numpy, and optional boosting types
  that zoo models are made of, plus ecpif's own estimators), and refuses any other file with a
  :class:`~ecpif.errors.BundleError` naming the unexpected types. ``trusted=True`` is never used.
* **Versions are checked, not hoped for.** A bundle fitted with another major.minor version of
  scikit-learn (or of a boosting library it uses) raises a clear error, because unpickled tree
  structures may silently change meaning; ``allow_version_mismatch=True`` loads it anyway with a
  warning. Patch-level differences only warn.
* Written atomically (temporary file in the same folder, then ``os.replace``).

Examples
--------
>>> path = save_bundle(model, "model.skops")  # doctest: +SKIP
>>> model = load_bundle("model.skops")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ecpif._provenance import package_versions
from ecpif.ensemble import TrainedEnsemble
from ecpif.errors import BundleError

FORMAT = "ecpif-bundle"
FORMAT_VERSION = 1

#: Packages whose version is recorded; those marked True must match at major.minor when used.
_VERSIONED = ("ecpif", "scikit-learn", "numpy", "scipy", "skops", "xgboost", "lightgbm",
              "catboost")  # fmt: skip
_STRICT = ("scikit-learn", "xgboost", "lightgbm", "catboost")
_MODULE_OF = {"xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost"}

#: Types that skops does not trust by default but that zoo models and ecpif ensembles are made of.
#: Each only restores fitted state (arrays, tree tables, a booster's own model format); none runs
#: code from the file.
ALLOWED_TYPES: frozenset[str] = frozenset({
    "ecpif.zoo.ARDGaussianProcessRegressor",
    "ecpif.zoo.SubsampledRegressor",
    "ecpif.ensemble.ConvexStacker",
    "ecpif.tune.TunedRegressor",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.DotProduct",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
    "collections.OrderedDict",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBRegressor",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRegressor",
    "catboost.core.CatBoostRegressor",
})  # fmt: skip


def installed_versions() -> dict[str, str | None]:
    """Versions of the packages a bundle depends on (``None`` = not installed)."""
    return package_versions(_VERSIONED)


def _metadata(model: TrainedEnsemble) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": installed_versions(),
        "features": model.features,
        "targets": model.targets,
        "units": model.units,
        "kinds": model.kinds,
        "members": model.members,
        "weights": model.weights,
        "scheme": model.scheme,
        "feature_min": model.feature_min,
        "feature_max": model.feature_max,
        "training_hash": model.training_hash,
        "n_rows": model.n_rows,
        "random_state": model.random_state,
        "info": model.info,
    }


def save_bundle(model: TrainedEnsemble, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (a ``.skops`` file) atomically; returns the path.

    Examples
    --------
    >>> save_bundle(model, "nca.skops")  # doctest: +SKIP
    PosixPath('nca.skops')
    """
    import skops.io as sio

    if not isinstance(model, TrainedEnsemble):
        raise BundleError(
            f"Only a TrainedEnsemble (from ecpif.ensemble.fit_ensemble) can be saved; got "
            f"{type(model).__name__}."
        )
    state = {
        "metadata": json.dumps(_metadata(model)),
        "estimators": dict(model.estimators),
        "residuals": {t: np.asarray(r, dtype=float) for t, r in model.residuals.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sio.dump(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _major_minor(version: str | None) -> tuple[str, ...]:
    return tuple((version or "").split(".")[:2])


def _check_versions(
    saved: dict[str, str | None], kinds_used: set[str], path: Path, allow: bool
) -> None:
    now = installed_versions()
    for name in _STRICT:
        was, has = saved.get(name), now.get(name)
        if was is None or was == has:
            continue
        if name in _MODULE_OF and name not in kinds_used:
            continue  # that library is not part of this bundle's models
        if has is None:
            raise BundleError(
                f"Bundle {str(path)!r} uses {name} {was}, which is not installed; install it "
                f"with: pip install '{name}=={was}'."
            )
        if _major_minor(was) != _major_minor(has) and not allow:
            raise BundleError(
                f"Bundle {str(path)!r} was saved with {name} {was} but {has} is installed; "
                f"install {name}=={was}, or pass allow_version_mismatch=True to load it anyway "
                f"(predictions may differ)."
            )
        warnings.warn(
            f"Bundle {str(path)!r} was saved with {name} {was}; {has} is installed, so "
            f"predictions may differ slightly.",
            UserWarning,
            stacklevel=3,
        )


def load_bundle(
    path: str | os.PathLike[str], *, allow_version_mismatch: bool = False
) -> TrainedEnsemble:
    """Load a bundle written by :func:`save_bundle`, refusing types outside the allow-list.

    Parameters
    ----------
    path
        The ``.skops`` file.
    allow_version_mismatch
        Load a bundle saved with another major.minor version of scikit-learn or a boosting
        library (with a warning) instead of raising.

    Raises
    ------
    BundleError
        Missing or unreadable file, not an ecpif bundle, unexpected (untrusted) types, or a
        version mismatch.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"No bundle at {str(path)!r}; check the path.")
    if not zipfile.is_zipfile(path):
        raise BundleError(
            f"File {str(path)!r} is not an ecpif bundle (not a skops archive); write bundles "
            f"with ecpif.bundle.save_bundle or 'ecpif train'."
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops raises various errors for corrupt archives
        raise BundleError(
            f"File {str(path)!r} is not a readable skops bundle ({type(exc).__name__}: {exc})."
        ) from None
    unexpected = sorted(untrusted - ALLOWED_TYPES)
    if unexpected:
        raise BundleError(
            f"Bundle {str(path)!r} asks to build type(s) {unexpected} that ecpif does not trust; "
            f"it was not loaded. Only load bundles from sources you trust, saved by ecpif."
        )
    try:
        state = sio.load(path, trusted=sorted(untrusted))
        meta = json.loads(state["metadata"])
    except Exception as exc:
        raise BundleError(
            f"File {str(path)!r} is not a valid ecpif bundle ({type(exc).__name__}: {exc})."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"File {str(path)!r} is a skops file but not an ecpif bundle.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"Bundle {str(path)!r} has format version {meta.get('format_version')!r}; this ecpif "
            f"reads version {FORMAT_VERSION}: retrain the model with this version of ecpif."
        )
    libs_used = {
        lib
        for members in meta["members"].values()
        for m in members
        for lib in _MODULE_OF
        if m == lib
    }
    _check_versions(meta["versions"], libs_used, path, allow_version_mismatch)
    return TrainedEnsemble(
        features=list(meta["features"]),
        targets=list(meta["targets"]),
        estimators=dict(state["estimators"]),
        kinds=dict(meta["kinds"]),
        members={k: list(v) for k, v in meta["members"].items()},
        weights={k: list(v) for k, v in meta["weights"].items()},
        scheme=str(meta["scheme"]),
        residuals={t: np.asarray(r, dtype=float) for t, r in state["residuals"].items()},
        feature_min={k: float(v) for k, v in meta["feature_min"].items()},
        feature_max={k: float(v) for k, v in meta["feature_max"].items()},
        units=dict(meta["units"]),
        training_hash=str(meta["training_hash"]),
        n_rows=int(meta["n_rows"]),
        random_state=int(meta["random_state"]),
        info={**meta.get("info", {}), "versions": meta["versions"], "created": meta["created"]},
    )


__all__ = ["ALLOWED_TYPES", "FORMAT_VERSION", "installed_versions",
           "load_bundle", "save_bundle"]  # fmt: skip
