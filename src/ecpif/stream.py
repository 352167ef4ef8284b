"""Structural trajectories for cycler archives larger than memory: Parquet in, Parquet out.

:func:`predict_parquet` reads a cycler archive in batches (``ParquetFile.iter_batches``), computes
the per-sample features of :mod:`ecpif.features`, predicts with a trained model, and writes the
trajectory batch by batch with a :class:`pyarrow.parquet.ParquetWriter` into a temporary file that
replaces the destination only when complete. Memory stays bounded by the batch size, whatever the
archive's length. The result equals :func:`ecpif.predict.predict_run` on the whole run in memory
(a test checks it on the demo runs for many batch sizes).

How the features stay exact across batches
------------------------------------------
The features of a sample depend on the whole run in three ways, each handled without holding it:

* **Carried state** (causal features): the run's first charge, the throughput so far, the step
  that is open (its label, first charge and first time), the last non-rest direction and the
  cycle count are carried from batch to batch. Throughput is accumulated from the carried value
  with the same sequential sum as in memory, so it is bit-for-bit the same number.
* **Windows** (``dQ/dV`` over a throughput window, ``dV/dt`` over a time window, both inside the
  step): a sample is only emitted once the data after it close its window: a later sample lies
  beyond the window's end, or its step has ended. Until then it waits in a small buffer with the
  samples its window reaches back to. A long rest (throughput does not grow) is held until the
  step ends; memory is thus bounded by the batch size plus the longest step that is still open.
* **Run-wide statistics** (state of charge needs the run's charge range; the default rest
  threshold and ``dQ/dV`` window need the largest current or charge range when no nominal
  capacity is known): one cheap first pass over the charge and current columns collects them, and
  is skipped when the model needs none of them.

Archives may hold several runs one after another, told apart by a ``run id`` column; each run's
rows must be contiguous and its ``time [s]`` strictly increasing. The archive is read one row group
at a time (``batch_rows`` rows at most per read), so memory is bounded by the larger of a batch and
a row group: write archives with row groups of about a million rows (pyarrow's default).

Examples
--------
>>> from ecpif.bundle import load_bundle  # doctest: +SKIP
>>> report = predict_parquet(load_bundle("model.skops"), "cycler.parquet", "structure.parquet",
...                          c_rate=2.0, batch_rows=1_000_000)  # doctest: +SKIP
>>> report.rows_per_s  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecpif import features as feat
from ecpif import schema
from ecpif.ensemble import TrainedEnsemble
from ecpif.errors import ConfigError, DataError, ModelError, ReadError

#: Columns every archive needs (canonical names; read files with ecpif.io and write Parquet).
REQUIRED: tuple[str, ...] = (schema.TIME, schema.VOLTAGE, schema.CURRENT, schema.CHARGE)
#: Features that need the run's whole charge range (so a first pass).
GLOBAL_FEATURES: tuple[str, ...] = (feat.STATE_OF_CHARGE, feat.NOMINAL_STATE_OF_CHARGE)
DEFAULT_BATCH_ROWS = 500_000

PerRun = float | Mapping[str, float] | None


# --- the run-wide statistics (first pass) --------------------------------------------------------


@dataclass(frozen=True)
class RunStats:
    """What the features need to know about a whole run before its first sample is emitted.

    Attributes
    ----------
    run_id
        The run (``None`` for an archive without a run column).
    rows
        Samples of the run.
    charge_min, charge_max
        Range of ``charge [mA.h]`` (NaN when unknown: single-pass mode).
    max_abs_current
        Largest ``|current [A]|`` (NaN when unknown).
    """

    run_id: str | None
    rows: int = 0
    charge_min: float = math.nan
    charge_max: float = math.nan
    max_abs_current: float = math.nan


def _open(source: str | os.PathLike[str]) -> Any:
    import pyarrow.parquet as pq

    path = Path(source)
    if not path.is_file():
        raise ReadError(f"Archive '{path}' does not exist; check the path.")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for non-Parquet files
        raise ReadError(
            f"Archive '{path}' is not a readable Parquet file ({type(exc).__name__}: {exc}); write "
            f"cycler data with DataFrame.to_parquet or pyarrow."
        ) from None


def _check_columns(names: Sequence[str], path: str, run_column: str | None) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataError(
            f"Archive '{path}' lacks the column(s) {missing}; it has {list(names)}. Write it with "
            f"ecpif's canonical names (read the instrument files with ecpif.io first)."
        )
    if run_column is not None and run_column not in names:
        raise ConfigError(
            f"The run column {run_column!r} is not a column of archive '{path}'; pass "
            f"run_column=None for a single-run archive."
        )


def _batches(pf: Any, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    # One reader per row group: over a whole file, pyarrow's iter_batches (26.0) keeps decoded
    # data referenced until the end (+8 MB per 500k-row batch here: 2 GB over 100M rows); per
    # row group it is released, so memory stays at one row group plus one batch.
    for group in range(pf.num_row_groups):
        for batch in pf.iter_batches(
            batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=True
        ):
            yield batch.to_pandas()


def _run_segments(frame: pd.DataFrame, run_column: str | None) -> list[tuple[Any, slice]]:
    """Contiguous runs inside a batch: ``[(run id, row slice), ...]``."""
    if run_column is None:
        return [(None, slice(0, len(frame)))]
    ids = frame[run_column].to_numpy()
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(ids)]])
    return [(ids[s], slice(int(s), int(e))) for s, e in zip(starts, ends, strict=True)]


class _Checker:
    """Validates rows as they stream by: finite values, increasing time, contiguous runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.row = 0  # file row of the next batch's first row
        self.seen: set[Any] = set()
        self.current: Any = object()
        self.last_time = -math.inf

    def check(self, frame: pd.DataFrame, run_column: str | None) -> list[tuple[Any, slice]]:
        for col in REQUIRED:
            values = frame[col].to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise DataError(
                    f"Column {col!r} of archive '{self.path}' holds a missing or infinite value "
                    f"at row {self.row + int(bad[0])}; drop or fill it before predicting."
                )
        segments = _run_segments(frame, run_column)
        t = frame[schema.TIME].to_numpy(dtype=float)
        for run_id, sl in segments:
            if run_id != self.current:
                if run_id in self.seen:
                    raise DataError(
                        f"Run {run_id!r} reappears at row {self.row + sl.start} of archive "
                        f"'{self.path}' after other runs; sort the archive so that each run's "
                        f"rows are contiguous."
                    )
                self.seen.add(run_id)
                self.current = run_id
                self.last_time = -math.inf
            part = t[sl]
            prev = np.concatenate([[self.last_time], part[:-1]])
            bad = np.flatnonzero(part <= prev)
            if bad.size:
                i = int(bad[0])
                raise DataError(
                    f"Row {self.row + sl.start + i} of archive '{self.path}' does not come after "
                    f"the previous row in {schema.TIME!r} ({part[i]} vs {prev[i]}); times must "
                    f"strictly increase within each run: sort the archive and drop duplicates."
                )
            self.last_time = float(part[-1])
        self.row += len(frame)
        return segments


