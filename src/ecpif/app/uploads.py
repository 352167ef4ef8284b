"""Uploaded files: size limits, safe storage, and what the readers made of them.

The browser sends an upload as a ``data:`` URL (base64). :func:`decode_upload` checks its size
against the limit *before* decoding it, :func:`save_upload` writes it under a session folder with
a sanitised name, and :func:`read_cycler_file` / :func:`read_structure_file` call ecpif's readers
and return a :class:`FileSummary` of what was read (format, rows, columns with units, time range,
time zone) or a one-sentence message, with the question to ask when something is missing.

Nothing here imports the web framework: these functions are tested on their own with real files.

Design decisions
----------------
* **The limit is checked three times**: in the browser (the payload never leaves the page when the
  file is too large), here on the encoded length (authoritative: a page can be bypassed), and by
  the web server's request-size cap (nothing larger is even parsed).
* **Names are sanitised, paths never come from the client**: only the file's base name is kept,
  reduced to letters, digits, ``.-_``, so an upload cannot write outside its folder.
* **Messages name the file as the user knows it**: the readers' messages mention the saved path;
  the session folder is cut from them, leaving the uploaded file name.
* **A missing time zone is a question, not a failure**: ecpif's readers refuse naive times
  without ``timezone=`` (:func:`ecpif.io._common.naive_time_error`); the page turns that refusal
  into a prompt for the zone the instrument clock used.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, EcpifError, ReadError

#: Text of ecpif's readers' refusal of naive times (see ``ecpif.io._common.naive_time_error``).
NAIVE_TIME_TEXT = "carry no time zone"

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ReadError):
    """An upload cannot be accepted (too large, not a file, not decodable)."""


@dataclass(frozen=True)
class Upload:
    """A file received from the page and stored in the session folder."""

    name: str
    path: Path
    size: int


@dataclass(frozen=True)
class FileSummary:
    """What a reader made of an uploaded file, for display.

    Attributes
    ----------
    name
        The uploaded file name.
    kind
        ``"cycler"`` or ``"structure"``.
    format
        Reader format (a key of :data:`ecpif.io.CYCLER_FORMATS` or
        :data:`ecpif.io.STRUCTURE_FORMATS`).
    rows
        Samples (cycler) or patterns (structure).
    columns
        One row per canonical column: the source column it came from and the unit in the file.
    first, last
        Time range in UTC.
    timezone
        The zone used to read naive times (``None``: the file carried UTC or offsets).
    parameters
        Refined parameters found (structure files).
    notes
        What the reader did that a careful user would want to know.
    """

    name: str
    kind: str
    format: str
    rows: int
    columns: list[dict[str, str]]
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    timezone: str | None
    parameters: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def facts(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs shown above the column table."""
        span = ""
        if self.first is not None and self.last is not None:
            hours = (self.last - self.first).total_seconds() / 3600
            span = f"{_stamp(self.first)} to {_stamp(self.last)} ({hours:.2f} h)"
        out = [
            ("file", self.name),
            ("format", self.format),
            ("patterns" if self.kind == "structure" else "samples", f"{self.rows:,}"),
            ("time range (UTC)", span or "not in the file"),
            (
                "time zone",
                self.timezone if self.timezone else "UTC or explicit offsets in the file",
            ),
        ]
        if self.parameters:
            out.append(("parameters", ", ".join(self.parameters)))
        return out


