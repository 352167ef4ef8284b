"""OperandoRun: the one data model every step of ecpif shares.

An operando run is one cell cycled at one protocol while diffraction patterns were collected:

* ``echem``: the cycler time series, one row per cycler sample, canonical columns of
  :mod:`ecpif.schema` (absolute UTC timestamps *and* seconds since the first sample);
* ``patterns``: one row per diffraction pattern, with its acquisition window ``[start, end]`` in UTC
  and the refined parameters with their esd (may be empty: a cycler-only run, e.g. at 2C);
* ``metadata``: cell, nominal capacity, C-rate label, the time zone the files were written in;
* ``truth``: for simulated runs only, the noise-free structural parameters at every cycler sample.

Design decisions
----------------
* Frozen dataclass, validated on construction (cellpy's "one frozen result type"): a run that
  exists is a run that is consistent. Frames are copied on the way in, so the caller's frames are
  never modified and later mutation of the caller's objects cannot invalidate the run.
* Validation raises :class:`ecpif.errors.DataError` with one sentence per violation, naming the
  frame, the row and the column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import DataError


@dataclass(frozen=True)
class RunMetadata:
    """Descriptive facts about one operando run.

    Parameters
    ----------
    run_id
        Short unique name of the run, e.g. ``"nca-1C"``.
    cell
        Free text naming the cell (chemistry, format, id).
    nominal_capacity_Ah
        Nominal capacity used to define C-rates, in A.h.
    c_rate
        The protocol's nominal C-rate label in 1/h (``0.2`` for C/5), or ``None`` if unknown.
    timezone
        IANA time zone in which the instrument files recorded local times (``"UTC"`` if they
        recorded UTC or offsets).
    source
        Where the data came from (file paths, or ``"ecpif.simulate"``).
    extra
        Anything else worth keeping (simulation settings, instrument, units as read).
    """

    run_id: str
    cell: str = ""
    nominal_capacity_Ah: float | None = None
    c_rate: float | None = None
    timezone: str = "UTC"
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id:
            raise DataError("RunMetadata.run_id must be a non-empty string; got ''.")
        if self.nominal_capacity_Ah is not None and not self.nominal_capacity_Ah > 0:
            raise DataError(
                f"RunMetadata.nominal_capacity_Ah must be > 0 A.h; got "
                f"{self.nominal_capacity_Ah!r} for run {self.run_id!r}."
            )
        if self.c_rate is not None and not self.c_rate > 0:
            raise DataError(
                f"RunMetadata.c_rate must be > 0 (1/h); got {self.c_rate!r} for run "
                f"{self.run_id!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dictionary."""
        out = dataclasses.asdict(self)
        out["extra"] = dict(self.extra)
        return out


def _check_units(frame: pd.DataFrame, what: str, allow: tuple[str, ...] = ()) -> None:
    for col in frame.columns:
        if col in allow:
            continue
        if schema.unit_of(str(col)) is None:
            raise DataError(
                f"Column {col!r} of the {what} carries no unit; name it 'name [unit]' "
                f"(e.g. 'voltage [V]') so that ecpif knows what it holds."
            )


def _check_utc(series: pd.Series, what: str, column: str) -> None:
    dtype = series.dtype
    if not isinstance(dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"Column {column!r} of the {what} must hold time-zone-aware timestamps; got dtype "
            f"{dtype}; localise naive times with the time zone they were recorded in "
            f"(e.g. series.dt.tz_localize('Europe/Berlin')) before building the run."
        )


