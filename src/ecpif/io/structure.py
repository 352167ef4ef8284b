"""Structure readers: refinement results and acquisition times in, the canonical pattern table out.

Every reader returns a :class:`PatternTable` whose ``frame`` has ``pattern id``, ``start [UTC]``,
``end [UTC]`` and one column per refined parameter with its unit (``"a [Å]"``), the estimated
standard deviation beside it (``"esd a [Å]"``).

Supported formats (``fmt=``)
----------------------------
==================  ==========================================================================
``refinement``      Generic refinement table (CSV / TSV / TXT / Excel): a pattern id column,
                    ``start_time`` and ``end_time`` (or start + ``duration``), parameter columns
                    with optional esd columns (``esd_a``, ``esd-a``, ``a_esd``, ``sig_a`` ...).
                    Without times, pass ``pattern_log=`` to take them from a pattern log.
``gsas2-seq``       GSAS-II sequential-results table exported as CSV: a ``name`` column (the
                    histogram), ``esd-<label>`` columns, ``0::a``-style parameter names
                    (``phase:histogram:name``; phase 0 keeps the bare name, phase 1 gets ``_p1``).
``pattern-log``     Beamline pattern log ``scan_number,start_time,end_time`` (no parameters).
``nexus``           NeXus/HDF5 files: ``start_time``, ``end_time`` and ``duration`` of each
                    ``NXentry`` (h5py, optional extra ``ecpif[nexus]``); one pattern per entry.
==================  ==========================================================================

Design decisions
----------------
* Parameters keep short canonical names where ecpif knows them (``a``, ``b``, ``c``, ``d``,
  ``li_occupancy``, ``alpha``/``beta``/``gamma``, ``volume``), with their units. Numeric columns
  that are neither known, nor carry a unit in their header, nor are named in ``parameters=``
  (R-factors, scale factors) are left out and listed in ``ignored``: a model should not learn
  from a column whose unit nobody stated.
* Joining a refinement table to a pattern log goes by scan number: either the refinement's id
  equals the log's ``scan_number`` or it contains it (``PWDR 1355639_summed.xye``). Refinement
  rows without a logged scan are an error; logged scans without refinement are noted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, DataError, ReadError, did_you_mean, require
from ecpif.io import _common as c

#: Format names accepted by ``fmt=`` with a one-line description.
STRUCTURE_FORMATS: dict[str, str] = {
    "refinement": "generic refinement table (CSV/TSV/TXT/Excel) with times or a pattern log",
    "gsas2-seq": "GSAS-II sequential-results table exported as CSV",
    "pattern-log": "pattern log with scan_number,start_time,end_time",
    "nexus": "NeXus/HDF5 file(s) with start_time/end_time/duration (needs the 'nexus' extra)",
}

_ID_NAMES = (
    "pattern id", "pattern", "pattern_id", "scan number", "scan", "scan no", "scan id", "name",
    "histogram", "file", "filename", "file name", "label", "run",
)  # fmt: skip
_SCAN_NAMES = ("scan number", "scan", "scan no", "scan id", "scannumber")
_START_NAMES = ("start", "start time", "starttime", "t start", "begin", "start utc")
_END_NAMES = ("end", "end time", "endtime", "t end", "stop", "stop time", "end utc")
_DURATION_NAMES = (
    "duration", "exposure", "exposure time", "count time", "counting time", "acquisition time",
)  # fmt: skip
_IGNORE_NAMES = ("cell name", "cell", "sample", "comment", "comments", "phase", "chemistry")

# Known structural parameters: lower-case aliases -> (canonical short name, unit).
_KNOWN: dict[str, tuple[str, str]] = {
    "a": ("a", "Å"), "b": ("b", "Å"), "c": ("c", "Å"), "d": ("d", "Å"),
    "li_occupancy": ("li_occupancy", "-"), "li occupancy": ("li_occupancy", "-"),
    "alpha": ("alpha", "deg"), "beta": ("beta", "deg"), "gamma": ("gamma", "deg"),
    "volume": ("volume", "Å^3"), "vol": ("volume", "Å^3"), "v": ("volume", "Å^3"),
}  # fmt: skip

_ESD_PATTERNS = (
    re.compile(r"^(?:esd|sig|sigma|σ|err|std|u)[-_ ](?P<name>.+)$", re.IGNORECASE),
    re.compile(r"^(?P<name>.+?)[-_ ](?:esd|sig|sigma|err|error|std|sd|unc)$", re.IGNORECASE),
    re.compile(r"^(?:esd|σ|sigma)\((?P<name>.+)\)$", re.IGNORECASE),
)
_GSAS_RE = re.compile(r"^(?P<phase>\d*):(?P<hist>[\d*]*):(?P<name>.+)$")


@dataclass(frozen=True)
class PatternTable:
    """A refinement table or acquisition log read into the canonical pattern table.

    Attributes
    ----------
    frame
        ``pattern id``, ``start [UTC]``, ``end [UTC]``, then parameter and esd columns.
    source
        The file(s) read.
    format
        The format read (a key of :data:`STRUCTURE_FORMATS`).
    units
        For each canonical column, the unit found in (or given for) the file.
    columns
        For each canonical column, the source column it came from.
    parameters
        The canonical parameter columns (esd columns excluded).
    ignored
        Source columns that were not kept (no unit, not a known parameter, not requested).
    notes
        What the reader did that a careful user would want to know.
    """

    frame: pd.DataFrame
    source: str
    format: str
    units: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, str] = field(default_factory=dict)
    parameters: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (
            f"PatternTable(source={self.source}, format={self.format!r}, "
            f"patterns={len(self.frame)}, parameters={list(self.parameters)})"
        )


# --- public entry points -------------------------------------------------------------------------


def read_refinement(
    path: str | Path | Sequence[str | Path],
    *,
    fmt: str | None = None,
    timezone: str | None = None,
    parameters: Sequence[str] | Mapping[str, str] | None = None,
    pattern_log: str | Path | PatternTable | None = None,
    units: Mapping[str, str] | None = None,
    member: str | None = None,
    log_member: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
) -> PatternTable:
    """Read refinement results (or acquisition times) into the canonical pattern table.

    Parameters
    ----------
    path
        A refinement table, a GSAS-II sequential CSV, a pattern log, a NeXus file (or a list of
        NeXus files, one per pattern), or a ``.zip`` archive holding one of them.
    fmt
        Force a format (a key of :data:`STRUCTURE_FORMATS`); detected by default.
    timezone
        IANA zone of naive times in the file (and in the pattern log).
    parameters
        Which parameters to keep: a list of source names (``["a", "c"]``) or a mapping from source
        name to a short name or canonical column (``{"Frac_Li": "li_occupancy",
        "z_O": "z_O [-]"}``). Default: every known parameter and every column with a unit.
    pattern_log
        A pattern log (path or :class:`PatternTable`) giving the times of a table without times,
        joined by scan number.
    units
        Unit overrides: ``{"duration": "s", "a": "nm"}``.
    member, log_member
        Which file of a ``.zip`` archive to read for the table and for the log.
    delimiter, sheet
        Delimiter of text files (default: detected) and sheet of Excel files.

    Examples
    --------
    >>> table = read_refinement("nca-1C_refinement.csv")  # doctest: +SKIP
    >>> table.parameters  # doctest: +SKIP
    ('a [Å]', 'c [Å]', 'd [Å]', 'li_occupancy [-]')
    """
    timezone = c.check_timezone(timezone)
    if fmt is not None and fmt not in STRUCTURE_FORMATS:
        raise ConfigError(
            f"Unknown structure format fmt={fmt!r}; choose one of {sorted(STRUCTURE_FORMATS)}."
            + did_you_mean(fmt, STRUCTURE_FORMATS)
        )
    units = dict(units or {})
    if not isinstance(path, (str, Path)):
        return read_nexus_times(path, timezone=timezone)
    path = Path(path)
    _check_path(path)
    if fmt == "nexus" or path.suffix.lower() in (".nxs", ".h5", ".hdf5", ".nx5"):
        return read_nexus_times([path], timezone=timezone)
    if path.suffix.lower() == ".zip":
        suffixes = (".csv", ".tsv", ".txt", ".dat", ".xlsx")
        member = c.pick_member(path, member, suffixes, "refinement table or pattern log")
    source = c.source_name(path, member)
    grid, row_label = _read_grid(path, member, source, delimiter, sheet)
    log: PatternTable | None
    if pattern_log is None or isinstance(pattern_log, PatternTable):
        log = pattern_log
    else:
        log = read_pattern_log(pattern_log, timezone=timezone, member=log_member)
    detected = fmt or _detect(grid)
    return _build(grid, source, detected, timezone, parameters, log, units, row_label)


def read_pattern_log(
    path: str | Path,
    *,
    timezone: str | None = None,
    member: str | None = None,
    delimiter: str | None = None,
) -> PatternTable:
    """Read a beamline pattern log (``scan_number,start_time,end_time``).

    Examples
    --------
    >>> log = read_pattern_log("session.zip", timezone="Europe/London")  # doctest: +SKIP
    >>> log.frame["pattern id"].tolist()  # doctest: +SKIP
    [1355639, 1355647, 1355655, 1355663, 1355671]
    """
    return read_refinement(
        path, fmt="pattern-log", timezone=timezone, member=member, delimiter=delimiter
    )


def read_table(
    path: str | Path,
    *,
    names: Sequence[str] | None = None,
    delimiter: str | None = None,
    member: str | None = None,
    comment: str = "#",
) -> pd.DataFrame:
    """Read a plain numeric table (with or without a header row), e.g. lattice vs charge.

    ``#`` lines are skipped. A file without a header needs ``names`` (put units in them, as in
    ``"a [Å]"``).

    Examples
    --------
    >>> names = ["q [mA.h/g]", "sigma q [mA.h/g]", "a [Å]", "b [Å]", "c [Å]",
    ...          "alpha [deg]", "beta [deg]", "gamma [deg]"]
    >>> table = read_table("nmc811_lattice_vs_charge.tsv", names=names)  # doctest: +SKIP
    """
    path = Path(path)
    _check_path(path)
    if path.suffix.lower() == ".zip":
        member = c.pick_member(path, member, (".csv", ".tsv", ".txt", ".dat"), "table")
    source = c.source_name(path, member)
    text = c.decode(c.read_bytes(path, member), source)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(comment)]
    if not lines:
        raise ReadError(f"File {source} holds only comments or blank lines; it has no data.")
    delim = delimiter or c.sniff_delimiter(lines[:50])
    if delimiter is not None:
        c.check_delimiter(lines[0], lines[1:20], delimiter, source)
    first = [f.strip() for f in lines[0].split(delim)]
    headerless = all(_is_number(f) for f in first if f)
    if headerless and names is None:
        raise ReadError(
            f"File {source} has no header row (its first line is numbers); pass names=[...] "
            f"with one name and unit per column, e.g. 'a [Å]'."
        )
    if names is not None and len(names) != len(first):
        raise ReadError(
            f"names= has {len(names)} entries but {source} has {len(first)} columns; give one "
            f"name per column."
        )
    decimal = c.decimal_for(lines[1:50], delim)
    frame = c.read_delimited(
        "\n".join(lines),
        source=source,
        skip_lines=0,
        delimiter=delim,
        decimal=decimal,
        names=names if headerless else None,
        header=not headerless,
    )
    if names is not None and not headerless:
        frame.columns = list(names)
    return frame


def read_nexus_times(
    paths: str | Path | Sequence[str | Path], *, timezone: str | None = None
) -> PatternTable:
    """Acquisition windows from NeXus files: one pattern per ``NXentry``.

    Reads ``start_time`` and ``end_time`` of each entry (ISO-8601 text), or ``start_time`` plus
    ``duration`` (seconds unless its ``units`` attribute says otherwise). The pattern id is the
    entry's ``entry_identifier`` if present, else ``<file stem>/<entry name>``.

    Examples
    --------
    >>> read_nexus_times(["scan_0001.nxs", "scan_0002.nxs"])  # doctest: +SKIP
    """
    require("h5py", "nexus", "Reading NeXus files")
    import h5py

    if isinstance(paths, (str, Path)):
        paths = [paths]
    rows: list[dict[str, Any]] = []
    units_read: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        _check_path(p)
        try:
            fh = h5py.File(p, "r")
        except OSError as exc:
            raise ReadError(
                f"File '{p}' cannot be opened as NeXus/HDF5 ({exc}); it may be truncated."
            ) from None
        with fh:
            entries = [k for k, v in fh.items() if isinstance(v, h5py.Group) and _is_entry(v)]
            if not entries:
                raise ReadError(
                    f"File '{p}' holds no NXentry group (top-level groups: {list(fh)}); it is "
                    f"not a NeXus file with acquisition times."
                )
            for name in entries:
                rows.append(_nexus_entry(fh[name], p, name, units_read))
    frame = pd.DataFrame(rows)
    source = ", ".join(f"'{p}'" for p in paths)
    for col in ("start", "end"):
        naive = frame[col].astype("string")
        frame[col] = c.parse_timestamps(naive, timezone, source=source, column=f"{col}_time")
    end = frame["end"].copy()
    missing_end = end.isna().to_numpy()
    if missing_end.any():
        dur = pd.to_timedelta(np.round(frame["duration_s"].to_numpy() * 1e9), unit="ns")
        end = end.where(~missing_end, frame["start"] + dur)
    out = pd.DataFrame(
        {
            schema.PATTERN_ID: frame["id"].to_numpy(dtype=object),
            schema.START: frame["start"].astype("datetime64[ns, UTC]"),
            schema.END: end.astype("datetime64[ns, UTC]"),
        }
    )
    _check_windows(out, source, lambda i: f"Entry {frame['id'].iloc[i]!r}")
    return PatternTable(
        frame=out,
        source=source,
        format="nexus",
        units={schema.START: "ISO-8601", schema.END: "ISO-8601", **units_read},
        columns={
            schema.PATTERN_ID: "entry_identifier or file/entry",
            schema.START: "start_time",
            schema.END: "end_time or start_time + duration",
        },
    )


# --- internals -----------------------------------------------------------------------------------


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ReadError(f"File '{path}' does not exist; check the path.")
    if path.is_dir():
        raise ReadError(f"'{path}' is a folder; give the path of one file.")


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _is_entry(group: Any) -> bool:
    cls = group.attrs.get("NX_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    return cls == "NXentry" or "start_time" in group


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return _text(value.reshape(-1)[0])
    return str(value)


def _nexus_entry(group: Any, path: Path, name: str, units_read: dict[str, str]) -> dict[str, Any]:
    where = f"entry '{name}' of '{path}'"
    if "start_time" not in group:
        raise ReadError(f"The {where} has no start_time; it cannot be placed in time.")
    start = _text(group["start_time"][()])
    end = _text(group["end_time"][()]) if "end_time" in group else None
    duration = None
    if "duration" in group:
        ds = group["duration"]
        unit = _text(ds.attrs.get("units", "s"))
        unit = c.normalise_unit(unit, dimension="time", where=f"of duration in the {where}")
        units_read["duration"] = unit
        duration = float(c.convert(float(np.asarray(ds[()]).reshape(-1)[0]), unit, "s"))
    if end is None and duration is None:
        raise ReadError(
            f"The {where} has neither end_time nor duration; the end of its acquisition is unknown."
        )
    ident = (
        _text(group["entry_identifier"][()])
        if "entry_identifier" in group
        else f"{path.stem}/{name}"
    )
    return {"id": ident, "start": start, "end": end, "duration_s": duration}


def _read_grid(
    path: Path, member: str | None, source: str, delimiter: str | None, sheet: str | int | None
) -> tuple[pd.DataFrame, Any]:
    suffix = Path(member or path.name).suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        import io as _io

        try:
            grid = pd.read_excel(
                _io.BytesIO(c.read_bytes(path, member)),
                sheet_name=sheet if sheet is not None else 0,
            )
        except Exception as exc:  # openpyxl raises several types on broken workbooks
            raise ReadError(
                f"File {source} cannot be read as an Excel workbook ({type(exc).__name__}); "
                f"export it again."
            ) from None
        return grid, lambda i: f"Row {i} (spreadsheet row {i + 2})"
    text = c.decode(c.read_bytes(path, member), source)
    lines = text.splitlines()
    first = next(
        (i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None
    )
    if first is None:
        raise ReadError(f"File {source} holds only comments or blank lines; it has no data.")
    body = [ln for ln in lines[first : first + 50] if ln.strip()]
    delim = delimiter or c.sniff_delimiter(body)
    if delimiter is not None:
        c.check_delimiter(lines[first], body[1:], delimiter, source)
    elif lines[first].count(delim) == 0:
        raise ReadError(
            f"File {source} has a single column (no tab, comma or semicolon in its header line "
            f"{first + 1}); pass delimiter=... or export it as CSV."
        )
    decimal = c.decimal_for(body[1:], delim)
    grid = c.read_delimited(
        text, source=source, skip_lines=first, delimiter=delim, decimal=decimal, comment=None
    )
    grid.columns = [str(x).strip().strip('"') for x in grid.columns]
    return grid, lambda i: f"Row {i} (line {first + 2 + i})"


def _detect(grid: pd.DataFrame) -> str:
    cols = [str(x) for x in grid.columns]
    if any(col.lower().startswith("esd-") for col in cols) or any(_GSAS_RE.match(x) for x in cols):
        return "gsas2-seq"
    names = {c.split_header(x)[0] for x in cols}
    has_times = bool(names & set(_START_NAMES)) and bool(names & set(_END_NAMES))
    has_scan = bool(names & set(_SCAN_NAMES))
    others = names - set(_ID_NAMES) - set(_START_NAMES) - set(_END_NAMES) - set(_IGNORE_NAMES)
    if has_times and has_scan and not others:
        return "pattern-log"
    return "refinement"


def _find(names: dict[str, str], aliases: Sequence[str]) -> str | None:
    for alias in aliases:
        for col, name in names.items():
            if name == alias:
                return col
    return None


def _esd_target(col: str) -> str | None:
    text = col.strip()
    if text.lower().startswith("esd "):  # canonical "esd a [Å]"
        return text[4:]
    base, _unit = _strip_unit(text)
    for regex in _ESD_PATTERNS:
        match = regex.match(base)
        if match:
            return match.group("name")
    return None


def _strip_unit(header: str) -> tuple[str, str | None]:
    """Split ``"a [Å]"`` / ``"a/Å"`` / ``"a (Å)"`` into name and unit, keeping the name's case."""
    for pattern in (
        r"^(?P<n>.+?)\s*\[(?P<u>[^\[\]]*)\]$",
        r"^(?P<n>.+?)\s*\((?P<u>[^()]*)\)$",
        r"^(?P<n>[^/]+)/(?P<u>[^/]+)$",
    ):
        match = re.match(pattern, header.strip())
        if match:
            return match.group("n").strip(), match.group("u").strip()
    return header.strip(), None


