"""Beyond one machine (issue 8): streaming prediction of huge archives, tuning, Dask.

1. **Streaming prediction.** A synthetic cycler archive (1 s sampling, C/2 cycles with rests,
   canonical columns, 1M-row row groups, zstd) of 1M, 10M and 100M rows is written to Parquet in
   bounded memory, then predicted with :func:`ecpif.stream.predict_parquet` (model trained on the
   demo, ``batch_rows`` 500k) in a fresh process per size: wall time, rows/s and the peak resident
   memory of that process (``resource.getrusage``). The in-memory path (read everything,
   ``echem_features`` + ``predict_frame``) is measured at 1M and 10M for contrast.
2. **Tuned vs untuned.** Leave-one-rate-out (LORO) RMSE / esd of knn, svr, kernel_ridge,
   extra_trees and hist_gradient_boosting, untuned and tuned (20 Optuna trials per search, searches
   nested in each training set), on the demo and on a second simulated cell (8 µm cathode
   particles instead of 5, other noise seed), with wall times.
3. **Dask.** The same zoo on a 2-worker loopback Dask cluster vs locally: wall times and whether
   the leaderboards are identical.

Run:  python benchmarks/bench_scale.py [--sizes 1e6,1e7,1e8] [--skip-tune] [--skip-dask]
Writes benchmarks/results/scale_*.csv and the "## Beyond one machine" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OUT = HERE / "results"
sys.path.insert(0, str(HERE))

NOMINAL_AH = 0.43
TARGETS = ["a", "c", "d", "li_occupancy"]
TUNED = ["knn", "svr", "kernel_ridge", "extra_trees", "hist_gradient_boosting"]
STREAM_COLUMNS = ["rows", "model", "path", "batch rows", "archive [MB]", "output [MB]", "wall [s]",
                  "rows/s", "peak RSS [MB]", "RSS before [MB]", "peak buffer rows",
                  "load before"]  # fmt: skip


# --- synthetic archive ---------------------------------------------------------------------------


def synthetic_chunk(start: int, n: int, seed: int = 0) -> pd.DataFrame:
    """Rows ``start .. start + n`` of an endless C/2 cycling record at 1 s (deterministic)."""
    from ecpif import schema

    current = NOMINAL_AH / 2.0
    half = int(0.95 * 3600 / 0.5)  # seconds of each half cycle (95 % depth)
    rest = 600
    period = 2 * (half + rest)
    k = np.arange(start, start + n, dtype=np.int64)
    p = k % period
    cycle = k // period
    seg = np.select([p < half, p < half + rest, p < 2 * half + rest], [0, 1, 2], 3)
    i = np.select([seg == 0, seg == 2], [current, -current], 0.0)
    q_top = current * 1000.0 * half / 3600.0
    q = np.select(
        [seg == 0, seg == 1, seg == 2],
        [current * 1000.0 * p / 3600.0, q_top, q_top - current * 1000.0 * (p - half - rest) / 3600],
        0.0,
    )
    soc = q / (NOMINAL_AH * 1000.0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, start]))
    v = 3.05 + 1.1 * soc + 0.04 * np.sin(6.0 * soc) + 0.1 * i + 1e-4 * rng.normal(size=n)
    t0 = np.datetime64("2026-01-01T00:00:00", "ns")
    return pd.DataFrame({
        schema.TIMESTAMP: pd.DatetimeIndex(t0 + k.astype("timedelta64[s]")).tz_localize("UTC"),
        schema.TIME: k.astype(float),
        schema.VOLTAGE: v,
        schema.CURRENT: i,
        schema.CHARGE: q,
        schema.STEP: (4 * cycle + seg).astype(np.int64),
    })  # fmt: skip


def generate(path: Path, rows: int, chunk: int = 1_000_000) -> float:
    """Write the archive chunk by chunk (bounded memory); returns seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, chunk):
        table = pa.Table.from_pandas(synthetic_chunk(start, min(chunk, rows - start)),
                                     preserve_index=False)  # fmt: skip
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=chunk)
    assert writer is not None
    writer.close()
    tmp.replace(path)
    return time.perf_counter() - t


