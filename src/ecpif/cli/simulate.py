"""``ecpif simulate``: run the virtual operando experiment and write its files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ecpif.cli import app
from ecpif.errors import ConfigError


def _parse_rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--rates must be comma-separated numbers in 1/h, e.g. '0.2,0.5,1,2'; got {text!r}."
        ) from None


def _parse_exposures(text: str) -> dict[float, float | None]:
    out: dict[float, float | None] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        rate, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[float(rate)] = None if value.strip().lower() in {"none", "-", ""} else float(value)
        except ValueError:
            raise ConfigError(
                f"--exposures must look like '0.2=600,0.5=300,1=180,2=none' (rate=seconds); got "
                f"{part!r}."
            ) from None
    return out


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the files into.")] = Path(
        "ecpif-simulated"
    ),
    rates: Annotated[str, typer.Option(help="C-rates in 1/h, comma-separated.")] = "0.2,0.5,1,2",
    exposures: Annotated[
        str,
        typer.Option(help="Exposure per pattern in s for each rate; 'none' = no diffraction."),
    ] = "0.2=600,0.5=300,1=180,2=none",
    parameter_set: Annotated[str, typer.Option(help="PyBaMM parameter set.")] = "NCA_Kim2011",
    model: Annotated[str, typer.Option(help="PyBaMM model: SPMe, SPM or DFN.")] = "SPMe",
    radius_um: Annotated[float, typer.Option(help="Cathode particle radius in µm.")] = 5.0,
    period: Annotated[float, typer.Option(help="Cycler sampling period in s.")] = 10.0,
    rest_min: Annotated[float, typer.Option(help="Rest after charge in minutes.")] = 30.0,
    cycles: Annotated[int, typer.Option(help="Number of charge/discharge cycles.")] = 1,
    dead_time: Annotated[float, typer.Option(help="Detector read-out time in s.")] = 0.0,
    antisite: Annotated[float, typer.Option(help="Li/Ni antisite fraction.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the refinement noise.")] = 0,
) -> None:
    """Run the virtual operando experiment (PyBaMM + structural model + diffractometer).

    Writes a BioLogic-style cycler CSV, a refinement table with esd columns and the ground truth
    for every rate, plus manifest.json.

    Example: ecpif simulate --rates 0.2,1,2 --exposures 0.2=600,1=180 --out sim
    """
    from rich.console import Console
    from rich.table import Table

    from ecpif.simulate import VirtualExperiment, nca_structure, simulate, write_experiment

    config = VirtualExperiment(
        rates=_parse_rates(rates),
        exposures=_parse_exposures(exposures),
        parameter_set=parameter_set,
        model=model,
        particle_radius_m=radius_um / 1e6,
        period_s=period,
        rest_s=rest_min * 60.0,
        n_cycles=cycles,
        dead_time_s=dead_time,
        structure=nca_structure(antisite) if antisite else None,
        seed=seed,
    )
    start = time.perf_counter()
    runs = simulate(config)
    folder = write_experiment(runs, out, config)
    elapsed = time.perf_counter() - start
    table = Table("run", "cycler rows", "patterns", "duration [h]", "charge max [mA.h]")
    from ecpif import schema

    for run in runs:
        table.add_row(
            run.run_id,
            str(len(run.echem)),
            str(len(run.patterns)),
            f"{run.echem[schema.TIME].iloc[-1] / 3600:.2f}",
            f"{run.echem[schema.CHARGE].max():.1f}",
        )
    console = Console()
    console.print(table)
    console.print(f"Wrote {folder} in {elapsed:.1f} s.")
