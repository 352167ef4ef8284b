"""Which features the models use: permutation importance measured on held-out folds only.

For every target and every outer fold of a cross-validation scheme, the target's best zoo model
(under that scheme) is fitted on the fold's training rows and scored on its held-out rows; each
feature is then shuffled ``n_repeats`` times in the held-out rows and the drop in R² recorded
(:func:`sklearn.inspection.permutation_importance`). Importances measured on training rows reward
what a model memorised; held-out rows only reward what generalises (with leave-one-rate-out
folds: what carries over to a C-rate never trained on).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance

from ecpif.zoo import make_model

if TYPE_CHECKING:
    from ecpif.validate import ZooResult

IMPORTANCE_MEAN = "importance mean"
IMPORTANCE_STD = "importance std"


def held_out_importance(
    data: pd.DataFrame,
    result: ZooResult,
    *,
    model: str | None = None,
    n_repeats: int = 5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Permutation importance (drop in held-out R²) of each feature, per target.

    Parameters
    ----------
    data
        The frame ``result`` was evaluated on.
    result
        Output of :func:`ecpif.validate.evaluate_zoo`; its folds and its best model are used.
    model
        Zoo model to explain (default: each target's best zoo model under ``result``'s scheme).
    n_repeats
        Shuffles per feature and fold.

    Returns
    -------
    DataFrame
        Columns ``target``, ``feature``, ``importance mean``, ``importance std`` (over folds and
        repeats), ``model``, ``scheme``, sorted by target then importance.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from ecpif.validate import evaluate_zoo
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"q [-]": rng.uniform(size=80), "noise [-]": rng.uniform(size=80)})
    >>> df["y [-]"] = 3 * df["q [-]"] + 0.01 * rng.normal(size=80)
    >>> res = evaluate_zoo(df, ["q [-]", "noise [-]"], ["y [-]"], models=["ols"], n_jobs=1,
    ...                    ensembles=False)
    >>> held_out_importance(df, res)["feature"].iloc[0]
    'q [-]'
    """
    X = data[result.features].to_numpy(dtype=float)
    rows = []
    for target in result.targets:
        name = model or result.best(target, kind="model")
        y = result.y[target]
        per_fold = []
        for train, test in result.folds.split():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = make_model(name, random_state=random_state).fit(X[train], y[train])
            pi = permutation_importance(
                est,
                X[test],
                y[test],
                scoring="r2",
                n_repeats=n_repeats,
                random_state=random_state,
                n_jobs=1,
            )
            per_fold.append(pi.importances)  # (n_features, n_repeats)
        stacked = np.concatenate(per_fold, axis=1)
        for j, feature in enumerate(result.features):
            rows.append(
                {
                    "target": target,
                    "feature": feature,
                    IMPORTANCE_MEAN: float(stacked[j].mean()),
                    IMPORTANCE_STD: float(stacked[j].std()),
                    "model": name,
                    "scheme": result.scheme,
                }
            )
    out = pd.DataFrame(rows)
    return out.sort_values(["target", IMPORTANCE_MEAN], ascending=[True, False]).reset_index(
        drop=True
    )
