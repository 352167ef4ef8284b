"""Peer run: LazyPredict's LazyRegressor on an aligned table with predefined folds (own venv).

LazyRegressor fits its whole regressor list on one train/test split; for a fair comparison with
5-fold CV it is run once per fold of the ``fold`` column, and R² and RMSE of each model are pooled
over the out-of-fold predictions.

Usage (called by ``benchmarks/bench_peers.py``)::

    python lazypredict_runner.py data.csv result.json --features f1,f2 --targets t1,t2
"""

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("result")
    parser.add_argument("--features", required=True)
    parser.add_argument("--targets", required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from lazypredict.Supervised import LazyRegressor

    data = pd.read_csv(args.data)
    features = args.features.split(",")
    targets = args.targets.split(",")
    out = {"tool": "lazypredict", "targets": {}}
    total_start = time.perf_counter()
    for target in targets:
        start = time.perf_counter()
        oof = {}
        for fold in sorted(data["fold"].unique()):
            test = data["fold"] == fold
            model = LazyRegressor(verbose=0, ignore_warnings=True, predictions=True)
            _, predictions = model.fit(
                data.loc[~test, features],
                data.loc[test, features],
                data.loc[~test, target],
                data.loc[test, target],
            )
            for name in predictions.columns:
                oof.setdefault(name, pd.Series(np.nan, index=data.index))
                oof[name].loc[test] = predictions[name].to_numpy()
        y = data[target].to_numpy()
        scores = {}
        for name, pred in oof.items():
            p = pred.to_numpy()
            if np.isnan(p).any():
                continue
            rmse = float(np.sqrt(np.mean((y - p) ** 2)))
            r2 = float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
            scores[name] = {"r2": r2, "rmse": rmse}
        best_name = max(scores, key=lambda n: scores[n]["r2"])
        out["targets"][target] = {
            "best_single": {"model": best_name, **scores[best_name]},
            "best": scores[best_name],
            "n_models_compared": len(scores),
            "wall_time_s": time.perf_counter() - start,
        }
    out["wall_time_s"] = time.perf_counter() - total_start
    out["versions"] = {"lazypredict": __import__("lazypredict").__version__}
    with open(args.result, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
