"""Rabs: exact values on known trajectories, segment bookkeeping, comparison across rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecpif.analysis import compare_rates, rabs, rabs_charge_column, rabs_time_column
from ecpif.errors import ConfigError, DataError

CAPACITY_MAH = 430.0


def cycle(rate: float, period_s: float = 10.0, rest_s: float = 600.0) -> pd.DataFrame:
    """Charge, rest, discharge at ``rate``; a(Q) and c(Q) depend on the charge only."""
    t_half = 3600.0 / rate
    t = np.arange(0.0, 2 * t_half + rest_s + period_s / 2, period_s)
    current = np.where(t < t_half, 1.0, np.where(t < t_half + rest_s, 0.0, -1.0)) * 0.43 * rate
    q = np.clip(np.where(t < t_half + rest_s, t, 2 * t_half + rest_s - t), 0, t_half)
    q = q / t_half * CAPACITY_MAH
    return pd.DataFrame({
        "time [s]": t, "current [A]": current, "charge [mA.h]": q,
        "a [Å]": 2.864 - 1e-4 * q, "c [Å]": 14.18 + 2e-6 * q**2,
    })  # fmt: skip


def test_rabs_of_a_linear_parameter_is_exact() -> None:
    out = rabs(cycle(0.5), ["a"], soc_windows=4).set_index("segment")
    # |da/dQ| = 1e-4 Å/mAh everywhere; dQ/dt = 430 mAh per 2 h at 0.5C.
    assert out.loc["charge", rabs_charge_column("a [Å]")] == pytest.approx(1e-4, rel=1e-9)
    assert out.loc["discharge", rabs_charge_column("a [Å]")] == pytest.approx(1e-4, rel=1e-9)
    assert out.loc["charge", rabs_time_column("a [Å]")] == pytest.approx(1e-4 * 215, rel=1e-3)
    assert out.loc["charge", "duration [h]"] == pytest.approx(2.0, rel=1e-3)
    assert out.loc["charge", "charge throughput [mA.h]"] == pytest.approx(430, rel=1e-9)


def test_rabs_per_charge_is_rate_independent_per_time_scales_with_rate() -> None:
    table = compare_rates({0.2: cycle(0.2), 1.0: cycle(1.0)}, ["a", "c"], soc_windows=2)
    charge = table[table["segment"] == "charge"].set_index("C-rate label [1/h]")
    col_q, col_t = rabs_charge_column("c [Å]"), rabs_time_column("c [Å]")
    assert charge.loc[0.2, col_q] == pytest.approx(charge.loc[1.0, col_q], rel=1e-6)
    assert charge.loc[1.0, col_t] / charge.loc[0.2, col_t] == pytest.approx(5.0, rel=1e-2)
    # Rows alternate rates within each segment: a comparison table.
    assert table["C-rate label [1/h]"].tolist()[:4] == [0.2, 1.0, 0.2, 1.0]


def test_soc_windows_resolve_a_nonlinear_parameter() -> None:
    out = rabs(cycle(0.5), ["c"], soc_windows=2).set_index("segment")
    low = out.loc["charge SOC 0-0.5", rabs_charge_column("c [Å]")]
    high = out.loc["charge SOC 0.5-1", rabs_charge_column("c [Å]")]
    # dc/dQ = 4e-6 Q: mean over [0, 215] is 4.3e-4, over [215, 430] 1.29e-3.
    assert low == pytest.approx(4.3e-4, rel=1e-2)
    assert high == pytest.approx(1.29e-3, rel=1e-2)


@settings(max_examples=30, deadline=None)
@given(windows=st.integers(1, 8), seed=st.integers(0, 1000))
def test_soc_windows_add_up_to_the_direction_total(windows: int, seed: int) -> None:
    traj = cycle(0.5)
    rng = np.random.default_rng(seed)
    traj["a [Å]"] = traj["a [Å]"] + 1e-4 * rng.normal(size=len(traj))  # total variation adds
    out = rabs(traj, ["a"], soc_windows=windows)
    col = rabs_charge_column("a [Å]")
    for d in ("charge", "discharge"):
        total = out[out["segment"] == d].iloc[0]
        parts = out[(out["direction"] == d) & (out["segment"] != d)]
        tv_parts = (parts[col] * parts["charge throughput [mA.h]"]).sum()
        assert tv_parts == pytest.approx(total[col] * total["charge throughput [mA.h]"], rel=1e-9)
        assert parts["duration [h]"].sum() == pytest.approx(total["duration [h]"], rel=1e-9)


def test_rest_is_left_out() -> None:
    out = rabs(cycle(1.0, rest_s=3600), ["a"], soc_windows=1)
    assert set(out["direction"]) == {"charge", "discharge"}
    durations = out.set_index("segment")["duration [h]"]
    # 1 h of charge and 1 h of discharge at 1C; the hour of rest counts in neither.
    assert durations["charge"] == pytest.approx(1.0, rel=1e-2)
    assert durations["discharge"] == pytest.approx(1.0, rel=1e-2)


def test_bad_inputs_are_one_sentence() -> None:
    traj = cycle(0.5)
    with pytest.raises(DataError, match=r"lacks the column 'charge \[mA.h\]'"):
        rabs(traj.drop(columns=["charge [mA.h]"]), ["a"])
    with pytest.raises(DataError, match=r"no parameter column 'd \[Å\]'"):
        rabs(traj, ["d"])
    with pytest.raises(DataError, match=r"must strictly increase; row 3"):
        rabs(traj.iloc[[0, 1, 2, 2, 3]].reset_index(drop=True), ["a"])
    with pytest.raises(ConfigError, match="soc_windows must be an integer >= 1"):
        rabs(traj, ["a"], soc_windows=0)
    with pytest.raises(ConfigError, match="at least one trajectory"):
        compare_rates({})
