"""A study of two simulated cells: grouped validation holds out a whole cell, one comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecpif import schema
from ecpif.errors import ConfigError, ReadError
from ecpif.pipeline import StudyConfig, run, write_results
from ecpif.study import compare_cells, multi_cell_config, runspecs_from_experiment
from ecpif.validate import MODEL

RATES = (0.5, 1.0, 2.0)
TARGETS = ["a [Å]", "c [Å]", "d [Å]", "li_occupancy [-]"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from ecpif.simulate import VirtualExperiment, simulate, write_experiment

    out = {}
    # Two cells that differ in their cathode particles (5 and 8 µm): slower solid diffusion in
    # the larger ones shifts the structural lag at each rate.
    for name, radius, seed in (("A", 5e-6, 1), ("B", 8e-6, 2)):
        exp = VirtualExperiment(
            rates=RATES, exposures={0.5: 300.0, 1.0: 180.0, 2.0: 120.0}, particle_radius_m=radius,
            period_s=20.0, rest_s=600.0, seed=seed, cell=f"virtual cell {name}",
        )  # fmt: skip
        out[name] = write_experiment(simulate(exp), tmp_path_factory.mktemp(f"cell{name}"), exp)
    return out


@pytest.fixture(scope="module")
def results(folders):
    cfg = multi_cell_config(folders, models=("ridge", "knn", "extra_trees"),
                            schemes=("grouped", "loro"), explore=False, n_jobs=2)  # fmt: skip
    return run(cfg)


@pytest.mark.slow
def test_config_lists_every_run_of_every_cell(folders) -> None:
    cfg = multi_cell_config(folders, models=("ridge",))
    assert cfg.group_by == "cell"
    assert [r.run_id for r in cfg.runs] == [f"{c}-nca-{r:g}C" for c in "AB" for r in RATES]
    assert {r.cell for r in cfg.runs} == {"A", "B"}
    spec = cfg.runs[0]
    assert spec.c_rate == 0.5 and spec.nominal_capacity_Ah > 0 and spec.refinement
    again = StudyConfig.from_dict(
        {**{k: v for k, v in cfg.to_dict().items() if k != "runs"},
         "runs": [dict(vars(r)) for r in cfg.runs]}
    )  # fmt: skip
    assert again.group_by == "cell" and again.runs == cfg.runs
    unchanged = runspecs_from_experiment(folders["A"])
    assert unchanged[0].run_id == "nca-0.5C" and unchanged[0].cell == "virtual cell A"


@pytest.mark.slow
def test_grouped_scheme_holds_out_a_whole_cell(results) -> None:
    grouped = results.zoo["grouped"]
    cells = results.aligned[schema.CELL].to_numpy()
    assert grouped.folds.n_folds == 2
    for f in range(2):
        held = cells[grouped.folds.fold == f]
        assert len(set(held)) == 1
        # The fold holds every pattern of its cell.
        assert (cells == held[0]).sum() == len(held)
        assert f"['{held[0]}']" in grouped.folds.labels[f]
    # Two folds cannot choose ensembles inside each training fold: models only, and a note.
    assert set(grouped.leaderboard["kind"]) == {"model"}
    assert any("'grouped' scheme has only 2 folds" in n for n in results.notes)
    # Leave-one-rate-out pools both cells' runs at a rate.
    loro = results.zoo["loro"]
    assert loro.folds.n_folds == 3 and {"auto", "stacking"} <= set(loro.leaderboard[MODEL])


@pytest.mark.slow
def test_cells_are_compared_in_one_table(results) -> None:
    table = compare_cells(results)
    assert table[[schema.CELL, "target"]].values.tolist() == [
        [c, t] for c in ("A", "B") for t in TARGETS
    ]
    assert (table["runs"] == 3).all() and (table["C-rates"] == "0.5, 1, 2").all()
    grouped = results.zoo["grouped"]
    cells = results.aligned[schema.CELL].to_numpy()
    for _, row in table.iterrows():
        t = row["target"]
        best = grouped.best(t, kind="model")
        sel = cells == row[schema.CELL]
        err = grouped.predictions[t][best].to_numpy()[sel] - grouped.y[t][sel]
        assert row[MODEL] == best
        assert row["RMSE (cell held out)"] == pytest.approx(np.sqrt(np.mean(err**2)))
        assert row["truth RMSE/esd (trained rates)"] > 0
    assert set(results.truth_scores[schema.CELL]) == {"A", "B"}


@pytest.mark.slow
def test_same_rates_of_two_cells_stay_apart(results, tmp_path) -> None:
    # Both cells were cycled at the same rates: Rabs rows name their run and cell.
    rabs = results.rabs
    assert set(rabs[schema.RUN_ID]) == {f"{c}-nca-{r:g}C" for c in "AB" for r in RATES}
    assert set(zip(rabs[schema.RUN_ID].str[0], rabs[schema.CELL], strict=True)) == {
        ("A", "A"),
        ("B", "B"),
    }
    assert set(rabs[schema.C_RATE_LABEL]) == set(RATES)
    out = write_results(results, tmp_path / "out", report=False)
    cells = pd.read_csv(out / "cells.csv")
    assert sorted(set(cells[schema.CELL])) == ["A", "B"]
    html = results.report().html()
    assert all(f"{c}-nca-{r:g}C" in html for c in "AB" for r in RATES)


def test_bad_study_settings(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown group_by 'cells'\. Did you mean 'cell'"):
        StudyConfig(group_by="cells")
    with pytest.raises(ReadError, match=r"No manifest\.json"):
        runspecs_from_experiment(tmp_path)
    with pytest.raises(ConfigError, match="at least one"):
        multi_cell_config({})
