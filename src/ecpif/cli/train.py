"""``ecpif train`` and ``ecpif predict``: leaderboard + bundle from aligned data; trajectories.

Both commands only parse, call the library (:mod:`ecpif.validate`, :mod:`ecpif.ensemble`,
:mod:`ecpif.bundle`, :mod:`ecpif.predict`) and print a short summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecpif.cli import app
from ecpif.cli._common import read_table, split_list, training_features


@app.command()
def train(
    data: Annotated[
        Path, typer.Argument(help="Aligned table (.csv or .parquet), one row per pattern.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for leaderboard and bundle.")] = Path(
        "ecpif-model"
    ),
    features: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated feature columns (default: voltage, current, charge, "
            "direction, C-rate)."
        ),
    ] = None,
    targets: Annotated[
        str, typer.Option(help="Comma-separated targets (short names or columns).")
    ] = "a,c,d,li_occupancy",
    scheme: Annotated[str, typer.Option(help="CV scheme: shuffled, grouped or loro.")] = "loro",
    models: Annotated[str, typer.Option(help="'all' or comma-separated zoo model names.")] = "all",
    kind: Annotated[
        str,
        typer.Option(help="Final model: auto, best_single, voting, stacking, study or a model."),
    ] = "auto",
    top_k: Annotated[int, typer.Option(help="Members of voting and stacking.")] = 5,
    n_jobs: Annotated[int, typer.Option(help="Parallel workers.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed (folds and models).")] = 0,
) -> None:
    """Cross-validate the model zoo, fit the final ensemble, write leaderboard and bundle.

    Example: ecpif train aligned.parquet --scheme loro --out nca-model
    """
    from rich.console import Console

    from ecpif.bundle import save_bundle
    from ecpif.ensemble import fit_ensemble
    from ecpif.uncertainty import held_out_coverage
    from ecpif.validate import DEFAULT_FEATURES, evaluate_zoo, write_csv_atomic

    console = Console()
    table = read_table(data, "train")
    feature_list = training_features(table, features, DEFAULT_FEATURES, data)
    target_list = split_list(targets) or []
    model_list: str | list[str] = "all" if models == "all" else (split_list(models) or [])
    result = evaluate_zoo(
        table, feature_list, target_list, models=model_list, scheme=scheme, top_k=top_k,
        n_jobs=n_jobs, random_state=seed,
    )  # fmt: skip
    model = fit_ensemble(table, result, kind=kind, top_k=top_k)
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "leaderboard.csv")
    write_csv_atomic(result.predictions_frame(), out / "oof_predictions.csv")
    write_csv_atomic(held_out_coverage(result, model="auto"), out / "coverage.csv")
    bundle = save_bundle(model, out / "model.skops")
    console.print(f"features: {', '.join(feature_list)}; scheme: {scheme}")
    for t in result.targets:
        best = result.for_target(t).iloc[0]
        console.print(
            f"{t}: best {best['model']} (RMSE {best['RMSE']:.3g}, RMSE/esd "
            f"{best['RMSE/esd']:.2f}); final model {model.kinds[t]} of {model.members[t]}"
        )
    console.print(f"wrote {out / 'leaderboard.csv'} and {bundle}")


@app.command()
def predict(
    bundle: Annotated[Path, typer.Argument(help="Model bundle (.skops) from 'ecpif train'.")],
    cycler: Annotated[Path, typer.Argument(help="Cycler file of the run to predict.")],
    out: Annotated[Path, typer.Option(help="Output trajectory CSV.")] = Path("trajectory.csv"),
    nominal_capacity: Annotated[
        float | None,
        typer.Option(help="Nominal capacity in A.h (default: the one of the training data)."),
    ] = None,
    c_rate: Annotated[
        float | None, typer.Option(help="C-rate label of the run (if the model uses it).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of naive times in the cycler file.")
    ] = None,
    confidence: Annotated[float, typer.Option(help="Interval confidence level.")] = 0.9,
    allow_version_mismatch: Annotated[
        bool, typer.Option(help="Load a bundle saved with other library versions.")
    ] = False,
) -> None:
    """Predict structural trajectories (with intervals) for a cycler-only run.

    Example: ecpif predict nca-model/model.skops nca-2C_cycler.csv --out nca-2C_structure.csv
    """
    import warnings

    from rich.console import Console

    from ecpif.bundle import load_bundle
    from ecpif.io import read_cycler
    from ecpif.predict import ApplicabilityWarning, predict_run
    from ecpif.validate import write_csv_atomic

    console = Console(stderr=True)
    model = load_bundle(bundle, allow_version_mismatch=allow_version_mismatch)
    echem = read_cycler(cycler, timezone=timezone).frame
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApplicabilityWarning)
        traj = predict_run(
            model, echem, nominal_capacity_Ah=nominal_capacity, c_rate=c_rate,
            confidence=confidence,
        )  # fmt: skip
    for w in caught:
        if issubclass(w.category, ApplicabilityWarning):
            console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    write_csv_atomic(traj, out)
    console.print(f"wrote {len(traj)} rows to {out}")
