"""Every benchmark script's quick mode runs end to end (harness correctness, not timing).

Each script runs in a subprocess, as a user runs it, on small inputs; the checks read what it
prints. Quick modes must leave ``benchmarks/RESULTS.md`` and ``benchmarks/results/`` untouched.
``bench_peers.py --quick`` is run by ``.ci/run`` directly (it needs the peers' venvs).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytestmark = pytest.mark.slow


def _state() -> dict[str, str]:
    """Hash of every file a benchmark may write, to prove a quick run wrote none."""
    files = [BENCH / "RESULTS.md", *sorted((BENCH / "results").glob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def run_script(*args: str, timeout: float = 300) -> str:
    env = dict(os.environ, PYBAMM_DISABLE_TELEMETRY="true", MPLBACKEND="Agg")
    before = _state()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _state() == before, "a quick benchmark run wrote to RESULTS.md or results/"
    return proc.stdout


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of the markdown table rows whose first cell starts with ``first_cell``."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| " + first_cell):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_accuracy_quick_scores_both_cells_and_the_study_protocol() -> None:
    out = run_script("benchmarks/bench_accuracy.py", "--quick")
    r2 = {row[0]: [float(v) for v in row[1:]] for row in table_rows(out, "ecpif, ")}
    assert set(r2) == {"ecpif, NCA demo", "ecpif, Chen2020 cell"}
    assert all(len(v) == 4 and all(0.5 < x <= 1.0 for x in v) for v in r2.values())
    # Every kind under every scheme and against the 2C truth, for both cells: 2 x 4 x 5 rows.
    kinds = ("best_single", "voting", "stacking", "auto", "study")
    evaluations = ("shuffled 5-fold", "grouped by run", "leave-one-rate-out", "2C vs truth")
    rows = [r for e in evaluations for r in table_rows(out, e)]
    assert len(rows) == 2 * 4 * 5
    assert {r[1] for r in rows} == set(kinds)
    assert all(float(x) > 0 for r in rows for x in r[2:])


def test_zoo_quick_times_every_case() -> None:
    out = run_script("benchmarks/bench_zoo.py", "--quick")
    cases = table_rows(out, "zoo ")
    assert [(c[0], c[1], c[6]) for c in cases] == [
        ("zoo only", "shuffled", "1"),
        ("zoo only", "shuffled", "2"),
        ("zoo + ensembles", "shuffled", "2"),
        ("zoo + ensembles", "loro", "2"),
    ]
    # 3 models x 4 targets x 5 folds without ensembles; x 15 training sets with them (K=5).
    assert [int(c[5]) for c in cases] == [60, 60, 180, 72]
    assert re.search(r"2,000 rows: [\d.]+ s", out)


def test_predict_quick_measures_throughput_and_the_peer() -> None:
    out = run_script("benchmarks/bench_predict.py", "--quick")
    rows = table_rows(out, "20,000") + table_rows(out, "50,000")
    assert len(rows) == 2
    for row in rows:
        assert float(row[3].replace(",", "")) > 0  # rows/s
    assert re.search(r"Peer \(the bare estimators.*ratio [\d.]+", out)
    assert "Cost per row from 20,000 to 50,000 rows" in out


def test_profile_quick_reports_stages_and_fingerprints(tmp_path: Path) -> None:
    out = run_script(
        "benchmarks/bench_profile.py", "--quick", "--no-profile", "--quiet",
        "--save", str(tmp_path / "saved"),
    )  # fmt: skip
    for stage in ("run: zoo shuffled", "run: fit", "report: save PNG + SVG", "total"):
        assert re.search(rf"^{re.escape(stage)}\s+[\d.]+", out, re.M), stage
    prints = re.findall(r"^fingerprint of (.+): ([0-9a-f]{16})$", out, re.M)
    assert [p[0] for p in prints] == ["leaderboard", "final model", "truth scores"]
    assert (tmp_path / "saved" / "leaderboard.csv").is_file()


def test_align_small_run() -> None:
    out = run_script("benchmarks/bench_align.py", "--rows", "20000", "--patterns", "200")
    (row,) = table_rows(out, "20,000")
    assert float(row[3]) > 0  # align + features [s]


def test_simulate_single_repeat() -> None:
    out = run_script("benchmarks/bench_simulate.py", "--repeat", "1")
    match = re.search(r"\| ratio ecpif / bare PyBaMM \| ([\d.]+) \|", out)
    assert match and float(match.group(1)) > 0
