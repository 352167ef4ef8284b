"""Speed and accuracy against peers: PyCaret 3.3 and LazyPredict on the same data and folds.

The work compared is the reference study's protocol: every model of the tool's default list with
5-fold shuffled cross-validation, then ensembles of the top models, for the four targets a, c, d and
Li occupancy of the bundled virtual NCA demo (164 patterns, the same features for everyone).

* **ecpif**: :func:`ecpif.validate.evaluate_zoo` (full zoo, ensembles chosen inside
  each outer fold),
  in this Python.
* **PyCaret 3.3.2**: ``compare_models`` (5 folds) + ``blend_models`` + ``stack_models``
  over the top 3,
  per target, in its own virtual environment (it pins old numpy/pandas/scikit-learn).
* **LazyPredict**: ``LazyRegressor`` on each of the 5 folds, in its own virtual environment.

All three get the very same fold of every row (the ``fold`` column of the CSV handed to the peers is
ecpif's shuffled KFold). Scores are the mean over folds of the per-fold R² and RMSE, which is what
PyCaret reports. PyCaret prints metrics to 4 decimals, which would round the RMSE of lattice a
(~3e-4 Å) away, so every tool sees the targets in scaled units (mÅ, % occupancy) and RMSE is
converted back.

Usage::

    python benchmarks/bench_peers.py                 # full comparison, appends to RESULTS.md
    python benchmarks/bench_peers.py --quick --no-results   # harness check (CI): 3 models, 1 target

The virtual environments are created under ``benchmarks/.venvs`` (git-ignored) on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
VENVS = HERE / ".venvs"
PEERS = {
    "pycaret": {
        "packages": ["pycaret==3.3.2", "six"],
        "runner": HERE / "peers" / "pycaret_runner.py",
    },
    "lazypredict": {
        "packages": ["lazypredict==0.3.0"],
        "runner": HERE / "peers" / "lazypredict_runner.py",
    },
}
TARGETS = ["a [Å]", "c [Å]", "d [Å]", "li_occupancy [-]"]
#: Targets are handed to every tool in these units (see the module docstring).
SCALE = {"a [Å]": 1000.0, "c [Å]": 1000.0, "d [Å]": 1000.0, "li_occupancy [-]": 100.0}
QUICK_ECPIF = ["ridge", "extra_trees", "knn"]
QUICK_PYCARET = ["ridge", "et", "knn"]


def venv_python(tool: str) -> Path:
    """The venv of a peer, created with its pinned packages on first use."""
    venv = VENVS / tool
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    wanted = " ".join(PEERS[tool]["packages"])  # type: ignore[arg-type]
    if marker.is_file() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *PEERS[tool]["packages"]],  # type: ignore[misc]
        check=True,
    )
    marker.write_text(wanted)
    return python


def demo_table() -> tuple[pd.DataFrame, list[str]]:
    import ecpif
    from ecpif.align import align_runs
    from ecpif.validate import DEFAULT_FEATURES

    runs = [r for r in ecpif.datasets.load_nca_demo() if r.has_patterns]
    return align_runs(runs), list(DEFAULT_FEATURES)


def fold_means(y: np.ndarray, pred: np.ndarray, fold: np.ndarray) -> tuple[float, float]:
    r2, rmse = [], []
    for f in np.unique(fold):
        m = fold == f
        resid = y[m] - pred[m]
        rmse.append(np.sqrt(np.mean(resid**2)))
        r2.append(1 - np.sum(resid**2) / np.sum((y[m] - y[m].mean()) ** 2))
    return float(np.mean(r2)), float(np.mean(rmse))


def run_ecpif(data: pd.DataFrame, features: list[str], targets: list[str], models, n_jobs: int):  # type: ignore[no-untyped-def]
    from ecpif.validate import evaluate_zoo

    scaled = data.copy()
    for t in targets:
        scaled[t] = scaled[t] * SCALE[t]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_zoo(
            scaled,
            features,
            targets,
            models=models,
            scheme="shuffled",
            ensembles=True,
            top_k=3,
            n_jobs=n_jobs,
            random_state=0,
        )
    wall = time.perf_counter() - start
    out: dict = {"tool": "ecpif", "wall_time_s": wall, "targets": {}}
    for t in targets:
        y = res.y[t]
        best = {"r2": -np.inf, "rmse": np.inf}
        per_model = {}
        for name in res.predictions[t].columns:
            pred = res.predictions[t][name].to_numpy()
            if np.isnan(pred).any():
                continue
            r2, rmse = fold_means(y, pred, res.folds.fold)
            per_model[name] = (r2, rmse)
            if r2 > best["r2"]:
                best = {"model": name, "r2": r2, "rmse": rmse}
        out["targets"][t] = {"best": best, "n_models_compared": len(res.models)}
    return out, res.folds.fold


def run_peer(tool: str, csv: Path, features: list[str], targets: list[str], quick: bool) -> dict:
    python = venv_python(tool)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            str(python),
            str(PEERS[tool]["runner"]),
            str(csv),
            str(result),
            "--features",
            ",".join(features),
            "--targets",
            ",".join(targets),
        ]
        if tool == "pycaret" and quick:
            cmd += ["--models", ",".join(QUICK_PYCARET)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{proc.stderr[-3000:]}")
        out = json.loads(result.read_text())
    out["process_wall_time_s"] = wall
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 models, 1 target (harness check).")
    parser.add_argument("--peers", default="pycaret,lazypredict")
    parser.add_argument("--no-results", action="store_true", help="Do not append to RESULTS.md.")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    data, features = demo_table()
    targets = TARGETS[:1] if args.quick else TARGETS
    models = QUICK_ECPIF if args.quick else "all"
    ecpif_out, fold = run_ecpif(data, features, targets, models, args.n_jobs)

    table = data[features].copy()
    for t in targets:
        table[t] = data[t] * SCALE[t]
    table["fold"] = fold
    # Column names with units and brackets confuse some peers' preprocessing: plain names.
    plain = {c: f"f{i}" for i, c in enumerate(features)} | {
        t: f"t{i}" for i, t in enumerate(targets)
    }
    results = {"ecpif": ecpif_out}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "aligned.csv"
        table.rename(columns=plain).to_csv(csv, index=False)
        for tool in [p for p in args.peers.split(",") if p]:
            if tool == "lazypredict" and args.quick:
                continue  # LazyRegressor has no model list option; it is timed in the full run
            peer = run_peer(
                tool, csv, [plain[f] for f in features], [plain[t] for t in targets], args.quick
            )
            peer["targets"] = {t: peer["targets"][plain[t]] for t in targets}
            results[tool] = peer

    rows = []
    for tool, res in results.items():
        for t in targets:
            best = res["targets"][t]["best"]
            rows.append(
                {
                    "tool": tool,
                    "target": t,
                    "best R2": best["r2"],
                    "best RMSE": best["rmse"] / SCALE[t],
                    "models": res["targets"][t].get("n_models_compared"),
                }
            )
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False))
    walls = {tool: res["wall_time_s"] for tool, res in results.items()}
    print("wall time [s]:", {k: round(v, 1) for k, v in walls.items()})

    # Harness correctness: every tool scored every target on the same folds with a sane R².
    assert set(frame["tool"]) == set(results)
    assert (frame["best R2"] > 0.5).all(), frame

    if args.no_results:
        return
    import sklearn

    lines = [
        "",
        f"## Speed and accuracy against peers ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python benchmarks/bench_peers.py`. Machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}; ecpif with scikit-learn {sklearn.__version__}"
        f"; PyCaret {results.get('pycaret', {}).get('versions', {}).get('pycaret', '-')}, "
        f"LazyPredict {results.get('lazypredict', {}).get('versions', {}).get('lazypredict', '-')}"
        " in their own venvs. Same 164 demo patterns, same features, same 5 shuffled folds; "
        "scores are means over folds.",
        "",
        "| tool | work | wall time [s] | ratio to ecpif |",
        "|---|---|---|---|",
    ]
    work = {
        "ecpif": "full zoo x 5 folds + best-single/voting/stacking/auto chosen inside each fold",
        "pycaret": "compare_models (5 folds) + blend_models + stack_models (top 3), per target",
        "lazypredict": "LazyRegressor on each of the 5 folds, per target (no ensembles)",
    }
    for tool, wall in walls.items():
        lines.append(f"| {tool} | {work[tool]} | {wall:.1f} | {wall / walls['ecpif']:.2f} |")
    lines += [
        "",
        "| target | " + " | ".join(f"{tool} R² / RMSE" for tool in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for t in targets:
        cells = []
        for tool in results:
            r = frame[(frame["tool"] == tool) & (frame["target"] == t)].iloc[0]
            cells.append(f"{r['best R2']:.4f} / {r['best RMSE']:.3g}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("")
    text = "\n".join(lines)
    with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
