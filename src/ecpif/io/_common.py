"""Private helpers shared by the readers: units, times, text sniffing, archives, atomic writes.

Design decisions
----------------
* Units are a small explicit table (dimension + factor to SI, plus an offset for temperatures)
  rather than a units library: instrument headers use a handful of spellings (``mA.h``, ``mAh``,
  ``Ah``, ``µA``, ``uA``, ``Hr``), and an unknown spelling must become a clear error, not a guess.
* Times: strings that carry an offset (``+01:00`` or ``Z``) are parsed as aware times; naive
  times are only accepted with an explicit IANA time zone, because a wrong guess silently shifts
  every pattern window by hours.
* Archives: ``.zip`` files are read member by member without extracting to the user's folders;
  macOS and Windows junk (``__MACOSX/``, ``._*``, ``.DS_Store``, ``Thumbs.db``) is skipped.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ecpif.errors import ConfigError, DataError, ReadError, did_you_mean

# --- units ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    dimension: str
    factor: float  # value_in_si = value * factor + offset
    offset: float = 0.0


# Canonical spellings. Charge in coulomb-based SI, time in seconds, temperature in kelvin.
UNITS: dict[str, _Unit] = {
    "s": _Unit("time", 1.0),
    "ms": _Unit("time", 1e-3),
    "min": _Unit("time", 60.0),
    "h": _Unit("time", 3600.0),
    "d": _Unit("time", 86400.0),
    "V": _Unit("voltage", 1.0),
    "mV": _Unit("voltage", 1e-3),
    "µV": _Unit("voltage", 1e-6),
    "A": _Unit("current", 1.0),
    "mA": _Unit("current", 1e-3),
    "µA": _Unit("current", 1e-6),
    "nA": _Unit("current", 1e-9),
    "C": _Unit("charge", 1.0),
    "mC": _Unit("charge", 1e-3),
    "A.s": _Unit("charge", 1.0),
    "mA.s": _Unit("charge", 1e-3),
    "A.h": _Unit("charge", 3600.0),
    "mA.h": _Unit("charge", 3.6),
    "µA.h": _Unit("charge", 3.6e-3),
    "degC": _Unit("temperature", 1.0, 273.15),
    "K": _Unit("temperature", 1.0),
    "degF": _Unit("temperature", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
    "Å": _Unit("length", 1e-10),
    "nm": _Unit("length", 1e-9),
    "pm": _Unit("length", 1e-12),
    "Å^3": _Unit("volume", 1e-30),
    "nm^3": _Unit("volume", 1e-27),
    "deg": _Unit("angle", np.pi / 180.0),
    "rad": _Unit("angle", 1.0),
    "-": _Unit("dimensionless", 1.0),
    "%": _Unit("dimensionless", 0.01),
}

# Spellings seen in instrument headers, lower-cased, mapped to the canonical spelling.
_ALIASES: dict[str, str] = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d",
    "v": "V", "volt": "V", "volts": "V", "mv": "mV", "µv": "µV", "uv": "µV", "μv": "µV",
    "a": "A", "amp": "A", "amps": "A", "ma": "mA", "µa": "µA", "ua": "µA", "μa": "µA", "na": "nA",
    "c": "C", "mc": "mC", "as": "A.s", "a.s": "A.s", "a s": "A.s", "mas": "mA.s", "ma.s": "mA.s",
    "ah": "A.h", "a.h": "A.h", "a h": "A.h", "a-h": "A.h", "amp-hr": "A.h", "amp-h": "A.h",
    "mah": "mA.h", "ma.h": "mA.h", "ma h": "mA.h", "ma-h": "mA.h",
    "µah": "µA.h", "µa.h": "µA.h", "uah": "µA.h", "ua.h": "µA.h", "μah": "µA.h", "μa.h": "µA.h",
    "degc": "degC", "°c": "degC", "ºc": "degC", "celsius": "degC", "deg c": "degC", "℃": "degC",
    "k": "K", "kelvin": "K", "degf": "degF", "°f": "degF",
    "å": "Å", "angstrom": "Å", "ang": "Å", "nm": "nm", "pm": "pm",
    "å^3": "Å^3", "å3": "Å^3", "å³": "Å^3", "a^3": "Å^3", "a3": "Å^3", "ang^3": "Å^3",
    "nm^3": "nm^3", "deg": "deg", "°": "deg", "degree": "deg", "degrees": "deg", "rad": "rad",
    "-": "-", "1": "-", "": "-", "%": "%",
}  # fmt: skip

#: The dimension each canonical cycler column has, and its unit.
ROLE_UNITS: dict[str, tuple[str, str]] = {
    "time": ("time", "s"),
    "voltage": ("voltage", "V"),
    "current": ("current", "A"),
    "charge": ("charge", "mA.h"),
    "charge_capacity": ("charge", "mA.h"),
    "discharge_capacity": ("charge", "mA.h"),
    "capacity": ("charge", "mA.h"),
    "temperature": ("temperature", "degC"),
}


def normalise_unit(text: str, *, dimension: str | None = None, where: str = "") -> str:
    """The canonical spelling of a unit as written in a header (``"mAh"`` -> ``"mA.h"``).

    ``"C"`` means coulomb for a charge and degree Celsius for a temperature, and ``"A"`` means
    ångström for a length: ``dimension`` resolves such clashes.

    >>> normalise_unit("mAh")
    'mA.h'
    """
    raw = text.strip()
    key = raw.lower().replace("·", ".").replace("*", ".")
    if dimension == "temperature" and key == "c":
        return "degC"
    if dimension == "length" and key == "a":
        return "Å"
    unit = raw if raw in UNITS else _ALIASES.get(key)
    if unit is None:
        raise ReadError(
            f"Unknown unit {raw!r}{' ' + where if where else ''}; known units are "
            f"{sorted(UNITS)}: fix the header or pass units={{...}} with one of them."
            + did_you_mean(raw, UNITS)
        )
    if dimension is not None and UNITS[unit].dimension != dimension:
        raise ReadError(
            f"Unit {raw!r}{' ' + where if where else ''} is a {UNITS[unit].dimension} unit but a "
            f"{dimension} unit was expected; fix the header or pass units={{...}}."
        )
    return unit


def convert(values: Any, from_unit: str, to_unit: str) -> Any:
    """Convert numbers between two units of the same dimension.

    >>> float(convert(1500.0, "mA", "A"))
    1.5
    """
    try:
        src, dst = UNITS[from_unit], UNITS[to_unit]
    except KeyError as exc:
        raise ConfigError(
            f"Unknown unit {exc.args[0]!r} in convert(); use one of {sorted(UNITS)}."
        ) from None
    if src.dimension != dst.dimension:
        raise ConfigError(
            f"Cannot convert {from_unit!r} ({src.dimension}) to {to_unit!r} ({dst.dimension})."
        )
    if from_unit == to_unit:
        return values
    si = np.asarray(values, dtype=float) * src.factor + src.offset
    return (si - dst.offset) / dst.factor


# --- header names --------------------------------------------------------------------------------

_SLASH_RE = re.compile(r"^(?P<name>.+)/(?P<unit>[^/()\[\]]+)$")
_PAREN_RE = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*(?P<suffix>_?\d+)?$")
_BRACKET_RE = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\[\]]*)\]\s*(?P<suffix>_?\d+)?$")


def split_header(header: str) -> tuple[str, str | None]:
    """Split an instrument header into a lower-cased name and the unit text (or ``None``).

    Handles ``time/s`` (BioLogic), ``Current(mA)`` (Neware, Arbin), ``voltage [V]`` (ecpif) and
    ``Temperature (C)_1`` (Arbin auxiliary channels).

    >>> split_header("(Q-Qo)/mA.h")
    ('(q-qo)', 'mA.h')
    """
    text = " ".join(str(header).replace("\ufeff", "").split())
    for regex in (_BRACKET_RE, _PAREN_RE):
        match = regex.match(text)
        if match and match.group("name"):
            name = match.group("name")
            if match.group("suffix"):
                name = f"{name} {match.group('suffix').lstrip('_')}"
            return _norm_name(name), match.group("unit").strip()
    match = _SLASH_RE.match(text)
    if match:
        return _norm_name(match.group("name")), match.group("unit").strip()
    return _norm_name(text), None


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").strip().lower().split())


# --- time zones and timestamps -------------------------------------------------------------------

_OFFSET_RE = re.compile(r"(Z|[+-]\d{2}:?\d{2}|UTC|GMT)\s*$", re.IGNORECASE)


def check_timezone(timezone: str | None) -> str | None:
    """Validate an IANA time-zone name; return it unchanged."""
    if timezone is None:
        return None
    if timezone.upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"Unknown time zone {timezone!r}; give an IANA name such as 'Europe/London' or 'UTC'."
        ) from None
    return timezone


def naive_time_error(source: str, column: str, example: Any) -> DataError:
    """The one error raised wherever naive local times meet no time zone."""
    return DataError(
        f"The times in {column!r} of {source} carry no time zone (first value {example!s}); "
        f"pass timezone='Europe/London' (the IANA zone the instrument clock used, or 'UTC') so "
        f"that they can be converted to UTC."
    )


def localise(
    times: pd.Series | pd.DatetimeIndex, timezone: str | None, *, source: str, column: str
) -> pd.Series:
    """Make datetimes UTC: aware ones are converted, naive ones need ``timezone``."""
    series = pd.Series(times)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if timezone is None:
        example = series.dropna().iloc[0] if series.notna().any() else "NaT"
        raise naive_time_error(source, column, example)
    tz = check_timezone(timezone)
    try:
        local = series.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception as exc:  # pytz/zoneinfo raise several types for DST problems
        raise DataError(
            f"A time in {column!r} of {source} does not exist or is ambiguous in time zone "
            f"{tz!r} ({exc}); the clock probably changed for daylight saving: give the times in "
            f"UTC or with an explicit offset."
        ) from None
    return local.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def parse_timestamps(
    values: pd.Series, timezone: str | None, *, source: str, column: str, row_offset: int = 0
) -> pd.Series:
    """Parse a column of absolute times (strings or datetimes) into UTC timestamps."""
    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return localise(series, timezone, source=source, column=column)
    text = series.astype("string").str.strip()
    nonnull = text.dropna()
    if nonnull.empty:
        raise DataError(f"Column {column!r} of {source} holds no times; it is empty.")
    has_offset = bool(_OFFSET_RE.search(str(nonnull.iloc[0])))
    parsed: pd.Series | None = None
    for fmt in ("ISO8601", None):
        try:
            kwargs: dict[str, Any] = {"utc": has_offset}
            if fmt is not None:
                kwargs["format"] = fmt
            parsed = pd.Series(pd.to_datetime(text, **kwargs))
            break
        except (ValueError, TypeError, OverflowError):
            continue
    if parsed is None:
        bad = _first_unparsable_time(text)
        raise DataError(
            f"Row {bad + row_offset} of {source} has a time {text.iloc[bad]!r} in {column!r} that "
            f"cannot be read as a date; use ISO-8601 times such as '2026-01-12T09:00:00+00:00'."
        )
    if has_offset:
        return parsed.astype("datetime64[ns, UTC]")
    return localise(parsed, timezone, source=source, column=column)


def _first_unparsable_time(text: pd.Series) -> int:
    for i, value in enumerate(text):
        if value is pd.NA:
            continue
        try:
            pd.Timestamp(value)
        except (ValueError, TypeError):
            return i
    return 0


def parse_durations(values: pd.Series, *, source: str, column: str) -> np.ndarray:
    """Seconds from numbers or ``[d-]hh:mm:ss(.fff)`` strings (Neware and Maccor exports)."""
    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float)
    text = series.astype("string").str.strip()
    try:
        return pd.to_numeric(text).to_numpy(dtype=float)
    except (ValueError, TypeError):
        pass
    parts = text.str.extract(
        r"^(?:(?P<d>\d+)[-\s.])?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:[.,]\d*)?)$"
    )
    bad = parts["h"].isna() & text.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"Row {i} of {source} has a duration {text.iloc[i]!r} in {column!r} that is neither a "
            f"number nor hh:mm:ss; fix the value or pass units={{...}} for a numeric column."
        )
    seconds = parts["s"].str.replace(",", ".", regex=False).astype(float)
    days = parts["d"].fillna("0").astype(float)
    return (
        days * 86400.0
        + parts["h"].astype(float) * 3600.0
        + parts["m"].astype(float) * 60.0
        + seconds
    ).to_numpy(dtype=float)


# --- files, archives and text --------------------------------------------------------------------

_JUNK_PARTS = ("__MACOSX",)
_JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


def is_junk(member: str) -> bool:
    """True for archive entries that operating systems add (``__MACOSX/``, ``._x``, ...)."""
    parts = [p for p in member.replace("\\", "/").split("/") if p]
    if not parts:
        return True
    return (
        any(p in _JUNK_PARTS for p in parts)
        or parts[-1] in _JUNK_NAMES
        or parts[-1].startswith("._")
        or member.endswith("/")
    )


def archive_members(path: Path) -> list[str]:
    """Names of the real files inside a zip archive (junk and folders skipped)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n for n in zf.namelist() if not is_junk(n)]
    except zipfile.BadZipFile:
        raise ReadError(
            f"File {str(path)!r} has a .zip suffix but is not a valid zip archive (it may be "
            f"truncated); download or copy it again."
        ) from None


