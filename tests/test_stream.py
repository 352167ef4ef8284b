"""Chunked prediction of Parquet archives equals the in-memory prediction, with bounded buffers."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecpif
from ecpif import features as feat
from ecpif import schema
from ecpif.align import align_runs
from ecpif.bundle import save_bundle
from ecpif.ensemble import fit_ensemble
from ecpif.errors import ConfigError, DataError, ModelError, ReadError
from ecpif.predict import ApplicabilityWarning, predict_run
from ecpif.stream import FeatureStream, RunStats, predict_parquet, scan_archive, stream_features
from ecpif.validate import evaluate_zoo

NOMINAL = 0.43
FEATURES = [feat.CHARGE_SINCE_START, schema.VOLTAGE, schema.CURRENT, feat.DIRECTION, feat.C_RATE]


@pytest.fixture(scope="module")
def runs():
    return ecpif.datasets.load_nca_demo()


@pytest.fixture(scope="module")
def model(runs):
    data = align_runs(runs)
    res = evaluate_zoo(data, FEATURES, ["a", "li_occupancy"], models=["ridge", "knn"],
                       scheme="loro", n_jobs=1)  # fmt: skip
    return fit_ensemble(data, res, kind="voting")


@pytest.fixture(scope="module")
def soc_model(runs):
    # A model that needs the run-wide charge range (state of charge): forces the first pass.
    data = align_runs(runs)
    feats = [feat.STATE_OF_CHARGE, feat.DQDV, feat.DVDT, feat.STEP_TIME, schema.C_RATE_LABEL]
    res = evaluate_zoo(data, feats, ["c"], models=["ridge"], scheme="loro", n_jobs=1,
                       ensembles=False)  # fmt: skip
    return fit_ensemble(data, res, kind="ridge")


def stats_of(echem: pd.DataFrame) -> RunStats:
    q = echem[schema.CHARGE]
    return RunStats(None, len(echem), float(q.min()), float(q.max()),
                    float(echem[schema.CURRENT].abs().max()))  # fmt: skip


def stream_all(echem: pd.DataFrame, sizes: list[int], **kwargs) -> tuple[pd.DataFrame, int]:
    s = FeatureStream(stats_of(echem), nominal_capacity_Ah=NOMINAL, **kwargs)
    parts, start = [], 0
    for size in sizes:
        parts.append(s.push(echem.iloc[start : start + size]))
        start += size
    parts.append(s.push(echem.iloc[start:]))
    parts.append(s.finish())
    return pd.concat([p for p in parts if len(p)], ignore_index=True), s.peak_rows


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run_index=st.integers(0, 3), sizes=st.lists(st.integers(1, 700), min_size=1, max_size=12))
def test_stream_features_equal_in_memory_bit_for_bit(runs, run_index, sizes) -> None:
    echem = runs[run_index].echem
    whole = feat.echem_features(echem, nominal_capacity_Ah=NOMINAL)
    got, _ = stream_all(echem, sizes)
    assert len(got) == len(echem)
    for col in [*echem.columns, *feat.FEATURE_COLUMNS]:
        if col == schema.TIMESTAMP:
            assert (got[col].to_numpy() == whole[col].to_numpy()).all()
            continue
        assert np.array_equal(got[col].to_numpy(), whole[col].to_numpy(), equal_nan=True), col


def test_stream_without_step_column_and_without_capacity(runs) -> None:
    # Steps then follow the current's direction; the rest threshold and dQ/dV window come from
    # the run-wide statistics, as in memory.
    echem = runs[1].echem.drop(columns=[schema.STEP])
    whole = feat.echem_features(echem, nominal_capacity_Ah=None, smooth_s=300.0)
    s = FeatureStream(stats_of(echem), nominal_capacity_Ah=None, smooth_s=300.0)
    parts = [s.push(echem.iloc[i : i + 53]) for i in range(0, len(echem), 53)] + [s.finish()]
    got = pd.concat(parts, ignore_index=True)
    for col in feat.FEATURE_COLUMNS:
        assert np.array_equal(got[col].to_numpy(), whole[col].to_numpy(), equal_nan=True), col


def test_buffer_stays_bounded(runs) -> None:
    echem = runs[0].echem  # 4047 samples at 0.2C with rests
    _, peak = stream_all(echem, [50] * 80)
    # The buffer holds the batch plus what the windows reach (the longest rest is 180 samples).
    assert peak < 50 + 2 * 200
    _, peak_big = stream_all(echem, [5000])
    assert peak_big == len(echem)


def test_single_pass_needs_a_capacity(runs) -> None:
    with pytest.raises(ConfigError, match="needs a first pass"):
        FeatureStream(RunStats(None), nominal_capacity_Ah=None)
    with pytest.raises(ConfigError, match="smooth_s must be > 0"):
        FeatureStream(RunStats(None), nominal_capacity_Ah=NOMINAL, smooth_s=0)


def write(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> Path:
    frame.to_parquet(path, index=False, row_group_size=row_group_size)
    return path


def assert_same_prediction(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert list(got.columns) == list(ref.columns)
    assert got.dtypes.astype(str).to_dict() == ref.dtypes.astype(str).to_dict()
    for col in ref.columns:
        if col == schema.TIMESTAMP:
            assert (got[col].to_numpy() == ref[col].to_numpy()).all()
        else:
            np.testing.assert_allclose(got[col].to_numpy(dtype=float),
                                       ref[col].to_numpy(dtype=float), rtol=1e-12, atol=1e-15,
                                       err_msg=col)  # fmt: skip


@pytest.mark.parametrize("batch_rows", [7, 97, 1000, 100_000])
def test_predict_parquet_equals_predict_run(runs, model, tmp_path, batch_rows) -> None:
    run = runs[1]  # 0.5C, a trained rate (a few samples still lie beyond the window means)
    src = write(run.echem, tmp_path / "in.parquet", row_group_size=250)
    with pytest.warns(ApplicabilityWarning, match="43 of 1620 samples"):
        rep = predict_parquet(model, src, tmp_path / "out.parquet", batch_rows=batch_rows,
                              nominal_capacity_Ah=NOMINAL)  # fmt: skip
    got = pd.read_parquet(tmp_path / "out.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApplicabilityWarning)
        ref = predict_run(model, run)
    assert_same_prediction(got, ref)
    outside = int((~ref["in domain [-]"]).sum())
    assert (rep.rows, rep.runs, rep.passes, rep.rows_outside) == (len(run.echem), 1, 1, outside)
    assert rep.rows_per_s > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_two_pass_when_state_of_charge_is_used(runs, soc_model, tmp_path) -> None:
    run = runs[3]  # 2C, cycler only: also outside the training domain
    src = write(run.echem, tmp_path / "in.parquet")
    with pytest.warns(ApplicabilityWarning, match="outside the training domain"):
        rep = predict_parquet(soc_model, src, tmp_path / "out.parquet", batch_rows=64,
                              c_rate=2.0, nominal_capacity_Ah=NOMINAL)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApplicabilityWarning)
        ref = predict_run(soc_model, run, c_rate=2.0)
    assert rep.passes == 2
    assert rep.rows_outside == int((~ref["in domain [-]"]).sum()) > 0
    outside = rep.domain.set_index("feature")["rows outside"]
    assert outside[schema.C_RATE_LABEL] == len(run.echem)
    assert_same_prediction(pd.read_parquet(tmp_path / "out.parquet"), ref)


def test_archive_of_several_runs(runs, model, tmp_path) -> None:
    parts = [r.echem.assign(**{schema.RUN_ID: r.run_id}) for r in runs[:3]]
    archive = pd.concat(parts, ignore_index=True)
    src = write(archive[[schema.RUN_ID, *runs[0].echem.columns]], tmp_path / "all.parquet", 500)
    rep = predict_parquet(model, src, tmp_path / "out.parquet", batch_rows=333, warn=False,
                          nominal_capacity_Ah={r.run_id: NOMINAL for r in runs[:3]})  # fmt: skip
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert rep.runs == 3 and got.columns[0] == schema.RUN_ID
    for r in runs[:3]:
        mine = got[got[schema.RUN_ID] == r.run_id].drop(columns=schema.RUN_ID)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ApplicabilityWarning)
            ref = predict_run(model, r)
        assert_same_prediction(mine.reset_index(drop=True), ref)
    stats = scan_archive(src, batch_rows=1000)
    assert [s.rows for s in stats.values()] == [len(r.echem) for r in runs[:3]]


def test_stream_features_yields_every_row_once(runs, tmp_path) -> None:
    src = write(runs[2].echem, tmp_path / "in.parquet")
    chunks = list(stream_features(src, nominal_capacity_Ah=NOMINAL, batch_rows=100,
                                  columns=[schema.TIME]))  # fmt: skip
    got = pd.concat(chunks, ignore_index=True)
    assert list(got.columns) == [schema.TIME, *feat.FEATURE_COLUMNS]
    np.testing.assert_array_equal(got[schema.TIME], runs[2].echem[schema.TIME])


def test_failure_leaves_the_destination_untouched(runs, model, tmp_path) -> None:
    echem = runs[1].echem.copy()
    echem.loc[1200, schema.VOLTAGE] = np.nan
    src = write(echem, tmp_path / "in.parquet")
    dest = tmp_path / "out.parquet"
    dest.write_bytes(b"earlier results")
    with pytest.raises(DataError, match=r"'voltage \[V\]'.*row 1200"):
        predict_parquet(model, src, dest, batch_rows=500, nominal_capacity_Ah=NOMINAL)
    assert dest.read_bytes() == b"earlier results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_time_must_increase_across_batches(runs, model, tmp_path) -> None:
    echem = runs[1].echem.copy()
    echem.loc[600, schema.TIME] = echem.loc[599, schema.TIME]
    src = write(echem, tmp_path / "in.parquet")
    with pytest.raises(DataError, match=r"Row 600 .* does not come after"):
        predict_parquet(model, src, tmp_path / "o.parquet", batch_rows=600,
                        nominal_capacity_Ah=NOMINAL)  # fmt: skip


def test_runs_must_be_contiguous(runs, model, tmp_path) -> None:
    a = runs[1].echem.assign(**{schema.RUN_ID: "a"})
    b = runs[2].echem.assign(**{schema.RUN_ID: "b"})
    src = write(pd.concat([a.iloc[:100], b, a.iloc[100:]], ignore_index=True), tmp_path / "x.pq")
    with pytest.raises(DataError, match="Run 'a' reappears at row 911"):
        predict_parquet(model, src, tmp_path / "o.parquet", nominal_capacity_Ah=NOMINAL)


def test_input_errors(runs, model, soc_model, tmp_path) -> None:
    src = write(runs[1].echem, tmp_path / "in.parquet")
    with pytest.raises(ReadError, match="does not exist"):
        predict_parquet(model, tmp_path / "missing.parquet", tmp_path / "o.parquet")
    (tmp_path / "bad.parquet").write_text("time,voltage\n1,2\n")
    with pytest.raises(ReadError, match="not a readable Parquet file"):
        predict_parquet(model, tmp_path / "bad.parquet", tmp_path / "o.parquet")
    write(runs[1].echem.drop(columns=[schema.CHARGE]), tmp_path / "nocharge.parquet")
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['charge \[mA.h\]'\]"):
        predict_parquet(model, tmp_path / "nocharge.parquet", tmp_path / "o.parquet")
    with pytest.raises(ConfigError, match="batch_rows must be a positive integer"):
        predict_parquet(model, src, tmp_path / "o.parquet", batch_rows=0)
    with pytest.raises(ConfigError, match="is the archive itself"):
        predict_parquet(model, src, src)
    with pytest.raises(ConfigError, match="pass c_rate="):
        predict_parquet(soc_model, src, tmp_path / "o.parquet")
    with pytest.raises(ConfigError, match="not for run None"):
        predict_parquet(soc_model, src, tmp_path / "o.parquet", c_rate={"x": 1.0})
    with pytest.raises(ConfigError, match="run column 'cell id' is not a column"):
        predict_parquet(model, src, tmp_path / "o.parquet", run_column="cell id")
    odd = model.__class__(**{**model.__dict__, "features": [*model.features, "pressure [bar]"]})
    with pytest.raises(ModelError, match=r"needs the feature\(s\) \['pressure \[bar\]'\]"):
        predict_parquet(odd, src, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_output_is_streamed_in_row_groups(runs, model, tmp_path) -> None:
    src = write(runs[0].echem, tmp_path / "in.parquet", row_group_size=1000)
    rep = predict_parquet(model, src, tmp_path / "out.parquet", batch_rows=1000, warn=False,
                          nominal_capacity_Ah=NOMINAL)  # fmt: skip
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert rep.batches >= 4 and meta.num_row_groups == rep.batches
    assert meta.num_rows == len(runs[0].echem)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # A separate process: registering the command family must not change this session's app.
    code = "import sys, ecpif.cli.scale; from ecpif.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_cli_predict_archive(runs, model, tmp_path) -> None:
    bundle = save_bundle(model, tmp_path / "model.skops")
    src = write(runs[1].echem, tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    proc = run_cli("predict-archive", str(bundle), str(src), "--out", str(out), "--batch-rows",
                   "400", "--nominal-capacity", "0.43")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "wrote 1,620 rows (1 run(s))" in said and "rows/s" in said
    assert "warning: 43 of 1620 samples lie outside" in said
    assert len(pd.read_parquet(out)) == 1620
    bad = run_cli("predict-archive", str(bundle), str(tmp_path / "none.parquet"))
    assert bad.returncode == 2 and "does not exist; check the path" in " ".join(bad.stderr.split())


def test_reading_keeps_arrow_memory_at_one_row_group(tmp_path) -> None:
    import pyarrow as pa

    n = 400_000
    rng = np.random.default_rng(0)
    current = np.where((np.arange(n) // 5000) % 2 == 0, 0.2, -0.2)
    frame = pd.DataFrame({
        schema.TIME: np.arange(n, dtype=float),
        schema.VOLTAGE: 3.7 + 0.01 * rng.normal(size=n),
        schema.CURRENT: current,
        schema.CHARGE: np.cumsum(current) / 3.6,
        "noise [-]": rng.normal(size=n),
    })  # fmt: skip
    src = write(frame, tmp_path / "long.parquet", row_group_size=10_000)
    base, peak, rows = pa.total_allocated_bytes(), 0, 0
    for chunk in stream_features(src, nominal_capacity_Ah=NOMINAL, batch_rows=10_000):
        peak = max(peak, pa.total_allocated_bytes() - base)
        rows += len(chunk)
    assert rows == n
    # The file decodes to ~19 MB; reading it whole-file with iter_batches held all of it.
    assert peak < 2 * 2**20