def _stamp(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def limit_bytes(max_upload_mb: float) -> int:
    """The upload limit in bytes (``max_upload_mb`` > 0, in MB of 10^6 bytes)."""
    if not max_upload_mb > 0:
        raise ConfigError(f"The upload limit must be > 0 MB; got {max_upload_mb!r}.")
    return int(max_upload_mb * 1_000_000)


def safe_name(filename: str | None) -> str:
    """The file's base name reduced to ``[A-Za-z0-9._-]`` (never empty, never a path).

    >>> safe_name("../../etc/passwd")
    'passwd'
    >>> safe_name("C:\\\\data\\\\cell 4 (1C).mpt")
    'cell_4_1C_.mpt'
    """
    base = re.split(r"[\\/]", filename or "")[-1]
    cleaned = _SAFE.sub("_", base).strip("._") or "upload"
    return cleaned[:120]


def too_large_message(filename: str | None, size: int, max_bytes: int) -> str:
    """The sentence shown for a file above the upload limit."""
    return (
        f"{safe_name(filename)!r} is {size / 1e6:.1f} MB, more than the upload limit of "
        f"{max_bytes / 1e6:g} MB; restart the app with a larger --max-upload-mb or upload a "
        f"smaller export."
    )


def decode_upload(contents: str | None, filename: str | None, max_bytes: int) -> bytes:
    """Decode a ``data:...;base64,...`` upload, refusing it above ``max_bytes``.

    Examples
    --------
    >>> decode_upload("data:text/csv;base64,YSxiCjEsMgo=", "t.csv", 100)
    b'a,b\\n1,2\\n'
    """
    name = safe_name(filename)
    if not contents or "," not in contents:
        raise UploadError(f"The upload of {name!r} arrived empty; choose the file again.")
    head, _, data = contents.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        raise UploadError(
            f"The upload of {name!r} is not a base64 data URL (starts with {head[:30]!r}); "
            f"upload it through the page."
        )
    # 4 base64 characters carry 3 bytes: check before decoding so a huge payload costs nothing.
    size = len(data) * 3 // 4 - data[-2:].count("=")
    if size > max_bytes:
        raise UploadError(too_large_message(name, size, max_bytes))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(f"The upload of {name!r} is not valid base64; upload it again.") from None
    if not raw:
        raise UploadError(f"{name!r} is empty (0 bytes); choose the exported data file.")
    return raw


def save_upload(folder: Path, slot: str, filename: str | None, raw: bytes) -> Upload:
    """Write ``raw`` to ``folder/slot/<safe name>`` atomically, replacing that slot's file."""
    from ecpif.io import write_atomic

    slot_dir = Path(folder) / safe_name(slot)
    if slot_dir.exists():
        for old in slot_dir.iterdir():
            if old.is_file():
                old.unlink()
    slot_dir.mkdir(parents=True, exist_ok=True)
    name = safe_name(filename)
    path = write_atomic(slot_dir / name, lambda p: p.write_bytes(raw))
    return Upload(name=name, path=Path(path), size=len(raw))


def clean_message(message: str, folder: Path | None) -> str:
    """Cut ``folder`` and its sub-folders out of a message, so that it names the uploaded file."""
    if folder is None:
        return message
    root = str(Path(folder))
    # Readers quote paths; remove '<root>/<sub>/<folders>/' so only the file name stays.
    return re.sub(re.escape(root) + r"[\\/](?:[^\\/'\"]*[\\/])*", "", message)


def needs_timezone(exc: BaseException) -> bool:
    """Whether a reader refused the file only because its times carry no time zone."""
    return isinstance(exc, EcpifError) and NAIVE_TIME_TEXT in str(exc)


@dataclass(frozen=True)
class ReadOutcome:
    """The result of reading one upload: a summary, or a message (and whether to ask a zone)."""

    summary: FileSummary | None = None
    message: str = ""
    ask_timezone: bool = False
    table: Any = None

    @property
    def ok(self) -> bool:
        return self.summary is not None


def _columns(
    units: dict[str, str], sources: dict[str, str], order: list[str]
) -> list[dict[str, str]]:
    return [
        {"column": col, "from": str(sources.get(col, "")), "unit in file": str(units.get(col, ""))}
        for col in order
    ]


def _fail(exc: BaseException, upload: Upload, what: str) -> ReadOutcome:
    if isinstance(exc, EcpifError):
        message = str(exc)
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        message = (
            f"{upload.name!r} could not be read as a {what} file ({detail}); check that it is "
            f"the {what} export itself."
        )
    return ReadOutcome(
        message=clean_message(message, upload.path.parent.parent),
        ask_timezone=needs_timezone(exc),
    )


def read_cycler_file(upload: Upload, timezone: str | None = None) -> ReadOutcome:
    """Read an uploaded cycler file with :func:`ecpif.io.read_cycler` and summarise it.

    Any exception becomes a message (the page must keep working whatever the file holds).

    Examples
    --------
    >>> outcome = read_cycler_file(upload, timezone="Europe/Paris")  # doctest: +SKIP
    >>> outcome.summary.format  # doctest: +SKIP
    'biologic-mpt'
    """
    from ecpif.io import read_cycler

    try:
        table = read_cycler(upload.path, timezone=timezone or None)
    except Exception as exc:  # any bad file must become a message, never a traceback
        return _fail(exc, upload, "cycler")
    frame = table.frame
    stamps = frame[schema.TIMESTAMP] if schema.TIMESTAMP in frame.columns else None
    summary = FileSummary(
        name=upload.name,
        kind="cycler",
        format=table.format,
        rows=len(frame),
        columns=_columns(dict(table.units), dict(table.columns), list(frame.columns)),
        first=None if stamps is None or not len(stamps) else stamps.iloc[0],
        last=None if stamps is None or not len(stamps) else stamps.iloc[-1],
        timezone=timezone or None,
        notes=[clean_message(n, upload.path.parent.parent) for n in table.notes],
    )
    return ReadOutcome(summary=summary, table=table)


def read_structure_file(upload: Upload, timezone: str | None = None) -> ReadOutcome:
    """Read an uploaded refinement table or pattern log with :func:`ecpif.io.read_refinement`."""
    from ecpif.io import read_refinement

    try:
        table = read_refinement(upload.path, timezone=timezone or None)
    except Exception as exc:  # any bad file must become a message, never a traceback
        return _fail(exc, upload, "refinement")
    frame = table.frame
    notes = [clean_message(n, upload.path.parent.parent) for n in table.notes]
    if table.ignored:
        notes.append(f"Columns left out (no unit, not a known parameter): {list(table.ignored)}.")
    summary = FileSummary(
        name=upload.name,
        kind="structure",
        format=table.format,
        rows=len(frame),
        columns=_columns(dict(table.units), dict(table.columns), list(frame.columns)),
        first=frame[schema.START].min() if len(frame) else None,
        last=frame[schema.END].max() if len(frame) else None,
        timezone=timezone or None,
        parameters=list(table.parameters),
        notes=notes,
    )
    return ReadOutcome(summary=summary, table=table)