def _param_name(name: str) -> str:
    """GSAS-II ``phase:hist:name`` -> name (``_p<phase>`` for phases other than 0)."""
    match = _GSAS_RE.match(name)
    if not match:
        return name
    phase = match.group("phase")
    base = match.group("name")
    return base if phase in ("", "0") else f"{base}_p{phase}"


def _build(
    grid: pd.DataFrame,
    source: str,
    fmt: str,
    timezone: str | None,
    parameters: Sequence[str] | Mapping[str, str] | None,
    log: PatternTable | None,
    units: dict[str, str],
    row_label: Any,
) -> PatternTable:
    if len(grid) == 0:
        raise ReadError(f"File {source} holds a header but no data rows; export it again.")
    grid = grid.dropna(how="all").reset_index(drop=True)
    cols = [str(x) for x in grid.columns]
    names = {col: c.split_header(col)[0] for col in cols}
    notes: list[str] = []
    used_cols: dict[str, str] = {}
    units_read: dict[str, str] = {}

    if fmt == "pattern-log":
        id_col = _find(names, _SCAN_NAMES) or _find(names, _ID_NAMES)
    else:
        id_col = _find(names, ("pattern id", "pattern", "pattern_id", "name")) or _find(
            names, _ID_NAMES
        )
    if id_col is None:
        raise ReadError(
            f"File {source} has no pattern id column (looked for {list(_ID_NAMES[:6])} ...); "
            f"its columns are {cols}: add a 'pattern' column or rename the id column."
        )
    ids = grid[id_col]
    if ids.isna().any():
        i = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(
            f"{row_label(i)} of {source} has no pattern id in column {id_col!r}; fill it or "
            f"remove the row."
        )
    used_cols[schema.PATTERN_ID] = id_col
    start_col = _find(names, _START_NAMES)
    end_col = _find(names, _END_NAMES)
    dur_col = _find(names, _DURATION_NAMES)
    skip = {id_col, start_col, end_col, dur_col} | {
        col for col in cols if names[col] in _IGNORE_NAMES or names[col] in _SCAN_NAMES
    }

    frame = pd.DataFrame({schema.PATTERN_ID: ids.to_numpy(dtype=object)})
    if fmt == "pattern-log" and pd.api.types.is_numeric_dtype(ids.dtype):
        frame[schema.PATTERN_ID] = ids.astype("int64").to_numpy(dtype=object)

    # --- times -----------------------------------------------------------------------------------
    if start_col is not None and (end_col is not None or dur_col is not None):
        frame[schema.START] = _times(grid[start_col], timezone, source, start_col, row_label)
        used_cols[schema.START] = start_col
        if end_col is not None:
            frame[schema.END] = _times(grid[end_col], timezone, source, end_col, row_label)
            used_cols[schema.END] = end_col
        else:
            assert dur_col is not None
            seconds = _duration_seconds(
                grid[dur_col], dur_col, units, source, row_label, units_read
            )
            frame[schema.END] = frame[schema.START] + pd.to_timedelta(
                np.round(seconds * 1e9).astype("int64"), unit="ns"
            )
            used_cols[schema.END] = f"{start_col} + {dur_col}"
        units_read.setdefault(schema.START, "datetime")
        units_read.setdefault(schema.END, "datetime")
        if log is not None:
            notes.append("the table has its own times: pattern_log was not used for times")
    elif log is not None:
        frame = _join_log(frame, log, source, row_label, notes)
        used_cols[schema.START] = f"pattern log {log.source}"
        used_cols[schema.END] = f"pattern log {log.source}"
    else:
        raise ReadError(
            f"File {source} has no start/end time columns (columns: {cols}); add start_time and "
            f"end_time (or start_time and duration) columns, or pass pattern_log=<log file> to "
            f"take the times from the acquisition log by scan number."
        )

    # --- parameters ----------------------------------------------------------------------------
    candidates = [col for col in cols if col not in skip]
    esd_of: dict[str, str] = {}
    value_cols: list[str] = []
    for col in candidates:
        target = _esd_target(col)
        if target is not None:
            esd_of[col] = target
        else:
            value_cols.append(col)
    wanted = _wanted(parameters, value_cols, source)
    kept: list[str] = []
    ignored: list[str] = []
    for col in value_cols:
        base, unit = _strip_unit(col)
        if wanted is not None:
            if col not in wanted and base not in wanted:
                ignored.append(col)
                continue
            target = wanted.get(col, wanted.get(base, base))
        else:
            target = base
        canonical, canon_unit, from_unit = _parameter(
            _param_name(target), unit, units, col, source, required=wanted is not None
        )
        if canonical is None:
            ignored.append(col)
            continue
        values = _numeric(grid[col], source, col, row_label)
        frame[canonical] = c.convert(values, from_unit, canon_unit)
        units_read[canonical] = from_unit
        used_cols[canonical] = col
        kept.append(canonical)
        esd_src = _matching_esd(col, base, target, esd_of)
        if esd_src is not None:
            esd_values = _numeric(grid[esd_src], source, esd_src, row_label)
            esd_unit = _strip_unit(esd_src)[1]
            esd_from = (
                c.normalise_unit(esd_unit, dimension=c.UNITS[canon_unit].dimension)
                if esd_unit
                else from_unit
            )
            frame[schema.esd_column(canonical)] = c.convert(esd_values, esd_from, canon_unit)
            units_read[schema.esd_column(canonical)] = esd_from
            used_cols[schema.esd_column(canonical)] = esd_src
            del esd_of[esd_src]
    ignored.extend(esd_of)
    if ignored:
        notes.append(f"columns left out (no unit, not a known parameter): {ignored}")
    if fmt == "pattern-log" and kept:
        fmt = "refinement"
    _check_windows(frame, source, row_label)
    return PatternTable(
        frame=frame,
        source=source,
        format=fmt,
        units=units_read,
        columns=used_cols,
        parameters=tuple(kept),
        ignored=tuple(ignored),
        notes=tuple(notes),
    )