def scan_archive(
    source: str | os.PathLike[str],
    *,
    run_column: str | None = schema.RUN_ID,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> dict[Any, RunStats]:
    """First pass: per-run row count, charge range and largest current, with the input checks.

    ``run_column`` names the run column (ignored when the archive has no such column and it is
    the default).

    >>> stats = scan_archive("cycler.parquet")  # doctest: +SKIP
    """
    pf = _open(source)
    names = list(pf.schema_arrow.names)
    run_column = _resolve_run_column(run_column, names)
    _check_columns(names, str(source), run_column)
    _check_batch_rows(batch_rows)
    columns = ([run_column] if run_column else []) + list(REQUIRED)
    checker = _Checker(str(source))
    acc: dict[Any, list[float]] = {}
    for frame in _batches(pf, columns, batch_rows):
        q = frame[schema.CHARGE].to_numpy(dtype=float)
        i = np.abs(frame[schema.CURRENT].to_numpy(dtype=float))
        for run_id, sl in checker.check(frame, run_column):
            a = acc.setdefault(run_id, [0, math.inf, -math.inf, 0.0])
            a[0] += sl.stop - sl.start
            a[1] = min(a[1], float(q[sl].min()))
            a[2] = max(a[2], float(q[sl].max()))
            a[3] = max(a[3], float(i[sl].max()))
    return {k: RunStats(k, int(v[0]), v[1], v[2], v[3]) for k, v in acc.items()}


def _resolve_run_column(run_column: str | None, names: Sequence[str]) -> str | None:
    if run_column == schema.RUN_ID and run_column not in names:
        return None  # the default: single-run archives simply have no run column
    return run_column


def _check_batch_rows(batch_rows: int) -> None:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ConfigError(f"batch_rows must be a positive integer; got {batch_rows!r}.")


# --- the streaming feature computation -----------------------------------------------------------


class FeatureStream:
    """Per-sample features of one run, fed batch by batch; equal to ``echem_features`` in memory.

    Push canonical cycler frames of one run in time order with :meth:`push`; each call returns the
    rows whose features are final (possibly none); :meth:`finish` returns the rest.

    Parameters
    ----------
    stats
        Run-wide statistics (:func:`scan_archive`); without a charge range, the state-of-charge
        columns are left out.
    nominal_capacity_Ah, rest_current_A, smooth_s, dqdv_window_mAh, dv_floor_V
        As :func:`ecpif.features.echem_features`.

    Examples
    --------
    >>> import ecpif
    >>> run = ecpif.datasets.load_nca_demo()[1]
    >>> stream = FeatureStream(RunStats(None, len(run.echem), run.echem["charge [mA.h]"].min(),
    ...                                 run.echem["charge [mA.h]"].max()), nominal_capacity_Ah=0.43)
    >>> parts = [stream.push(run.echem.iloc[i:i + 100]) for i in range(0, len(run.echem), 100)]
    >>> out = pd.concat(parts + [stream.finish()], ignore_index=True)
    >>> whole = ecpif.features.echem_features(run.echem, nominal_capacity_Ah=0.43)
    >>> bool(np.array_equal(out["dQ/dV [mA.h/V]"], whole["dQ/dV [mA.h/V]"]))
    True
    """

    def __init__(
        self,
        stats: RunStats,
        *,
        nominal_capacity_Ah: float | None,
        rest_current_A: float | None = None,
        smooth_s: float = 120.0,
        dqdv_window_mAh: float | None = None,
        dv_floor_V: float = 5e-4,
    ) -> None:
        if nominal_capacity_Ah is not None and not nominal_capacity_Ah > 0:
            raise ConfigError(
                f"nominal_capacity_Ah must be > 0 A.h or None; got {nominal_capacity_Ah!r}."
            )
        if not smooth_s > 0:
            raise ConfigError(f"smooth_s must be > 0 seconds; got {smooth_s!r}.")
        if not dv_floor_V > 0:
            raise ConfigError(f"dv_floor_V must be > 0 V; got {dv_floor_V!r}.")
        self.stats = stats
        self.nominal = nominal_capacity_Ah
        self.nominal_mAh = None if nominal_capacity_Ah is None else nominal_capacity_Ah * 1000.0
        self.has_range = math.isfinite(stats.charge_min) and math.isfinite(stats.charge_max)
        if rest_current_A is None:
            if nominal_capacity_Ah is not None:
                rest_current_A = nominal_capacity_Ah / 500.0
            elif math.isfinite(stats.max_abs_current):
                rest_current_A = 1e-3 * stats.max_abs_current
            else:
                raise ConfigError(
                    "Without a nominal capacity the rest threshold comes from the run's largest "
                    "current, which needs a first pass (scan_archive); pass nominal_capacity_Ah "
                    "or rest_current_A."
                )
        self.rest = float(rest_current_A)
        if dqdv_window_mAh is None:
            if self.nominal_mAh is not None:
                scale = self.nominal_mAh
            elif self.has_range:
                span = stats.charge_max - stats.charge_min
                scale = span if span > 0 else 1.0
            else:
                raise ConfigError(
                    "Without a nominal capacity the dQ/dV window comes from the run's charge "
                    "range, which needs a first pass (scan_archive); pass nominal_capacity_Ah or "
                    "dqdv_window_mAh."
                )
            dqdv_window_mAh = 0.01 * scale
        self.half_q = 0.5 * float(dqdv_window_mAh)
        self.half_t = 0.5 * float(smooth_s)
        self.dv_floor = float(dv_floor_V)
        # Carried state of the causal features (None before the first sample).
        self._q0: float | None = None
        self._q_prev = 0.0
        self._thr_prev = 0.0
        self._label_prev: Any = None
        self._step_q0 = 0.0
        self._step_t0 = 0.0
        self._held_prev = 0
        self._cycle_prev = 0
        # The buffer: input rows (frame) and arrays, from the context start; rows before
        # ``_done`` were emitted and are kept only as window context.
        self._frame: pd.DataFrame | None = None
        self._arr: dict[str, np.ndarray] = {}
        self._done = 0
        self.peak_rows = 0

    # -- causal part --------------------------------------------------------------------------
    def _causal(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        t = frame[schema.TIME].to_numpy(dtype=float)
        v = frame[schema.VOLTAGE].to_numpy(dtype=float)
        i = frame[schema.CURRENT].to_numpy(dtype=float)
        q = frame[schema.CHARGE].to_numpy(dtype=float)
        m = len(t)
        first = self._q0 is None
        if first:
            self._q0 = float(q[0])
        abs_i = np.abs(i)
        direction = np.where(abs_i <= self.rest, 0, np.sign(i)).astype(np.int8)
        labels = frame[schema.STEP].to_numpy() if schema.STEP in frame.columns else direction
        new = np.ones(m, dtype=bool)
        new[1:] = labels[1:] != labels[:-1]
        if not first:
            new[0] = labels[0] != self._label_prev
        idx = np.maximum.accumulate(np.where(new, np.arange(m), -1))
        cont = idx < 0  # rows still in the step that was open before this batch
        safe = np.maximum(idx, 0)
        step_q0 = np.where(cont, self._step_q0, q[safe])
        step_t0 = np.where(cont, self._step_t0, t[safe])
        # Same sequential sum as numpy's cumsum over the whole run: identical floats.
        if first:
            thr = np.cumsum(np.concatenate([[0.0], np.abs(np.diff(q))]))
        else:
            dq = np.abs(np.diff(np.concatenate([[self._q_prev], q])))
            thr = np.cumsum(np.concatenate([[self._thr_prev], dq]))[1:]
        nz = np.maximum.accumulate(np.where(direction != 0, np.arange(m), -1))
        held = np.where(nz >= 0, direction[np.maximum(nz, 0)], self._held_prev).astype(np.int8)
        before = np.concatenate([[self._held_prev], held[:-1]])
        starts = (held == 1) & (before == -1)
        if first:
            starts[0] = False
        cycle = self._cycle_prev + np.cumsum(starts)

        self._q_prev, self._thr_prev = float(q[-1]), float(thr[-1])
        self._label_prev = labels[-1]
        self._step_q0, self._step_t0 = float(step_q0[-1]), float(step_t0[-1])
        self._held_prev, self._cycle_prev = int(held[-1]), int(cycle[-1])

        out = {
            "t": t, "v": v, "q": q, "thr": thr, "label": labels,
            feat.CHARGE_SINCE_START: q - self._q0,
            feat.STEP_CHARGE: q - step_q0,
            feat.STEP_TIME: t - step_t0,
            feat.DIRECTION: direction.astype(np.int64),
            feat.C_RATE: abs_i / self.nominal if self.nominal else np.full(m, np.nan),
            feat.CYCLE_COUNT: cycle.astype(np.int64),
        }  # fmt: skip
        if self.has_range:
            q_min, q_max = self.stats.charge_min, self.stats.charge_max
            span = q_max - q_min
            out[feat.STATE_OF_CHARGE] = (q - q_min) / span if span > 0 else np.zeros(m)
            out[feat.NOMINAL_STATE_OF_CHARGE] = (
                (q - q_min) / self.nominal_mAh if self.nominal_mAh else np.full(m, np.nan)
            )
        return out

    # -- windows and emission -----------------------------------------------------------------
    def push(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add the next rows of the run; returns the rows whose features are now final."""
        if len(frame) == 0:
            return self._empty()
        frame = frame.reset_index(drop=True)
        new = self._causal(frame)
        if self._frame is None:
            self._frame, self._arr = frame, new
        else:
            self._frame = pd.concat([self._frame, frame], ignore_index=True)
            self._arr = {k: np.concatenate([self._arr[k], new[k]]) for k in self._arr}
        self.peak_rows = max(self.peak_rows, len(self._frame))
        return self._emit(final=False)

    def finish(self) -> pd.DataFrame:
        """All rows still waiting (the run has ended, so every window is closed)."""
        if self._frame is None:
            return self._empty()
        out = self._emit(final=True)
        self._frame, self._arr, self._done = None, {}, 0
        return out

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame()

    def _emit(self, *, final: bool) -> pd.DataFrame:
        assert self._frame is not None
        a = self._arr
        t, v, q, thr, labels = a["t"], a["v"], a["q"], a["thr"], a["label"]
        n = len(t)
        pend = np.arange(self._done, n)
        if pend.size == 0:
            return self._empty()
        # Steps inside the buffer; the buffer's first row starts one (the context reaches back to
        # every pending row's window start, so clipping there changes nothing).
        change = np.ones(n, dtype=bool)
        change[1:] = labels[1:] != labels[:-1]
        seg = np.cumsum(change) - 1
        seg_first = np.flatnonzero(change)
        seg_last = np.append(seg_first[1:] - 1, n - 1)
        closed = np.ones(len(seg_first), dtype=bool) if final else seg_last < n - 1
        s = seg[pend]
        lo_bound, hi_bound = seg_first[s], seg_last[s]

        q_hi_raw = np.searchsorted(thr, thr[pend] + self.half_q, side="right")
        t_hi_raw = np.searchsorted(t, t[pend] + self.half_t, side="right")
        ready = final | (closed[s] | ((q_hi_raw < n) & (t_hi_raw < n)))
        # Readiness is a prefix (both window ends and step ends move forward with the row).
        k = int(np.argmin(ready)) if not ready.all() else len(pend)
        lo_q = np.maximum(np.searchsorted(thr, thr[pend] - self.half_q, side="left"), lo_bound)
        lo_t = np.maximum(np.searchsorted(t, t[pend] - self.half_t, side="left"), lo_bound)
        emit = pend[:k]
        out = None
        if k:
            lq, hq = lo_q[:k], np.minimum(q_hi_raw[:k] - 1, hi_bound[:k])
            lt, ht = lo_t[:k], np.minimum(t_hi_raw[:k] - 1, hi_bound[:k])
            d_q = q[hq] - q[lq]
            d_v = v[hq] - v[lq]
            dqdv = d_q * d_v / (d_v * d_v + self.dv_floor * self.dv_floor)
            d_t = t[ht] - t[lt]
            with np.errstate(invalid="ignore", divide="ignore"):
                dvdt = (
                    np.where(d_t > 0, (v[ht] - v[lt]) / np.where(d_t > 0, d_t, 1.0), 0.0) * 3600.0
                )
            cols: dict[str, np.ndarray] = {}
            for name in feat.FEATURE_COLUMNS:
                if name == feat.THROUGHPUT:
                    cols[name] = thr[emit]
                elif name == feat.DQDV:
                    cols[name] = dqdv
                elif name == feat.DVDT:
                    cols[name] = dvdt
                elif name in a:
                    cols[name] = a[name][emit]
            base = self._frame.iloc[self._done : self._done + k].reset_index(drop=True)
            out = pd.concat([base, pd.DataFrame(cols)], axis=1)
        # Keep only what later windows can still reach: from the first waiting row's window
        # start (or the last row's, when none waits: later rows reach no further back).
        j = k if k < len(pend) else len(pend) - 1
        keep_from = int(min(lo_q[j], lo_t[j]))
        self._done += k
        if keep_from > 0:
            self._frame = self._frame.iloc[keep_from:].reset_index(drop=True)
            self._arr = {key: arr[keep_from:] for key, arr in self._arr.items()}
            self._done -= keep_from
        return out if out is not None else self._empty()


def stream_features(
    source: str | os.PathLike[str],
    *,
    nominal_capacity_Ah: PerRun = None,
    run_column: str | None = schema.RUN_ID,
    columns: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stats: Mapping[Any, RunStats] | None = None,
    two_pass: bool = True,
    rest_current_A: float | None = None,
    smooth_s: float = 120.0,
    dqdv_window_mAh: float | None = None,
    dv_floor_V: float = 5e-4,
    monitor: dict[str, int] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the per-sample features of a Parquet cycler archive, batch by batch.

    Each yielded frame holds the archive's columns (``columns``, default all) plus
    :data:`ecpif.features.FEATURE_COLUMNS`, for consecutive rows; concatenated they equal
    :func:`ecpif.features.echem_features` of each run. Frames may have more or fewer rows than
    ``batch_rows`` (rows wait until their smoothing windows close).

    Parameters
    ----------
    source
        Parquet file with canonical column names (:data:`REQUIRED`; ``step index [-]`` is used
        when present).
    nominal_capacity_Ah
        A.h, one number or ``{run id: A.h}``.
    run_column
        Column telling runs apart (default ``"run id"``, ignored when absent).
    columns
        Archive columns to carry along (default: all).
    batch_rows
        Rows read per batch: the memory knob.
    stats
        Run-wide statistics from :func:`scan_archive` (computed here when ``two_pass``).
    two_pass
        Scan the archive first for the run-wide statistics; without it the state-of-charge
        columns are left out, and a nominal capacity is required.
    rest_current_A, smooth_s, dqdv_window_mAh, dv_floor_V
        As :func:`ecpif.features.echem_features`.
    monitor
        If given, ``monitor["peak rows"]`` is kept at the largest number of rows held at once.

    Examples
    --------
    >>> chunks = stream_features("cycler.parquet", nominal_capacity_Ah=0.43)  # doctest: +SKIP
    >>> sum(len(c) for c in chunks)  # doctest: +SKIP
    """
    pf = _open(source)
    names = list(pf.schema_arrow.names)
    run_column = _resolve_run_column(run_column, names)
    _check_columns(names, str(source), run_column)
    _check_batch_rows(batch_rows)
    if stats is None and two_pass:
        stats = scan_archive(source, run_column=run_column, batch_rows=batch_rows)
    wanted = names if columns is None else list(columns)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise DataError(
            f"Archive '{source}' lacks the requested column(s) {unknown}; it has {names}."
        )
    read = list(dict.fromkeys(
        ([run_column] if run_column else []) + wanted + list(REQUIRED)
        + ([schema.STEP] if schema.STEP in names else [])
    ))  # fmt: skip
    checker = _Checker(str(source))
    stream: FeatureStream | None = None
    current: Any = object()

    def start(run_id: Any) -> FeatureStream:
        run_stats = (stats or {}).get(run_id, RunStats(run_id))
        return FeatureStream(
            run_stats,
            nominal_capacity_Ah=_per_run(nominal_capacity_Ah, run_id, "nominal_capacity_Ah"),
            rest_current_A=rest_current_A, smooth_s=smooth_s, dqdv_window_mAh=dqdv_window_mAh,
            dv_floor_V=dv_floor_V,
        )  # fmt: skip

    def tidy(frame: pd.DataFrame) -> pd.DataFrame:
        extra = [c for c in read if c not in wanted and c != run_column]
        return frame.drop(columns=[c for c in extra if c in frame.columns])

    for frame in _batches(pf, read, batch_rows):
        for run_id, sl in checker.check(frame, run_column):
            if run_id != current:
                if stream is not None:
                    done = stream.finish()
                    if len(done):
                        yield tidy(done)
                stream, current = start(run_id), run_id
            assert stream is not None
            ready = stream.push(frame.iloc[sl])
            if monitor is not None:
                monitor["peak rows"] = max(monitor.get("peak rows", 0), stream.peak_rows)
            if len(ready):
                yield tidy(ready)
    if stream is not None:
        done = stream.finish()
        if len(done):
            yield tidy(done)


def _per_run(value: PerRun, run_id: Any, what: str) -> float | None:
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    if run_id in value:
        return float(value[run_id])
    raise ConfigError(
        f"{what} is given per run but not for run {run_id!r}; add it (known: {sorted(value)})."
    )


# --- prediction ----------------------------------------------------------------------------------


@dataclass
class StreamReport:
    """What :func:`predict_parquet` did.

    Attributes
    ----------
    path
        The written trajectory.
    rows, runs, batches
        Samples predicted, runs, output batches written.
    seconds, rows_per_s
        Wall time (both passes) and throughput.
    passes
        1 or 2 (2 when run-wide statistics were needed).
    rows_outside
        Samples outside the model's training domain (``in domain [-]`` False).
    domain
        Per feature: training range, range seen, rows outside.
    peak_buffer_rows
        Largest number of rows held by the feature stream at once.
    """

    path: Path
    rows: int = 0
    runs: int = 0
    batches: int = 0
    seconds: float = 0.0
    passes: int = 1
    rows_outside: int = 0
    domain: pd.DataFrame = field(default_factory=pd.DataFrame)
    peak_buffer_rows: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.nan


def predict_parquet(
    model: TrainedEnsemble,
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    nominal_capacity_Ah: PerRun = None,
    c_rate: PerRun = None,
    confidence: float | None = 0.9,
    keep: Sequence[str] | None = None,
    run_column: str | None = schema.RUN_ID,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    compression: str = "zstd",
    warn: bool = True,
) -> StreamReport:
    """Predict trajectories for a Parquet cycler archive with bounded memory; write Parquet.

    The output has the columns of :func:`ecpif.predict.predict_run` (kept columns, then per target
    the prediction and its interval, then ``in domain [-]``), preceded by the run column when the
    archive has one, and the same values.

    Parameters
    ----------
    model
        A trained model (:func:`ecpif.ensemble.fit_ensemble` or :func:`ecpif.bundle.load_bundle`).
    source
        Parquet archive with canonical columns (see :func:`stream_features`).
    destination
        Output Parquet file; written to a temporary file beside it and renamed when complete.
    nominal_capacity_Ah
        A.h (one number or per run); default: the model's training capacity.
    c_rate
        C-rate label (one number or per run), needed when the model uses ``C-rate label [1/h]``
        and the archive lacks that column.
    confidence
        Interval confidence (``None`` = no intervals).
    keep
        Columns copied to the output (default as ``predict_run``: timestamp, time, voltage,
        current, charge and the model's features).
    run_column, batch_rows
        See :func:`stream_features`.
    compression
        Parquet codec of the output.
    warn
        Emit one :class:`ecpif.predict.ApplicabilityWarning` when samples leave the training
        domain.

    Returns
    -------
    StreamReport

    Raises
    ------
    ReadError, DataError
        Missing file or columns, NaN, times not increasing, runs not contiguous.
    ModelError
        The model needs a feature that is neither in the archive nor derived.
    ConfigError
        Bad settings (batch size, missing C-rate or capacity).

    Examples
    --------
    >>> rep = predict_parquet(model, "nca-2C.parquet", "nca-2C_structure.parquet",
    ...                       c_rate=2.0)  # doctest: +SKIP
    >>> rep.rows, round(rep.rows_per_s)  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecpif.predict import ApplicabilityWarning, check_domain, predict_frame

    t0 = time.perf_counter()
    pf = _open(source)
    names = list(pf.schema_arrow.names)
    run_column = _resolve_run_column(run_column, names)
    _check_columns(names, str(source), run_column)
    _check_batch_rows(batch_rows)
    if nominal_capacity_Ah is None:
        nominal_capacity_Ah = model.info.get("nominal_capacity_Ah")
    derived = set(feat.FEATURE_COLUMNS)
    need_label = schema.C_RATE_LABEL in model.features and schema.C_RATE_LABEL not in names
    if need_label and c_rate is None:
        raise ConfigError(
            f"The model uses the feature {schema.C_RATE_LABEL!r}, but the archive has no such "
            f"column; pass c_rate= (one number, or one per run)."
        )
    missing = [
        f for f in model.features
        if f not in names and f not in derived and f != schema.C_RATE_LABEL
    ]  # fmt: skip
    if missing:
        raise ModelError(
            f"The model needs the feature(s) {missing}, which archive '{source}' neither holds nor "
            f"ecpif derives; its columns are {names}."
        )
    if keep is None:
        default = (schema.TIMESTAMP, schema.TIME, schema.VOLTAGE, schema.CURRENT, schema.CHARGE)
        keep = [c for c in default if c in names]
        keep += [f for f in model.features if f not in keep]
    keep = list(keep)
    raw_needed = [c for c in keep + list(model.features) if c in names]
    two_pass = nominal_capacity_Ah is None or any(f in model.features for f in GLOBAL_FEATURES)
    stats = scan_archive(source, run_column=run_column, batch_rows=batch_rows) if two_pass else None

    dest = Path(destination)
    if dest.exists() and dest.is_dir():
        raise ConfigError(f"The destination {dest} is a folder; give a .parquet file path.")
    if dest.resolve() == Path(source).resolve():
        raise ConfigError(f"The destination {dest} is the archive itself; choose another path.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    report = StreamReport(path=dest, passes=2 if two_pass else 1)
    lo = {f: math.inf for f in model.features}
    hi = {f: -math.inf for f in model.features}
    outside = dict.fromkeys(model.features, 0)
    writer: Any = None
    runs: set[Any] = set()
    monitor: dict[str, int] = {}
    try:
        chunks = stream_features(
            source, nominal_capacity_Ah=nominal_capacity_Ah, run_column=run_column,
            columns=list(dict.fromkeys(raw_needed)), batch_rows=batch_rows, stats=stats,
            two_pass=two_pass, monitor=monitor,
        )  # fmt: skip
        for chunk in chunks:
            if need_label:
                rid = chunk[run_column].iloc[0] if run_column else None
                chunk[schema.C_RATE_LABEL] = _per_run(c_rate, rid, "c_rate")
            if run_column:
                runs.update(pd.unique(chunk[run_column]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ApplicabilityWarning)
                out = predict_frame(model, chunk, confidence=confidence, keep=keep, warn=False)
            if run_column:
                out.insert(0, run_column, chunk[run_column].to_numpy())
            for f in model.features:
                values = chunk[f].to_numpy(dtype=float)
                lo[f] = min(lo[f], float(np.min(values)))
                hi[f] = max(hi[f], float(np.max(values)))
            dom = check_domain(model, chunk)
            for _, r in dom.table.iterrows():
                outside[r["feature"]] += int(r["rows outside"])
            report.rows_outside += int((~dom.inside).sum())
            table = pa.Table.from_pandas(out, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression=compression)
            else:
                table = table.cast(writer.schema)
            writer.write_table(table)
            report.rows += len(out)
            report.batches += 1
        if writer is None:
            raise DataError(f"Archive '{source}' holds no rows; there is nothing to predict.")
        writer.close()
        writer = None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    report.runs = len(runs) if run_column else 1
    report.peak_buffer_rows = monitor.get("peak rows", 0)
    report.seconds = time.perf_counter() - t0
    report.domain = pd.DataFrame(
        [{"feature": f, "training min": model.feature_min[f], "training max": model.feature_max[f],
          "min": lo[f], "max": hi[f], "rows outside": outside[f]} for f in model.features]
    )  # fmt: skip
    if warn and report.rows_outside:
        parts = ", ".join(
            f"{r['feature']!r} {r['min']:.4g} to {r['max']:.4g} (training {r['training min']:.4g} "
            f"to {r['training max']:.4g})"
            for _, r in report.domain.iterrows() if r["rows outside"]
        )  # fmt: skip
        warnings.warn(
            f"{report.rows_outside} of {report.rows} samples lie outside the training domain: "
            f"{parts}; predictions there are extrapolations.",
            ApplicabilityWarning,
            stacklevel=2,
        )
    return report


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "GLOBAL_FEATURES",
    "REQUIRED",
    "FeatureStream",
    "RunStats",
    "StreamReport",
    "predict_parquet",
    "scan_archive",
    "stream_features",
]