def demo_model(kind: str):  # type: ignore[no-untyped-def]
    import ecpif
    from ecpif.align import align_runs
    from ecpif.ensemble import fit_ensemble
    from ecpif.pipeline import DEFAULT_FEATURES
    from ecpif.validate import evaluate_zoo

    data = align_runs(ecpif.datasets.load_nca_demo())
    models = [kind] if kind != "auto" else ["ridge", "knn", "extra_trees"]
    res = evaluate_zoo(data, list(DEFAULT_FEATURES), TARGETS, models=models, scheme="loro",
                       n_jobs=1, ensembles=kind == "auto")  # fmt: skip
    return fit_ensemble(data, res, kind=kind)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def child_predict(archive: str, out: str, kind: str, batch_rows: int) -> None:
    from ecpif.stream import predict_parquet

    model = demo_model(kind)
    before = peak_rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = predict_parquet(model, archive, out, batch_rows=batch_rows,
                              nominal_capacity_Ah=NOMINAL_AH)  # fmt: skip
    print(json.dumps({"rows": rep.rows, "seconds": rep.seconds, "rows_per_s": rep.rows_per_s,
                      "passes": rep.passes, "peak_rss_mb": peak_rss_mb(),
                      "rss_before_mb": before, "peak_buffer_rows": rep.peak_buffer_rows,
                      "out_mb": os.path.getsize(out) / 2**20}))  # fmt: skip