def _wanted(
    parameters: Sequence[str] | Mapping[str, str] | None, value_cols: list[str], source: str
) -> dict[str, str] | None:
    if parameters is None:
        return None
    wanted = dict(parameters) if isinstance(parameters, Mapping) else {p: p for p in parameters}
    bases = {_strip_unit(col)[0] for col in value_cols} | set(value_cols)
    bases |= {_param_name(b) for b in bases}
    for key in wanted:
        if key not in bases:
            raise ReadError(
                f"parameters= names {key!r} but {source} has no such column; its parameter "
                f"columns are {value_cols}." + did_you_mean(key, sorted(bases))
            )
    # GSAS-II names may be requested without their phase prefix.
    for col in value_cols:
        base = _strip_unit(col)[0]
        short = _param_name(base)
        if short in wanted and base not in wanted:
            wanted[base] = wanted[short]
    return wanted


def _parameter(
    target: str,
    header_unit: str | None,
    units: dict[str, str],
    col: str,
    source: str,
    *,
    required: bool,
) -> tuple[str | None, str, str]:
    """Canonical column, canonical unit and source unit of a parameter (None: leave it out)."""
    if schema.unit_of(target) is not None:  # the user named the canonical column
        name, unit = schema.base_name(target), str(schema.unit_of(target))
        canonical_unit = c.normalise_unit(unit)
        from_unit = (
            c.normalise_unit(header_unit, dimension=c.UNITS[canonical_unit].dimension)
            if header_unit
            else canonical_unit
        )
        return f"{name} [{unit}]", canonical_unit, from_unit
    known = _KNOWN.get(target.lower())
    override = units.get(target) or units.get(col)
    if known is not None:
        name, canonical_unit = known
        dimension = c.UNITS[canonical_unit].dimension
        given = override or header_unit
        from_unit = (
            c.normalise_unit(given, dimension=dimension, where=f"of column {col!r} in {source}")
            if given
            else canonical_unit
        )
        column = schema.parameter_column(name)
        if column == name:
            column = f"{name} [{canonical_unit}]"
        return column, canonical_unit, from_unit
    given = override or header_unit
    if given is None:
        if required:
            raise ReadError(
                f"Parameter column {col!r} of {source} carries no unit; name the canonical "
                f"column in parameters= (e.g. {{{col!r}: '{target} [-]'}}) or pass "
                f"units={{{target!r}: '-'}}."
            )
        return None, "-", "-"
    unit = c.normalise_unit(given, where=f"of column {col!r} in {source}")
    return f"{target} [{unit}]", unit, unit


