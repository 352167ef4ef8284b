"""Many operando runs in one study: several cells, rates or temperatures, compared in one place.

A :class:`~ecpif.pipeline.StudyConfig` already takes any number of runs; this module adds what a
multi-cell study needs around it:

* :func:`runspecs_from_experiment` turns a folder written by :func:`ecpif.simulate.write_experiment`
  (or laid out the same way) into :class:`~ecpif.pipeline.RunSpec` entries, naming the cell and
  prefixing run ids so that runs of different cells at the same rate stay distinct;
* :func:`multi_cell_config` builds one config from several such folders, with
  ``group_by="cell"``: the ``"grouped"`` scheme then holds out **every run of a cell at once**,
  which answers "does the model transfer to a cell it has never seen?";
* :func:`compare_cells` condenses the results per cell and target: runs, rates, patterns, the
  held-out-cell error of the best model, and the trajectory error against ground truth when the
  runs are simulated. :func:`ecpif.pipeline.write_results` writes it as ``cells.csv``.

Design decision: the comparison is computed from :class:`~ecpif.pipeline.Results` only (no new
fitting), so it costs nothing and can never disagree with the leaderboard it summarises.

Examples
--------
>>> cfg = multi_cell_config({"A": "cell-a", "B": "cell-b"}, models=("knn",))  # doctest: +SKIP
>>> results = ecpif.pipeline.run(cfg)  # doctest: +SKIP
>>> compare_cells(results)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, ReadError

if TYPE_CHECKING:
    from ecpif.pipeline import Results, RunSpec, StudyConfig


def runspecs_from_experiment(
    folder: str | os.PathLike[str], *, cell: str | None = None, prefix: str = ""
) -> tuple[RunSpec, ...]:
    """One :class:`~ecpif.pipeline.RunSpec` per run of an experiment folder (``manifest.json``).

    Parameters
    ----------
    folder
        Folder with ``manifest.json`` and the run files (:func:`ecpif.simulate.write_experiment`).
    cell
        Cell name written to every run (default: the manifest's).
    prefix
        Prepended to every run id, e.g. ``"A-"`` -> ``"A-nca-1C"``.

    Examples
    --------
    >>> from ecpif.datasets import nca_demo_path
    >>> [s.run_id for s in runspecs_from_experiment(nca_demo_path(), prefix="demo-")][:2]
    ['demo-nca-0.2C', 'demo-nca-0.5C']
    """
    from ecpif.datasets import read_manifest
    from ecpif.pipeline import RunSpec

    folder = Path(folder)
    manifest = read_manifest(folder, "list the runs yourself as RunSpec entries")
    specs = []
    for entry in manifest.get("runs", []):
        meta, files = entry["metadata"], entry["files"]
        specs.append(
            RunSpec(
                run_id=f"{prefix}{meta['run_id']}",
                cycler=str(folder / files["cycler"]),
                refinement=str(folder / files["refinement"]) if "refinement" in files else None,
                c_rate=meta.get("c_rate"),
                nominal_capacity_Ah=meta.get("nominal_capacity_Ah"),
                timezone=meta.get("timezone"),
                cell=cell if cell is not None else str(meta.get("cell", "")),
                truth=str(folder / files["truth"]) if "truth" in files else None,
            )
        )
    if not specs:
        raise ReadError(f"The manifest in {folder} lists no runs.")
    return tuple(specs)


def multi_cell_config(
    experiments: Mapping[str, str | os.PathLike[str]], **settings: Any
) -> StudyConfig:
    """One study over several cells: ``{cell name: experiment folder}`` plus config settings.

    Run ids get the cell name as prefix; ``group_by`` defaults to ``"cell"``.

    Examples
    --------
    >>> from ecpif.datasets import nca_demo_path
    >>> cfg = multi_cell_config({"demo": nca_demo_path()}, models=("ridge",))
    >>> cfg.group_by, cfg.runs[0].run_id, cfg.runs[0].cell
    ('cell', 'demo-nca-0.2C', 'demo')
    """
    from ecpif.pipeline import StudyConfig

    if not experiments:
        raise ConfigError("multi_cell_config needs at least one {cell: folder} entry; got none.")
    runs: list[RunSpec] = []
    for name, folder in experiments.items():
        if not name:
            raise ConfigError("Cell names must be non-empty strings.")
        runs += runspecs_from_experiment(folder, cell=name, prefix=f"{name}-")
    settings.setdefault("group_by", "cell")
    return StudyConfig(runs=tuple(runs), **settings)


def compare_cells(results: Results) -> pd.DataFrame:
    """Per cell and target: runs, rates, patterns, held-out-cell RMSE, truth RMSE/esd.

    Columns: ``cell``, ``target``, ``runs``, ``C-rates``, ``patterns``, then, when the study
    grouped by cell, ``model`` and ``RMSE (cell held out)`` / ``RMSE/esd (cell held out)`` of the
    best zoo model of the ``"grouped"`` scheme on that cell's fold; then, for simulated runs,
    ``truth RMSE/esd (trained rates)`` and ``truth RMSE/esd (no patterns)`` (mean over the cell's
    runs of the final model's trajectory error).

    Examples
    --------
    >>> compare_cells(results)[["cell", "target", "RMSE/esd (cell held out)"]]  # doctest: +SKIP
    """
    from ecpif.validate import MODEL, RMSE, TARGET

    runs = list(results.runs)
    targets = list(results.model.targets)
    cell_of = {r.run_id: r.metadata.cell for r in runs}
    cells = list(dict.fromkeys(cell_of.values()))
    held: dict[tuple[str, str], tuple[str, float]] = {}
    grouped = results.zoo.get("grouped")
    by_cell = getattr(results.config, "group_by", "run") == "cell"
    if grouped is not None and by_cell:
        aligned_cells = results.aligned[schema.CELL].to_numpy()
        for t in grouped.targets:
            best = grouped.best(t, kind="model")
            pred = grouped.predictions[t][best].to_numpy()
            y = grouped.y[t]
            for cell in cells:
                sel = aligned_cells == cell
                if sel.any():
                    held[(cell, t)] = (best, float(np.sqrt(np.mean((pred[sel] - y[sel]) ** 2))))
    scores = results.truth_scores
    rows = []
    for cell in cells:
        mine = [r for r in runs if r.metadata.cell == cell]
        for t in targets:
            row: dict[str, Any] = {
                schema.CELL: cell,
                TARGET: t,
                "runs": len(mine),
                "C-rates": ", ".join(
                    f"{r.metadata.c_rate:g}" for r in mine if r.metadata.c_rate is not None
                ),
                "patterns": int(sum(len(r.patterns) for r in mine)),
            }
            if (cell, t) in held:
                model, rmse = held[(cell, t)]
                esd = grouped.esd.get(t, math.nan) if grouped is not None else math.nan
                row[MODEL] = model
                row[f"{RMSE} (cell held out)"] = rmse
                row["RMSE/esd (cell held out)"] = rmse / esd if esd and esd > 0 else math.nan
            if scores is not None and len(scores):
                part = scores[scores[schema.RUN_ID].map(cell_of).eq(cell) & (scores["target"] == t)]
                for regime, label in (("interpolation", "trained rates"),
                                      ("extrapolation", "no patterns")):  # fmt: skip
                    sel = part[part["regime"].str.startswith(regime)]
                    row[f"truth RMSE/esd ({label})"] = (
                        float(sel["RMSE/esd"].mean()) if len(sel) else math.nan
                    )
            rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["compare_cells", "multi_cell_config", "runspecs_from_experiment"]
