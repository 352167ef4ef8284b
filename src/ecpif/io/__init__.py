"""Instrument files in, canonical frames out.

* :func:`read_cycler` -> :class:`CyclerTable` (BioLogic ``.mpt``/``.mpr``, Neware
  ``.nda``/``.ndax``, CSV/TSV/Excel exports of BioLogic, Neware, Arbin, Maccor; ``.zip`` archives);
* :func:`read_refinement` -> :class:`PatternTable` (refinement tables, GSAS-II sequential CSV,
  pattern logs, NeXus acquisition times);
* :func:`read_run` -> :class:`ecpif.OperandoRun` from one cycler file and one refinement table.

All absolute times come out tz-aware in UTC; naive times in a file need ``timezone=``.

Examples
--------
>>> from ecpif import io, RunMetadata
>>> run = io.read_run(
...     "nca-1C_cycler.csv", "nca-1C_refinement.csv",
...     metadata=RunMetadata("nca-1C", nominal_capacity_Ah=5.0, c_rate=1.0),
... )  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError
from ecpif.io._common import convert, normalise_unit, write_atomic
from ecpif.io.cycler import CYCLER_FORMATS, CyclerTable, detect_cycler_format, read_cycler
from ecpif.io.structure import (
    STRUCTURE_FORMATS,
    PatternTable,
    read_nexus_times,
    read_pattern_log,
    read_refinement,
    read_table,
)
from ecpif.run import OperandoRun, RunMetadata

__all__ = [
    "CYCLER_FORMATS",
    "STRUCTURE_FORMATS",
    "CyclerTable",
    "PatternTable",
    "convert",
    "detect_cycler_format",
    "normalise_unit",
    "read_cycler",
    "read_nexus_times",
    "read_pattern_log",
    "read_refinement",
    "read_run",
    "read_table",
    "write_atomic",
]


def read_run(
    cycler: str | Path | CyclerTable,
    refinement: str | Path | Sequence[str | Path] | PatternTable | None = None,
    *,
    metadata: RunMetadata,
    timezone: str | None = None,
    clock_offset_s: float = 0.0,
    allow_partial_windows: bool = False,
    cycler_options: Mapping[str, Any] | None = None,
    refinement_options: Mapping[str, Any] | None = None,
) -> OperandoRun:
    """Read a cycler file and a refinement table (or pattern log) into an :class:`OperandoRun`.

    Parameters
    ----------
    cycler
        Cycler file (any format of :func:`read_cycler`) or an already read :class:`CyclerTable`.
    refinement
        Refinement table, pattern log or NeXus file(s), or a :class:`PatternTable`; ``None`` for
        a cycler-only run.
    metadata
        Run id, cell, nominal capacity, C-rate label. The time zone used and the readers' notes
        are recorded in it (``timezone`` and ``extra["io"]``).
    timezone
        IANA zone of naive times in both files (``None``: files must carry offsets or UTC).
    clock_offset_s
        Seconds added to the diffraction times to put them on the cycler clock (use it when the
        two instruments' clocks disagree; :func:`ecpif.align.estimate_clock_offset` estimates it).
    allow_partial_windows
        Build the run even when pattern windows reach outside the cycler data (the datalab
        session starts its first scan before the cycler); :func:`ecpif.align.align_run` then
        reports and handles those windows by its policy.
    cycler_options, refinement_options
        Extra keyword arguments for :func:`read_cycler` / :func:`read_refinement`
        (``column_map``, ``units``, ``member``, ``parameters``, ``pattern_log`` ...).

    Returns
    -------
    OperandoRun

    Examples
    --------
    >>> run = read_run(
    ...     "session.zip", "session.zip", timezone="Europe/London",
    ...     metadata=RunMetadata("coincell8"), allow_partial_windows=True,
    ... )  # doctest: +SKIP
    """
    cyc_kw = dict(cycler_options or {})
    ref_kw = dict(refinement_options or {})
    if isinstance(cycler, CyclerTable):
        table = cycler
    else:
        table = read_cycler(cycler, timezone=timezone, **cyc_kw)
    if refinement is None:
        patterns: PatternTable | None = None
    elif isinstance(refinement, PatternTable):
        patterns = refinement
    else:
        patterns = read_refinement(refinement, timezone=timezone, **ref_kw)
    pattern_frame = patterns.frame.copy() if patterns is not None else None
    if pattern_frame is not None and clock_offset_s:
        if not pd.notna(clock_offset_s):
            raise ConfigError(
                f"clock_offset_s must be a finite number of seconds; got {clock_offset_s!r}."
            )
        shift = pd.Timedelta(seconds=float(clock_offset_s))
        pattern_frame[schema.START] = pattern_frame[schema.START] + shift
        pattern_frame[schema.END] = pattern_frame[schema.END] + shift
    extra = dict(metadata.extra)
    extra["io"] = {
        "cycler": {
            "source": table.source,
            "format": table.format,
            "units": dict(table.units),
            "columns": dict(table.columns),
            "notes": list(table.notes),
        },
        "patterns": None
        if patterns is None
        else {
            "source": patterns.source,
            "format": patterns.format,
            "units": dict(patterns.units),
            "columns": dict(patterns.columns),
            "notes": list(patterns.notes),
            "ignored": list(patterns.ignored),
        },
        "clock_offset_s": float(clock_offset_s),
    }
    changes: dict[str, Any] = {"extra": extra}
    if timezone is not None:
        changes["timezone"] = timezone
    if not metadata.source:
        changes["source"] = table.source + ("" if patterns is None else f" + {patterns.source}")
    meta = dataclasses.replace(metadata, **changes)
    return OperandoRun(
        echem=table.frame,
        patterns=pattern_frame,  # type: ignore[arg-type]  # None -> empty table in OperandoRun
        metadata=meta,
        allow_partial_windows=allow_partial_windows,
    )
