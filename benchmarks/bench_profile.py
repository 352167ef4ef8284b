"""Profile ``ecpif demo``: where the minute goes, and proof that a speed-up changes no result.

Runs what ``ecpif demo`` runs, :func:`ecpif.pipeline.run` on the default :class:`StudyConfig`
followed by :func:`ecpif.pipeline.write_results`, under :mod:`cProfile`, and prints

* wall time per pipeline step (``Results.timings``) and of the output stages (CSV + bundle,
  figures, HTML), with the 1-minute load average before and after (the machine is shared);
* the CPU time of every zoo model, summed over all fits of all schemes (the fits run in joblib
  workers, which cProfile in the main process sees only as waiting);
* the top functions of the main process by cumulative and by own time;
* a fingerprint (SHA-256) of the leaderboard's score and rank columns and of the final model's
  choice, so a speed-up can be checked to leave the results exactly as they were
  (``--expect HASH`` fails when they differ).

Usage::

    python benchmarks/bench_profile.py                    # the full demo (about a minute)
    python benchmarks/bench_profile.py --quick            # 3 models, for CI (a few seconds)
    python benchmarks/bench_profile.py --stats demo.prof  # also keep the raw profile
    python -m pstats demo.prof                            # browse it
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import itertools
import os
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

QUICK_MODELS = ("ols", "knn", "decision_tree")


def fingerprint(results: Any) -> dict[str, str]:
    """SHA-256 of what a speed-up must not change, in three parts.

    ``leaderboard``: every score and rank column of every scheme, exactly. ``final model``: the
    kind and members of each target's final model, weights to 6 decimals. ``truth scores``: RMSE
    / esd of every trajectory against the ground truth, to 3 decimals (the final fits may move
    in the last bits when BLAS threading changes; see --compare for the size of the change).
    """

    def digest(frame: pd.DataFrame) -> str:
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        return hashlib.sha256(hashed).hexdigest()[:16]

    lb = results.leaderboard
    model = results.model
    choice = pd.DataFrame(
        [{"target": t, "kind": model.kinds[t], "members": "+".join(model.members[t]),
          "weights": " ".join(f"{w:.6f}" for w in model.weights[t])} for t in model.targets]
    )  # fmt: skip
    out = {
        "leaderboard": digest(lb[[c for c in lb.columns if "time" not in c]]),
        "final model": digest(choice),
    }
    if results.truth_scores is not None:
        ts = results.truth_scores[["run id", "target"]].copy()
        ts["RMSE/esd"] = results.truth_scores["RMSE/esd"].round(3)
        out["truth scores"] = digest(ts)
    return out


def save_outcome(results: Any, folder: Path) -> None:
    """Leaderboard (no timing columns), truth scores and trajectories, for --compare."""
    folder.mkdir(parents=True, exist_ok=True)
    lb = results.leaderboard
    lb[[c for c in lb.columns if "time" not in c]].to_csv(folder / "leaderboard.csv", index=False)
    if results.truth_scores is not None:
        results.truth_scores.to_csv(folder / "truth_scores.csv", index=False)
    for run_id, frame in results.predictions.items():
        frame.drop(columns=["timestamp [UTC]"], errors="ignore").to_parquet(
            folder / f"trajectory_{run_id}.parquet"
        )


def compare_outcome(results: Any, folder: Path) -> list[str]:
    """How this run's results differ from those saved in ``folder`` (one line per item)."""
    lb = results.leaderboard
    new = lb[[c for c in lb.columns if "time" not in c]].reset_index(drop=True)
    old = pd.read_csv(folder / "leaderboard.csv")
    # A CSV round trip is exact for float64 (shortest repr), so equality means identical scores.
    same = new.to_csv(index=False) == old.to_csv(index=False) or new.equals(old)
    lines = [f"leaderboard identical (every score and rank, every scheme): {same}"]
    ts = results.truth_scores
    if ts is not None and (folder / "truth_scores.csv").is_file():
        old_ts = pd.read_csv(folder / "truth_scores.csv")
        diff = np.abs(ts["RMSE/esd"].to_numpy() - old_ts["RMSE/esd"].to_numpy())
        lines.append(f"truth scores: max |change of RMSE/esd| = {diff.max():.2e}")
    esd = {} if ts is None else ts.groupby("target")["esd 5 min"].first().to_dict()
    worst = 0.0
    for run_id, frame in results.predictions.items():
        path = folder / f"trajectory_{run_id}.parquet"
        if path.is_file():
            prev = pd.read_parquet(path)
            for t in results.model.targets:
                change = np.abs(frame[t].to_numpy() - prev[t].to_numpy()).max()
                worst = max(worst, float(change) / esd.get(t, 1.0))
    lines.append(f"trajectories: max |change| = {worst:.2e} x the 5-min esd")
    return lines