def pick_member(path: Path, member: str | None, suffixes: Sequence[str], what: str) -> str:
    """Choose the archive member to read: the one named, or the only one with a fitting suffix."""
    members = archive_members(path)
    if member is not None:
        matches = [m for m in members if m == member or m.endswith("/" + member.lstrip("/"))]
        if len(matches) == 1:
            return matches[0]
        raise ReadError(
            f"Archive {str(path)!r} has no single member {member!r}; its files are {members}."
            + did_you_mean(member, members)
        )
    fits = [m for m in members if any(m.lower().endswith(s) for s in suffixes)]
    # Suffixes are given most specific first (.ndax before .csv): the best tier wins.
    for suffix in suffixes:
        tier = [m for m in fits if m.lower().endswith(suffix)]
        if len(tier) == 1:
            return tier[0]
        if tier:
            break
    if not fits:
        raise ReadError(
            f"Archive {str(path)!r} holds no {what} (looked for {list(suffixes)}); its files are "
            f"{members}: pass member='<path inside the archive>'."
        )
    raise ReadError(
        f"Archive {str(path)!r} holds several candidate {what}s {fits}; choose one with "
        f"member='<path inside the archive>'."
    )


@contextlib.contextmanager
def local_copy(path: Path, member: str) -> Iterator[Path]:
    """Extract one archive member to a private temporary folder (for readers that need a path)."""
    with tempfile.TemporaryDirectory(prefix="ecpif-") as tmp, zipfile.ZipFile(path) as zf:
        target = Path(tmp) / Path(member).name
        with zf.open(member) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        yield target


