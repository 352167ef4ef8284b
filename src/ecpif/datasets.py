"""Bundled datasets, and loading any folder written by :func:`ecpif.simulate.write_experiment`.

The demo dataset is a virtual operando experiment (PyBaMM SPMe, ``NCA_Kim2011`` parameters with
5 µm cathode particles, 0.2C / 0.5C / 1C with diffraction patterns of 10 / 5 / 3 minutes, 2C cycler
only; seed 2026). It is read back through the same public readers as a user's files
(:func:`ecpif.io.read_run`), so the demo exercises the real input path. Regenerate it with::

    ecpif simulate --seed 2026 --out src/ecpif/data/nca_demo
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ecpif import schema
from ecpif.errors import ReadError
from ecpif.run import OperandoRun, RunMetadata

DEMO_SEED = 2026


def nca_demo_path() -> Path:
    """Folder of the bundled demo dataset (CSV files and ``manifest.json``)."""
    return Path(str(resources.files("ecpif") / "data" / "nca_demo"))


def read_truth(path: Path, echem: pd.DataFrame) -> pd.DataFrame:
    raw = pd.read_csv(path)
    if len(raw) != len(echem):
        raise ReadError(
            f"Truth file {path} has {len(raw)} rows but its cycler file has {len(echem)}; the "
            f"folder is inconsistent: regenerate it with 'ecpif simulate'."
        )
    truth = pd.DataFrame(
        {schema.TIMESTAMP: echem[schema.TIMESTAMP].to_numpy(), schema.TIME: raw["time/s"]}
    )
    for name, param in schema.PARAMETERS.items():
        if name in raw.columns:
            truth[param.column] = raw[name]
    truth[schema.X_BULK] = raw["x_bulk"]
    truth[schema.X_SURFACE] = raw["x_surface"]
    return truth


def read_manifest(folder: Path, otherwise: str) -> dict[str, Any]:
    """The ``manifest.json`` of a folder written by ``ecpif simulate``.

    ``otherwise`` completes the error message: what to do for a folder without one.
    """
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ReadError(
            f"No manifest.json in {folder}; point to a folder written by 'ecpif simulate' or "
            f"{otherwise}."
        )
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    return manifest


def load_experiment(folder: str | os.PathLike[str]) -> list[OperandoRun]:
    """Load every run of a virtual-experiment folder (``manifest.json`` + CSV files).

    Examples
    --------
    >>> runs = load_experiment(nca_demo_path())
    >>> [r.run_id for r in runs]
    ['nca-0.2C', 'nca-0.5C', 'nca-1C', 'nca-2C']
    """
    from ecpif.io import read_run

    folder = Path(folder)
    manifest = read_manifest(folder, "read your own files with ecpif.io.read_run")
    runs = []
    for entry in manifest["runs"]:
        meta = dict(entry["metadata"])
        metadata = RunMetadata(**meta)
        files = entry["files"]
        refinement = folder / files["refinement"] if "refinement" in files else None
        run = read_run(folder / files["cycler"], refinement, metadata=metadata)
        if "truth" in files:
            run = run.replace(truth=read_truth(folder / files["truth"], run.echem))
        runs.append(run)
    return runs


def load_nca_demo() -> list[OperandoRun]:
    """The bundled virtual NCA‖graphite operando experiment: runs at 0.2C, 0.5C, 1C and 2C.

    Each run carries its ground truth (``run.truth``); the 2C run has no diffraction patterns.

    Examples
    --------
    >>> runs = load_nca_demo()
    >>> [len(r.patterns) for r in runs]
    [67, 53, 44, 0]
    """
    return load_experiment(nca_demo_path())
