"""``ecpif tune``, ``ecpif predict-archive`` and ``ecpif study``: beyond one machine and memory.

* ``ecpif tune``: tuned vs untuned zoo models on an aligned table, nested in the same folds.
* ``ecpif predict-archive``: trajectories for a Parquet cycler archive larger than memory.
* ``ecpif study``: a TOML study with the switches of this family (``--backend``, ``--address``,
  ``--tune``, ``--group-by``) on the command line.

Each command parses, calls the library (:mod:`ecpif.tune`, :mod:`ecpif.stream`,
:mod:`ecpif.pipeline`, :mod:`ecpif.backend`) and prints a short summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecpif.cli import app
from ecpif.cli._common import read_table, split_list, training_features

BackendOption = Annotated[
    str, typer.Option(help="Where the parallel work runs: local or dask.")
]  # fmt: skip
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Dask scheduler address (tcp://host:8786); without one, 'dask' starts a local "
        "cluster on 127.0.0.1.",
    ),
]


@app.command()
def tune(
    data: Annotated[
        Path, typer.Argument(help="Aligned table (.csv or .parquet), one row per pattern.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("ecpif-tuning"),
    models: Annotated[
        str, typer.Option(help="Comma-separated zoo models (or 'all').")
    ] = "ridge,knn,extra_trees",
    tune_models: Annotated[
        str, typer.Option("--tune-models", help="Which models to tune: 'all' or names.")
    ] = "all",
    features: Annotated[
        str | None, typer.Option(help="Comma-separated feature columns (default set if absent).")
    ] = None,
    targets: Annotated[str, typer.Option(help="Comma-separated targets.")] = "a,c,d,li_occupancy",
    scheme: Annotated[str, typer.Option(help="CV scheme: shuffled, grouped or loro.")] = "loro",
    trials: Annotated[int, typer.Option(help="Trials per search.")] = 20,
    budget_s: Annotated[
        float | None,
        typer.Option("--budget-s", help="Seconds per model for all its searches (optional)."),
    ] = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    n_jobs: Annotated[int, typer.Option(help="Parallel workers (local) / cluster size.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Cross-validate zoo models and their tuned variants in the same outer folds.

    Writes leaderboard.csv (tuned rows are named <model>_tuned), tuning.csv (every search) and
    tuning_summary.csv (tuned vs untuned). Example: ecpif tune aligned.parquet --models knn,svr
    """
    from rich.console import Console
    from rich.table import Table

    from ecpif.backend import parallel_backend
    from ecpif.pipeline import DEFAULT_FEATURES
    from ecpif.tune import TuningBudget, evaluate_tuned, tuning_summary
    from ecpif.validate import write_csv_atomic

    console = Console()
    table = read_table(data, "tune")
    feature_list = training_features(table, features, DEFAULT_FEATURES, data)
    model_list: str | list[str] = "all" if models == "all" else (split_list(models) or [])
    to_tune: str | list[str] = "all" if tune_models == "all" else (split_list(tune_models) or [])
    budget = TuningBudget(n_trials=trials, budget_s=budget_s)
    with parallel_backend(backend, address, n_workers=max(n_jobs, 1)) as engine:
        result = evaluate_tuned(
            table, feature_list, split_list(targets) or [], models=model_list, tune=to_tune,
            budget=budget, scheme=scheme, n_jobs=n_jobs if engine.name == "local" else -1,
            random_state=seed,
        )  # fmt: skip
    summary = tuning_summary(result)
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "leaderboard.csv")
    write_csv_atomic(result.tuning, out / "tuning.csv")
    write_csv_atomic(summary, out / "tuning_summary.csv")
    view = Table("target", "model", "RMSE untuned", "RMSE tuned", "gain [%]", "trials",
                 title=f"Tuned vs untuned ({scheme}, {engine.name})")  # fmt: skip
    nan = float("nan")
    for _, r in summary.iterrows():
        view.add_row(str(r["target"]), str(r["model"]), f"{r.get('RMSE untuned', nan):.4g}",
                     f"{r['RMSE tuned']:.4g}", f"{r.get('gain [%]', nan):+.1f}",
                     f"{r.get('mean trials', nan):.1f}")  # fmt: skip
    console.print(view)
    console.print(f"wrote {out / 'leaderboard.csv'}, tuning.csv and tuning_summary.csv")