def _matching_esd(col: str, base: str, target: str, esd_of: dict[str, str]) -> str | None:
    for esd_col, of in esd_of.items():
        of_base = _strip_unit(of)[0]
        if of in (col, base, target) or of_base in (col, base, target):
            return esd_col
    return None


def _numeric(series: pd.Series, source: str, column: str, row_label: Any) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float)
    text = series.astype("string").str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna() & (text != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{row_label(i)} of {source} has {text.iloc[i]!r} in column {column!r}, which is not "
            f"a number; fix the value (GSAS-II 'value(esd)' text must be split into two columns)."
        )
    return values.to_numpy(dtype=float)


def _times(
    series: pd.Series, timezone: str | None, source: str, column: str, row_label: Any
) -> pd.Series:
    if series.isna().any():
        i = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise DataError(
            f"{row_label(i)} of {source} has no time in column {column!r}; fill it or remove the "
            f"pattern."
        )
    return c.parse_timestamps(series, timezone, source=source, column=column).array


def _duration_seconds(
    series: pd.Series,
    column: str,
    units: dict[str, str],
    source: str,
    row_label: Any,
    units_read: dict[str, str],
) -> np.ndarray:
    header_unit = c.split_header(column)[1]
    given = units.get("duration") or header_unit
    if given is None:
        raise ReadError(
            f"Column {column!r} of {source} carries no unit; pass units={{'duration': 's'}} (or "
            f"the unit it was recorded in)."
        )
    unit = c.normalise_unit(given, dimension="time", where=f"of column {column!r} in {source}")
    units_read["duration"] = unit
    values = _numeric(series, source, column, row_label)
    return np.asarray(c.convert(values, unit, "s"), dtype=float)


