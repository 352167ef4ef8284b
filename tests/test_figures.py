"""Publication figures: content (labels, colours), files written, errors, and real inputs."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from ecpif import analysis, explore, schema, validate
from ecpif.errors import ConfigError, DataError
from ecpif.predict import lower_column, upper_column
from ecpif.report import figures as figs

A, C_, OCC = schema.A.column, schema.C.column, schema.LI_OCCUPANCY.column
RATES = (0.2, 0.5, 1.0, 2.0)


def labels(fig: Figure) -> dict[str, list[str]]:
    """Every axis label and title of a figure, for assertions."""
    out: dict[str, list[str]] = {"x": [], "y": [], "title": []}
    for ax in fig.axes:
        out["x"].append(ax.get_xlabel())
        out["y"].append(ax.get_ylabel())
        out["title"].append(ax.get_title() or ax.get_title(loc="left"))
    return out


def legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def check_saved(fig: Figure, stem: Path) -> list[Path]:
    paths = figs.save_figure(fig, stem)
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000
    root = ET.fromstring(svg.read_bytes())  # well-formed XML
    assert root.tag.endswith("svg")
    assert not list(stem.parent.glob("*.tmp"))  # atomic: no temporary files left behind
    return paths


# --- synthetic runs with known trajectories ---------------------------------------------------


def trajectories(rate: float, n: int = 400) -> dict[str, pd.DataFrame]:
    """A charge then discharge at ``rate``; lattice parameter a follows the charge linearly."""
    t = np.linspace(0.0, 2 * 3600.0 / rate, n)
    q = np.where(t < t[-1] / 2, 100 * rate * t / 3600, 100 * rate * (t[-1] - t) / 3600)
    a = 2.865 - 4e-4 * q
    occ = 1.0 - 5e-3 * q
    echem = pd.DataFrame(
        {schema.TIME: t, schema.CHARGE: q, schema.VOLTAGE: 3.0 + 0.01 * q, "rate": rate}
    )
    predicted = pd.DataFrame({schema.TIME: t, schema.CHARGE: q, A: a, OCC: occ})
    for col, width in ((A, 5e-4), (OCC, 1e-2)):
        predicted[lower_column(col)] = predicted[col] - width
        predicted[upper_column(col)] = predicted[col] + width
    idx = np.arange(5, n, 25)
    refined = pd.DataFrame(
        {
            schema.TIME: t[idx],
            schema.CHARGE: q[idx],
            A: a[idx] + 2e-4,
            schema.esd_column(A): 3e-4,
            OCC: occ[idx],
            schema.esd_column(OCC): 5e-3,
        }
    )
    truth = pd.DataFrame({schema.TIME: t, schema.CHARGE: q, A: a, OCC: occ})
    out = {"echem": echem, "predicted": predicted, "refined": refined, "truth": truth}
    for frame in out.values():
        frame[schema.C_RATE_LABEL] = rate
    return out


@pytest.fixture(scope="module")
def runs() -> dict[str, pd.DataFrame]:
    parts = [trajectories(r) for r in RATES]
    frames = {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in parts[0]}
    frames["refined"] = frames["refined"][frames["refined"][schema.C_RATE_LABEL] != 2.0]
    return frames


@pytest.fixture(scope="module")
def zoo():
    """A real (small) cross-validation on three schemes: leaderboard and out-of-fold rows."""
    rng = np.random.default_rng(0)
    rows = []
    for run, rate in enumerate((0.2, 0.5, 1.0)):
        q = rng.uniform(0, 100, 30)
        rows.append(
            pd.DataFrame(
                {
                    schema.RUN_ID: f"run{run}",
                    schema.C_RATE_LABEL: rate,
                    schema.CHARGE: q,
                    schema.TIME: q * 36 / rate,
                    figs.STATE_OF_CHARGE: q / 100,
                    A: 2.865 - 4e-4 * q + rng.normal(0, 2e-4, 30),
                }
            )
        )
    data = pd.concat(rows, ignore_index=True)
    boards, oof = [], []
    for scheme in validate.SCHEMES:
        res = validate.evaluate_zoo(
            data, [schema.CHARGE], [A], models=["ols", "knn"], scheme=scheme, n_splits=3,
            ensembles=False, n_jobs=1,
        )  # fmt: skip
        boards.append(res.leaderboard)
        pred = res.predictions_frame()
        pred[validate.SCHEME] = scheme
        oof.append(pred.join(data[[schema.C_RATE_LABEL, schema.TIME, figs.STATE_OF_CHARGE]], "row"))
    return pd.concat(boards, ignore_index=True), pd.concat(oof, ignore_index=True)


# --- colours and style ------------------------------------------------------------------------


def test_rate_colours_are_fixed_distinct_and_defined_off_the_ladder() -> None:
    ladder = [figs.rate_color(r) for r in figs.RATE_COLORS]
    assert len(set(ladder)) == len(ladder)
    assert figs.rate_color(1.0) == figs.rate_color(1.0000000001) == figs.RATE_COLORS[1.0]
    off = figs.rate_color(0.33)
    assert off.startswith("#") and off not in ladder
    assert figs.rate_label(0.2) == "0.2C" and figs.rate_label(2.0) == "2C"


def test_scheme_order_and_the_honest_scheme() -> None:
    assert figs.order_schemes(["loro", "custom", "shuffled"]) == ["shuffled", "loro", "custom"]
    assert figs.honest_scheme(["shuffled", "grouped"]) == "grouped"
    assert figs.honest_scheme(["custom"]) == "custom"
    with pytest.raises(DataError, match="No validation scheme"):
        figs.honest_scheme([])


def test_figures_leave_the_callers_rcparams_alone(runs) -> None:
    before = mpl.rcParams["font.size"], mpl.rcParams["axes.spines.top"]
    figs.evolution_figure(runs["echem"], runs["refined"], runs["predicted"], runs["truth"])
    assert (mpl.rcParams["font.size"], mpl.rcParams["axes.spines.top"]) == before


# --- exploration ------------------------------------------------------------------------------


def test_correlation_heatmap_labels_and_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=100)
    data = pd.DataFrame({schema.CHARGE: x, schema.VOLTAGE: x + 0.1 * rng.normal(size=100), A: -x})
    corr = explore.correlations(data, method="spearman")
    fig = figs.correlation_heatmap(corr, "spearman")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(corr.columns)
    assert fig.axes[1].get_ylabel() == "Spearman ρ [-]"  # the colour bar
    assert ax.get_title() == "Spearman correlation"
    annotated = {t.get_text() for t in ax.texts}
    assert f"{corr.loc[schema.CHARGE, A]:.2f}" in annotated
    check_saved(fig, tmp_path / "spearman")


def test_network_figure_tells_features_from_targets(tmp_path: Path) -> None:
    corr = pd.DataFrame(
        [[1.0, 0.95, -0.9], [0.95, 1.0, -0.85], [-0.9, -0.85, 1.0]],
        index=["q [mA.h]", "soc [-]", A],
        columns=["q [mA.h]", "soc [-]", A],
    )
    graph = explore.feature_network(corr, 0.8, targets=[A])
    fig = figs.network_figure(graph)
    texts = legend_texts(fig)
    assert {"feature", "target", "r < 0"} <= set(texts)
    assert fig.axes[0].get_title() == "Feature network (edges: |r| > 0.8)"
    widths = sorted(line.get_linewidth() for line in fig.axes[0].lines)
    assert len(widths) == 3 and widths[0] < widths[-1]  # width grows with |r|
    dashed = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 2  # the two negative correlations
    check_saved(fig, tmp_path / "network")
    with pytest.raises(DataError, match="at least one node"):
        figs.network_figure(explore.feature_network(corr.iloc[:0, :0]))


def test_coverage_figure(tmp_path: Path) -> None:
    report = pd.DataFrame(
        {schema.RUN_ID: ["r1"] * 3 + ["r2"] * 2, figs.COVERAGE: [1.0, 1.0, 0.4, 1.0, 0.0]}
    )
    fig = figs.coverage_figure(report)
    assert labels(fig)["y"] == ["coverage [-]"]
    assert legend_texts(fig) == ["r1", "r2"]
    check_saved(fig, tmp_path / "coverage")


# --- models -----------------------------------------------------------------------------------


def test_leaderboard_figure_from_a_real_leaderboard(zoo, tmp_path: Path) -> None:
    board, _ = zoo
    fig = figs.leaderboard_figure(board)
    assert labels(fig)["x"] == ["RMSE [Å]"]
    assert labels(fig)["title"] == [A]
    assert {"shuffled k-fold", "grouped by run", "leave-one-rate-out"} <= set(legend_texts(fig))
    ax = fig.axes[0]
    # Models ordered best first under leave-one-rate-out (inverted y axis: first tick on top).
    loro = board[board[validate.SCHEME] == "loro"].sort_values(validate.RMSE)
    assert [t.get_text() for t in ax.get_yticklabels()] == loro[validate.MODEL].tolist()
    # Bars carry the scheme colours.
    colours = {to_hex(p.get_facecolor()) for p in ax.patches}
    assert {c.lower() for c in figs.SCHEME_COLORS.values()} <= colours
    check_saved(fig, tmp_path / "leaderboard")
    r2 = figs.leaderboard_figure(board, metric=validate.R2)
    assert labels(r2)["x"] == ["R² [-]"]
    with pytest.raises(ConfigError, match=r"Target 'c \[Å\]' is not in the leaderboard"):
        figs.leaderboard_figure(board, targets=[C_])
    with pytest.raises(DataError, match=r"lacks the column 'MAPE'"):
        figs.leaderboard_figure(board, metric="MAPE")


def test_parity_figure_annotates_each_scheme(zoo, tmp_path: Path) -> None:
    _, oof = zoo
    fig = figs.parity_figure(oof, model="ols")
    assert labels(fig)["x"] == [f"measured {A}"] * 3
    assert labels(fig)["y"][0] == f"predicted {A}"
    assert labels(fig)["title"] == ["shuffled k-fold", "grouped by run", "leave-one-rate-out"]
    loro = oof[(oof[validate.SCHEME] == "loro") & (oof[validate.MODEL] == "ols")]
    err = loro["predicted"] - loro["observed"]
    rmse = np.sqrt(np.mean(err**2))
    r2 = 1 - np.sum(err**2) / np.sum((loro["observed"] - loro["observed"].mean()) ** 2)
    assert fig.axes[2].texts[0].get_text() == f"R² = {r2:.4f}\nRMSE = {rmse:.3g} Å"
    assert set(legend_texts(fig)) == {"0.2C", "0.5C", "1C"}
    line = fig.axes[0].lines[0]  # y = x
    np.testing.assert_allclose(line.get_xdata(), line.get_ydata())
    check_saved(fig, tmp_path / "parity")
    with pytest.raises(ConfigError, match=r"several models \['ols', 'knn'\]; choose one"):
        figs.parity_figure(oof)


def test_residuals_figure_against_time_and_state_of_charge(zoo, tmp_path: Path) -> None:
    _, oof = zoo
    fig = figs.residuals_figure(oof[oof[validate.SCHEME] == "loro"], model="knn")
    assert labels(fig)["x"] == ["time [h]", figs.STATE_OF_CHARGE]
    assert labels(fig)["y"][0] == f"residual {A}"
    check_saved(fig, tmp_path / "residuals")
    with pytest.raises(DataError, match=r"none of the x columns"):
        figs.residuals_figure(oof.drop(columns=[schema.TIME, figs.STATE_OF_CHARGE]), model="knn")


def test_importance_figure(tmp_path: Path) -> None:
    imp = pd.DataFrame(
        {
            "feature": [schema.CHARGE, schema.VOLTAGE, "step time [s]"],
            "importance mean": [0.1, 0.8, 0.02],
            "importance std": [0.01, 0.05, 0.01],
            "target": A,
        }
    )
    fig = figs.importance_figure(imp)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [schema.VOLTAGE, schema.CHARGE, "step time [s]"]  # largest on top
    assert ax.get_xlabel().startswith("permutation importance")
    check_saved(fig, tmp_path / "importance")


# --- trajectories -----------------------------------------------------------------------------


def test_evolution_figure_panels_colours_and_styles(runs, tmp_path: Path) -> None:
    fig = figs.evolution_figure(runs["echem"], runs["refined"], runs["predicted"], runs["truth"])
    assert labels(fig)["y"] == [schema.VOLTAGE, A, OCC]
    assert labels(fig)["x"][-1] == "time [h]"
    texts = legend_texts(fig)
    assert [t for t in texts if t.endswith("C")] == ["0.2C", "0.5C", "1C", "2C"]
    assert {"refined ± esd", "predicted", "prediction interval", "ground truth"} <= set(texts)
    voltage_colours = [to_hex(line.get_color()) for line in fig.axes[0].lines]
    assert voltage_colours == [figs.rate_color(r).lower() for r in RATES]
    # Hours on the axis: the 0.2C run (charge and discharge) lasts 10 h.
    assert max(line.get_xdata().max() for line in fig.axes[0].lines) == pytest.approx(10.0)
    assert fig.axes[1].collections  # interval bands
    check_saved(fig, tmp_path / "evolution")
    by_charge = figs.evolution_figure(refined=runs["refined"], x=schema.CHARGE, parameters=["a"])
    assert labels(by_charge)["y"] == [A]
    assert labels(by_charge)["x"] == [schema.CHARGE]


def test_evolution_figure_thins_long_curves(tmp_path: Path) -> None:
    """A 200,000-sample run must not produce a multi-megabyte SVG."""
    long = trajectories(0.5, n=200_000)
    fig = figs.evolution_figure(long["echem"], predicted=long["predicted"])
    for ax in fig.axes:
        for line in ax.lines:
            assert len(line.get_xdata()) <= 801
    _, svg = figs.save_figure(fig, tmp_path / "long")
    assert svg.stat().st_size < 600_000


def test_evolution_figure_errors(runs) -> None:
    with pytest.raises(DataError, match="at least one of echem, refined, predicted, truth"):
        figs.evolution_figure()
    with pytest.raises(DataError, match=r"refined table lacks the column 'charge \[mA.h\]'"):
        figs.evolution_figure(refined=runs["refined"].drop(columns=schema.CHARGE), x=schema.CHARGE)
    with pytest.raises(DataError, match=r"Parameter column 'd \[Å\]' is in none of the given"):
        figs.evolution_figure(refined=runs["refined"], parameters=["d"])


def test_reconstruction_figure_overlays_the_missing_rate(runs, tmp_path: Path) -> None:
    fig = figs.reconstruction_figure(runs["refined"], runs["predicted"], 2.0, runs["truth"])
    assert fig.get_suptitle() == "2C reconstruction over measured 0.2C, 0.5C, 1C"
    assert labels(fig)["y"] == [A, OCC]
    assert labels(fig)["x"] == [schema.CHARGE] * 2
    curves = [ln for ln in fig.axes[0].lines if ln.get_linestyle() != "None"]  # not markers
    assert len(curves) == 2  # the 2C prediction and the 2C truth, nothing of other rates
    predicted, truth = curves
    assert to_hex(predicted.get_color()) == figs.rate_color(2.0).lower()
    assert predicted.get_xdata().max() == pytest.approx(100.0, rel=0.01)  # 200 mA.h/h for 0.5 h
    assert truth.get_linestyle() == "--"
    check_saved(fig, tmp_path / "reconstruction")
    with pytest.raises(ConfigError, match=r"no rows at 5C"):
        figs.reconstruction_figure(runs["refined"], runs["predicted"], 5.0)


def test_rabs_figure_from_compare_rates(tmp_path: Path) -> None:
    parts = {r: trajectories(r)["predicted"] for r in RATES}
    for r, frame in parts.items():
        frame[schema.CURRENT] = np.where(np.diff(frame[schema.CHARGE], append=0) >= 0, r, -r)
    table = analysis.compare_rates(parts, [A, OCC], soc_windows=2)
    fig = figs.rabs_figure(table)
    assert labels(fig)["y"] == [analysis.rabs_time_column(A), analysis.rabs_time_column(OCC)]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0.2C", "0.5C", "1C", "2C"]
    assert legend_texts(fig) == ["charge", "discharge"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert len(heights) == 8 and heights[0] < heights[-1]  # Rabs per hour grows with the rate
    check_saved(fig, tmp_path / "rabs")
    per_charge = figs.rabs_figure(table, per="charge")
    assert labels(per_charge)["y"][0] == analysis.rabs_charge_column(A)
    with pytest.raises(ConfigError, match="per must be 'time' or 'charge'"):
        figs.rabs_figure(table, per="cycle")
    with pytest.raises(DataError, match="no rows of the segments"):
        figs.rabs_figure(table, segments=["rest"])


# --- saving -----------------------------------------------------------------------------------


def test_save_figure_keeps_dots_in_the_stem_and_overwrites(tmp_path: Path) -> None:
    fig = figs.importance_figure(pd.DataFrame({"feature": ["x [-]"], "importance mean": [0.3]}))
    first = figs.save_figure(fig, tmp_path / "sub" / "fig.v2", formats=("svg",))
    assert first == [tmp_path / "sub" / "fig.v2.svg"]
    again = figs.save_figure(fig, tmp_path / "sub" / "fig.v2", formats=("svg",))
    assert again == first and first[0].stat().st_size > 1000
    # Reproducible SVG: same figure, same bytes (no date, fixed hash salt).
    assert figs.figure_bytes(fig, "svg") == figs.figure_bytes(fig, "svg")
    with pytest.raises(ConfigError, match="'png' or 'svg'; got 'pdf'"):
        figs.save_figure(fig, tmp_path / "x", formats=("pdf",))


def test_figure_functions_do_not_modify_inputs(runs, zoo) -> None:
    board, oof = zoo
    copies = {k: v.copy() for k, v in runs.items()}
    board_copy, oof_copy = board.copy(), oof.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and raise no warning on real input
        figs.evolution_figure(runs["echem"], runs["refined"], runs["predicted"], runs["truth"])
        figs.reconstruction_figure(runs["refined"], runs["predicted"], 2.0, runs["truth"])
        figs.leaderboard_figure(board)
        figs.parity_figure(oof, model="knn")
    for key, frame in runs.items():
        pd.testing.assert_frame_equal(frame, copies[key])
    pd.testing.assert_frame_equal(board, board_copy)
    pd.testing.assert_frame_equal(oof, oof_copy)
