"""The command line: its surface (snapshot), the study commands, and one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ecpif.cli import app

SNAPSHOT = Path(__file__).parent / "data" / "cli_surface.json"
runner = CliRunner()


def cli_surface() -> dict[str, list[str]]:
    """Every command with its sorted parameter names (options and arguments)."""
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    surface = {}
    for name in sorted(commands):
        params = []
        for p in commands[name].params:
            params.append(p.opts[0] if p.param_type_name == "option" else p.name.upper())
        surface[name] = sorted(params)
    return surface


def test_cli_surface_matches_the_snapshot():
    """A change of command or option names is a change users see: update the snapshot on purpose
    (ECPIF_UPDATE_SNAPSHOT=1 pytest tests/test_cli.py)."""
    surface = cli_surface()
    if os.environ.get("ECPIF_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(surface, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert surface == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    expected = {"align", "app", "demo", "explore", "predict", "report", "simulate", "train"}
    assert expected <= set(surface)


@pytest.mark.parametrize("command", sorted(cli_surface()))
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output or "example" in result.output, command


def test_simulate_command_writes_the_files(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(
        app, ["simulate", "--rates", "1,2", "--exposures", "1=180,2=none", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "nca-1C" in result.output and "nca-2C" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "manifest.json", "nca-1C_cycler.csv", "nca-1C_refinement.csv", "nca-1C_truth.csv",
        "nca-2C_cycler.csv", "nca-2C_truth.csv",
    ]  # fmt: skip


@pytest.mark.slow
def test_report_command_runs_a_toml_study_with_two_measured_rates(tmp_path):
    """Two measured rates: leave-one-rate-out has 2 folds, so ensembles are skipped with a note."""
    from ecpif.simulate import simulate, write_experiment

    runs = simulate(rates=(0.5, 1.0, 2.0), exposures={0.5: 300.0, 1.0: 180.0}, seed=4)
    folder = write_experiment(runs, tmp_path / "files")
    lines = ['models = ["ridge", "gaussian_process"]', "explore = false", ""]
    for run in runs:
        lines += [
            "[[runs]]",
            f'run_id = "{run.run_id}"',
            f'cycler = "files/{run.run_id}_cycler.csv"',
            f"c_rate = {run.metadata.c_rate}",
            "nominal_capacity_Ah = 0.43",
        ]
        if run.has_patterns:
            lines.append(f'refinement = "files/{run.run_id}_refinement.csv"')
        lines.append("")
    study = tmp_path / "study.toml"
    study.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", str(study), "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert folder.is_dir()
    for name in ("report.html", "leaderboard.csv", "predictions.csv", "model.skops"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "only 2 folds, so ensembles were not" in html
    assert "seed = 1" in (out / "config.toml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_demo_command_with_fast_models(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--models", "ridge,knn,extra_trees", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "RMSE against ground truth" in result.output
    assert str(out / "report.html") in result.output.replace("\n", "")
    expected = {
        "report.html",
        "leaderboard.csv",
        "predictions.csv",
        "model.skops",
        "importance.csv",
        "truth_scores.csv",
        "provenance.json",
        "figures",
    }
    assert expected <= {p.name for p in out.iterdir()}
    assert any(p.suffix == ".svg" for p in (out / "figures").iterdir())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecpif", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--rates", "0", "--out", "x"], "C-rates must be positive numbers"),
        (["simulate", "--exposures", "0.2:600"], "--exposures must look like"),
        (["demo", "--models", "ridge,xgboots"], "Unknown model 'xgboots'"),
        (["report", "missing.toml"], "Config file missing.toml does not exist"),
    ],
)
def test_errors_are_one_sentence_and_exit_2(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ecpif", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ecpif", "--debug", "report", "missing.toml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_failed_demo_leaves_earlier_results_intact(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.html").write_text("earlier results", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "ecpif", "demo", "--models", "nope", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (out / "report.html").read_text(encoding="utf-8") == "earlier results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
