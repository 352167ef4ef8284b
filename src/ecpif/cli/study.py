"""``ecpif demo`` and ``ecpif report``: the whole chain, from the bundled data or a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ecpif.cli import app

if TYPE_CHECKING:
    from ecpif.pipeline import StudyConfig


def _run_and_write(config: StudyConfig, out: Path, quiet: bool) -> None:
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ecpif.pipeline import run, write_results

    console = Console(quiet=quiet)
    start = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(step: str, fraction: float) -> None:
            bar.update(task, description=step, completed=fraction)

        results = run(config, progress=progress)
        bar.update(task, description="writing report and files", completed=0.97)
        folder = write_results(results, out)
    elapsed = time.perf_counter() - start

    if results.truth_scores is not None:
        table = Table(
            "run",
            "regime",
            *[t for t in results.model.targets],
            title="RMSE against ground truth / 5-min esd",
        )
        scores = results.truth_scores
        for run_id, part in scores.groupby("run id", sort=False):
            values = part.set_index("target")["RMSE/esd"]
            table.add_row(
                str(run_id),
                str(part["regime"].iloc[0]),
                *[f"{values.get(t, float('nan')):.2f}" for t in results.model.targets],
            )
        console.print(table)
    kinds = ", ".join(
        f"{t}: {k} ({'+'.join(results.model.members[t])})" for t, k in results.model.kinds.items()
    )
    console.print(f"Final model ({results.config.final_scheme}-chosen): {kinds}")
    console.print(f"Finished in {elapsed:.0f} s. Report: [bold]{folder / 'report.html'}[/]")


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option(help="Output folder (replaced as a whole on success).")
    ] = Path("ecpif-demo"),
    models: Annotated[str, typer.Option(help="Comma-separated zoo models, or 'all'.")] = "all",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    n_jobs: Annotated[int, typer.Option(help="Parallel jobs.")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
) -> None:
    """Run the whole chain on the bundled virtual NCA dataset and write the report.

    align -> explore -> zoo (shuffled, grouped, leave-one-rate-out) -> ensembles -> 2C
    reconstruction -> Rabs -> report.html, figures, leaderboard.csv, predictions.csv, model.skops.

    Example: ecpif demo --out ecpif-demo
    """
    from ecpif.pipeline import StudyConfig

    chosen: str | tuple[str, ...] = (
        "all" if models == "all" else tuple(m.strip() for m in models.split(",") if m.strip())
    )
    _run_and_write(StudyConfig(models=chosen, seed=seed, n_jobs=n_jobs), out, quiet)


@app.command()
def report(
    config: Annotated[Path, typer.Argument(help="TOML study file (see README).")],
    out: Annotated[
        Path, typer.Option(help="Output folder (replaced as a whole on success).")
    ] = Path("ecpif-output"),
    models: Annotated[str | None, typer.Option(help="Override: comma-separated models.")] = None,
    scheme: Annotated[
        str | None, typer.Option(help="Override: final scheme (shuffled, grouped, loro).")
    ] = None,
    ensemble: Annotated[str | None, typer.Option(help="Override: ensemble mode.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override: random seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
) -> None:
    """Run a study described by a TOML file and write its report and outputs.

    Flags override the file. Example: ecpif report study.toml --models ridge,extra_trees --out out
    """
    from ecpif.pipeline import StudyConfig

    overrides: dict[str, object] = {"seed": seed, "ensemble": ensemble, "final_scheme": scheme}
    if models:
        overrides["models"] = tuple(m.strip() for m in models.split(",") if m.strip())
    cfg = StudyConfig.from_toml(config, **overrides)
    _run_and_write(cfg, out, quiet)
