"""OperandoRun validation: each violation is one clear sentence naming frame, row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecpif import OperandoRun, RunMetadata, schema
from ecpif.errors import DataError
from ecpif.run import empty_patterns


def make_echem(n=50, period=10.0):
    t = np.arange(n) * period
    return pd.DataFrame(
        {
            schema.TIMESTAMP: pd.Timestamp("2026-03-01T08:00:00Z") + pd.to_timedelta(t, unit="s"),
            schema.TIME: t,
            schema.VOLTAGE: np.linspace(3.5, 4.1, n),
            schema.CURRENT: np.full(n, 0.1),
            schema.CHARGE: t * 0.1 / 3.6,
        }
    )


def make_patterns(starts_s, length_s=60.0):
    t0 = pd.Timestamp("2026-03-01T08:00:00Z")
    starts = t0 + pd.to_timedelta(np.asarray(starts_s, dtype=float), unit="s")
    return pd.DataFrame(
        {
            schema.PATTERN_ID: [f"p{i}" for i in range(len(starts))],
            schema.START: starts,
            schema.END: starts + pd.Timedelta(seconds=length_s),
            "a [Å]": np.full(len(starts), 2.86),
            "esd a [Å]": np.full(len(starts), 3e-4),
        }
    )


META = RunMetadata(run_id="cell1-1C", nominal_capacity_Ah=0.1, c_rate=1.0)


def test_valid_run_is_frozen_copy():
    echem, patterns = make_echem(), make_patterns([0, 100, 200])
    run = OperandoRun(echem, patterns, META)
    assert run.parameter_columns == ["a [Å]"]
    assert run.has_patterns and len(run.patterns) == 3
    echem.loc[0, schema.VOLTAGE] = 99.0  # the caller's frame changes, the run does not
    assert run.echem[schema.VOLTAGE].iloc[0] == pytest.approx(3.5)
    w = run.pattern_seconds()
    assert w["start [s]"].tolist() == [0.0, 100.0, 200.0]
    with pytest.raises(AttributeError):
        run.echem = echem  # type: ignore[misc]
    assert "cell1-1C" in repr(run)


def test_cycler_only_run():
    run = OperandoRun(make_echem(), empty_patterns(), META)
    assert not run.has_patterns


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda e: e.drop(columns=[schema.VOLTAGE]),
            r"lacks the required column\(s\) \['voltage \[V\]'\]",
        ),
        (
            lambda e: e.assign(**{"temp": 25.0}),
            r"Column 'temp' of the cycler data of run 'cell1-1C' carries no unit",
        ),
        (
            lambda e: e.assign(**{schema.TIMESTAMP: e[schema.TIMESTAMP].dt.tz_localize(None)}),
            r"must hold time-zone-aware timestamps",
        ),
        (lambda e: e.iloc[[0, 2, 1, 3]], r"Row 2 of the cycler data .* is earlier than row 1"),
        (
            lambda e: pd.concat([e.iloc[:3], e.iloc[2:3], e.iloc[3:]]),
            r"Row 3 of the cycler data .* repeats the time of row 2",
        ),
        (
            lambda e: e.assign(**{schema.VOLTAGE: [np.nan, *e[schema.VOLTAGE].iloc[1:]]}),
            r"has a missing value \(NaN\) at row 0",
        ),
        (lambda e: e.iloc[:1], r"has 1 row\(s\); at least 2 samples are needed"),
    ],
)
def test_bad_cycler_frames(mutate, message):
    with pytest.raises(DataError, match=message):
        OperandoRun(mutate(make_echem()), make_patterns([0]), META)


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (
            make_patterns([0, 100]).drop(columns=[schema.END]),
            r"lacks the required column\(s\) \['end \[UTC\]'\]",
        ),
        (
            make_patterns([0, 100]).assign(**{schema.PATTERN_ID: ["p", "p"]}),
            r"Pattern id 'p' appears more than once",
        ),
        (make_patterns([100, 0]), r"Row 1 of the pattern table .* is earlier than row 0"),
        (make_patterns([0, 460]), r"Pattern 'p1' \(row 1\) .* outside the cycler data"),
        (make_patterns([-30]), r"Pattern 'p0' \(row 0\) .* outside the cycler data"),
        (make_patterns([0], length_s=-5), r"ends at .* which is not after its start"),
        (
            make_patterns([0]).rename(columns={"a [Å]": "a"}),
            r"Column 'a' of the pattern table .* carries no unit",
        ),
    ],
)
def test_bad_pattern_tables(patterns, message):
    with pytest.raises(DataError, match=message):
        OperandoRun(make_echem(), patterns, META)


def test_metadata_checks():
    with pytest.raises(DataError, match="nominal_capacity_Ah must be > 0"):
        RunMetadata(run_id="x", nominal_capacity_Ah=-1)
    with pytest.raises(DataError, match="c_rate must be > 0"):
        RunMetadata(run_id="x", c_rate=0)
    with pytest.raises(DataError, match="run_id must be a non-empty string"):
        RunMetadata(run_id="")


def test_truth_must_match_cycler_rows():
    truth = pd.DataFrame({schema.TIME: np.arange(3.0)})
    with pytest.raises(
        DataError, match="ground truth of run 'cell1-1C' has 3 rows but the cycler data has 50"
    ):
        OperandoRun(make_echem(), make_patterns([0]), META, truth=truth)
