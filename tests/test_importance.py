"""Permutation importance on held-out folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecpif.importance import IMPORTANCE_MEAN, held_out_importance
from ecpif.validate import evaluate_zoo


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 150
    df = pd.DataFrame(
        {
            "charge [mA.h]": rng.uniform(0, 400, n),
            "noise [-]": rng.normal(size=n),
            "run id": np.repeat(["r1", "r2", "r3"], n // 3),
            "C-rate label [1/h]": np.repeat([0.2, 0.5, 1.0], n // 3),
        }
    )
    df["a [Å]"] = 2.86 - 1e-4 * df["charge [mA.h]"] + rng.normal(0, 3e-4, n)
    df["c [Å]"] = 14.18 + 1e-6 * df["charge [mA.h]"] ** 2 + rng.normal(0, 2e-3, n)
    return df


@pytest.mark.parametrize("scheme", ["shuffled", "loro"])
def test_the_informative_feature_ranks_first_and_noise_near_zero(data, scheme):
    res = evaluate_zoo(
        data,
        ["charge [mA.h]", "noise [-]"],
        ["a", "c"],
        models=["ridge", "knn"],
        scheme=scheme,
        ensembles=False,
        n_jobs=1,
    )
    imp = held_out_importance(data, res)
    assert set(imp["target"]) == {"a [Å]", "c [Å]"}
    for target, part in imp.groupby("target"):
        part = part.set_index("feature")
        assert part.index[0] == "charge [mA.h]", target
        assert part.loc["charge [mA.h]", IMPORTANCE_MEAN] > 0.5
        assert abs(part.loc["noise [-]", IMPORTANCE_MEAN]) < 0.05
    assert set(imp["scheme"]) == {scheme}


def test_explaining_a_named_model(data):
    res = evaluate_zoo(
        data,
        ["charge [mA.h]", "noise [-]"],
        ["a"],
        models=["ridge", "knn"],
        ensembles=False,
        n_jobs=1,
    )
    imp = held_out_importance(data, res, model="knn", n_repeats=2)
    assert set(imp["model"]) == {"knn"}
