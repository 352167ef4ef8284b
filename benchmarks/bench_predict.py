"""Prediction throughput at scale: structural trajectories for 1M and 10M cycler rows.

The model is the demo's final model, as ``ecpif demo`` builds it: the full zoo evaluated
leave-one-rate-out on the 164 demo patterns, then :func:`ecpif.ensemble.fit_ensemble` with the
automatic choice (Gaussian process for a, c and Li occupancy, convex stacking of five models for
d on the current defaults). It is saved as a bundle and every size runs in a fresh process that
loads it, so each process's peak memory belongs to that size alone.

Cycler data of N rows are made by repeating the demo's four cycler records (0.2C, 0.5C, 1C, 2C;
6,893 samples at 10 s) end to end with a continuing clock and step index, and perturbing
voltage (0.5 mV), current (0.1 %) and charge (0.01 mA.h) with seeded noise, so the values stay in
the model's training domain as a long real record would. Per size it measures:

* ``features``: :func:`ecpif.features.echem_features` on the N rows;
* ``predict``: :func:`ecpif.predict.predict_frame` (every target, 90 % intervals, domain check),
  after a warm-up call on 10,000 rows; rows/s = N / predict time;
* peak resident memory after the data, after the features and after prediction;
* at the first size, a breakdown: each target's estimator and each member of an ensemble called
  directly on the NumPy feature array. Their sum is the **peer** (the bare scikit-learn models,
  no ecpif wrapper), so ``predict / peer`` is ecpif's own overhead, measured in the same run.

Usage::

    python benchmarks/bench_predict.py                       # 1M and 10M rows (~3.5 min)
    python benchmarks/bench_predict.py --rows 100000 1000000
    python benchmarks/bench_predict.py --quick               # 3 fast models, 20k/50k rows (CI)
    python benchmarks/bench_predict.py --results benchmarks/RESULTS.md
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
from typing import Any

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

HERE = Path(__file__).parent
SECTION = "Prediction throughput"
TARGETS = ["a", "c", "d", "li_occupancy"]
QUICK_MODELS = ("ols", "knn", "decision_tree")
WARMUP_ROWS = 10_000


def train_model(models: str | tuple[str, ...], n_jobs: int):  # type: ignore[no-untyped-def]
    """The demo's final model: zoo under leave-one-rate-out, then the automatic ensemble."""
    import ecpif
    from ecpif.align import align_runs
    from ecpif.ensemble import fit_ensemble
    from ecpif.validate import DEFAULT_FEATURES, evaluate_zoo

    runs = [r for r in ecpif.datasets.load_nca_demo() if r.has_patterns]
    train = align_runs(runs)
    features = [f for f in DEFAULT_FEATURES if f in train.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_zoo(train, features, TARGETS, models=models, scheme="loro",
                           n_jobs=n_jobs, random_state=0)  # fmt: skip
        return fit_ensemble(train, res, kind="auto")


def build_echem(n_rows: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """N cycler rows: the demo's cycler records repeated end to end, with seeded noise."""
    import numpy as np
    import pandas as pd

    import ecpif
    from ecpif import schema

    runs = ecpif.datasets.load_nca_demo()
    blocks, t_end, step_end = [], 0.0, 0
    for run in runs:
        e = run.echem
        t = e[schema.TIME].to_numpy(dtype=float)
        blocks.append(
            {
                schema.TIME: t - t[0] + t_end,
                schema.VOLTAGE: e[schema.VOLTAGE].to_numpy(dtype=float),
                schema.CURRENT: e[schema.CURRENT].to_numpy(dtype=float),
                schema.CHARGE: e[schema.CHARGE].to_numpy(dtype=float),
                schema.STEP: e[schema.STEP].to_numpy() + step_end,
            }
        )
        t_end = blocks[-1][schema.TIME][-1] + 10.0
        step_end = int(blocks[-1][schema.STEP].max())
    one = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    period_t, period_step, m = t_end, step_end, len(one[schema.TIME])
    reps = -(-n_rows // m)
    rng = np.random.default_rng(seed)
    rep = np.repeat(np.arange(reps), m)[:n_rows]
    data = {
        schema.TIME: np.tile(one[schema.TIME], reps)[:n_rows] + rep * period_t,
        schema.VOLTAGE: np.tile(one[schema.VOLTAGE], reps)[:n_rows] + rng.normal(0.0, 5e-4, n_rows),
        schema.CURRENT: np.tile(one[schema.CURRENT], reps)[:n_rows]
        * (1.0 + rng.normal(0.0, 1e-3, n_rows)),
        schema.CHARGE: np.tile(one[schema.CHARGE], reps)[:n_rows] + rng.normal(0.0, 0.01, n_rows),
        schema.STEP: np.tile(one[schema.STEP], reps)[:n_rows] + rep * period_step,
    }
    start = pd.Timestamp("2026-01-12T09:00:00", tz="UTC")
    echem = pd.DataFrame({schema.TIMESTAMP: start + pd.to_timedelta(data[schema.TIME], unit="s")})
    for key, values in data.items():
        echem[key] = values
    return echem


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, repeat: int = 1) -> tuple[float, Any]:  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _timed_cpu(fn) -> tuple[float, float, Any]:  # type: ignore[no-untyped-def]
    """Wall and process CPU time of one call (CPU / wall = cores busy on average)."""
    c0 = time.process_time()
    wall, out = _timed(fn)
    return wall, time.process_time() - c0, out


def breakdown(model, X) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Time each target's estimator, and each member of an ensemble, on the NumPy array."""
    from ecpif import schema

    rows = []
    for target in model.targets:
        est = model.estimators[target]
        seconds, _ = _timed(lambda est=est: est.predict(X))
        kind = model.kinds[target]
        rows.append({"target": schema.base_name(target), "part": f"whole ({kind})",
                     "seconds": seconds})  # fmt: skip
        members = getattr(est, "named_estimators_", None)
        if members is None:
            continue
        for name, member in members.items():
            t, _ = _timed(lambda member=member: member.predict(X))
            rows.append({"target": schema.base_name(target), "part": name, "seconds": t})
    return rows


def predict_threaded(model, feats, threads: int, chunk: int = 100_000):  # type: ignore[no-untyped-def]
    """``predict_frame`` over row chunks on a thread pool, concatenated in order."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from ecpif.predict import predict_frame

    parts = [feats.iloc[i : i + chunk] for i in range(0, len(feats), chunk)]
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(lambda p: predict_frame(model, p, confidence=0.9, warn=False), parts))
    return pd.concat(done)


def worker(bundle: str, n_rows: int, profile: bool, threads: int) -> dict[str, Any]:
    import numpy as np

    from ecpif.bundle import load_bundle
    from ecpif.features import echem_features
    from ecpif.predict import predict_frame

    model = load_bundle(bundle)
    out: dict[str, Any] = {"rows": n_rows, "rss_start_mb": _rss_mb()}
    echem = build_echem(n_rows)
    out["rss_data_mb"] = _rss_mb()
    out["features_s"], feats = _timed(
        lambda e=echem: echem_features(e, nominal_capacity_Ah=model.info["nominal_capacity_Ah"])
    )
    del echem
    out["rss_features_mb"] = _rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_frame(model, feats.iloc[:WARMUP_ROWS], confidence=0.9, warn=False)
        out["load_before"] = os.getloadavg()[0]
        out["predict_s"], out["predict_cpu_s"], pred = _timed_cpu(
            lambda: predict_frame(model, feats, confidence=0.9, warn=False)
        )
    out["rss_peak_mb"] = _rss_mb()
    if len(pred) != n_rows or pred[model.targets].isna().any().any():
        raise RuntimeError("prediction lost rows or produced NaN")
    out["in_domain"] = float(pred["in domain [-]"].mean())
    if threads > 1:
        # What parallel prediction would give: the heavy parts (kernel distances, exp, trees,
        # boosters) release the GIL, so threads over row chunks can use every core.
        out["predict_threads_s"], out["predict_threads_cpu_s"], par = _timed_cpu(
            lambda: predict_threaded(model, feats, threads)
        )
        worst = max(
            float(np.max(np.abs(par[t].to_numpy() - pred[t].to_numpy()))) for t in model.targets
        )
        if worst > 1e-9:
            raise RuntimeError(f"threaded prediction differs by {worst}")
        out["threads"] = threads
        del par
    del pred
    if profile:
        X = feats[model.features].to_numpy(dtype=float)
        parts = breakdown(model, X)
        out["breakdown"] = parts
        out["peer_s"] = sum(p["seconds"] for p in parts if p["part"].startswith("whole"))
    out["load_after"] = os.getloadavg()[0]
    out["kinds"] = {t: model.kinds[t] for t in model.targets}
    out["members"] = {t: model.members[t] for t in model.targets}
    return out


def run_size(bundle: Path, n_rows: int, profile: bool, threads: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        str(bundle),
        str(n_rows),
        "--threads",
        str(threads),
    ]
    if profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker for {n_rows} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def account(first: dict[str, Any]) -> str:
    """What limits the throughput: the cost per member family, from the breakdown."""
    leaves: dict[str, float] = {}
    count: dict[str, int] = {}
    by_target: dict[str, list[dict[str, Any]]] = {}
    for p in first["breakdown"]:
        by_target.setdefault(p["target"], []).append(p)
    for target, parts in by_target.items():
        members = [p for p in parts if not p["part"].startswith("whole")]
        if not members:  # a single model: the whole is the leaf
            members = [{"part": first["members"][_column(first, target)][0],
                        "seconds": parts[0]["seconds"]}]  # fmt: skip
        for p in members:
            family = "Gaussian process" if p["part"].startswith("gaussian_process") else p["part"]
            leaves[family] = leaves.get(family, 0.0) + p["seconds"]
            count[family] = count.get(family, 0) + 1
    total = sum(leaves.values())
    ranked = sorted(leaves, key=leaves.get, reverse=True)  # type: ignore[arg-type]
    parts = [
        f"{name} ({count[name]} evaluation{'s' if count[name] > 1 else ''}): "
        f"{leaves[name]:.2f} s, {leaves[name] / total:.0%}"
        for name in ranked
    ]
    gp = (
        " An exact Gaussian process needs one kernel value per training pattern for every row "
        "(164 exponentials and ~3,000 floating-point operations per row and GP), so its cost per "
        "row is set by the training set, not by ecpif."
        if "Gaussian process" in leaves
        else ""
    )
    return (
        f"What limits it: every row is evaluated by {sum(count.values())} fitted models; "
        + "; ".join(parts)
        + "."
        + gp
    )


def _column(first: dict[str, Any], short: str) -> str:
    return next(t for t in first["members"] if t.split(" [")[0] == short)


def report(results: list[dict[str, Any]], train_s: float, quick: bool) -> str:
    import numpy as np
    import pandas as pd

    first = results[0]
    lines = [
        f"## {SECTION}",
        "",
        f"`python benchmarks/bench_predict.py{' --quick' if quick else ''}` "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC). Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs (1-min load "
        f"average shown), Python {platform.python_version()}, numpy {np.__version__}, pandas "
        f"{pd.__version__}. Model: the demo's final model (full zoo under leave-one-rate-out, "
        f"automatic choice; trained in {train_s:.0f} s), loaded from its bundle in a fresh "
        "process per size: "
        + ", ".join(
            f"{t} = {k} ({'+'.join(first['members'][t])})" for t, k in first["kinds"].items()
        )
        + ". Cycler rows: the demo's four cycler records repeated with noise (in the training "
        "domain). *predict* is `predict_frame`: all four targets, 90 % intervals, domain check.",
        "",
        "| cycler rows | features [s] | predict [s] (CPU/wall) | rows/s (predict) | rows/s "
        "(features + predict) | predict on threads [s] (CPU/wall; rows/s) | peak RSS [MB] "
        "(data; + features) | load before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['features_s']:.2f} | {r['predict_s']:.2f} "
            f"({r['predict_cpu_s'] / r['predict_s']:.2f}) | "
            f"{r['rows'] / r['predict_s']:,.0f} | "
            f"{r['rows'] / (r['predict_s'] + r['features_s']):,.0f} | "
            + (
                f"{r['predict_threads_s']:.2f} "
                f"({r['predict_threads_cpu_s'] / r['predict_threads_s']:.2f}; "
                f"{r['rows'] / r['predict_threads_s']:,.0f}) | "
                if "predict_threads_s" in r
                else "- | "
            )
            + f"{r['rss_peak_mb']:.0f} ({r['rss_data_mb']:.0f}; {r['rss_features_mb']:.0f}) | "
            f"{r['load_before']:.1f} / {r['load_after']:.1f} |"
        )
    threaded = [r for r in results if "predict_threads_s" in r]
    if threaded:
        r = threaded[-1]
        speedup = r["predict_s"] / r["predict_threads_s"]
        work = r["predict_threads_cpu_s"] / r["predict_cpu_s"]
        busy = r["predict_threads_cpu_s"] / r["predict_threads_s"]
        why = (
            f", because the CPU time per row grew {work:.2f}x: the heavy parts release the GIL, "
            "but the cores of this machine do not deliver proportionally more arithmetic on this "
            "work (shared caches and memory bandwidth, other jobs)"
            if busy > 1.3
            else ""
        )
        lines += [
            "",
            f"On {r['threads']} threads (`predict_frame` over 100,000-row chunks, same values) at "
            f"{r['rows']:,} rows: {speedup:.2f}x faster with {busy:.2f} cores busy on "
            f"average{why}.",
        ]
    if len(results) > 1:
        a, b = results[0], results[-1]
        growth = (b["predict_s"] / a["predict_s"]) / (b["rows"] / a["rows"])
        lines += [
            "",
            f"Cost per row from {a['rows']:,} to {b['rows']:,} rows: x{growth:.2f} "
            "(1.00 = linear); peak memory per row: "
            f"{a['rss_peak_mb'] * 1e6 / a['rows']:.0f} B -> "
            f"{b['rss_peak_mb'] * 1e6 / b['rows']:.0f} B.",
        ]
    if "breakdown" in first:
        lines += [
            "",
            f"Where the time goes at {first['rows']:,} rows (each estimator called directly on "
            "the NumPy feature array; members of an ensemble listed under it):",
            "",
            "| target | part | seconds | share of the four targets |",
            "|---|---|---|---|",
        ]
        for p in first["breakdown"]:
            share = p["seconds"] / first["peer_s"]
            lines.append(f"| {p['target']} | {p['part']} | {p['seconds']:.2f} | {share:.0%} |")
        lines += ["", account(first)]
        lines += [
            "",
            f"Peer (the bare estimators on the NumPy array, same process): "
            f"{first['peer_s']:.2f} s; `predict_frame` {first['predict_s']:.2f} s, ratio "
            f"{first['predict_s'] / first['peer_s']:.2f} (ecpif's frame handling, domain check "
            "and intervals).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MODELS}, 20k/50k rows")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers of the zoo evaluation")
    parser.add_argument(
        "--threads", type=int, default=2, help="also time predict_frame on this many threads"
    )
    parser.add_argument("--results", type=Path, default=None, help="write the section here")
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.profile, args.threads)))
        return 0

    from ecpif.bundle import save_bundle

    rows = args.rows or ([20_000, 50_000] if args.quick else [1_000_000, 10_000_000])
    t0 = time.perf_counter()
    model = train_model(QUICK_MODELS if args.quick else "all", args.n_jobs)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(model, Path(tmp) / "model.skops")
        results = [
            run_size(bundle, n, profile=(i == 0), threads=args.threads) for i, n in enumerate(rows)
        ]
    text = report(results, train_s, args.quick)
    print(text)
    for r in results:  # harness checks
        if not (r["predict_s"] > 0 and r["in_domain"] > 0.5):
            raise RuntimeError(f"implausible result: {r}")
    if args.results:
        (HERE / "results").mkdir(exist_ok=True)
        flat = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in results]
        import pandas as pd

        pd.DataFrame(flat).to_csv(HERE / "results" / "predict_throughput.csv", index=False)
        sys.path.insert(0, str(HERE))
        from bench_accuracy import replace_section

        title, body = text.split("\n", 1)
        replace_section(args.results, title.removeprefix("## "), body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