def child_inmemory(archive: str, kind: str) -> None:
    from ecpif.features import echem_features
    from ecpif.predict import predict_frame

    model = demo_model(kind)
    before = peak_rss_mb()
    t = time.perf_counter()
    echem = pd.read_parquet(archive)
    feats = echem_features(echem, nominal_capacity_Ah=NOMINAL_AH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict_frame(model, feats, warn=False)
    seconds = time.perf_counter() - t
    print(json.dumps({"rows": len(out), "seconds": seconds, "rows_per_s": len(out) / seconds,
                      "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}))  # fmt: skip


def run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(n: int, kind: str, path: str, batch: int, size_mb: float, r: dict) -> dict:
    return {
        "rows": n, "model": kind, "path": path, "batch rows": batch, "archive [MB]": size_mb,
        "output [MB]": r.get("out_mb", float("nan")), "wall [s]": r["seconds"],
        "rows/s": r["rows_per_s"], "peak RSS [MB]": r["peak_rss_mb"],
        "RSS before [MB]": r["rss_before_mb"], "peak buffer rows": r.get("peak_buffer_rows", n),
        "load before": os.getloadavg()[0],
    }  # fmt: skip


def bench_stream(
    sizes: list[int], kind: str, batch_rows: int, folder: Path, other_kinds: list[str]
) -> pd.DataFrame:
    rows = []
    out = str(folder / "out.parquet")
    for n in sizes:
        archive = folder / f"archive_{n}.parquet"
        gen = generate(archive, n)
        size_mb = archive.stat().st_size / 2**20
        print(f"generated {n:,} rows in {gen:.0f} s ({size_mb:.0f} MB)", flush=True)
        for k in [kind, *(other_kinds if n == sizes[0] else [])]:
            r = run_child("predict", str(archive), out, k, str(batch_rows))
            rows.append(_row(n, k, "streaming", batch_rows, size_mb, r))
            print(rows[-1], flush=True)
            Path(out).unlink(missing_ok=True)
        if n <= 10_000_000:
            r = run_child("inmemory", str(archive), kind)
            rows.append(_row(n, kind, "in memory", n, size_mb, r))
            print(rows[-1], flush=True)
        archive.unlink()
    return pd.DataFrame(rows)


# --- tuned vs untuned ----------------------------------------------------------------------------


def second_cell():  # type: ignore[no-untyped-def]
    from ecpif.simulate import VirtualExperiment, simulate

    return simulate(VirtualExperiment(particle_radius_m=8e-6, seed=11,
                                      cell="virtual NCA||graphite, 8 µm particles"))  # fmt: skip


def bench_tune(n_trials: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    import ecpif
    from ecpif.align import align_runs
    from ecpif.pipeline import DEFAULT_FEATURES
    from ecpif.tune import TuningBudget, evaluate_tuned, tuning_summary
    from ecpif.validate import evaluate_zoo

    rows, searches = [], []
    for name, runs in (("demo (5 µm)", ecpif.datasets.load_nca_demo()),
                       ("second cell (8 µm)", second_cell())):  # fmt: skip
        data = align_runs(runs)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = evaluate_zoo(data, list(DEFAULT_FEATURES), TARGETS, models=TUNED,
                                scheme="loro", n_jobs=2)  # fmt: skip
        t_base = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tuned = evaluate_tuned(data, list(DEFAULT_FEATURES), TARGETS, models=TUNED,
                                   include_untuned=False, scheme="loro", n_jobs=2,
                                   budget=TuningBudget(n_trials=n_trials))  # fmt: skip
        t_tuned = time.perf_counter() - t
        # Put both in one result for the summary (same folds, same seed).
        both = tuned
        both.leaderboard = pd.concat([base.leaderboard[base.leaderboard["kind"] == "model"],
                                      tuned.leaderboard], ignore_index=True)  # fmt: skip
        summary = tuning_summary(both).assign(data=name)
        rows.append(summary)
        searches.append(tuned.tuning.assign(data=name))
        for label, res, wall in (("untuned", base, t_base), ("tuned", tuned, t_tuned)):
            best = {t: res.for_target(t).iloc[0] for t in res.targets}
            print(name, label, f"{wall:.0f} s", {t: (b["model"], round(b["RMSE/esd"], 2))
                                                 for t, b in best.items()}, flush=True)  # fmt: skip
        rows[-1]["zoo wall untuned [s]"] = t_base
        rows[-1]["zoo wall tuned [s]"] = t_tuned
        rows[-1]["patterns"] = len(data)
    return pd.concat(rows, ignore_index=True), pd.concat(searches, ignore_index=True)


# --- Dask ----------------------------------------------------------------------------------------


def bench_dask() -> dict:
    import ecpif
    from ecpif.align import align_runs
    from ecpif.backend import parallel_backend
    from ecpif.pipeline import DEFAULT_FEATURES
    from ecpif.validate import LEADERBOARD_COLUMNS, evaluate_zoo

    data = align_runs(ecpif.datasets.load_nca_demo())
    kw = dict(models=["ridge", "knn", "extra_trees", "gradient_boosting", "svr"], scheme="loro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        local = evaluate_zoo(data, list(DEFAULT_FEATURES), TARGETS, n_jobs=2, **kw)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        with parallel_backend("dask", n_workers=2) as info:
            t_start = time.perf_counter() - t
            t = time.perf_counter()
            remote = evaluate_zoo(data, list(DEFAULT_FEATURES), TARGETS, n_jobs=info.n_jobs, **kw)
            t_cold = time.perf_counter() - t
            t = time.perf_counter()
            again = evaluate_zoo(data, list(DEFAULT_FEATURES), TARGETS, n_jobs=info.n_jobs, **kw)
            t_remote = time.perf_counter() - t
    cols = [c for c in LEADERBOARD_COLUMNS if "time" not in c]
    same = local.leaderboard[cols].equals(remote.leaderboard[cols]) and again.leaderboard[
        cols
    ].equals(remote.leaderboard[cols])
    return {"local [s]": t_local, "dask cluster start [s]": t_start,
            "dask, first run [s]": t_cold, "dask, second run [s]": t_remote,
            "identical leaderboard": bool(same), "fits": local.settings["n_fits"]}  # fmt: skip


# --- report --------------------------------------------------------------------------------------


def write_section(stream: pd.DataFrame | None, tune: pd.DataFrame | None, dask: dict | None,
                  meta: dict) -> None:  # fmt: skip
    from bench_accuracy import md, replace_section

    parts = [
        f"`python benchmarks/bench_scale.py` ({meta['date']}). Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (1-min load average shown), Python "
        f"{platform.python_version()}."
    ]
    if stream is not None and len(stream):
        s = stream.copy()
        s["rows"] = s["rows"].map(lambda v: f"{v:,}")
        s["rows/s"] = s["rows/s"].map(lambda v: f"{v:,.0f}")
        s["peak buffer rows"] = s["peak buffer rows"].map(lambda v: f"{int(v):,}")
        parts.append(
            "### Streaming prediction of cycler archives\n\n"
            "Synthetic archive: 1 s sampling, C/2 charge/discharge with 10-min rests, canonical "
            "columns (timestamp, time, voltage, current, charge, step), written in 1M-row row "
            "groups with zstd. Model: "
            f"`{meta['kind']}` trained on the demo (4 targets, 90 % intervals; `auto` = the "
            "LORO-chosen ensemble of ridge, knn and extra_trees, at the smallest size only). "
            "`predict_parquet` reads `batch rows` rows at a time, computes the features exactly "
            "as in memory, predicts and appends to the output Parquet (written to a temporary "
            "file, renamed at the end). Each row is a fresh process; *peak RSS* is that "
            "process's maximum resident memory (`ru_maxrss`), *RSS before* what it held after "
            "importing ecpif and training the model, before predicting.\n\n"
            + md(s[STREAM_COLUMNS], ".1f")
            + "\n\n"
            + meta["stream_note"]
        )
    if tune is not None and len(tune):
        tt = tune[["data", "target", "model", "RMSE/esd untuned", "RMSE/esd tuned", "gain [%]",
                   "mean trials", "search time [s]"]]  # fmt: skip
        walls = (
            tune.groupby("data", sort=False)[
                ["patterns", "zoo wall untuned [s]", "zoo wall tuned [s]"]
            ]
            .first()
            .reset_index()
        )
        parts.append(
            "### Tuned vs untuned (leave-one-rate-out, nested)\n\n"
            f"{meta['trials']} Optuna TPE trials per search; each tuned model searches inside "
            "every training set of the outer folds (3 outer + 3 inner for the ensembles), with "
            "the outer folds as groups of its own CV (leave one training rate out). Scores are "
            "RMSE / median refinement esd of the held-out rates' patterns, as in the "
            "leaderboard. *gain* = 1 - RMSE tuned / RMSE untuned.\n\n"
            + md(tt, ".2f")
            + "\n\nWall time of the zoo (these 5 models, 4 targets, "
            "`n_jobs=2`, with ensembles):\n\n" + md(walls, ".1f") + "\n\n" + meta["tune_note"]
        )
    if dask is not None:
        parts.append(
            "### Dask\n\n"
            "The same zoo (ridge, knn, extra_trees, gradient_boosting, svr; LORO; 4 targets; "
            f"{dask['fits']} fits) locally (loky, 2 processes) and on a loopback "
            "`LocalCluster(n_workers=2, threads_per_worker=1)`:\n\n"
            + md(pd.DataFrame([dask]), ".1f")
            + "\n\nThe first run on fresh workers includes their imports (scikit-learn, ecpif). "
            "On one 2-core machine Dask only adds scheduling and transfer overhead to 1-50 ms "
            "fits; it pays off when the address points at a cluster with more cores than this "
            "machine, and for heavy work (searches, large tables)."
        )
    replace_section(HERE / "RESULTS.md", "Beyond one machine", "\n\n".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e6,1e7,1e8")
    ap.add_argument("--kind", default="ridge")
    ap.add_argument("--other-kinds", default="auto")
    ap.add_argument("--batch-rows", type=int, default=500_000)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--skip-stream", action="store_true")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--stream-note", default="")
    ap.add_argument("--tune-note", default="")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    meta = {"date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
            "kind": args.kind, "trials": args.trials, "stream_note": args.stream_note,
            "tune_note": args.tune_note}  # fmt: skip
    stream = tune = None
    dask = None
    if not args.skip_stream:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
        with tempfile.TemporaryDirectory(dir=args.workdir) as d:
            others = [k for k in args.other_kinds.split(",") if k]
            stream = bench_stream(sizes, args.kind, args.batch_rows, Path(d), others)
        stream.to_csv(OUT / "scale_stream.csv", index=False)
    elif (OUT / "scale_stream.csv").exists():
        stream = pd.read_csv(OUT / "scale_stream.csv")
    if not args.skip_tune:
        tune, searches = bench_tune(args.trials)
        tune.to_csv(OUT / "scale_tuning.csv", index=False)
        searches.to_csv(OUT / "scale_tuning_searches.csv", index=False)
    elif (OUT / "scale_tuning.csv").exists():
        tune = pd.read_csv(OUT / "scale_tuning.csv")
    if not args.skip_dask:
        dask = bench_dask()
        pd.DataFrame([dask]).to_csv(OUT / "scale_dask.csv", index=False)
        print(dask, flush=True)
    elif (OUT / "scale_dask.csv").exists():
        dask = pd.read_csv(OUT / "scale_dask.csv").iloc[0].to_dict()
    write_section(stream, tune, dask, meta)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "predict":
        child_predict(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "inmemory":
        child_inmemory(sys.argv[2], sys.argv[3])
    else:
        main()
