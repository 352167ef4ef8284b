"""``ecpif align``: read instrument files, pair patterns with cycler data, write the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecpif.cli import app
from ecpif.errors import ConfigError


@app.command()
def align(
    cycler: Annotated[
        Path,
        typer.Argument(
            help="Cycler file (.mpt, .mpr, .nda, .ndax, .csv, .xlsx, .zip), or a folder written "
            "by 'ecpif simulate' (manifest.json) to align all its runs."
        ),
    ],
    refinement: Annotated[
        Path | None,
        typer.Argument(help="Refinement table, GSAS-II sequential CSV, pattern log or .zip."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Output path without suffix: writes .csv, .parquet, _report.csv.")
    ] = Path("aligned"),
    run_id: Annotated[str | None, typer.Option(help="Run id (default: the file stem).")] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA zone of naive times in the files, e.g. Europe/London."),
    ] = None,
    nominal_capacity: Annotated[
        float | None, typer.Option(help="Nominal capacity in A.h (for C-rate features).")
    ] = None,
    c_rate: Annotated[float | None, typer.Option(help="C-rate label of the run in 1/h.")] = None,
    pattern_log: Annotated[
        Path | None,
        typer.Option(help="Pattern log giving the times of a refinement table without times."),
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Windows not covered by cycler data: error, drop, clip or keep.")
    ] = "drop",
    min_coverage: Annotated[
        float, typer.Option(help="Covered fraction for a window to count as covered.")
    ] = 0.99,
    clock_offset: Annotated[
        float, typer.Option(help="Seconds added to pattern times to reach the cycler clock.")
    ] = 0.0,
    estimate_offset: Annotated[
        str | None,
        typer.Option(help="Estimate the clock offset from this refined parameter (e.g. c)."),
    ] = None,
    formats: Annotated[str, typer.Option(help="Output formats, comma-separated.")] = "csv,parquet",
) -> None:
    """Align diffraction patterns with cycler data and write the aligned dataset.

    Example: ecpif align session.zip session.zip --timezone Europe/London --out coincell8
    """
    from rich.console import Console
    from rich.table import Table

    from ecpif import align as al
    from ecpif.io import read_run, write_atomic
    from ecpif.run import RunMetadata

    console = Console()
    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    if cycler.is_dir():
        from ecpif.datasets import load_experiment

        if refinement is not None:
            raise ConfigError(
                "A folder of runs was given together with a refinement file; give either a "
                "folder written by 'ecpif simulate' or one cycler file and one refinement file."
            )
        runs = load_experiment(cycler)
    else:
        refinement_options = {}
        if pattern_log is not None:
            refinement_options["pattern_log"] = pattern_log
        metadata = RunMetadata(
            run_id=run_id or cycler.stem,
            nominal_capacity_Ah=nominal_capacity,
            c_rate=c_rate,
        )
        runs = [
            read_run(
                cycler,
                refinement,
                metadata=metadata,
                timezone=timezone,
                allow_partial_windows=True,  # the policy below decides, and the report says
                refinement_options=refinement_options,
            )
        ]
    frames, reports = [], []
    for run in runs:
        if not run.has_patterns:
            console.print(f"run {run.run_id}: no patterns (cycler only), skipped.")
            continue
        offset = clock_offset
        if estimate_offset is not None:
            est = al.estimate_clock_offset(run, estimate_offset)
            console.print(
                f"run {run.run_id}: estimated clock offset {est.offset_s:.1f} ± "
                f"{est.uncertainty_s:.1f} s from {est.parameter} ({est.n_patterns} patterns)."
            )
            offset = est.offset_s
        result = al.align_run(
            run,
            policy=policy,  # type: ignore[arg-type]  # validated by align_run
            clock_offset_s=offset,
            min_coverage=min_coverage,
        )
        frames.append(result.frame)
        reports.append(result.report)
    if not frames:
        raise ConfigError(f"No run in {cycler} has diffraction patterns; nothing to align.")
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True, sort=False)
    report = pd.concat(reports, ignore_index=True, sort=False)
    written = al.write_aligned(frame, out, formats=fmts)
    base = out.with_suffix("") if out.suffix.lower() in (".csv", ".parquet") else out
    report_path = base.parent / f"{base.name}_report.csv"
    written.append(write_atomic(report_path, lambda p: report.to_csv(p, index=False)))

    table = Table("run", "patterns", "kept", "clipped", "dropped", "kept-nan")
    for run_id_, group in report.groupby(al.schema.RUN_ID, sort=False):
        counts = group[al.STATUS].value_counts()
        table.add_row(
            str(run_id_),
            str(len(group)),
            *(str(int(counts.get(s, 0))) for s in ("kept", "clipped", "dropped", "kept-nan")),
        )
    console.print(table)
    for _, row in report[report[al.REASON] != ""].iterrows():
        console.print(
            f"pattern {row[al.schema.PATTERN_ID]} of {row[al.schema.RUN_ID]}: {row[al.STATUS]}, "
            f"{row[al.REASON]}"
        )
    console.print("Wrote " + ", ".join(str(p) for p in written))
