"""Speed of the model zoo and ensembles (issue 4): demo dataset, 2 cores, and a 10,000-row table.

Measures wall time of :func:`ecpif.validate.evaluate_zoo` for

1. the full zoo (every available model) x 5 shuffled folds x 4 targets on the demo patterns,
   sequential (``n_jobs=1``) and parallel (``n_jobs=2``), checking both give identical scores;
2. the same plus ensembles (best single, voting, stacking, auto, study preset: members chosen
   inside each outer fold, which needs the nested fits), for the shuffled and LORO schemes;
3. the full zoo on a synthetic 10,000-row table (1 target, 5 folds, no ensembles): per-model fit
   time, to show the defaults stay usable at that size.

The machine is shared: the 1-minute load average before each measurement is printed beside it.

Run:  python benchmarks/bench_zoo.py            (about 2 minutes on 2 free cores)
      python benchmarks/bench_zoo.py --quick    (3 fast models, 2,000 rows, no files: CI)
Writes benchmarks/results/zoo_speed*.csv and the "## Zoo speed" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import ecpif
from ecpif.align import align_runs
from ecpif.validate import DEFAULT_FEATURES, evaluate_zoo, write_csv_atomic
from ecpif.zoo import available_models

sys.path.insert(0, str(Path(__file__).parent))
from bench_accuracy import md, replace_section

HERE = Path(__file__).parent
TARGETS = ["a", "c", "d", "li_occupancy"]


def timed(label: str, rows: list[dict], **kwargs: object):  # type: ignore[no-untyped-def]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = evaluate_zoo(**kwargs)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    n_models = len(res.models)
    rows.append({
        "case": label, "scheme": res.scheme, "models": n_models, "targets": len(res.targets),
        "folds": res.folds.n_folds, "fits": res.settings["n_fits"],
        "n_jobs": kwargs.get("n_jobs"), "wall [s]": wall,
        "CPU of fits [s]": res.settings["cpu_seconds"], "load before": load,
    })  # fmt: skip
    print(rows[-1], flush=True)
    return res


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rate = rng.choice([0.2, 0.5, 1.0], size=n)
    q = rng.uniform(0, 450, n)
    direction = rng.choice([-1.0, 0.0, 1.0], size=n)
    current = 0.43 * rate * direction
    return pd.DataFrame({
        "voltage [V]": 3.4 + 0.0017 * q + 0.2 * current, "current [A]": current,
        "charge [mA.h]": q, "direction [-]": direction, "C-rate [1/h]": rate * np.abs(direction),
        "c [Å]": 14.18 + 0.25 * np.sin(q / 150) + 0.02 * current + 2e-3 * rng.normal(size=n),
    })  # fmt: skip


QUICK_MODELS = ("ols", "knn", "decision_tree")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_MODELS}, no files")
    args = parser.parse_args(argv)
    models = QUICK_MODELS if args.quick else "all"
    train = align_runs(ecpif.datasets.load_nca_demo())
    features = [f for f in DEFAULT_FEATURES if f in train.columns]
    common = dict(data=train, features=features, targets=TARGETS, models=models, random_state=0)
    rows: list[dict] = []
    seq = timed("zoo only", rows, scheme="shuffled", ensembles=False, n_jobs=1, **common)
    par = timed("zoo only", rows, scheme="shuffled", ensembles=False, n_jobs=2, **common)
    cols = [c for c in seq.leaderboard.columns if "time" not in c]
    identical = seq.leaderboard[cols].equals(par.leaderboard[cols])
    timed("zoo + ensembles", rows, scheme="shuffled", ensembles=True, preset="study", n_jobs=2,
          **common)  # fmt: skip
    timed("zoo + ensembles", rows, scheme="loro", ensembles=True, preset="study", n_jobs=2,
          **common)  # fmt: skip
    demo = pd.DataFrame(rows)
    if not identical:
        raise RuntimeError("n_jobs=1 and n_jobs=2 gave different scores")

    n_big = 2_000 if args.quick else 10_000
    big = synthetic(n_big)
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    res = evaluate_zoo(big, features, ["c"], models=models, scheme="shuffled", ensembles=False,
                       n_jobs=2)  # fmt: skip
    wall_big = time.perf_counter() - t0
    per_model = res.leaderboard[["model", "fit time [s]", "predict time [s]", "RMSE"]]
    per_model = per_model.sort_values("fit time [s]", ascending=False)
    print(f"{n_big:,} rows: {wall_big:.1f} s", flush=True)
    print(md(demo))
    if args.quick:
        return 0
    (HERE / "results").mkdir(exist_ok=True)
    write_csv_atomic(demo, HERE / "results" / "zoo_speed.csv")
    write_csv_atomic(per_model, HERE / "results" / "zoo_speed_10k.csv")

    body = f"""
Produced by `python benchmarks/bench_zoo.py` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC) on this
machine ({os.cpu_count()} cores, shared
with other jobs: the 1-min load average before each run is shown; a load above 2 means other
jobs took part of the cores, so wall times are upper bounds). "CPU of fits" is the single-thread
CPU time of all model fits and predictions, which does not depend on the load: on two free
cores the wall time of a parallel run is about half of it plus ~2 s of process start-up.
Demo: {len(train)} patterns, {len(available_models())} zoo models, features `{features}`.
"fits" counts model fits over all targets: 5 per model and target without ensembles; with
ensembles each model is also fitted on every union of K-2 folds (the inner CV of each outer fold,
shared between outer folds), 15 per model and target for K=5.

{md(demo)}

Same scores and ranks with `n_jobs=1` and `n_jobs=2`: **{identical}**.

Full zoo on a synthetic 10,000-row table (1 target, 5 shuffled folds, no ensembles, n_jobs=2):
**{wall_big:.0f} s** wall (load before {load:.1f}). Slowest models (mean fit time per fold; the
Gaussian processes are fitted on a 600-row subset, kernel ridge on 3,000):

{md(per_model.head(8), ".3f")}
"""
    replace_section(HERE / "RESULTS.md", "Zoo speed", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
