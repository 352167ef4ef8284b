"""Peer run: PyCaret 3.3 on an aligned table with predefined folds (runs in PyCaret's own venv).

The reference-study protocol in PyCaret's words: ``compare_models`` with 5-fold CV, then
``blend_models`` and ``stack_models`` over the top 3, per target. Folds come from the ``fold``
column so that PyCaret and ecpif score exactly the same splits.

Usage (called by ``benchmarks/bench_peers.py``)::

    python pycaret_runner.py data.csv result.json --features f1,f2 --targets t1,t2 [--models lr,rf]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import PredefinedSplit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("result")
    parser.add_argument("--features", required=True)
    parser.add_argument("--targets", required=True)
    parser.add_argument("--models", default="")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pycaret.regression import blend_models, compare_models, pull, setup, stack_models

    data = pd.read_csv(args.data)
    features = args.features.split(",")
    targets = args.targets.split(",")
    include = [m for m in args.models.split(",") if m] or None
    folds = PredefinedSplit(data["fold"].to_numpy())
    out = {"tool": "pycaret", "targets": {}}
    total_start = time.perf_counter()
    for target in targets:
        start = time.perf_counter()
        frame = data[[*features, target]]
        setup(
            data=frame,
            target=target,
            test_data=frame.iloc[:2],
            index=False,
            fold_strategy=folds,
            fold=int(data["fold"].nunique()),
            session_id=args.seed,
            verbose=False,
            html=False,
            n_jobs=args.n_jobs,
            data_split_shuffle=False,
            fold_shuffle=False,
        )
        top = compare_models(n_select=args.top, sort="R2", include=include, verbose=False)
        grid = pull()
        results = {
            "best_single": {
                "model": str(grid.index[0]),
                "r2": float(grid["R2"].iloc[0]),
                "rmse": float(grid["RMSE"].iloc[0]),
            }
        }
        top = top if isinstance(top, list) else [top]
        if len(top) >= 2:
            blend_models(top, verbose=False)
            blend = pull().loc["Mean"]
            results["blend"] = {"r2": float(blend["R2"]), "rmse": float(blend["RMSE"])}
            stack_models(top, verbose=False)
            stack = pull().loc["Mean"]
            results["stack"] = {"r2": float(stack["R2"]), "rmse": float(stack["RMSE"])}
        best = max(results.values(), key=lambda r: r["r2"])
        results["best"] = {"r2": best["r2"], "rmse": best["rmse"]}
        results["wall_time_s"] = time.perf_counter() - start
        results["n_models_compared"] = len(grid)
        out["targets"][target] = results
    out["wall_time_s"] = time.perf_counter() - total_start
    out["versions"] = {"pycaret": __import__("pycaret").__version__, "numpy": np.__version__}
    with open(args.result, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