def _check_monotonic(values: np.ndarray, what: str, column: str) -> None:
    diffs = np.diff(values)
    bad = np.flatnonzero(diffs <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "repeats the time of" if diffs[bad[0]] == 0 else "is earlier than"
        raise DataError(
            f"Row {i} of the {what} {kind} row {i - 1} in {column!r} "
            f"({values[i]} vs {values[i - 1]}); times must strictly increase: sort the data and "
            f"drop duplicated samples."
        )


def _check_finite(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    for col in columns:
        if col not in frame.columns:
            continue
        values = frame[col]
        isna = values.isna().to_numpy()
        if isna.any():
            i = int(np.flatnonzero(isna)[0])
            raise DataError(
                f"Column {col!r} of the {what} has a missing value (NaN) at row {i}; "
                f"drop or fill the row before building the run."
            )


def validate_echem(echem: pd.DataFrame, what: str = "cycler data") -> None:
    """Check a cycler frame against the canonical schema; raise :class:`DataError` if broken."""
    missing = [c for c in schema.ECHEM_REQUIRED if c not in echem.columns]
    if missing:
        raise DataError(
            f"The {what} lacks the required column(s) {missing}; it has {list(echem.columns)}. "
            f"Read files with ecpif.io so columns get canonical names and units."
        )
    if len(echem) < 2:
        raise DataError(f"The {what} has {len(echem)} row(s); at least 2 samples are needed.")
    _check_units(echem, what, allow=(schema.TIMESTAMP,))
    _check_utc(echem[schema.TIMESTAMP], what, schema.TIMESTAMP)
    _check_finite(echem, (schema.TIMESTAMP, schema.TIME, schema.VOLTAGE, schema.CURRENT), what)
    _check_monotonic(
        echem[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]"), what, schema.TIMESTAMP
    )
    _check_monotonic(echem[schema.TIME].to_numpy(dtype=float), what, schema.TIME)


def validate_patterns(
    patterns: pd.DataFrame,
    echem: pd.DataFrame | None = None,
    what: str = "pattern table",
    *,
    check_range: bool = True,
) -> None:
    """Check a pattern table; with ``echem``, also that every window lies in the cycler range.

    ``check_range=False`` skips the range check (windows partly or wholly outside the cycler
    data are then reported and handled by the policy of :func:`ecpif.align.align_run`).
    """
    missing = [c for c in schema.PATTERNS_REQUIRED if c not in patterns.columns]
    if missing:
        raise DataError(
            f"The {what} lacks the required column(s) {missing}; it has "
            f"{list(patterns.columns)}. Read refinement tables with ecpif.io."
        )
    _check_units(patterns, what, allow=(schema.PATTERN_ID, schema.START, schema.END))
    for col in (schema.START, schema.END):
        _check_utc(patterns[col], what, col)
    _check_finite(patterns, (schema.PATTERN_ID, schema.START, schema.END), what)
    if patterns[schema.PATTERN_ID].duplicated().any():
        dup = patterns[schema.PATTERN_ID][patterns[schema.PATTERN_ID].duplicated()].iloc[0]
        raise DataError(
            f"Pattern id {dup!r} appears more than once in the {what}; pattern ids must be unique."
        )
    if len(patterns) == 0:
        return
    start = patterns[schema.START].to_numpy(dtype="datetime64[ns]")
    end = patterns[schema.END].to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(end <= start)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"Pattern {patterns[schema.PATTERN_ID].iloc[i]!r} (row {i}) of the {what} ends at "
            f"{patterns[schema.END].iloc[i]} which is not after its start "
            f"{patterns[schema.START].iloc[i]}; check the start/end columns."
        )
    _check_monotonic(start, what, schema.START)
    if check_range and echem is not None and len(echem):
        t0 = echem[schema.TIMESTAMP].iloc[0]
        t1 = echem[schema.TIMESTAMP].iloc[-1]
        outside = (patterns[schema.START] < t0) | (patterns[schema.END] > t1)
        if outside.any():
            i = int(np.flatnonzero(outside.to_numpy())[0])
            raise DataError(
                f"Pattern {patterns[schema.PATTERN_ID].iloc[i]!r} (row {i}) of the {what} spans "
                f"{patterns[schema.START].iloc[i]} to {patterns[schema.END].iloc[i]}, outside the "
                f"cycler data ({t0} to {t1}); check the time zone and clock offset, or drop the "
                f"pattern (ecpif.align offers a policy for partly covered windows)."
            )


@dataclass(frozen=True)
class OperandoRun:
    """One operando experiment: cycler data, diffraction patterns, metadata, optional truth.

    Examples
    --------
    >>> import ecpif
    >>> runs = ecpif.datasets.load_nca_demo()  # doctest: +SKIP
    >>> runs[0].patterns.columns[:3].tolist()  # doctest: +SKIP
    ['pattern id', 'start [UTC]', 'end [UTC]']
    """

    echem: pd.DataFrame
    patterns: pd.DataFrame
    metadata: RunMetadata
    truth: pd.DataFrame | None = None
    #: Accept pattern windows that reach outside the cycler data (real sessions often start the
    #: diffractometer before the cycler); :func:`ecpif.align.align_run` then reports each such
    #: window and applies its policy. Default: strict, such windows are an error.
    allow_partial_windows: bool = False

    def __post_init__(self) -> None:
        what = f"cycler data of run {self.metadata.run_id!r}"
        if not isinstance(self.echem, pd.DataFrame):
            raise DataError(
                f"OperandoRun.echem must be a pandas DataFrame; got {type(self.echem)}."
            )
        object.__setattr__(self, "echem", self.echem.reset_index(drop=True).copy())
        patterns = self.patterns if self.patterns is not None else empty_patterns()
        object.__setattr__(self, "patterns", patterns.reset_index(drop=True).copy())
        validate_echem(self.echem, what)
        validate_patterns(
            self.patterns,
            self.echem,
            f"pattern table of run {self.metadata.run_id!r}",
            check_range=not self.allow_partial_windows,
        )
        if self.truth is not None:
            truth = self.truth.reset_index(drop=True).copy()
            if len(truth) != len(self.echem):
                raise DataError(
                    f"The ground truth of run {self.metadata.run_id!r} has {len(truth)} rows but "
                    f"the cycler data has {len(self.echem)}; truth must have one row per sample."
                )
            _check_units(
                truth, f"ground truth of run {self.metadata.run_id!r}", allow=(schema.TIMESTAMP,)
            )
            object.__setattr__(self, "truth", truth)

    # --- convenience views ------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.metadata.run_id

    @property
    def parameter_columns(self) -> list[str]:
        """Refined-parameter columns of the pattern table (esd columns excluded)."""
        skip = {schema.PATTERN_ID, schema.START, schema.END}
        return [c for c in self.patterns.columns if c not in skip and not str(c).startswith("esd ")]

    @property
    def start_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.echem[schema.TIMESTAMP].iloc[0])

    @property
    def has_patterns(self) -> bool:
        return len(self.patterns) > 0

    def pattern_seconds(self) -> pd.DataFrame:
        """Pattern windows in seconds from the first cycler sample (``start [s]``, ``end [s]``)."""
        t0 = self.start_time
        return pd.DataFrame(
            {
                schema.PATTERN_ID: self.patterns[schema.PATTERN_ID],
                "start [s]": (self.patterns[schema.START] - t0).dt.total_seconds(),
                "end [s]": (self.patterns[schema.END] - t0).dt.total_seconds(),
            }
        )

    def replace(self, **changes: Any) -> OperandoRun:
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        span = self.echem[schema.TIME].iloc[-1] - self.echem[schema.TIME].iloc[0]
        return (
            f"OperandoRun(run_id={self.run_id!r}, cycler_rows={len(self.echem)}, "
            f"patterns={len(self.patterns)}, span={span / 3600:.2f} h, "
            f"truth={'yes' if self.truth is not None else 'no'})"
        )


def empty_patterns() -> pd.DataFrame:
    """An empty pattern table with the canonical columns and dtypes (a cycler-only run)."""
    return pd.DataFrame(
        {
            schema.PATTERN_ID: pd.Series([], dtype=object),
            schema.START: pd.Series([], dtype="datetime64[ns, UTC]"),
            schema.END: pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )
