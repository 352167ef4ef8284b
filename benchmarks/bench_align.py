"""Benchmark: aligning pattern windows with cycler data at scale.

A synthetic run (1 s sampling, charge/discharge cycles, step index) of N cycler rows and M pattern
windows is aligned with :func:`ecpif.align.align_run`. Each size runs in a fresh process, so the
peak resident memory it reports belongs to that size alone. Measured per size:

* ``echem_features`` alone (every derived feature on every sample);
* ``align_run(features=False)``: window means of the cycler signals, charge at start/mid/end,
  coverage, report;
* ``align_run()``: the same plus every feature (what the pipeline calls);
* peak memory: the process's peak resident set size, and the peak of Python/numpy allocations
  during ``align_run()`` as traced by :mod:`tracemalloc` (the working memory on top of the run);
* peer: the loop a user would write (a boolean mask per pattern, then ``.mean()``), timed on the
  first 50 patterns and scaled to M.

Usage::

    python benchmarks/bench_align.py [--rows 1000000 10000000] [--patterns 10000]
                                     [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SECTION = "## Alignment scale"


def build_run(n_rows: int, n_patterns: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    from ecpif import schema
    from ecpif.run import OperandoRun, RunMetadata

    rng = np.random.default_rng(0)
    t = np.arange(n_rows, dtype=float)  # 1 s sampling
    half = 18_000  # 5 h per half cycle at C/5
    phase = (t // half).astype(np.int64)
    current = np.where(phase % 2 == 0, 0.4, -0.4)  # 2 A.h cell at C/5
    charge = np.cumsum(current) / 3.6
    voltage = 3.6 + 0.5 * charge / charge.max() + rng.normal(0.0, 1e-4, n_rows)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    echem = pd.DataFrame(
        {
            schema.TIMESTAMP: start + pd.to_timedelta(t, unit="s"),
            schema.TIME: t,
            schema.VOLTAGE: voltage,
            schema.CURRENT: current,
            schema.CHARGE: charge - charge[0],
            schema.STEP: phase + 1,
        }
    )
    edges = np.linspace(0.0, t[-1], n_patterns + 1)
    patterns = pd.DataFrame(
        {
            schema.PATTERN_ID: np.arange(n_patterns),
            schema.START: start + pd.to_timedelta(edges[:-1], unit="s"),
            schema.END: start + pd.to_timedelta(edges[:-1] + 0.9 * np.diff(edges), unit="s"),
            "c [Å]": rng.normal(14.2, 0.01, n_patterns),
            "esd c [Å]": np.full(n_patterns, 0.001),
        }
    )
    meta = RunMetadata("bench", nominal_capacity_Ah=2.0, c_rate=0.2)
    return OperandoRun(echem=echem, patterns=patterns, metadata=meta)


def worker(n_rows: int, n_patterns: int) -> dict[str, float]:
    import resource
    import tracemalloc

    import numpy as np

    from ecpif import align, features, schema

    run = build_run(n_rows, n_patterns)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best

    repeat = 3 if n_rows <= 2_000_000 else 1
    align.align_run(run)  # warm-up: first-touch page faults are not the algorithm's cost
    out: dict[str, float] = {"rows": n_rows, "patterns": n_patterns, "rss_data_mb": rss_data}
    out["features_s"] = timed(
        lambda: features.echem_features(run.echem, nominal_capacity_Ah=2.0), repeat
    )
    out["align_plain_s"] = timed(lambda: align.align_run(run, features=False), repeat)
    out["align_s"] = timed(lambda: align.align_run(run), repeat)
    result = align.align_run(run)
    if len(result.frame) != n_patterns:
        raise RuntimeError("benchmark run lost patterns")
    tracemalloc.start()
    align.align_run(run)
    out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    # Peer: one boolean mask per pattern over the whole frame (what a user would write).
    echem = run.echem
    t = echem[schema.TIME].to_numpy()
    v = echem[schema.VOLTAGE].to_numpy()
    a = (run.patterns[schema.START] - run.start_time).dt.total_seconds().to_numpy()
    b = (run.patterns[schema.END] - run.start_time).dt.total_seconds().to_numpy()
    k = min(50, n_patterns)
    start = time.perf_counter()
    naive = [v[(t >= a[i]) & (t <= b[i])].mean() for i in range(k)]
    out["naive_s"] = (time.perf_counter() - start) * n_patterns / k
    # Sanity: on evenly sampled data the plain mean and the trapezoid mean agree closely.
    got = result.frame[schema.VOLTAGE].to_numpy()[:k]
    out["max_diff_vs_naive_V"] = float(np.max(np.abs(got - np.asarray(naive))))
    return out


def run_size(n_rows: int, n_patterns: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(n_rows), str(n_patterns)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_section(path: Path, text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), leaving the rest alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"\n{re.escape(SECTION)}.*?(?=\n## |\Z)", re.DOTALL)
    new = pattern.sub("\n" + text.strip("\n") + "\n", old, count=1)
    if new == old:
        new = old.rstrip("\n") + "\n\n" + text.strip("\n") + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--worker", type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    import numpy as np
    import pandas as pd

    results = [run_size(n, args.patterns) for n in args.rows]
    lines = [
        f"{SECTION} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python benchmarks/bench_align.py`: synthetic run, 1 s sampling, C/5 cycles, "
        f"{args.patterns:,} pattern windows; each size in a fresh process, after one warm-up "
        f"call, best of 3 (1 above 2M rows). "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}.",
        "",
        "| cycler rows | features [s] | align, signals only [s] | align + features [s] | "
        "peak RSS [MB] (data alone) | traced peak of align [MB] | peer: mask loop [s] |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {int(r['rows']):,} | {r['features_s']:.2f} | {r['align_plain_s']:.3f} | "
            f"{r['align_s']:.2f} | {r['rss_peak_mb']:.0f} ({r['rss_data_mb']:.0f}) | "
            f"{r['traced_peak_mb']:.0f} | {r['naive_s']:.3g} (est.) |"
        )
    lines += [
        "",
        "*align + features* is what `ecpif align` and the pipeline call. The peer is one boolean "
        "mask per pattern (timed on 50 windows, scaled); its plain means differ from the "
        "time-weighted ones by at most "
        f"{max(r['max_diff_vs_naive_V'] for r in results):.1e} V on this evenly sampled data.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.results:
        write_section(args.results, text)


if __name__ == "__main__":
    main()
