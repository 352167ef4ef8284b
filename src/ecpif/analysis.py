"""Rabs: the absolute rate of change of structural parameters, per unit time and per unit charge.

Definition
----------
For a trajectory sampled at times ``t_i`` with net charge ``Q_i`` and parameter ``p_i``, each step
``i -> i+1`` contributes ``|Δp_i|``, ``Δt_i`` and ``|ΔQ_i|``. Over a segment ``S`` (a set of steps):

* ``Rabs_t(S) = Σ_S |Δp_i| / Σ_S Δt_i``  (e.g. Å/h): the mean of ``|dp/dt|`` over the segment's
  time, i.e. its total variation divided by its duration;
* ``Rabs_Q(S) = Σ_S |Δp_i| / Σ_S |ΔQ_i|``  (e.g. Å/(mA.h)): the mean of ``|dp/dQ|`` over the
  charge passed.

Segments are **charge** steps (current > threshold), **discharge** steps (current < -threshold)
and, within each direction, **SOC windows**: the step's mid-point state of charge ``SOC = (Q -
Q_min) / (Q_max - Q_min)`` (or ``/ capacity`` when given) binned into equal windows. Rest steps are
left out (``Rabs_Q`` is undefined without charge flow). The sums are exact over the samples: no
derivative is estimated, so the numbers do not depend on a smoothing choice; on *measured* noisy
data the total variation includes noise, so use model trajectories (:mod:`ecpif.predict`).

``Rabs_t`` grows with the C-rate when the structure follows the charge; ``Rabs_Q`` stays the same
unless kinetics (e.g. Li gradients in the particles at high rate) change how the lattice follows the
state of charge. Comparing both across rates (:func:`compare_rates`) separates the two.

Examples
--------
>>> import numpy as np, pandas as pd
>>> t = np.arange(0, 7201, 60.0)
>>> traj = pd.DataFrame({"time [s]": t, "current [A]": 0.1,
...                      "charge [mA.h]": 100 * t / 3600, "a [Å]": 2.86 - 1e-4 * t / 3600})
>>> r = rabs(traj, ["a [Å]"], soc_windows=2)
>>> r.loc[r["segment"] == "charge", "Rabs a [Å/h]"].round(6).tolist()
[0.0001]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, DataError, did_you_mean

SEGMENT = "segment"
DIRECTION = "direction"
SOC_FROM = "SOC from [-]"
SOC_TO = "SOC to [-]"
DURATION = "duration [h]"
THROUGHPUT = "charge throughput [mA.h]"


def rabs_time_column(parameter: str) -> str:
    """``"a [Å]"`` -> ``"Rabs a [Å/h]"``."""
    return f"Rabs {schema.base_name(parameter)} [{schema.unit_of(parameter) or '-'}/h]"


def rabs_charge_column(parameter: str) -> str:
    """``"a [Å]"`` -> ``"Rabs a [Å/(mA.h)]"``."""
    return f"Rabs {schema.base_name(parameter)} [{schema.unit_of(parameter) or '-'}/(mA.h)]"


def rabs(
    trajectory: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    soc_windows: int = 5,
    capacity_mAh: float | None = None,
    current_threshold_A: float = 1e-6,
    time_col: str = schema.TIME,
    charge_col: str = schema.CHARGE,
    current_col: str = schema.CURRENT,
) -> pd.DataFrame:
    """Rabs of each parameter over charge, discharge and SOC windows (definition above).

    Parameters
    ----------
    trajectory
        One row per sample, time-ordered: time, net charge, current and parameter columns (e.g.
        the output of :func:`ecpif.predict.predict_run`).
    parameters
        Parameter columns or short names (default: every structural parameter present).
    soc_windows
        Number of equal SOC windows per direction.
    capacity_mAh
        Normalise SOC by this capacity instead of the run's charge span.
    current_threshold_A
        Steps with ``|current|`` at or below this are rest and are left out.

    Returns
    -------
    DataFrame
        Rows ``charge``, ``discharge`` and ``charge SOC 0.0-0.2`` ...; columns segment, direction,
        SOC bounds, duration, charge throughput, then ``Rabs <p> [unit/h]`` and
        ``Rabs <p> [unit/(mA.h)]`` per parameter. Empty segments are dropped.
    """
    for col in (time_col, charge_col, current_col):
        if col not in trajectory.columns:
            raise DataError(
                f"The trajectory lacks the column {col!r} needed for Rabs."
                f"{did_you_mean(col, [str(c) for c in trajectory.columns])}"
            )
    if parameters is None:
        parameters = [p.column for p in schema.PARAMETERS.values() if p.column in trajectory]
    params = [schema.parameter_column(p) for p in parameters]
    for p in params:
        if p not in trajectory.columns:
            raise DataError(
                f"The trajectory has no parameter column {p!r}."
                f"{did_you_mean(p, [str(c) for c in trajectory.columns])}"
            )
    if not params:
        raise ConfigError("No parameter columns to analyse; pass parameters=[...].")
    if not (isinstance(soc_windows, int) and soc_windows >= 1):
        raise ConfigError(f"soc_windows must be an integer >= 1; got {soc_windows!r}.")
    if len(trajectory) < 2:
        raise DataError(f"Rabs needs at least 2 samples; the trajectory has {len(trajectory)}.")
    t = trajectory[time_col].to_numpy(dtype=float)
    if np.any(np.diff(t) <= 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise DataError(
            f"Times in {time_col!r} must strictly increase; row {trajectory.index[i]} does not."
        )
    q = trajectory[charge_col].to_numpy(dtype=float)
    current = trajectory[current_col].to_numpy(dtype=float)
    dt_h = np.diff(t) / 3600.0
    dq = np.diff(q)
    i_mid = 0.5 * (current[1:] + current[:-1])
    q_mid = 0.5 * (q[1:] + q[:-1])
    span = capacity_mAh if capacity_mAh else float(q.max() - q.min())
    if not span > 0:
        raise DataError("The trajectory passes no charge, so SOC windows are undefined.")
    soc = np.clip((q_mid - q.min()) / span, 0.0, 1.0)
    window = np.minimum((soc * soc_windows).astype(int), soc_windows - 1)
    direction = np.where(
        i_mid > current_threshold_A, "charge",
        np.where(i_mid < -current_threshold_A, "discharge", "rest"),
    )  # fmt: skip
    dp = {p: np.abs(np.diff(trajectory[p].to_numpy(dtype=float))) for p in params}

    rows = []

    def add(name: str, d: str, lo: float, hi: float, sel: np.ndarray) -> None:
        if not sel.any():
            return
        dur, thr = float(dt_h[sel].sum()), float(np.abs(dq[sel]).sum())
        row: dict[str, object] = {SEGMENT: name, DIRECTION: d, SOC_FROM: lo, SOC_TO: hi,
                                  DURATION: dur, THROUGHPUT: thr}  # fmt: skip
        for p in params:
            tv = float(dp[p][sel].sum())
            row[rabs_time_column(p)] = tv / dur if dur > 0 else np.nan
            row[rabs_charge_column(p)] = tv / thr if thr > 0 else np.nan
        rows.append(row)

    for d in ("charge", "discharge"):
        add(d, d, 0.0, 1.0, direction == d)
    for d in ("charge", "discharge"):
        for w in range(soc_windows):
            lo, hi = w / soc_windows, (w + 1) / soc_windows
            add(f"{d} SOC {lo:.2g}-{hi:.2g}", d, lo, hi, (direction == d) & (window == w))
    return pd.DataFrame(rows)


def compare_rates(
    trajectories: Mapping[float | str, pd.DataFrame],
    parameters: Sequence[str] | None = None,
    **kwargs: object,
) -> pd.DataFrame:
    """Rabs of several runs side by side: one row per (segment, rate).

    ``trajectories`` maps a rate label (e.g. ``0.2``) to its trajectory; ``kwargs`` go to
    :func:`rabs`. The table is sorted by segment, then rate, so each parameter's column reads as a
    comparison across rates.

    >>> import numpy as np, pandas as pd
    >>> def traj(rate):
    ...     t = np.arange(0, 3600 / rate, 30.0)
    ...     return pd.DataFrame({"time [s]": t, "current [A]": rate,
    ...                          "charge [mA.h]": 1000 * rate * t / 3600,
    ...                          "a [Å]": 2.86 - 1e-5 * 1000 * rate * t / 3600})
    >>> table = compare_rates({0.5: traj(0.5), 1.0: traj(1.0)}, ["a [Å]"], soc_windows=1)
    >>> table.loc[table["segment"] == "charge", "Rabs a [Å/h]"].round(6).tolist()
    [0.005, 0.01]
    """
    if not trajectories:
        raise ConfigError("compare_rates needs at least one trajectory; got none.")
    parts = []
    for rate, traj in trajectories.items():
        table = rabs(traj, parameters, **kwargs)  # type: ignore[arg-type]
        table.insert(0, schema.C_RATE_LABEL, rate)
        parts.append(table)
    out = pd.concat(parts, ignore_index=True)
    order = {s: i for i, s in enumerate(dict.fromkeys(out[SEGMENT]))}
    out["_o"] = out[SEGMENT].map(order)
    out = out.sort_values(["_o", schema.C_RATE_LABEL], kind="mergesort").drop(columns="_o")
    return out.reset_index(drop=True)


__all__ = ["compare_rates", "rabs", "rabs_charge_column", "rabs_time_column"]