def read_bytes(path: Path, member: str | None = None) -> bytes:
    """The raw bytes of a file, or of a member of a zip archive."""
    if member is not None:
        with zipfile.ZipFile(path) as zf:
            return zf.read(member)
    return path.read_bytes()


def decode(data: bytes, source: str) -> str:
    """Text from bytes: UTF-8 (with or without BOM) first, then latin-1 as EC-Lab writes."""
    if not data.strip():
        raise ReadError(f"File {source} is empty; export the data again.")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ReadError(f"File {source} is not text in UTF-8 or latin-1.")  # pragma: no cover


def source_name(path: Path, member: str | None = None) -> str:
    """How a file is named in messages: ``'x.zip'::a/b.ndax`` for archive members."""
    return f"'{path}'" + (f"::{member}" if member else "")


_DELIMITERS = ("\t", ",", ";")
_DELIMITER_NAMES = {"\t": "tab ('\\t')", ",": "comma (',')", ";": "semicolon (';')", " ": "space"}


def sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter that splits the lines into the most, and most consistent, fields."""
    best, best_score = ",", -1.0
    for delim in _DELIMITERS:
        counts = [line.count(delim) for line in lines if line.strip()]
        if not counts or max(counts) == 0:
            continue
        # Favour delimiters that give every line the same number of fields.
        mode = max(set(counts), key=counts.count)
        score = 100.0 * counts.count(mode) / len(counts) + mode
        if score > best_score:
            best, best_score = delim, score
    return best


def check_delimiter(header: str, sample: Sequence[str], delimiter: str, source: str) -> None:
    """Raise if the delimiter given leaves the header in one piece but another one splits it."""
    if header.count(delimiter) > 0:
        return
    guess = sniff_delimiter([header, *sample])
    if header.count(guess) > 0:
        raise ReadError(
            f"The header of {source} does not contain the delimiter "
            f"{_DELIMITER_NAMES.get(delimiter, repr(delimiter))} but is split by "
            f"{_DELIMITER_NAMES[guess]}; pass delimiter={guess!r} or leave delimiter=None."
        )


def decimal_for(lines: Sequence[str], delimiter: str) -> str:
    """``","`` when numbers use a decimal comma (EC-Lab in many locales), else ``"."``."""
    if delimiter == ",":
        return "."
    comma = re.compile(r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$")
    dot = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
    n_comma = n_dot = 0
    for line in lines:
        for field in line.split(delimiter):
            field = field.strip()
            if comma.match(field):
                n_comma += 1
            elif dot.match(field):
                n_dot += 1
    return "," if n_comma > n_dot else "."


def read_delimited(
    text: str,
    *,
    source: str,
    skip_lines: int,
    delimiter: str,
    decimal: str,
    names: Sequence[str] | None = None,
    header: bool = True,
    comment: str | None = None,
) -> pd.DataFrame:
    """Parse delimited text with pandas' C parser (fast on millions of rows)."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            decimal=decimal,
            skiprows=skip_lines,
            header=0 if header else None,
            names=list(names) if names is not None else None,
            comment=comment,
            skip_blank_lines=True,
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise ReadError(
            f"File {source} holds a header but no data rows; export it again."
        ) from None
    except pd.errors.ParserError as exc:
        raise ReadError(
            f"File {source} cannot be parsed as {_DELIMITER_NAMES.get(delimiter, delimiter)}-"
            f"separated text ({exc}); check the delimiter or pass delimiter=..."
        ) from None
    # EC-Lab ends header lines with a tab: drop the empty trailing column it creates.
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:") and frame[c].isna().all()]
    return frame.drop(columns=unnamed)


# --- writing ------------------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike[str], writer: Any) -> Path:
    """Call ``writer(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return target
