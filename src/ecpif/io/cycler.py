"""Cycler readers: instrument files in, the canonical cycler frame out.

Every reader returns a :class:`CyclerTable` whose ``frame`` has the canonical columns of
:mod:`ecpif.schema`: ``timestamp [UTC]``, ``time [s]`` (from the first sample), ``voltage [V]``,
``current [A]`` (positive on charge), ``charge [mA.h]`` (net charge since the first sample), and
when the file has them ``step index [-]``, ``cycle index [-]``, ``temperature [degC]``.

Supported formats (``fmt=``)
----------------------------
=================  ===========================================================================
``biologic-mpt``   EC-Lab ASCII export: latin-1, comma or dot decimals, header length read from
                   ``Nb header lines``, absolute start from ``Acquisition started on``.
``biologic-mpr``   EC-Lab binary file, through the ``galvani`` package (GPL, optional extra
                   ``ecpif[mpr]``, imported only when such a file is read).
``neware``         Neware ``.nda`` / ``.ndax`` through ``NewareNDA``.
``table``          CSV / TSV / TXT exports with a header row; BioLogic, Neware, Arbin and Maccor
                   export headers are recognised (``time/s``, ``Ewe/V``, ``I/mA``,
                   ``(Q-Qo)/mA.h``; ``Voltage(V)``, ``Chg. Cap.(mAh)``; ``Test_Time(s)``,
                   ``Charge_Capacity(Ah)``; ``Amps``, ``Volts``, ``Amp-hr``, ``State`` ...).
``excel``          ``.xlsx`` workbooks of the same exports (the first sheet with voltage and
                   current columns, or ``sheet=``).
=================  ===========================================================================

Design decisions
----------------
* **Format by content, then suffix**: an EC-Lab ASCII file renamed ``.txt`` is still read as one.
* **Header recognition before column maps**: most users need no map. ``column_map`` maps a
  *role* (``"time"``, ``"timestamp"``, ``"voltage"``, ``"current"``, ``"charge"``,
  ``"charge_capacity"``, ``"discharge_capacity"``, ``"capacity"``, ``"step"``, ``"cycle"``,
  ``"temperature"``, ``"state"``) to a source column; ``units`` maps a role to a unit and
  overrides what the header says.
* **Net charge**: vendors that reset their capacity counters each step (Neware) or cycle (Arbin),
  or report unsigned step capacity with a state column (Maccor), are turned into one continuous
  net charge by adding the value reached before every reset. Files without any charge column get
  the trapezoid integral of the current, and the table's ``notes`` say so.
* **Duplicated instants at step boundaries**: Neware writes the last sample of a step and the first
  sample of the next one with the same timestamp. The reader keeps the sample of the new step and
  records how many were dropped in ``notes``; any other duplicated or backwards time is an error
  naming the file, the row and the fix, because reordering data silently would hide clock faults.
* Errors are one sentence: file (and archive member), row with its line number in text files,
  column, what was found, what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, DataError, MissingDependencyError, ReadError, did_you_mean
from ecpif.io import _common as c
from ecpif.run import validate_echem

#: Format names accepted by ``fmt=`` with a one-line description.
CYCLER_FORMATS: dict[str, str] = {
    "biologic-mpt": "BioLogic EC-Lab ASCII export (.mpt)",
    "biologic-mpr": "BioLogic EC-Lab binary file (.mpr; needs the 'mpr' extra)",
    "neware": "Neware binary file (.nda, .ndax)",
    "table": "CSV/TSV/TXT export with a header row (BioLogic, Neware, Arbin, Maccor, ecpif)",
    "excel": "Excel workbook export (.xlsx)",
}

_SUFFIXES: dict[str, str] = {
    ".mpt": "biologic-mpt",
    ".mpr": "biologic-mpr",
    ".nda": "neware",
    ".ndax": "neware",
    ".csv": "table",
    ".tsv": "table",
    ".txt": "table",
    ".dat": "table",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
}

#: Roles a source column can play, with the header names (lower case, unit removed) that
#: identify it, best first.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp", "date time", "datetime", "date/time", "absolute time", "realtime",
        "real time", "dpt time", "system time", "date and time", "time stamp", "date",
    ),
    "time": (
        "test time", "testtime", "total time", "totaltime", "elapsed time", "run time", "time",
    ),
    "voltage": (
        "voltage", "ewe", "ecell", "<ewe>", "volts", "cell voltage", "potential", "u", "e",
    ),
    "current": ("current", "i", "<i>", "amps", "amp"),
    "charge": ("charge", "(q-qo)", "q-qo", "net charge", "net capacity"),
    "charge_capacity": (
        "charge capacity", "chg. cap.", "chg. cap", "chg cap", "q charge", "charge cap",
        "chg capacity",
    ),
    "discharge_capacity": (
        "discharge capacity", "dchg. cap.", "dchg. cap", "dchg cap", "q discharge",
        "discharge cap", "dchg capacity",
    ),
    "capacity": ("capacity", "amp-hr", "amp hr", "cap"),
    "step": ("step index", "ns", "step", "step id", "step number", "step no"),
    "cycle": ("cycle index", "cycle number", "cycle", "cycle id", "cyc#", "cycle no"),
    "temperature": (
        "temperature", "temp", "t1", "aux temperature 1", "aux temperature", "temperature 1",
    ),
    "state": ("state", "step type", "status"),
}  # fmt: skip

# Header names whose unit is implied by the name itself (Maccor writes "Volts", "Amps").
_IMPLIED_UNITS: dict[str, str] = {
    "volts": "V", "amps": "A", "amp": "A", "amp-hr": "A.h", "amp hr": "A.h",
}  # fmt: skip

_CANONICAL: dict[str, str] = {
    "timestamp": schema.TIMESTAMP,
    "time": schema.TIME,
    "voltage": schema.VOLTAGE,
    "current": schema.CURRENT,
    "charge": schema.CHARGE,
    "step": schema.STEP,
    "cycle": schema.CYCLE,
    "temperature": schema.TEMPERATURE,
}
_ROLE_OF_CANONICAL = {v: k for k, v in _CANONICAL.items()}


@dataclass(frozen=True)
class CyclerTable:
    """A cycler file read into the canonical frame.

    Attributes
    ----------
    frame
        Canonical cycler frame (see the module docstring), UTC times, converted units.
    source
        The file read (``'archive.zip'::member`` for archive members).
    format
        The format it was read as (a key of :data:`CYCLER_FORMATS`).
    units
        For each canonical column, the unit found in (or given for) the file before conversion.
    columns
        For each canonical column, the source column it came from (or how it was derived).
    start
        Absolute start of the acquisition as stated in the file header, if any (UTC).
    notes
        What the reader did that a careful user would want to know (dropped step-boundary
        duplicates, charge integrated from current, ...).
    header
        Key/value facts from the file header (technique, channel, ...), as text.
    """

    frame: pd.DataFrame
    source: str
    format: str
    units: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, str] = field(default_factory=dict)
    start: pd.Timestamp | None = None
    notes: tuple[str, ...] = ()
    header: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (
            f"CyclerTable(source={self.source}, format={self.format!r}, rows={len(self.frame)}, "
            f"columns={list(self.frame.columns)})"
        )


# --- public entry point ---------------------------------------------------------------------------


def read_cycler(
    path: str | Path,
    *,
    fmt: str | None = None,
    timezone: str | None = None,
    column_map: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    start: str | pd.Timestamp | None = None,
    member: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> CyclerTable:
    """Read a cycler file (or a cycler file inside a ``.zip``) into the canonical frame.

    Parameters
    ----------
    path
        The file: ``.mpt``, ``.mpr``, ``.nda``, ``.ndax``, ``.csv``, ``.tsv``, ``.txt``,
        ``.xlsx``, or a ``.zip`` archive holding one of them.
    fmt
        Force a format (a key of :data:`CYCLER_FORMATS`); by default chosen from the content,
        then the suffix.
    timezone
        IANA zone of the instrument clock, needed when the file's times are naive (no offset).
    column_map
        Role -> source column, for headers that are not recognised (``{"voltage": "Ecell"}``).
    units
        Role -> unit, overriding the header (``{"current": "mA"}``).
    start
        Absolute time of ``time = 0`` for files that only have relative times.
    member
        Which file of a ``.zip`` archive to read (default: the only cycler file in it).
    delimiter
        Field delimiter of text files (default: detected).
    sheet
        Excel sheet name or index (default: the first sheet with voltage and current).

    Returns
    -------
    CyclerTable

    Examples
    --------
    >>> table = read_cycler("cell_C01.mpt", timezone="Europe/Paris")  # doctest: +SKIP
    >>> table.frame[["time [s]", "voltage [V]"]].head(2)  # doctest: +SKIP
    """
    path = Path(path)
    timezone = c.check_timezone(timezone)
    if not path.exists():
        raise ReadError(f"File '{path}' does not exist; check the path.")
    if path.is_dir():
        raise ReadError(f"'{path}' is a folder; give the path of one cycler file.")
    if fmt is not None and fmt not in CYCLER_FORMATS:
        raise ConfigError(
            f"Unknown cycler format fmt={fmt!r}; choose one of {sorted(CYCLER_FORMATS)}."
            + did_you_mean(fmt, CYCLER_FORMATS)
        )
    if path.suffix.lower() == ".zip":
        suffixes = [s for s, f in _SUFFIXES.items() if fmt is None or f == fmt]
        member = c.pick_member(path, member, suffixes, "cycler file")
    opts = _Options(
        timezone=timezone,
        column_map=dict(column_map or {}),
        units=dict(units or {}),
        start=start,
        delimiter=delimiter,
        sheet=sheet,
    )
    fmt = fmt or detect_cycler_format(path, member)
    reader = _READERS[fmt]
    return reader(path, member, opts)


def detect_cycler_format(path: str | Path, member: str | None = None) -> str:
    """The cycler format of a file, from its first bytes and then its suffix.

    >>> detect_cycler_format("cell_C01.mpt")  # doctest: +SKIP
    'biologic-mpt'
    """
    path = Path(path)
    name = member or path.name
    suffix = Path(name).suffix.lower()
    head = c.read_bytes(path, member)[:64] if member else _head(path)
    if head.startswith(b"BIO-LOGIC MODULAR FILE"):
        return "biologic-mpr"
    if head.startswith(b"EC-Lab ASCII FILE"):
        return "biologic-mpt"
    if head.startswith(b"NEWARE"):
        return "neware"
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if head and not head.startswith(b"PK") and b"\x00" not in head:
        return "table"
    raise ReadError(
        f"File {c.source_name(path, member)} is not in a supported cycler format (suffix "
        f"{suffix or 'none'!r}); supported: "
        + "; ".join(f"{k}: {v}" for k, v in CYCLER_FORMATS.items())
        + ". Export the data as CSV or pass fmt=..."
    )


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(64)


# --- options and the common canonicalisation ------------------------------------------------------


@dataclass
class _Options:
    timezone: str | None
    column_map: dict[str, str]
    units: dict[str, str]
    start: str | pd.Timestamp | None
    delimiter: str | None
    sheet: str | int | None


@dataclass
class _Raw:
    """A vendor frame plus what is known about it, before canonicalisation."""

    frame: pd.DataFrame
    source: str
    fmt: str
    row_label: Callable[[int], str]
    start: pd.Timestamp | None = None
    header: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # role -> column, fixed by the reader
    units: dict[str, str] = field(default_factory=dict)  # role -> unit, fixed by the reader
    notes: list[str] = field(default_factory=list)


def _role_key(key: str) -> str:
    """Accept a role (``"voltage"``) or a canonical column (``"voltage [V]"``) as a map key."""
    if key in ROLE_NAMES:
        return key
    if key in _ROLE_OF_CANONICAL:
        return _ROLE_OF_CANONICAL[key]
    raise ConfigError(
        f"Unknown role {key!r} in column_map/units; use one of {sorted(ROLE_NAMES)}."
        + did_you_mean(key, ROLE_NAMES)
    )


def recognise_columns(columns: list[str]) -> dict[str, str]:
    """Map roles to the columns of a vendor header that play them (best alias wins).

    >>> recognise_columns(["time/s", "Ewe/V", "I/mA", "(Q-Qo)/mA.h"])["current"]
    'I/mA'
    """
    names = {col: c.split_header(col)[0] for col in columns}
    found: dict[str, str] = {}
    used: set[str] = set()
    for role, aliases in ROLE_NAMES.items():
        for alias in aliases:
            hits = [col for col in columns if names[col] == alias and col not in used]
            if hits:
                found[role] = hits[0]
                used.add(hits[0])
                break
    return found


def _unit_for(role: str, column: str, raw: _Raw, opts: _Options) -> str:
    dimension = c.ROLE_UNITS[role][0]
    where = f"of column {column!r} in {raw.source}"
    if role in opts.units:
        return c.normalise_unit(opts.units[role], dimension=dimension, where=where)
    if role in raw.units:
        return c.normalise_unit(raw.units[role], dimension=dimension, where=where)
    name, unit = c.split_header(column)
    if unit is None:
        unit = _IMPLIED_UNITS.get(name)
    if unit is None:
        raise ReadError(
            f"Column {column!r} of {raw.source} ({role}) carries no unit in its header; pass "
            f"units={{{role!r}: {c.ROLE_UNITS[role][1]!r}}} (or the unit it was recorded in)."
        )
    return c.normalise_unit(unit, dimension=dimension, where=where)


def _numeric(series: pd.Series, raw: _Raw, column: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float)
    text = series.astype("string").str.strip()
    values = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    bad = values.isna() & text.notna() & (text != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{raw.row_label(i)} of {raw.source} has {text.iloc[i]!r} in column {column!r}, "
            f"which is not a number; fix the value, or check the delimiter and decimal separator."
        )
    return values.to_numpy(dtype=float)


def _no_nan(values: np.ndarray, raw: _Raw, column: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{raw.row_label(i)} of {raw.source} has a missing value (NaN) in column {column!r}; "
            f"the file may be truncated or the value was not logged: remove the row or fill it."
        )


def _canonicalise(raw: _Raw, opts: _Options) -> CyclerTable:
    frame = raw.frame
    if len(frame) == 0:
        raise ReadError(f"File {raw.source} holds a header but no data rows; export it again.")
    roles = recognise_columns([str(col) for col in frame.columns])
    roles.update(raw.roles)
    for key, column in opts.column_map.items():
        role = _role_key(key)
        if column not in frame.columns:
            raise ReadError(
                f"column_map names column {column!r} for {role!r}, but {raw.source} has no such "
                f"column; its columns are {[str(x) for x in frame.columns]}."
                + did_you_mean(str(column), [str(x) for x in frame.columns])
            )
        roles[role] = column
    has_charge = any(
        r in roles for r in ("charge", "charge_capacity", "discharge_capacity", "capacity")
    )
    missing = [r for r in ("voltage", "current") if r not in roles]
    if "time" not in roles and "timestamp" not in roles:
        missing.insert(0, "time")
    if missing:
        raise ReadError(
            f"File {raw.source} has no recognisable {' and '.join(missing)} column(s); its "
            f"columns are {[str(x) for x in frame.columns]}: pass column_map={{{missing[0]!r}: "
            f"'<column name>'}}."
        )
    out: dict[str, Any] = {}
    units_read: dict[str, str] = {}
    sources: dict[str, str] = {}
    notes = list(raw.notes)

    # --- times -------------------------------------------------------------------------------
    rel: np.ndarray | None = None
    if "time" in roles:
        col = roles["time"]
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series.dtype) or not _looks_like_duration(series):
            unit = _unit_for("time", col, raw, opts)
            rel = np.asarray(c.convert(_numeric(series, raw, col), unit, "s"), dtype=float)
            units_read[schema.TIME] = unit
        else:
            rel = c.parse_durations(series, source=raw.source, column=col)
            units_read[schema.TIME] = "h:mm:ss"
        _no_nan(rel, raw, col)
    stamps: pd.Series
    if "timestamp" in roles:
        col = roles["timestamp"]
        header_unit = c.split_header(col)[1]
        tz = opts.timezone
        if header_unit is not None and header_unit.upper() == "UTC" and tz is None:
            tz = "UTC"  # an ecpif-written 'timestamp [UTC]' column
        series = frame[col]
        if series.isna().any():
            i = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise DataError(
                f"{raw.row_label(i)} of {raw.source} has no time in column {col!r}; the file may "
                f"be truncated: remove the row."
            )
        stamps = c.parse_timestamps(series, tz, source=raw.source, column=col)
        sources[schema.TIMESTAMP] = col
        units_read[schema.TIMESTAMP] = "datetime"
        if rel is not None and not bool(np.all(np.diff(rel) > 0)) and _step_time_like(rel):
            # Neware's "Time" restarts every step: use the absolute clock instead.
            notes.append(f"column {roles['time']!r} restarts each step; time [s] from timestamps")
            rel = None
            units_read.pop(schema.TIME, None)
    else:
        if rel is None:  # pragma: no cover - guarded by the 'missing' check above
            raise ReadError(f"File {raw.source} has no time column.")
        t0 = _start_time(raw, opts)
        stamps = pd.Series(t0 + pd.to_timedelta(np.round(rel * 1e9).astype("int64"), unit="ns"))
        sources[schema.TIMESTAMP] = f"start ({t0.isoformat()}) + {roles['time']!r}"
        units_read[schema.TIMESTAMP] = "start + seconds"
    stamps = stamps.reset_index(drop=True).astype("datetime64[ns, UTC]")
    ns = stamps.to_numpy(dtype="datetime64[ns]").astype("int64")
    if rel is None:
        rel = (ns - ns[0]) / 1e9
        sources[schema.TIME] = f"{sources[schema.TIMESTAMP]} - first sample"
    else:
        sources[schema.TIME] = roles["time"]
    out[schema.TIMESTAMP] = stamps
    out[schema.TIME] = rel - rel[0]

    # --- electrical signals ------------------------------------------------------------------
    for role in ("voltage", "current"):
        col = roles[role]
        unit = _unit_for(role, col, raw, opts)
        values = _numeric(frame[col], raw, col)
        _no_nan(values, raw, col)
        canonical = _CANONICAL[role]
        out[canonical] = np.asarray(c.convert(values, unit, c.ROLE_UNITS[role][1]), dtype=float)
        units_read[canonical] = unit
        sources[canonical] = col
    state = _discharge_mask(frame[roles["state"]]) if "state" in roles else None
    current = out[schema.CURRENT]
    if state is not None and state.any() and not (current < 0).any():
        # Maccor writes |I| and a state letter: restore the sign convention of ecpif.
        current = np.where(state, -np.abs(current), current)
        out[schema.CURRENT] = current
        notes.append(f"current sign taken from column {roles['state']!r} (D = discharge)")

    # --- net charge ----------------------------------------------------------------------------
    if has_charge:
        charge, how = _net_charge(frame, roles, raw, opts, current, units_read)
        sources[schema.CHARGE] = how
    else:
        charge = _integrate_current(out[schema.TIME], current)
        sources[schema.CHARGE] = "trapezoid integral of current"
        units_read[schema.CHARGE] = "integrated"
        notes.append("no charge column: charge integrated from current (trapezoid rule)")
    out[schema.CHARGE] = charge - charge[0]

    # --- optional columns ------------------------------------------------------------------------
    for role in ("step", "cycle"):
        if role in roles:
            col = roles[role]
            values = _numeric(frame[col], raw, col)
            canonical = _CANONICAL[role]
            out[canonical] = values.astype("int64") if np.isfinite(values).all() else values
            units_read[canonical] = "-"
            sources[canonical] = col
    if "temperature" in roles:
        col = roles["temperature"]
        unit = _unit_for("temperature", col, raw, opts)
        out[schema.TEMPERATURE] = np.asarray(
            c.convert(_numeric(frame[col], raw, col), unit, "degC"), dtype=float
        )
        units_read[schema.TEMPERATURE] = unit
        sources[schema.TEMPERATURE] = col

    result = pd.DataFrame(out)
    result, label = _drop_step_boundary_duplicates(result, raw, notes)
    _check_increasing(result, raw, label)
    result[schema.TIME] = result[schema.TIME] - result[schema.TIME].iloc[0]
    result[schema.CHARGE] = result[schema.CHARGE] - result[schema.CHARGE].iloc[0]
    validate_echem(result, f"cycler data read from {raw.source}")
    return CyclerTable(
        frame=result,
        source=raw.source,
        format=raw.fmt,
        units=units_read,
        columns=sources,
        start=raw.start,
        notes=tuple(notes),
        header=dict(raw.header),
    )


def _looks_like_duration(series: pd.Series) -> bool:
    first = series.dropna()
    return bool(len(first)) and ":" in str(first.iloc[0])


def _step_time_like(rel: np.ndarray) -> bool:
    """True when a time column drops back (towards zero) at some rows: a per-step clock."""
    return bool((np.diff(rel) < 0).any())


def _start_time(raw: _Raw, opts: _Options) -> pd.Timestamp:
    if opts.start is not None:
        start = pd.Series([pd.Timestamp(opts.start)])
        return pd.Timestamp(
            c.localise(start, opts.timezone, source="the start= argument", column="start").iloc[0]
        )
    if raw.start is not None:
        return raw.start
    raise ReadError(
        f"File {raw.source} has relative times only and no absolute start; pass "
        f"start='2026-01-12T09:00:00+01:00' (the time of its first sample)."
    )


def _discharge_mask(series: pd.Series) -> np.ndarray:
    text = series.astype("string").str.strip().str.lower().fillna("")
    return (
        (text == "d")
        | text.str.contains("dchg", regex=False)
        | text.str.contains("disch", regex=False)
    ).to_numpy(dtype=bool)


def _integrate_current(time_s: np.ndarray, current_a: np.ndarray) -> np.ndarray:
    """Net charge in mA.h by the trapezoid rule (A.s -> mA.h is a factor 1/3.6)."""
    dt = np.diff(time_s)
    steps = 0.5 * (current_a[1:] + current_a[:-1]) * dt
    return np.concatenate([[0.0], np.cumsum(steps)]) / 3.6


def _unreset(chg: np.ndarray, dchg: np.ndarray) -> np.ndarray:
    """Continuous net charge from charge/discharge counters that restart at zero.

    Each counter only grows between resets, so a drop of either marks a reset; the net value
    reached just before it is carried over as an offset.
    """
    net = chg - dchg
    tol = 1e-9 * max(1.0, float(np.nanmax(np.abs(net))) if net.size else 1.0)
    reset = np.zeros(net.shape, dtype=bool)
    reset[1:] = (np.diff(chg) < -tol) | (np.diff(dchg) < -tol)
    carried = np.where(reset, np.concatenate([[0.0], net[:-1]]), 0.0)
    return net + np.cumsum(carried)


def _net_charge(
    frame: pd.DataFrame,
    roles: dict[str, str],
    raw: _Raw,
    opts: _Options,
    current: np.ndarray,
    units_read: dict[str, str],
) -> tuple[np.ndarray, str]:
    def read(role: str) -> np.ndarray:
        col = roles[role]
        unit = _unit_for(role, col, raw, opts)
        units_read[schema.CHARGE] = unit
        values = _numeric(frame[col], raw, col)
        _no_nan(values, raw, col)
        return np.asarray(c.convert(values, unit, "mA.h"), dtype=float)

    if "charge" in roles:
        return read("charge"), roles["charge"]
    if "charge_capacity" in roles and "discharge_capacity" in roles:
        chg, dchg = read("charge_capacity"), read("discharge_capacity")
        how = f"{roles['charge_capacity']!r} - {roles['discharge_capacity']!r}, resets removed"
        return _unreset(np.abs(chg), np.abs(dchg)), how
    if "capacity" in roles:
        cap = np.abs(read("capacity"))
        sign = np.sign(current)
        chg = np.where(sign > 0, cap, 0.0)
        dchg = np.where(sign < 0, cap, 0.0)
        how = f"{roles['capacity']!r} signed by current, resets removed"
        return _unreset(chg, dchg), how
    role = "charge_capacity" if "charge_capacity" in roles else "discharge_capacity"
    raise ReadError(
        f"File {raw.source} has {roles[role]!r} but not the matching "
        f"{'discharge' if role == 'charge_capacity' else 'charge'} capacity column; pass "
        f"column_map={{'charge': '<net charge column>'}} or both capacity columns."
    )


def _drop_step_boundary_duplicates(
    frame: pd.DataFrame, raw: _Raw, notes: list[str]
) -> tuple[pd.DataFrame, Callable[[int], str]]:
    ns = frame[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("int64")
    dup = np.flatnonzero(np.diff(ns) == 0)
    if dup.size == 0 or schema.STEP not in frame.columns:
        return frame, raw.row_label
    step = frame[schema.STEP].to_numpy()
    at_boundary = dup[step[dup] != step[dup + 1]]
    if at_boundary.size == 0:
        return frame, raw.row_label
    keep = np.ones(len(frame), dtype=bool)
    keep[at_boundary] = False  # keep the first sample of the new step
    kept_rows = np.flatnonzero(keep)
    notes.append(
        f"{at_boundary.size} sample(s) sharing their timestamp with the first sample of the next "
        f"step were dropped (the instrument logs both ends of a step boundary at one instant)"
    )

    def label(i: int) -> str:
        return raw.row_label(int(kept_rows[i]))

    return frame.loc[keep].reset_index(drop=True), label


def _check_increasing(frame: pd.DataFrame, raw: _Raw, label: Callable[[int], str]) -> None:
    ns = frame[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("int64")
    diffs = np.diff(ns)
    bad = np.flatnonzero(diffs <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "the same time as" if diffs[bad[0]] == 0 else "an earlier time than"
        t = frame[schema.TIMESTAMP]
        raise DataError(
            f"{label(i)} of {raw.source} has {kind} the row before it ({t.iloc[i]} vs "
            f"{t.iloc[i - 1]}); times must strictly increase: sort the file by time and remove "
            f"duplicated samples."
        )


# --- text helpers -----------------------------------------------------------------------------


def _line_labeller(first_data_line: int | None) -> Callable[[int], str]:
    if first_data_line is None:
        return lambda i: f"Row {i}"
    return lambda i: f"Row {i} (line {first_data_line + i})"


def _sheet_labeller(first_data_row: int) -> Callable[[int], str]:
    return lambda i: f"Row {i} (spreadsheet row {first_data_row + i})"


def _find_header_line(lines: list[str], delimiter: str, limit: int = 200) -> int:
    """Index of the first line that looks like a header (names two or more known roles)."""
    for i, line in enumerate(lines[:limit]):
        fields = [f.strip().strip('"') for f in line.split(delimiter)]
        if len(fields) < 2:
            continue
        roles = recognise_columns(fields)
        if len({"voltage", "current"} & roles.keys()) >= 1 and len(roles) >= 2:
            return i
    return next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), 0)


# --- readers ------------------------------------------------------------------------------------


def _read_table(path: Path, member: str | None, opts: _Options) -> CyclerTable:
    source = c.source_name(path, member)
    text = c.decode(c.read_bytes(path, member), source)
    if text.startswith("EC-Lab ASCII FILE"):
        return _read_mpt(path, member, opts, text=text)
    lines = text.splitlines()
    probe = [ln for ln in lines[:400] if ln.strip() and not ln.startswith("#")]
    delimiter = opts.delimiter or c.sniff_delimiter(probe[:50])
    header_idx = _find_header_line(lines, delimiter)
    if opts.delimiter is not None:
        c.check_delimiter(
            lines[header_idx], lines[header_idx + 1 : header_idx + 20], delimiter, source
        )
    elif lines[header_idx].count(delimiter) == 0:
        raise ReadError(
            f"File {source} has a single column (no tab, comma or semicolon in its header "
            f"line {header_idx + 1}); it is not a delimited export: pass delimiter=... or export "
            f"it as CSV."
        )
    decimal = c.decimal_for(lines[header_idx + 1 : header_idx + 50], delimiter)
    frame = c.read_delimited(
        text, source=source, skip_lines=header_idx, delimiter=delimiter, decimal=decimal
    )
    frame.columns = [str(x).strip() for x in frame.columns]
    raw = _Raw(frame=frame, source=source, fmt="table", row_label=_line_labeller(header_idx + 2))
    return _canonicalise(raw, opts)


_MPT_DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S.%f",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
)


def _parse_local(text: str, timezone: str | None, source: str, what: str) -> pd.Timestamp:
    value = None
    for fmt in _MPT_DATE_FORMATS:
        try:
            value = pd.Timestamp(pd.to_datetime(text.strip(), format=fmt))
            break
        except ValueError:
            continue
    if value is None:
        raise ReadError(
            f"The '{what}' date {text.strip()!r} of {source} has an unknown format; pass "
            f"start='YYYY-MM-DDTHH:MM:SS+HH:MM' to give the start of the acquisition."
        )
    series = c.localise(pd.Series([value]), timezone, source=source, column=what)
    return pd.Timestamp(series.iloc[0])


def _read_mpt(
    path: Path, member: str | None, opts: _Options, text: str | None = None
) -> CyclerTable:
    source = c.source_name(path, member)
    if text is None:
        text = c.decode(c.read_bytes(path, member), source)
    lines = text.splitlines()
    if not lines or not lines[0].startswith("EC-Lab ASCII FILE"):
        raise ReadError(
            f"File {source} does not start with 'EC-Lab ASCII FILE'; it is not an EC-Lab .mpt "
            f"export: pass fmt='table' for a generic text export."
        )
    n_header = None
    header: dict[str, str] = {}
    for line in lines[: min(len(lines), 400)]:
        if ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            if key and key not in header:
                header[key] = value.strip()
        match = re.match(r"\s*Nb header lines\s*:\s*(\d+)", line)
        if match:
            n_header = int(match.group(1))
    header_idx = _find_header_line(lines, "\t") if n_header is None else n_header - 1
    if header_idx >= len(lines) - 1:
        raise ReadError(
            f"File {source} declares {n_header} header lines but has only {len(lines)} lines; it "
            f"is truncated: export it again from EC-Lab."
        )
    if "time/s" not in lines[header_idx]:
        raise ReadError(
            f"Line {header_idx + 1} of {source} should hold the column names (with 'time/s') but "
            f"reads {lines[header_idx][:60]!r}; the 'Nb header lines' value is wrong or the file "
            f"was edited: export it again."
        )
    start = None
    started = header.get("Acquisition started on")
    if started:
        start = _parse_local(started, opts.timezone, source, "Acquisition started on")
    decimal = c.decimal_for(lines[header_idx + 1 : header_idx + 50], "\t")
    frame = c.read_delimited(
        text, source=source, skip_lines=header_idx, delimiter="\t", decimal=decimal
    )
    frame.columns = [str(x).strip() for x in frame.columns]
    raw = _Raw(
        frame=frame,
        source=source,
        fmt="biologic-mpt",
        row_label=_line_labeller(header_idx + 2),
        start=start,
        header=header,
        roles=_biologic_roles(list(frame.columns)),
    )
    return _canonicalise(raw, opts)


def _biologic_roles(columns: list[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for role, names in {
        "current": ("I/mA", "<I>/mA"),
        "voltage": ("Ewe/V", "<Ewe>/V", "Ecell/V"),
        "charge": ("(Q-Qo)/mA.h", "(Q-Qo)/C"),
        "step": ("Ns",),
        "cycle": ("cycle number",),
    }.items():
        for name in names:
            if name in columns:
                roles[role] = name
                break
    return roles


def _read_mpr(path: Path, member: str | None, opts: _Options) -> CyclerTable:
    try:
        from galvani import BioLogic  # GPL: optional, imported only here
    except ImportError:
        raise MissingDependencyError(
            "Reading BioLogic .mpr files needs the optional package 'galvani' (GPL-3.0), which "
            "is not installed; install it with: pip install 'ecpif[mpr]', or export the file "
            "as .mpt from EC-Lab."
        ) from None
    source = c.source_name(path, member)
    if member is not None:
        with c.local_copy(path, member) as local:
            return _read_mpr_local(local, source, opts, BioLogic)
    return _read_mpr_local(path, source, opts, BioLogic)


def _read_mpr_local(local: Path, source: str, opts: _Options, biologic: Any) -> CyclerTable:
    try:
        mpr = biologic.MPRfile(str(local))
    except Exception as exc:  # galvani raises ValueError/struct.error/... on broken files
        raise ReadError(
            f"File {source} cannot be read as a BioLogic .mpr file ({type(exc).__name__}: "
            f"{exc}); it may be truncated or from an unsupported EC-Lab version: export it as "
            f".mpt."
        ) from None
    frame = pd.DataFrame(np.asarray(mpr.data))
    start = None
    stamp = getattr(mpr, "timestamp", None)
    if stamp is not None:
        start = _localise_start(pd.Timestamp(stamp), opts, source, "mpr acquisition start")
    raw = _Raw(
        frame=frame,
        source=source,
        fmt="biologic-mpr",
        row_label=_line_labeller(None),
        start=start,
        header={"version": str(getattr(mpr, "version", ""))},
        roles=_biologic_roles(list(frame.columns)),
    )
    return _canonicalise(raw, opts)


def _localise_start(stamp: pd.Timestamp, opts: _Options, source: str, what: str) -> pd.Timestamp:
    return pd.Timestamp(
        c.localise(pd.Series([stamp]), opts.timezone, source=source, column=what).iloc[0]
    )


def _read_neware(path: Path, member: str | None, opts: _Options) -> CyclerTable:
    try:
        import NewareNDA
    except ImportError:  # pragma: no cover - a core dependency
        raise MissingDependencyError(
            "Reading Neware .nda/.ndax files needs the package 'NewareNDA'; install it with: "
            "pip install NewareNDA."
        ) from None
    source = c.source_name(path, member)

    def load(local: Path) -> pd.DataFrame:
        try:
            return NewareNDA.read(str(local))
        except Exception as exc:  # NewareNDA raises many types on broken files
            raise ReadError(
                f"File {source} cannot be read as a Neware file ({type(exc).__name__}: {exc}); "
                f"it may be truncated or from an unsupported BTS version: export it as CSV."
            ) from None

    if member is not None:
        with c.local_copy(path, member) as local:
            frame = load(local)
    else:
        frame = load(path)
    roles = {
        "voltage": "Voltage",
        "current": "Current(mA)",
        "charge_capacity": "Charge_Capacity(mAh)",
        "discharge_capacity": "Discharge_Capacity(mAh)",
        "step": "Step",
        "cycle": "Cycle",
    }
    units = {"voltage": "V"}
    if "T1" in frame.columns:
        roles["temperature"] = "T1"
        units["temperature"] = "degC"
    missing = [col for col in (*roles.values(), "Time", "Timestamp") if col not in frame.columns]
    if missing:
        raise ReadError(
            f"File {source} was read by NewareNDA without the column(s) {missing}; its columns "
            f"are {list(frame.columns)}: upgrade NewareNDA or export the file as CSV."
        )
    if len(frame) == 0:
        raise ReadError(f"File {source} holds no data rows; export it again.")
    # Neware stamps samples to the whole second, but "Time" (time within the step) has the
    # sampling resolution: rebuild the run clock from step times, anchored at the first stamp.
    # A step starts at the instant the previous one ended, hence the carried offsets.
    step_time = frame["Time"].to_numpy(dtype=float)
    step = frame["Step"].to_numpy()
    new = np.ones(len(frame), dtype=bool)
    new[1:] = (np.diff(step) != 0) | (np.diff(step_time) < 0)
    seg = np.cumsum(new) - 1
    carried = np.concatenate([[0.0], np.cumsum(step_time[np.flatnonzero(new)[1:] - 1])])
    start = _localise_start(pd.Timestamp(frame["Timestamp"].iloc[0]), opts, source, "Timestamp")
    frame = frame.drop(columns=["Time", "Timestamp"]).assign(
        **{"run time (s)": step_time + carried[seg]}
    )
    roles["time"] = "run time (s)"
    raw = _Raw(
        frame=frame,
        source=source,
        fmt="neware",
        row_label=_line_labeller(None),
        start=start,
        roles=roles,
        units=units,
        notes=["time [s] rebuilt from the step times (Neware stamps whole seconds only)"],
    )
    return _canonicalise(raw, opts)


def _read_excel(path: Path, member: str | None, opts: _Options) -> CyclerTable:
    source = c.source_name(path, member)
    data = c.read_bytes(path, member)
    if not data:
        raise ReadError(f"File {source} is empty; export the data again.")
    import io as _io

    try:
        sheets = pd.read_excel(_io.BytesIO(data), sheet_name=None, header=None)
    except Exception as exc:  # openpyxl raises several types on broken workbooks
        raise ReadError(
            f"File {source} cannot be read as an Excel workbook ({type(exc).__name__}); it may "
            f"be truncated: export it again."
        ) from None
    names = list(sheets)
    if opts.sheet is not None:
        key = (
            names[opts.sheet]
            if isinstance(opts.sheet, int) and opts.sheet < len(names)
            else (opts.sheet)
        )
        if key not in sheets:
            raise ReadError(
                f"Workbook {source} has no sheet {opts.sheet!r}; its sheets are {names}."
            )
        candidates = [key]
    else:
        candidates = names
    for name in candidates:
        grid = sheets[name]
        rows = [[str(v).strip() for v in row if pd.notna(v)] for row in grid.head(200).to_numpy()]
        for i, fields in enumerate(rows):
            roles = recognise_columns(fields)
            if {"voltage", "current"} <= roles.keys():
                body = grid.iloc[i + 1 :].reset_index(drop=True)
                body.columns = [str(v).strip() for v in grid.iloc[i]]
                body = body.loc[:, [col != "nan" for col in body.columns]].dropna(how="all")
                body = body.infer_objects()
                raw = _Raw(
                    frame=body,
                    source=f"{source} sheet {name!r}",
                    fmt="excel",
                    row_label=_sheet_labeller(i + 2),
                )
                return _canonicalise(raw, opts)
    raise ReadError(
        f"No sheet of workbook {source} ({candidates}) has a header with voltage and current "
        f"columns; pass sheet=... and column_map={{...}}."
    )


_READERS: dict[str, Callable[[Path, str | None, _Options], CyclerTable]] = {
    "biologic-mpt": _read_mpt,
    "biologic-mpr": _read_mpr,
    "neware": _read_neware,
    "table": _read_table,
    "excel": _read_excel,
}