def _scan_key(value: Any, scans: set[int]) -> int | None:
    if isinstance(value, (int, np.integer)):
        return int(value) if int(value) in scans else None
    if isinstance(value, float) and value.is_integer():
        return int(value) if int(value) in scans else None
    hits = [int(tok) for tok in re.findall(r"\d+", str(value)) if int(tok) in scans]
    return hits[0] if len(set(hits)) == 1 else None


def _join_log(
    frame: pd.DataFrame, log: PatternTable, source: str, row_label: Any, notes: list[str]
) -> pd.DataFrame:
    log_ids = log.frame[schema.PATTERN_ID]
    try:
        scans = {int(x) for x in log_ids}
    except (TypeError, ValueError):
        raise ReadError(
            f"The pattern log {log.source} has non-numeric scan numbers "
            f"({log_ids.iloc[0]!r}); join by scan number needs integers."
        ) from None
    keys = [_scan_key(v, scans) for v in frame[schema.PATTERN_ID]]
    missing = [i for i, k in enumerate(keys) if k is None]
    if missing:
        i = missing[0]
        raise DataError(
            f"{row_label(i)} of {source} (pattern {frame[schema.PATTERN_ID].iloc[i]!r}) matches "
            f"no scan number of the pattern log {log.source}; check that the log belongs to "
            f"this refinement or add the scan to the log."
        )
    position = {int(x): i for i, x in enumerate(log_ids)}
    rows = [position[int(k)] for k in keys if k is not None]
    frame = frame.copy()
    frame[schema.START] = log.frame[schema.START].iloc[rows].array
    frame[schema.END] = log.frame[schema.END].iloc[rows].array
    unused = sorted(scans - set(keys))
    if unused:
        notes.append(f"{len(unused)} logged scan(s) have no refinement result: {unused[:10]}")
    return frame


def _check_windows(frame: pd.DataFrame, source: str, row_label: Any) -> None:
    ids = frame[schema.PATTERN_ID]
    dup = ids.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{row_label(i)} of {source} repeats pattern id {ids.iloc[i]!r}; pattern ids must be "
            f"unique: remove or rename the duplicate."
        )
    start = frame[schema.START].to_numpy(dtype="datetime64[ns]")
    end = frame[schema.END].to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(end <= start)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{row_label(i)} of {source} (pattern {ids.iloc[i]!r}) ends at "
            f"{frame[schema.END].iloc[i]}, not after its start {frame[schema.START].iloc[i]}; "
            f"check the start/end columns."
        )
    back = np.flatnonzero(np.diff(start.astype("int64")) <= 0)
    if back.size:
        i = int(back[0]) + 1
        kind = "the same start as" if start[i] == start[i - 1] else "an earlier start than"
        raise DataError(
            f"{row_label(i)} of {source} (pattern {ids.iloc[i]!r}) has {kind} the row before "
            f"it ({frame[schema.START].iloc[i]}); sort the patterns by start time and remove "
            f"duplicates."
        )
