"""Benchmark: the virtual operando experiment on default settings.

Measures the wall time of ``ecpif simulate`` (a fresh process, as a user runs it) and, in the same
run, its peer: the bare PyBaMM solves of the same four protocols. The ratio is ecpif's overhead for
the structural model, diffraction sampling and file writing.

Usage::

    python benchmarks/bench_simulate.py [--repeat 3] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


def time_cli(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ecpif.cli", "simulate", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def time_bare_pybamm() -> float:
    code = (
        "import os; os.environ['PYBAMM_DISABLE_TELEMETRY']='true'\n"
        "import pybamm\n"
        "for rate in (0.2, 0.5, 1, 2):\n"
        "    p = pybamm.ParameterValues('NCA_Kim2011')\n"
        "    p['Positive particle radius [m]'] = 5e-6\n"
        "    e = pybamm.Experiment([f'Charge at {rate}C until 4.2 V', 'Rest for 1800 seconds',\n"
        "        f'Discharge at {rate}C until 2.7 V'], period='10 seconds')\n"
        "    pybamm.Simulation(pybamm.lithium_ion.SPMe(), parameter_values=p,\n"
        "        experiment=e).solve(initial_soc=0.0)\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    cli, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            cli.append(time_cli(Path(tmp) / f"run{i}"))
            bare.append(time_bare_pybamm())
    import pybamm

    med_cli, med_bare = statistics.median(cli), statistics.median(bare)
    lines = [
        "",
        f"## Virtual experiment speed ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()},"
        f" PyBaMM {pybamm.__version__}. Default settings (SPMe, NCA_Kim2011, 5 µm, 0.2/0.5/1/2C,"
        f" 10 s sampling), each a fresh process, {args.repeat} repeats, median.",
        "",
        "| what | wall time [s] | runs [s] |",
        "|---|---|---|",
        f"| `ecpif simulate` (PyBaMM + structure + sampling + files) | {med_cli:.2f} |"
        f" {', '.join(f'{x:.2f}' for x in cli)} |",
        f"| bare PyBaMM solves of the same protocols (peer) | {med_bare:.2f} |"
        f" {', '.join(f'{x:.2f}' for x in bare)} |",
        f"| ratio ecpif / bare PyBaMM | {med_cli / med_bare:.2f} | |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
