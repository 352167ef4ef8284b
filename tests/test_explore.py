"""Exploration: correlations, mutual information, feature network, suggested features, CLI."""

from __future__ import annotations

import json

import hypothesis.extra.numpy as hnp
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ecpif import explore, schema
from ecpif.errors import ConfigError, DataError, ReadError

X, DUP, EXP, NOISE, NOISY_X, CONST = (
    "x [-]",
    "x twice [-]",
    "exp x [-]",
    "noise [-]",
    "noisy x [-]",
    "constant [V]",
)
Y = "y [Å]"


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    """Known structure: DUP is an exact linear copy of X, EXP a monotonic (non-linear) one,
    NOISY_X a 1%-noise copy, NOISE independent; the target Y follows X."""
    rng = np.random.default_rng(42)
    x = rng.uniform(0.0, 1.0, 400)
    return pd.DataFrame(
        {
            X: x,
            DUP: 2.0 * x + 1.0,
            EXP: np.exp(4.0 * x),
            NOISE: rng.normal(size=400),
            NOISY_X: x + rng.normal(0.0, 0.03, 400),
            CONST: np.full(400, 3.7),
            "run id": ["r1"] * 200 + ["r2"] * 200,
            Y: 2.86 - 0.05 * x + rng.normal(0.0, 1e-4, 400),
        }
    )


# --- correlations ------------------------------------------------------------------------------


def test_correlations_recover_known_linear_and_rank_relations(synthetic: pd.DataFrame) -> None:
    pearson = explore.correlations(synthetic, [X, DUP, EXP, NOISE, Y])
    spearman = explore.correlations(synthetic, [X, DUP, EXP, NOISE, Y], method="spearman")
    assert pearson.loc[X, DUP] == pytest.approx(1.0)
    assert pearson.loc[X, Y] < -0.99  # a shrinks as x grows
    # exp is monotonic but not linear: rank correlation 1, linear clearly below 1.
    assert spearman.loc[X, EXP] == pytest.approx(1.0)
    assert pearson.loc[X, EXP] < 0.95
    assert abs(pearson.loc[X, NOISE]) < 0.15
    assert list(pearson.index) == list(pearson.columns) == [X, DUP, EXP, NOISE, Y]
    np.testing.assert_allclose(pearson.to_numpy(), pearson.to_numpy().T)


def test_correlations_default_columns_skip_text(synthetic: pd.DataFrame) -> None:
    corr = explore.correlations(synthetic)
    assert "run id" not in corr.columns
    assert X in corr.columns and Y in corr.columns
    # A constant column has no defined correlation: NaN, not a made-up number.
    assert np.isnan(corr.loc[CONST, X])


def test_correlations_leave_the_input_unchanged(synthetic: pd.DataFrame) -> None:
    before = synthetic.copy()
    explore.correlations(synthetic, [X, Y], method="spearman")
    explore.suggest_features(synthetic, [X, DUP, NOISE], [Y])
    pd.testing.assert_frame_equal(synthetic, before)


def test_correlation_errors_say_what_to_do(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"method must be one of.*Did you mean 'pearson'"):
        explore.correlations(synthetic, [X, Y], method="pearsn")
    with pytest.raises(DataError, match=r"'x  \[-\]' .*is not in the data.*Did you mean 'x \[-\]'"):
        explore.correlations(synthetic, ["x  [-]", Y])
    with pytest.raises(DataError, match=r"'run id' \(correlated\) holds .* not numbers"):
        explore.correlations(synthetic, ["run id", Y])
    with pytest.raises(ConfigError, match=r"listed twice"):
        explore.correlations(synthetic, [X, X])
    with pytest.raises(DataError, match=r"at least 3 rows; the data has 2"):
        explore.correlations(synthetic.head(2), [X, Y])


# --- mutual information ------------------------------------------------------------------------


def test_mutual_information_ranks_informative_above_noise(synthetic: pd.DataFrame) -> None:
    mi = explore.mutual_information(synthetic, [X, EXP, NOISE], [Y], random_state=3)
    assert mi.shape == (3, 1)
    assert (mi.to_numpy() >= 0).all()
    assert mi.loc[X, Y] > 1.0 > 0.1 > mi.loc[NOISE, Y]
    # MI is invariant under monotonic maps: exp(4x) informs about y nearly as much as x does
    # (the k-NN estimate is not exactly invariant), unlike Pearson's r.
    assert mi.loc[EXP, Y] > 0.75 * mi.loc[X, Y]
    again = explore.mutual_information(synthetic, [X, EXP, NOISE], [Y], random_state=3)
    pd.testing.assert_frame_equal(mi, again)


