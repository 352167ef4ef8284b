"""Pair each diffraction pattern with the cycler data measured during its acquisition window.

For every pattern window ``[start, end]`` (moved onto the cycler clock by ``clock_offset_s``),
:func:`align_run` computes, from the cycler samples:

* the **time-weighted mean** over the window of voltage, current, charge, temperature and every
  continuous feature of :mod:`ecpif.features` (same column names as per sample, so a model trained
  on window means applies to per-sample data unchanged);
* for labels (step index, cycle, direction) the value at the window's **midpoint**;
* charge at start, mid and end of the window, the charge passed during it, the number of cycler
  samples inside it, its duration and its **coverage** by cycler data.

Coverage and policies
---------------------
A window is *covered* where cycler samples exist on both sides with no gap longer than
``max_gap_s`` (default: 10 x the median sampling interval) between them. ``coverage [-]`` is the
covered fraction of the window. A window with ``coverage < min_coverage`` is handled by
``policy`` and always listed in the report with the reason:

============  ======================================================================================
``"error"``   raise :class:`ecpif.errors.AlignmentError` naming the first such pattern
``"drop"``    leave it out of the aligned frame (status ``dropped``)
``"clip"``    aggregate over the covered part (status ``clipped``); a window with no covered part
              at all is dropped
``"keep"``    keep the row with NaN cycler aggregates (status ``kept-nan``)
============  ======================================================================================

Design decisions
----------------
* **Exact time weighting**: cycler signals are treated as piecewise linear between samples; the
  integral over any ``[a, b]`` is the cumulative trapezoid sum at the bracketing samples plus the
  two partial trapezoids, found with :func:`numpy.searchsorted`. Gaps contribute nothing, so a
  mean is always over covered time. Irregular sampling (Neware logs on dV) cannot bias it, unlike
  a plain mean of the samples in the window.
* **No Python loop over patterns or samples**: one cumulative sum per signal, one ``searchsorted``
  per window edge. 10 million cycler rows x 10,000 patterns align in seconds (see
  ``benchmarks/bench_align.py``).
* **Clock offset convention**: ``clock_offset_s`` is *added* to the diffraction times to express
  them on the cycler clock. :func:`estimate_clock_offset` returns a value in that convention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ecpif import features as feat
from ecpif import schema
from ecpif.errors import AlignmentError, ConfigError
from ecpif.run import OperandoRun

Policy = Literal["error", "drop", "clip", "keep"]
POLICIES: tuple[str, ...] = ("error", "drop", "clip", "keep")

DURATION = "duration [s]"
WINDOW_START = "window start [s]"
WINDOW_END = "window end [s]"
CHARGE_AT_START = "charge at start [mA.h]"
CHARGE_AT_MID = "charge at mid [mA.h]"
CHARGE_AT_END = "charge at end [mA.h]"
WINDOW_CHARGE = "window charge [mA.h]"
N_SAMPLES = "cycler samples [-]"
COVERAGE = "coverage [-]"
STATUS = "status"
REASON = "reason"

#: Columns describing each window, in the order they appear after run id and pattern id.
WINDOW_COLUMNS: tuple[str, ...] = (
    schema.START,
    schema.END,
    DURATION,
    WINDOW_START,
    WINDOW_END,
    COVERAGE,
    N_SAMPLES,
    CHARGE_AT_START,
    CHARGE_AT_MID,
    CHARGE_AT_END,
    WINDOW_CHARGE,
)

_MEAN_SIGNALS: tuple[str, ...] = (
    schema.TIME,
    schema.VOLTAGE,
    schema.CURRENT,
    schema.CHARGE,
    schema.TEMPERATURE,
)
_MID_SIGNALS: tuple[str, ...] = (schema.STEP, schema.CYCLE)


@dataclass(frozen=True)
class Alignment:
    """The result of aligning one run.

    Attributes
    ----------
    frame
        One row per pattern kept, in pattern order: run id, pattern id, window columns
        (:data:`WINDOW_COLUMNS`), window means of the cycler signals and features, labels at the
        midpoint, the C-rate label, then the refined parameters and their esd.
    report
        One row per pattern of the run: window, coverage, samples, ``status`` (``kept``,
        ``clipped``, ``dropped``, ``kept-nan``) and ``reason``.
    run_id, policy, clock_offset_s, min_coverage, max_gap_s
        The settings used.
    """

    frame: pd.DataFrame
    report: pd.DataFrame
    run_id: str
    policy: str
    clock_offset_s: float
    min_coverage: float
    max_gap_s: float
    parameter_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def feature_columns(self) -> list[str]:
        """Cycler-derived columns usable as model inputs (per sample and per window)."""
        return [c for c in self.frame.columns if c in _input_columns()]

    def __repr__(self) -> str:
        counts = self.report[STATUS].value_counts().to_dict() if len(self.report) else {}
        return (
            f"Alignment(run_id={self.run_id!r}, policy={self.policy!r}, rows={len(self.frame)}, "
            f"status={counts})"
        )


def _input_columns() -> set[str]:
    return {*_MEAN_SIGNALS, *_MID_SIGNALS, *feat.FEATURE_COLUMNS} - {schema.TIME}


# --- the vectorised core --------------------------------------------------------------------------


class _Timeline:
    """Sample times and the covered intervals between them, for window integrals."""

    def __init__(self, t: np.ndarray, max_gap_s: float) -> None:
        self.t = t
        self.dt = np.diff(t)
        # 1.0 where the interval to the next sample is data, 0.0 where it is a gap.
        self.cov = (self.dt <= max_gap_s).astype(float)
        self.covered_cum = np.concatenate([[0.0], np.cumsum(self.dt * self.cov)])

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clip ``x`` to the sampled range and find the interval holding each value."""
        t = self.t
        xc = np.clip(x, t[0], t[-1])
        k = np.clip(np.searchsorted(t, xc, side="right") - 1, 0, len(t) - 2)
        return xc, k

    def covered(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._cum_cov(*self.locate(b)) - self._cum_cov(*self.locate(a))

    def _cum_cov(self, x: np.ndarray, k: np.ndarray) -> np.ndarray:
        return self.covered_cum[k] + (x - self.t[k]) * self.cov[k]

    def integral(self, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Integral of the piecewise-linear ``y`` over the covered part of each ``[a, b]``."""
        area = 0.5 * (y[1:] + y[:-1]) * self.dt * self.cov
        cum = np.concatenate([[0.0], np.cumsum(area)])
        return self._cum(y, cum, *self.locate(b)) - self._cum(y, cum, *self.locate(a))

    def _cum(self, y: np.ndarray, cum: np.ndarray, x: np.ndarray, k: np.ndarray) -> np.ndarray:
        t, dt = self.t, self.dt
        frac = np.divide(x - t[k], dt[k], out=np.zeros_like(x), where=dt[k] > 0)
        yx = y[k] + (y[k + 1] - y[k]) * frac
        return cum[k] + self.cov[k] * 0.5 * (y[k] + yx) * (x - t[k])

    def value_at(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        xc, k = self.locate(x)
        t = self.t
        frac = np.divide(xc - t[k], self.dt[k], out=np.zeros_like(xc), where=self.dt[k] > 0)
        return y[k] + (y[k + 1] - y[k]) * frac

    def held_at(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The last sample value at or before ``x`` (labels: step, direction)."""
        idx = np.clip(np.searchsorted(self.t, x, side="right") - 1, 0, len(self.t) - 1)
        return y[idx]

    def count(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.t, b, side="right") - np.searchsorted(self.t, a, side="left")


def _utc_ns(times: pd.Series) -> pd.Series:
    """One dtype for every output, whatever resolution the run was built with."""
    return times.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _seconds(times: pd.Series, t0_ns: int) -> np.ndarray:
    ns = times.to_numpy(dtype="datetime64[ns]").astype("int64")
    return (ns - t0_ns) / 1e9


def default_max_gap(t: np.ndarray) -> float:
    """10 x the median sampling interval: longer pauses between samples count as gaps."""
    if len(t) < 2:
        return float("inf")
    return 10.0 * float(np.median(np.diff(t)))


def _reasons(
    a: np.ndarray, b: np.ndarray, t0: float, t1: float, coverage: np.ndarray, max_gap: float
) -> list[str]:
    out = []
    for ai, bi, cov in zip(a, b, coverage, strict=True):
        pct = f"coverage {cov:.0%}"
        if bi <= t0:
            out.append(f"window ends {t0 - bi:.1f} s before the first cycler sample ({pct})")
        elif ai >= t1:
            out.append(f"window starts {ai - t1:.1f} s after the last cycler sample ({pct})")
        elif ai < t0:
            out.append(f"window starts {t0 - ai:.1f} s before the first cycler sample ({pct})")
        elif bi > t1:
            out.append(f"window ends {bi - t1:.1f} s after the last cycler sample ({pct})")
        else:
            out.append(f"a gap of more than {max_gap:.3g} s in the cycler data ({pct})")
    return out


def align_run(
    run: OperandoRun,
    *,
    policy: Policy = "drop",
    clock_offset_s: float = 0.0,
    min_coverage: float = 0.99,
    max_gap_s: float | None = None,
    features: bool = True,
    rest_current_A: float | None = None,
) -> Alignment:
    """Aggregate the cycler data over each pattern window of a run.

    Parameters
    ----------
    run
        The operando run (build runs with windows outside the cycler data with
        ``allow_partial_windows=True``).
    policy
        What to do with windows whose coverage is below ``min_coverage``: ``"error"``,
        ``"drop"``, ``"clip"`` or ``"keep"`` (see the module docstring).
    clock_offset_s
        Seconds added to the pattern times to put them on the cycler clock.
    min_coverage
        Fraction of a window that cycler data must cover for it to count as fully covered.
    max_gap_s
        Longest pause between two cycler samples that still counts as data (default:
        :func:`default_max_gap`).
    features
        Also average the derived features of :func:`ecpif.features.echem_features`.
    rest_current_A
        Passed to :func:`ecpif.features.echem_features`.

    Returns
    -------
    Alignment

    Examples
    --------
    >>> import ecpif
    >>> run = ecpif.datasets.load_nca_demo()[0]  # doctest: +SKIP
    >>> aligned = align_run(run)  # doctest: +SKIP
    >>> aligned.frame[["pattern id", "voltage [V]", "c [Å]"]].head(2)  # doctest: +SKIP
    """
    if policy not in POLICIES:
        raise ConfigError(
            f"The 'policy' parameter of align_run must be one of {list(POLICIES)}; got "
            f"{policy!r} instead."
        )
    if not 0.0 < min_coverage <= 1.0:
        raise ConfigError(f"min_coverage must be in (0, 1]; got {min_coverage!r}.")
    if not np.isfinite(clock_offset_s):
        raise ConfigError(f"clock_offset_s must be a finite number; got {clock_offset_s!r}.")
    echem = run.echem
    patterns = run.patterns
    t0_ns = int(echem[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("int64")[0])
    t = _seconds(echem[schema.TIMESTAMP], t0_ns)
    gap = default_max_gap(t) if max_gap_s is None else float(max_gap_s)
    if not gap > 0:
        raise ConfigError(f"max_gap_s must be > 0 seconds; got {max_gap_s!r}.")
    line = _Timeline(t, gap)

    a = _seconds(patterns[schema.START], t0_ns) + clock_offset_s
    b = _seconds(patterns[schema.END], t0_ns) + clock_offset_s
    covered = line.covered(a, b)
    duration = b - a
    coverage = np.clip(covered / duration, 0.0, 1.0) if len(a) else np.zeros(0)
    full = coverage >= min_coverage - 1e-12
    reasons = np.array([""] * len(a), dtype=object)
    bad = np.flatnonzero(~full)
    partial = np.flatnonzero(coverage < 1.0 - 1e-9)
    if partial.size:
        reasons[partial] = _reasons(a[partial], b[partial], t[0], t[-1], coverage[partial], gap)
    status = np.where(full, "kept", "").astype(object)
    if bad.size and policy == "error":
        i = int(bad[0])
        raise AlignmentError(
            f"Pattern {patterns[schema.PATTERN_ID].iloc[i]!r} of run {run.run_id!r} is not "
            f"covered by cycler data: {reasons[i]}; check the time zone and clock offset, or "
            f"choose policy='drop', 'clip' or 'keep'."
        )
    nothing = coverage <= 0.0
    if policy == "drop":
        status[bad] = "dropped"
    elif policy == "clip":
        status[bad] = np.where(nothing[bad], "dropped", "clipped")
    elif policy == "keep":
        status[bad] = "kept-nan"
    keep_row = status != "dropped"
    nan_row = status == "kept-nan"

    # Aggregate only the rows we keep (fewer windows to compute).
    rows = np.flatnonzero(keep_row)
    ak, bk = a[rows], b[rows]
    cov_k = covered[rows]
    # Feature arrays are computed without copying the cycler frame (memory at 10M rows).
    source: dict[str, np.ndarray] = {}
    if features:
        source = feat.feature_arrays(
            echem,
            nominal_capacity_Ah=run.metadata.nominal_capacity_Ah,
            rest_current_A=rest_current_A,
        )

    def column(name: str) -> np.ndarray:
        return source[name] if name in source else echem[name].to_numpy()

    available = set(echem.columns) | set(source)
    out: dict[str, object] = {
        schema.RUN_ID: np.full(len(rows), run.run_id, dtype=object),
        schema.PATTERN_ID: patterns[schema.PATTERN_ID].to_numpy()[rows],
        schema.START: _utc_ns(patterns[schema.START]).iloc[rows].array,
        schema.END: _utc_ns(patterns[schema.END]).iloc[rows].array,
        DURATION: duration[rows],
    }
    # Windows are clipped to what the data cover: the edges used for every aggregate.
    lo, _ = line.locate(ak)
    hi, _ = line.locate(bk)
    mid = 0.5 * (lo + hi)
    out[WINDOW_START] = lo
    out[WINDOW_END] = hi
    out[COVERAGE] = coverage[rows]
    out[N_SAMPLES] = line.count(ak, bk)
    q = echem[schema.CHARGE].to_numpy(dtype=float)
    q_lo, q_mid, q_hi = line.value_at(q, lo), line.value_at(q, mid), line.value_at(q, hi)
    out[CHARGE_AT_START], out[CHARGE_AT_MID], out[CHARGE_AT_END] = q_lo, q_mid, q_hi
    out[WINDOW_CHARGE] = q_hi - q_lo
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(cov_k > 0, 1.0 / np.where(cov_k > 0, cov_k, 1.0), np.nan)
    means = [col for col in _MEAN_SIGNALS if col in available]
    if features:
        means += list(feat.CONTINUOUS_FEATURES)
    for col in means:
        y = np.asarray(column(col), dtype=float)
        out[col] = line.integral(y, ak, bk) * inv
    labels = [col for col in _MID_SIGNALS if col in available]
    if features:
        labels += list(feat.DISCRETE_FEATURES)
    for col in labels:
        out[col] = line.held_at(column(col), mid)
    out[schema.C_RATE_LABEL] = np.full(
        len(rows),
        np.nan if run.metadata.c_rate is None else float(run.metadata.c_rate),
    )
    frame = pd.DataFrame(out)
    cycler_cols = [
        c
        for c in frame.columns
        if c
        not in (
            schema.RUN_ID,
            schema.PATTERN_ID,
            schema.START,
            schema.END,
            DURATION,
            COVERAGE,
            schema.C_RATE_LABEL,
        )
    ]
    if nan_row.any():
        nan_in_kept = nan_row[rows]
        for col in cycler_cols:
            values = frame[col].to_numpy(dtype=float, copy=True)
            values[nan_in_kept] = np.nan
            frame[col] = values
    param_cols = [c for c in patterns.columns if c not in schema.PATTERNS_REQUIRED]
    for col in param_cols:
        frame[col] = patterns[col].to_numpy()[rows]

    report = pd.DataFrame(
        {
            schema.RUN_ID: np.full(len(a), run.run_id, dtype=object),
            schema.PATTERN_ID: patterns[schema.PATTERN_ID].to_numpy(),
            schema.START: _utc_ns(patterns[schema.START]).array,
            schema.END: _utc_ns(patterns[schema.END]).array,
            DURATION: duration,
            COVERAGE: coverage,
            N_SAMPLES: line.count(a, b),
            STATUS: status,
            REASON: reasons,
        }
    )
    return Alignment(
        frame=frame.reset_index(drop=True),
        report=report,
        run_id=run.run_id,
        policy=policy,
        clock_offset_s=float(clock_offset_s),
        min_coverage=float(min_coverage),
        max_gap_s=gap,
        parameter_columns=tuple(c for c in param_cols if not c.startswith("esd ")),
    )


def align_runs(runs: Iterable[OperandoRun], **kwargs: object) -> pd.DataFrame:
    """Align several runs and stack their frames: the training table.

    Runs without patterns (cycler-only) contribute no rows. Keyword arguments go to
    :func:`align_run` (``policy``, ``min_coverage`` ...); a per-run clock offset can be given as
    ``clock_offset_s={"run-id": 12.0}``.

    Examples
    --------
    >>> table = align_runs(ecpif.datasets.load_nca_demo())  # doctest: +SKIP
    >>> table.groupby("run id").size()  # doctest: +SKIP
    """
    offsets = kwargs.pop("clock_offset_s", 0.0)
    frames = []
    for run in runs:
        offset = offsets.get(run.run_id, 0.0) if isinstance(offsets, dict) else offsets
        if not run.has_patterns:
            continue
        frames.append(align_run(run, clock_offset_s=float(offset), **kwargs).frame)  # type: ignore[arg-type]
    if not frames:
        return pd.DataFrame(columns=[schema.RUN_ID, schema.PATTERN_ID, *WINDOW_COLUMNS])
    return pd.concat(frames, ignore_index=True, sort=False)


# --- clock offset estimation ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClockOffsetEstimate:
    """The clock offset that best explains a refined parameter as a function of charge.

    Attributes
    ----------
    offset_s
        Estimate in seconds (added to pattern times to put them on the cycler clock).
    uncertainty_s
        Standard deviation of the bootstrap estimates (patterns resampled with replacement).
    grid_s, score
        The offsets tried and the weighted mean squared residual at each.
    bootstrap_s
        The bootstrap estimates.
    parameter, n_patterns, degree
        What was fitted: ``parameter = polynomial(window-mean charge)`` of this degree.
    """

    offset_s: float
    uncertainty_s: float
    grid_s: np.ndarray
    score: np.ndarray
    bootstrap_s: np.ndarray
    parameter: str
    n_patterns: int
    degree: int

    def __repr__(self) -> str:
        return (
            f"ClockOffsetEstimate(offset_s={self.offset_s:.1f}, "
            f"uncertainty_s={self.uncertainty_s:.1f}, parameter={self.parameter!r}, "
            f"n_patterns={self.n_patterns})"
        )


def _refine(grid: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Arg-min along the last axis with a parabola through the best point and its neighbours."""
    k = np.argmin(score, axis=-1)
    k = np.clip(k, 1, len(grid) - 2)
    idx = np.arange(score.shape[0])
    s0, s1, s2 = score[idx, k - 1], score[idx, k], score[idx, k + 1]
    denom = s0 - 2 * s1 + s2
    step = grid[1] - grid[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(denom > 0, 0.5 * (s0 - s2) / denom, 0.0)
    return grid[k] + np.clip(shift, -1.0, 1.0) * step


def estimate_clock_offset(
    run: OperandoRun,
    parameter: str = "c",
    *,
    offsets: Sequence[float] | np.ndarray | None = None,
    degree: int = 3,
    n_boot: int = 200,
    random_state: int | None = 0,
    max_gap_s: float | None = None,
) -> ClockOffsetEstimate:
    """Estimate the diffractometer-to-cycler clock offset from the data themselves.

    For each candidate offset, the window-mean charge of every pattern is computed, and the
    refined ``parameter`` is fitted as a polynomial of that charge (weighted by ``1/esd^2`` when
    the esd is known). The offset with the smallest weighted residual wins; parabolic interpolation
    refines it between grid points, and a bootstrap over patterns gives its uncertainty. The
    offset is identifiable only if charge is not a linear function of time over the patterns:
    rests, reversals (charge then discharge) or rate changes make it so.

    Parameters
    ----------
    run
        An operando run with patterns and the refined parameter.
    parameter
        Short name (``"c"``) or column (``"c [Å]"``) of the refined parameter.
    offsets
        Candidate offsets in seconds, evenly spaced (default: -1800 ... 1800 s every 10 s).
    degree
        Degree of the polynomial ``parameter(charge)``.
    n_boot, random_state
        Bootstrap resamples and their seed.
    max_gap_s
        As in :func:`align_run`.

    Returns
    -------
    ClockOffsetEstimate

    Examples
    --------
    >>> est = estimate_clock_offset(run, "c")  # doctest: +SKIP
    >>> aligned = align_run(run, clock_offset_s=est.offset_s)  # doctest: +SKIP
    """
    column = schema.parameter_column(parameter)
    if column not in run.patterns.columns:
        raise ConfigError(
            f"Run {run.run_id!r} has no refined parameter {parameter!r}; its parameters are "
            f"{run.parameter_columns}."
        )
    grid = np.arange(-1800.0, 1800.0 + 1e-9, 10.0) if offsets is None else np.asarray(offsets)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or len(grid) < 3 or not np.allclose(np.diff(grid), grid[1] - grid[0]):
        raise ConfigError("offsets must be at least 3 evenly spaced values in seconds.")
    if degree < 1:
        raise ConfigError(f"degree must be >= 1; got {degree!r}.")
    echem, patterns = run.echem, run.patterns
    t0_ns = int(echem[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("int64")[0])
    t = _seconds(echem[schema.TIMESTAMP], t0_ns)
    line = _Timeline(t, default_max_gap(t) if max_gap_s is None else float(max_gap_s))
    a0 = _seconds(patterns[schema.START], t0_ns)
    b0 = _seconds(patterns[schema.END], t0_ns)
    y = patterns[column].to_numpy(dtype=float)
    esd_col = schema.esd_column(column)
    esd = patterns[esd_col].to_numpy(dtype=float) if esd_col in patterns.columns else None
    usable = np.isfinite(y) & (np.isfinite(esd) & (esd > 0) if esd is not None else True)

    # Patterns covered by cycler data at every candidate offset: the same set for every score.
    a = a0[None, :] + grid[:, None]
    b = b0[None, :] + grid[:, None]
    cov = line.covered(a.ravel(), b.ravel()).reshape(a.shape) / (b - a)
    usable &= (cov >= 0.99).all(axis=0)
    n = int(usable.sum())
    if n < degree + 3:
        raise AlignmentError(
            f"Only {n} pattern(s) of run {run.run_id!r} are covered by cycler data at every "
            f"offset tried ({grid[0]:.0f} to {grid[-1]:.0f} s) with a finite {column!r}; "
            f"{degree + 3} are needed: narrow the offsets or lower the degree."
        )
    a, b = a[:, usable], b[:, usable]
    y = y[usable]
    w = 1.0 / esd[usable] ** 2 if esd is not None else np.ones(n)
    q = echem[schema.CHARGE].to_numpy(dtype=float)
    qbar = (line.integral(q, a.ravel(), b.ravel()) / (b - a).ravel()).reshape(a.shape)
    # Scale charge to [-1, 1] per offset for a well-conditioned polynomial basis.
    qmin, qmax = qbar.min(axis=1, keepdims=True), qbar.max(axis=1, keepdims=True)
    x = 2.0 * (qbar - qmin) / np.where(qmax > qmin, qmax - qmin, 1.0) - 1.0
    design = np.stack([x**k for k in range(degree + 1)], axis=-1)  # (offsets, patterns, k)

    rng = np.random.default_rng(random_state)
    counts = np.vstack(
        [np.ones(n), rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)]
    )  # row 0: the data as measured
    weights = counts * w[None, :]  # (boot, patterns)
    lhs = np.einsum("bp,opi,opj->obij", weights, design, design)
    rhs = np.einsum("bp,opi,p->obi", weights, design, y)
    ridge = 1e-12 * np.eye(degree + 1)
    beta = np.linalg.solve(lhs + ridge, rhs[..., None])[..., 0]  # (offsets, boot, k)
    fitted = np.einsum("opi,obi->obp", design, beta)
    resid2 = (y[None, None, :] - fitted) ** 2
    score = np.einsum("bp,obp->bo", weights, resid2) / weights.sum(axis=1)[:, None]
    best = _refine(grid, score)
    return ClockOffsetEstimate(
        offset_s=float(best[0]),
        uncertainty_s=float(np.std(best[1:], ddof=1)) if n_boot > 1 else float("nan"),
        grid_s=grid,
        score=score[0],
        bootstrap_s=best[1:],
        parameter=column,
        n_patterns=n,
        degree=degree,
    )


# --- writing -------------------------------------------------------------------------------------

OUTPUT_FORMATS: tuple[str, ...] = ("csv", "parquet")


def _for_files(frame: pd.DataFrame) -> pd.DataFrame:
    """Pattern ids of mixed types (int scans, text names) become text so Parquet can store them."""
    out = frame.copy()
    if schema.PATTERN_ID in out.columns:
        kinds = {type(v) for v in out[schema.PATTERN_ID]}
        if len(kinds) > 1:
            out[schema.PATTERN_ID] = out[schema.PATTERN_ID].astype(str)
    return out


def write_aligned(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    formats: Sequence[str] = OUTPUT_FORMATS,
) -> list[Path]:
    """Write an aligned table as ``<path>.csv`` and/or ``<path>.parquet``, atomically.

    Each file is written to a temporary file beside the target and renamed into place, so a
    crash never leaves a half-written table. CSV times are ISO-8601 with ``+00:00``.

    Examples
    --------
    >>> write_aligned(align_runs(runs), "out/aligned")  # doctest: +SKIP
    [PosixPath('out/aligned.csv'), PosixPath('out/aligned.parquet')]
    """
    from ecpif.io import write_atomic

    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"formats must be a non-empty subset of {list(OUTPUT_FORMATS)}; got {list(formats)}."
        )
    base = Path(path)
    if base.suffix.lower() in (".csv", ".parquet"):
        base = base.with_suffix("")
    data = _for_files(frame)
    text = data.copy()
    for col in text.columns:
        if isinstance(text[col].dtype, pd.DatetimeTZDtype):
            # ISO-8601 with an explicit offset, which every reader (ecpif's too) parses as UTC.
            utc = text[col].dt.tz_convert("UTC")
            text[col] = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
    written = []
    for fmt in formats:
        target = base.parent / f"{base.name}.{fmt}"
        if fmt == "csv":
            write_atomic(target, lambda p: text.to_csv(p, index=False))
        else:
            write_atomic(target, lambda p: data.to_parquet(p, index=False))
        written.append(target)
    return written