@app.command("predict-archive")
def predict_archive(
    bundle: Annotated[Path, typer.Argument(help="Model bundle (.skops) from 'ecpif train'.")],
    archive: Annotated[Path, typer.Argument(help="Parquet cycler archive (canonical columns).")],
    out: Annotated[Path, typer.Option(help="Output Parquet file.")] = Path("structure.parquet"),
    batch_rows: Annotated[int, typer.Option(help="Rows read per batch (the memory knob).")] = (
        500_000
    ),
    nominal_capacity: Annotated[
        float | None, typer.Option(help="Nominal capacity in A.h (default: the model's).")
    ] = None,
    c_rate: Annotated[
        float | None,
        typer.Option(help="C-rate label, if the model uses one and the archive lacks it."),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Interval confidence level.")] = 0.9,
    allow_version_mismatch: Annotated[
        bool, typer.Option(help="Load a bundle saved with other library versions.")
    ] = False,
) -> None:
    """Predict trajectories for a cycler archive larger than memory, streaming Parquet in and out.

    Example: ecpif predict-archive model.skops cycler.parquet --out structure.parquet --c-rate 2
    """
    import warnings

    from rich.console import Console

    from ecpif.bundle import load_bundle
    from ecpif.predict import ApplicabilityWarning
    from ecpif.stream import predict_parquet

    console = Console(stderr=True)
    model = load_bundle(bundle, allow_version_mismatch=allow_version_mismatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApplicabilityWarning)
        rep = predict_parquet(
            model, archive, out, nominal_capacity_Ah=nominal_capacity, c_rate=c_rate,
            confidence=confidence, batch_rows=batch_rows,
        )  # fmt: skip
    for w in caught:
        if issubclass(w.category, ApplicabilityWarning):
            console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    console.print(
        f"wrote {rep.rows:,} rows ({rep.runs} run(s)) to {rep.path} in {rep.seconds:.1f} s "
        f"({rep.rows_per_s:,.0f} rows/s, {rep.passes} pass(es) over the archive)"
    )


@app.command()
def study(
    config: Annotated[Path, typer.Argument(help="TOML study file (see README).")],
    out: Annotated[Path, typer.Option(help="Output folder (replaced as a whole on success).")] = (
        Path("ecpif-output")
    ),
    backend: Annotated[
        str | None, typer.Option(help="Override: where the work runs (local or dask).")
    ] = None,
    address: AddressOption = None,
    tune: Annotated[
        bool | None, typer.Option("--tune/--no-tune", help="Override: add tuned models.")
    ] = None,
    tune_trials: Annotated[int | None, typer.Option(help="Override: trials per search.")] = None,
    tune_budget_s: Annotated[
        float | None, typer.Option(help="Override: seconds per tuned model and scheme.")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option(help="Override: grouped scheme holds out a 'run' or a 'cell'.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing.")] = False,
) -> None:
    """Run a TOML study with distributed, tuning and multi-cell switches; write its report.

    Example: ecpif study cells.toml --backend dask --tune --group-by cell --out cells-report
    """
    from ecpif.cli.study import _run_and_write
    from ecpif.pipeline import StudyConfig

    overrides: dict[str, object] = {
        "backend": backend, "backend_address": address, "tune": tune, "tune_trials": tune_trials,
        "tune_budget_s": tune_budget_s, "group_by": group_by,
    }  # fmt: skip
    cfg = StudyConfig.from_toml(config, **overrides)
    _run_and_write(cfg, out, quiet)
