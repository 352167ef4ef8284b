"""Derived per-sample features on a hand-built charge / rest / discharge / charge record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecpif import features as feat
from ecpif import schema
from ecpif.errors import ConfigError, DataError

NOMINAL_AH = 2.0


def protocol(period_s: float = 10.0) -> pd.DataFrame:
    """1 A charge 1 h, rest 30 min, 2 A discharge 30 min, 1 A charge 30 min; V linear in q."""
    segments = [(1.0, 3600.0, 1), (0.0, 1800.0, 2), (-2.0, 1800.0, 3), (1.0, 1800.0, 4)]
    current, step = [], []
    for amps, seconds, ns in segments:
        n = int(seconds / period_s)
        current += [amps] * n
        step += [ns] * n
    current_a = np.array(current)
    t = np.arange(len(current_a)) * period_s
    # Current is constant over each interval that starts at a sample: left Riemann sum.
    q = np.concatenate([[0.0], np.cumsum(current_a[:-1] * period_s)]) / 3.6
    voltage = 3.0 + q / 1000.0  # 1 V per A.h: dQ/dV = 1000 mA.h/V on slopes
    return pd.DataFrame(
        {
            schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(t, unit="s"),
            schema.TIME: t,
            schema.VOLTAGE: voltage,
            schema.CURRENT: current_a,
            schema.CHARGE: q,
            schema.STEP: np.array(step),
        }
    )


def test_every_feature_is_documented_with_a_unit() -> None:
    doc = feat.__doc__ or ""
    for column in feat.FEATURE_COLUMNS:
        assert f"``{column}``" in doc
        assert schema.unit_of(column) is not None
    assert set(feat.CONTINUOUS_FEATURES) | set(feat.DISCRETE_FEATURES) == set(feat.FEATURE_COLUMNS)


def test_values_on_a_known_protocol() -> None:
    echem = protocol()
    out = feat.echem_features(echem, nominal_capacity_Ah=NOMINAL_AH)
    assert list(out.columns[: len(echem.columns)]) == list(echem.columns)
    pd.testing.assert_frame_equal(out[echem.columns], echem)  # input columns untouched
    n1, n2, n3 = 360, 540, 720  # first sample of rest, discharge, second charge
    assert out[feat.DIRECTION].iloc[[0, n1, n2, n3]].tolist() == [1, 0, -1, 1]
    assert out[feat.C_RATE].iloc[[0, n1, n2]].tolist() == pytest.approx([0.5, 0.0, 1.0])
    # Step time and step charge restart at every step.
    assert out[feat.STEP_TIME].iloc[[n1 - 1, n1, n2 + 6]].tolist() == [3590.0, 0.0, 60.0]
    assert out[feat.STEP_CHARGE].iloc[n2 + 6] == pytest.approx(-2.0 * 60 / 3.6)
    # 1000 mA.h charged, 1000 discharged, then 500 charged again.
    q_top = out[schema.CHARGE].iloc[n1]
    assert q_top == pytest.approx(1000.0)
    assert out[feat.THROUGHPUT].iloc[-1] == pytest.approx(
        1000.0 + 1000.0 + 500.0 - 1.0 / 3.6 * 10, rel=1e-3
    )
    soc = out[feat.STATE_OF_CHARGE]
    assert soc.min() == 0.0 and soc.max() == 1.0
    assert out[feat.NOMINAL_STATE_OF_CHARGE].max() == pytest.approx(1000.0 / 2000.0)
    assert out[feat.CYCLE_COUNT].iloc[[0, n2, n3]].tolist() == [0, 0, 1]
    # Voltage is linear in charge (1 V/A.h) -> dQ/dV = 1000 mA.h/V wherever charge flows...
    dqdv = out[feat.DQDV].to_numpy()
    inside = np.r_[20 : n1 - 20, n2 + 20 : n3 - 20]
    assert dqdv[inside] == pytest.approx(1000.0, rel=0.05)
    # ... and zero at rest instead of 0/0.
    assert np.all(dqdv[n1 + 1 : n2 - 1] == 0.0)
    assert np.isfinite(dqdv).all()
    # dV/dt: +0.5 V/h at 1 A... (1 A.h/h * 1 V/A.h), -2 V/h at 2 A discharge.
    dvdt = out[feat.DVDT].to_numpy()
    assert dvdt[100] == pytest.approx(1.0, rel=1e-6)
    assert dvdt[n2 + 100] == pytest.approx(-2.0, rel=1e-6)
    assert dvdt[n1 + 100] == 0.0


def test_without_nominal_capacity_and_without_steps() -> None:
    echem = protocol().drop(columns=[schema.STEP])
    out = feat.echem_features(echem, nominal_capacity_Ah=None)
    assert out[feat.C_RATE].isna().all()
    assert out[feat.NOMINAL_STATE_OF_CHARGE].isna().all()
    # Steps then follow the direction: step time restarts at the rest.
    assert out[feat.STEP_TIME].iloc[360] == 0.0


def test_rest_threshold_absorbs_noise() -> None:
    echem = protocol()
    rng = np.random.default_rng(0)
    noisy = echem.copy()
    rest = noisy[schema.STEP] == 2
    noisy.loc[rest, schema.CURRENT] = rng.normal(0.0, 1e-4, int(rest.sum()))
    out = feat.echem_features(noisy, nominal_capacity_Ah=NOMINAL_AH)  # C/500 = 4 mA
    assert (out.loc[rest, feat.DIRECTION] == 0).all()
    out = feat.echem_features(noisy, nominal_capacity_Ah=NOMINAL_AH, rest_current_A=1e-6)
    assert (out.loc[rest, feat.DIRECTION] != 0).any()


def test_errors() -> None:
    echem = protocol()
    with pytest.raises(DataError, match=r"needs the column\(s\) \['voltage \[V\]'\]"):
        feat.echem_features(echem.drop(columns=[schema.VOLTAGE]), nominal_capacity_Ah=1.0)
    with pytest.raises(ConfigError, match=r"nominal_capacity_Ah must be > 0 A.h or None; got 0"):
        feat.echem_features(echem, nominal_capacity_Ah=0)
    with pytest.raises(ConfigError, match=r"smooth_s must be > 0 seconds"):
        feat.echem_features(echem, nominal_capacity_Ah=1.0, smooth_s=0)