def test_mutual_information_drops_rows_with_nan(synthetic: pd.DataFrame) -> None:
    holes = synthetic.copy()
    holes.loc[::2, NOISE] = np.nan
    mi = explore.mutual_information(holes, [X, NOISE], [Y])
    assert np.isfinite(mi.to_numpy()).all()
    with pytest.raises(DataError, match=r"more than 3 complete rows"):
        explore.mutual_information(holes.head(6), [X, NOISE], [Y])


def test_mutual_information_refuses_a_target_among_features(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'y \[Å\]' is both a feature and a target"):
        explore.mutual_information(synthetic, [X, Y], [Y])


# --- feature network ---------------------------------------------------------------------------


def test_feature_network_edges_follow_the_threshold(synthetic: pd.DataFrame) -> None:
    corr = explore.correlations(synthetic, [X, DUP, NOISE, Y])
    graph = explore.feature_network(corr, threshold=0.8, targets=[Y])
    assert isinstance(graph, nx.Graph)
    assert set(graph.nodes) == {X, DUP, NOISE, Y}
    assert graph.nodes[Y]["kind"] == "target"
    assert {graph.nodes[n]["kind"] for n in (X, DUP, NOISE)} == {"feature"}
    assert graph.degree(NOISE) == 0  # isolated columns stay as nodes
    expected = {frozenset(p) for p in [(X, DUP), (X, Y), (DUP, Y)]}
    assert {frozenset(e) for e in graph.edges} == expected
    assert graph.edges[X, Y]["weight"] == pytest.approx(abs(corr.loc[X, Y]))
    assert graph.edges[X, Y]["r"] < 0 < graph.edges[X, Y]["weight"]
    assert graph.graph["threshold"] == 0.8
    # A threshold above every |r| < 1 leaves only the exact copy.
    strict = explore.feature_network(corr, threshold=0.999999, targets=[Y])
    assert {frozenset(e) for e in strict.edges} == {frozenset((X, DUP))}


def test_feature_network_errors(synthetic: pd.DataFrame) -> None:
    corr = explore.correlations(synthetic, [X, Y])
    with pytest.raises(ConfigError, match=r"threshold must be in \[0, 1\); got 1.0"):
        explore.feature_network(corr, threshold=1.0)
    with pytest.raises(DataError, match=r"square correlation DataFrame"):
        explore.feature_network(corr.iloc[:, :1])
    with pytest.raises(DataError, match=r"Target 'c \[Å\]' is not a column"):
        explore.feature_network(corr, targets=["c [Å]"])


# --- suggested features ------------------------------------------------------------------------


def test_suggest_drops_the_less_informative_twin_with_the_reason(synthetic: pd.DataFrame) -> None:
    s = explore.suggest_features(synthetic, [NOISY_X, X, NOISE], [Y], threshold=0.95)
    assert s.kept == (X, NOISE)  # given order, not ranking order
    (dropped,) = s.dropped
    assert dropped.feature == NOISY_X and dropped.partner == X
    r = explore.correlations(synthetic, [NOISY_X, X]).loc[NOISY_X, X]
    assert dropped.r == pytest.approx(r)
    assert dropped.reason.startswith(
        f"|r|={abs(r):.2f} with 'x [-]', which has higher mutual information with the targets"
    )
    assert s.scores[X] > s.scores[NOISY_X]


def test_suggest_keeps_the_first_listed_of_exact_twins(synthetic: pd.DataFrame) -> None:
    s = explore.suggest_features(synthetic, [DUP, X, CONST], [Y])
    assert s.kept == (DUP,)
    # The caller's order decides between twins, not the estimator's noise.
    assert explore.suggest_features(synthetic, [X, DUP], [Y]).kept == (X,)
    reasons = s.reasons
    assert reasons[X].startswith("|r|=1.00 with 'x twice [-]', which has about the same mutual")
    assert "comes first in the feature list" in reasons[X]
    assert reasons[CONST].startswith("constant over the data")
    frame = s.to_frame()
    assert frame["status"].tolist() == ["kept", "dropped", "dropped"]
    assert json.loads(json.dumps(s.to_dict()))["dropped"][0]["partner"] in {DUP, None}


def test_suggest_with_spearman_catches_monotonic_twins(synthetic: pd.DataFrame) -> None:
    pearson = explore.suggest_features(synthetic, [X, EXP], [Y], threshold=0.97)
    spearman = explore.suggest_features(synthetic, [X, EXP], [Y], 0.97, method="spearman")
    assert pearson.kept == (X, EXP)  # |r| < 0.95: not a linear duplicate
    assert len(spearman.kept) == 1
    assert spearman.dropped[0].reason.startswith("|ρ|=1.00 with")


def test_suggest_errors(synthetic: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"duplicate threshold must be in \(0, 1\]; got 0"):
        explore.suggest_features(synthetic, [X], [Y], threshold=0)
    with pytest.raises(ConfigError, match=r"Did you mean 'spearman'"):
        explore.suggest_features(synthetic, [X], [Y], method="spearmann")
    with pytest.raises(ConfigError, match=r"No feature columns were given"):
        explore.suggest_features(synthetic, [], [Y])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mixing=hnp.arrays(np.float64, (3, 5), elements=st.floats(-1, 1, allow_nan=False)),
    threshold=st.floats(0.5, 0.99),
    seed=st.integers(0, 2**16),
)
def test_suggestion_invariants(mixing: np.ndarray, threshold: float, seed: int) -> None:
    """Kept and dropped partition the features; no kept pair is a near-duplicate; every drop
    names a kept partner above the threshold."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(40, 3))
    values = latent @ mixing + 1e-3 * rng.normal(size=(40, 5))
    names = [f"f{i} [-]" for i in range(5)]
    data = pd.DataFrame(values, columns=names)
    data["t [-]"] = latent[:, 0] + 0.1 * rng.normal(size=40)
    s = explore.suggest_features(data, names, ["t [-]"], threshold=threshold)
    dropped = [d.feature for d in s.dropped]
    assert sorted(s.kept + tuple(dropped)) == sorted(names)
    assert list(s.kept) == [n for n in names if n in s.kept]
    corr = data[names].corr().abs()
    for i, a in enumerate(s.kept):
        for b in s.kept[i + 1 :]:
            assert not corr.loc[a, b] > threshold
    for d in s.dropped:
        if d.partner is not None:
            assert d.partner in s.kept
            assert corr.loc[d.feature, d.partner] > threshold


def test_suggest_on_the_demo_alignment_drops_charge_twins() -> None:
    """Real data: the window-mean charge and the charge since start are the same signal."""
    from ecpif import align, datasets

    runs = datasets.load_experiment(datasets.nca_demo_path())
    table = align.align_runs(runs)
    features = [schema.CHARGE, "charge since start [mA.h]", schema.VOLTAGE, "step time [s]"]
    s = explore.suggest_features(table, features, ["a", "c"])  # short names resolve
    assert s.kept[0] == schema.CHARGE
    assert s.reasons["charge since start [mA.h]"].startswith("|r|=1.00 with 'charge [mA.h]'")


# --- the command -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aligned_csv(tmp_path_factory: pytest.TempPathFactory):
    from ecpif import align, datasets

    runs = datasets.load_experiment(datasets.nca_demo_path())
    folder = tmp_path_factory.mktemp("aligned")
    (csv,) = align.write_aligned(align.align_runs(runs), folder / "aligned", formats=("csv",))
    return csv


def test_cli_explore_writes_figures_tables_and_suggestion(aligned_csv, tmp_path) -> None:
    import ecpif.cli.explore  # noqa: F401  (registers the command)
    from ecpif.cli import app

    out = tmp_path / "explore"
    result = CliRunner().invoke(
        app, ["explore", str(aligned_csv), "--out", str(out), "--targets", "a,c"]
    )
    assert result.exit_code == 0, result.output
    for stem in ("pearson", "spearman", "network"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    suggestion = json.loads((out / "suggested_features.json").read_text(encoding="utf-8"))
    assert suggestion["kept"] and suggestion["dropped"]
    assert all(d["reason"].startswith("|r|=") for d in suggestion["dropped"])
    pearson = pd.read_csv(out / "pearson.csv", index_col=0)
    assert {"a [Å]", "c [Å]"} <= set(pearson.columns)
    assert "d [Å]" not in pearson.columns  # only the requested targets
    assert '<section id="exploration">' in (out / "exploration.html").read_text(encoding="utf-8")
    assert "Suggested features" in result.output
    assert "charge [mA.h]" in result.output  # brackets printed, not eaten as rich markup
    assert not list(out.glob("*.tmp"))


def test_cli_explore_rejects_unreadable_input(tmp_path) -> None:
    import ecpif.cli.explore  # noqa: F401
    from ecpif.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["explore", str(tmp_path / "nope.csv")])
    assert isinstance(missing.exception, ReadError)
    assert "No file at" in str(missing.exception)
    odd = tmp_path / "table.txt"
    odd.write_text("a,b\n1,2\n", encoding="utf-8")
    wrong = runner.invoke(app, ["explore", str(odd)])
    assert isinstance(wrong.exception, ReadError)
    assert "reads '.csv' or '.parquet'" in str(wrong.exception)
    no_targets = tmp_path / "plain.csv"
    pd.DataFrame({"u [V]": [1.0, 2.0, 3.0, 4.0]}).to_csv(no_targets, index=False)
    bad = runner.invoke(app, ["explore", str(no_targets)])
    assert isinstance(bad.exception, ConfigError)
    assert "--targets" in str(bad.exception)