def zoo_cpu(results: Any) -> pd.DataFrame:
    """CPU seconds of every zoo model over the fits made in each scheme (from the leaderboards)."""
    rows = []
    for scheme, res in results.zoo.items():
        # Fits reused from another scheme (validate's fit_cache) cost nothing here.
        done = res.settings["n_fits"] - res.settings.get("n_reused_fits", 0)
        n_fit_sets = done / (len(res.models) * len(res.targets))
        lb = res.leaderboard[res.leaderboard["kind"] == "model"]
        for model, part in lb.groupby("model"):
            per_fit = float((part["fit time [s]"] + part["predict time [s]"]).mean())
            rows.append(
                {"scheme": scheme, "model": model,
                 "cpu [s]": per_fit * n_fit_sets * len(res.targets)}
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    wide = frame.pivot_table(index="model", columns="scheme", values="cpu [s]", aggfunc="sum")
    wide["total"] = wide.sum(axis=1)
    return wide.sort_values("total", ascending=False)


def profile_demo(
    *,
    quick: bool = False,
    n_jobs: int = 2,
    report: bool = True,
    profile: bool = True,
    stats_path: Path | None = None,
    save: Path | None = None,
    compare: Path | None = None,
) -> dict[str, Any]:
    """Run and profile the demo; returns timings, the fingerprint and the profile text."""
    from ecpif.pipeline import StudyConfig, run, write_results

    config = StudyConfig(n_jobs=n_jobs, models=QUICK_MODELS if quick else "all")
    load_before = os.getloadavg()[0]
    profiler = cProfile.Profile()
    marks: list[tuple[str, float, float]] = []

    def mark(label: str) -> None:
        marks.append((label, time.perf_counter(), time.process_time()))

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if profile:
            profiler.enable()
        mark("start")
        results = run(config)
        mark("run (total)")
        write_results(results, Path(tmp) / "csv-only", report=False)
        mark("write_results without report (CSV, Parquet, bundle)")
        if report:
            rep = results.report()
            _ = rep.figures  # draw every figure
            mark("report: draw figures")
            rep.save_figures(Path(tmp) / "figures")
            mark("report: save PNG + SVG")
            rep.write_html(Path(tmp) / "report.html")
            mark("report: render HTML (embedded SVG)")
        profiler.disable()
    # Wall and main-process CPU per stage; the zoo's fits run in joblib workers, whose CPU is
    # counted by evaluate_zoo itself (settings["cpu_seconds"]).
    stages: dict[str, tuple[float, float]] = {
        f"run: {k}": (v, float("nan")) for k, v in results.timings.items() if k != "total"
    }
    for (_, w0, c0), (label, w1, c1) in itertools.pairwise(marks):
        stages[label] = (w1 - w0, c1 - c0)
    stages["total"] = (marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2])
    worker_cpu = sum(z.settings["cpu_seconds"] for z in results.zoo.values())
    stages["zoo fits, CPU in workers (all schemes)"] = (float("nan"), worker_cpu)
    if stats_path is not None:
        profiler.dump_stats(str(stats_path))
    out = io.StringIO()
    if profile:
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)
    if save is not None:
        save_outcome(results, save)
    comparison = compare_outcome(results, compare) if compare is not None else []
    return {
        "comparison": comparison,
        "stages": stages,
        "fingerprint": fingerprint(results),
        "zoo_cpu": zoo_cpu(results),
        "profile": out.getvalue(),
        "load": (load_before, os.getloadavg()[0]),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_MODELS} (CI check)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--no-report", action="store_true", help="skip figures and HTML")
    parser.add_argument("--stats", type=Path, default=None, help="write the raw cProfile here")
    parser.add_argument("--save", type=Path, default=None, help="save results for --compare")
    parser.add_argument(
        "--compare", type=Path, default=None, help="compare with results saved by --save"
    )
    parser.add_argument(
        "--expect", default=None, help="fail unless the leaderboard fingerprint equals this"
    )
    parser.add_argument("--quiet", action="store_true", help="no cProfile listing")
    parser.add_argument(
        "--no-profile", action="store_true", help="plain wall times (cProfile slows Python code)"
    )
    args = parser.parse_args(argv)

    res = profile_demo(
        quick=args.quick,
        n_jobs=args.n_jobs,
        report=not args.no_report,
        profile=not args.no_profile,
        stats_path=args.stats,
        save=args.save,
        compare=args.compare,
    )
    if not args.quiet:
        print(res["profile"])
        print("CPU seconds per zoo model, all fits (joblib workers):")
        print(res["zoo_cpu"].round(2).to_string())
    print(f"\nload average (1 min) before / after: {res['load'][0]:.2f} / {res['load'][1]:.2f}")
    print(f"{'stage':<55s} {'wall [s]':>9s} {'CPU [s]':>9s}")
    for stage, (wall, cpu) in res["stages"].items():
        print(f"{stage:<55s} {wall:9.2f} {cpu:9.2f}")
    for part, value in res["fingerprint"].items():
        print(f"fingerprint of {part}: {value}")
    for line in res["comparison"]:
        print(line)
    if args.expect and args.expect != res["fingerprint"]["leaderboard"]:
        print("FINGERPRINT CHANGED: the speed-up altered the results.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
