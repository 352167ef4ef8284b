"""``ecpif explore``: correlations, feature network and suggested features of an aligned table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ecpif.cli import app
from ecpif.cli._common import read_table, split_list
from ecpif.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def default_columns(data: pd.DataFrame, targets: list[str] | None) -> tuple[list[str], list[str]]:
    """Targets (structural parameters present) and features (other informative numbers).

    Features leave out every structural parameter (targets or not), esd columns, the window
    bookkeeping of :mod:`ecpif.align`, ``time [s]`` (it measures the run, not the cell), and
    columns with missing values or a single value, which carry nothing to correlate.
    """
    import pandas as pd

    from ecpif import schema
    from ecpif.align import WINDOW_COLUMNS

    if targets is None:
        targets = [p.column for p in schema.PARAMETERS.values() if p.column in data.columns]
        if not targets:
            raise ConfigError(
                f"The table has no structural-parameter column {list(schema.PARAMETERS)}; name "
                f"the targets with --targets (e.g. --targets 'z_O [-]')."
            )
    else:
        targets = [schema.parameter_column(t) for t in targets]
    # Structural parameters are never inputs, even those not chosen as targets.
    parameters = {p.column for p in schema.PARAMETERS.values()}
    skip = {*targets, *parameters, *WINDOW_COLUMNS, schema.TIME, schema.PATTERN_ID, schema.RUN_ID}
    features = []
    for col in data.columns:
        series = data[col]
        if (
            col in skip
            or str(col).startswith("esd ")
            or not pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or series.isna().any()
            or series.nunique() <= 1
        ):
            continue
        features.append(str(col))
    if not features:
        raise ConfigError(
            "The table has no numeric feature column without missing values; name the features "
            "with --features."
        )
    return targets, features


@app.command()
def explore(
    data: Annotated[
        Path, typer.Argument(help="Aligned table (.csv or .parquet) from 'ecpif align'.")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write figures and tables into.")] = Path(
        "ecpif-explore"
    ),
    features: Annotated[
        str | None,
        typer.Option(help="Feature columns, comma-separated (default: every informative one)."),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(help="Target columns or short names, comma-separated (default: a, c, d ...)."),
    ] = None,
    network_threshold: Annotated[
        float, typer.Option(help="|r| above which the network joins two columns.")
    ] = 0.8,
    duplicate_threshold: Annotated[
        float, typer.Option(help="|r| above which two features count as near-duplicates.")
    ] = 0.95,
    method: Annotated[
        str, typer.Option(help="Correlation used to find near-duplicates: pearson or spearman.")
    ] = "pearson",
    seed: Annotated[int, typer.Option(help="Seed of the mutual-information estimator.")] = 0,
    html: Annotated[bool, typer.Option(help="Also write exploration.html.")] = True,
) -> None:
    """Correlation heatmaps, feature network and suggested features of an aligned table.

    Writes pearson / spearman / network figures (PNG + SVG), the matrices and mutual information
    as CSV, suggested_features.json (kept and dropped features with the reason) and, unless
    --no-html, a self-contained exploration.html.

    Example: ecpif explore aligned.parquet --out explore --duplicate-threshold 0.98
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from ecpif import explore as ex
    from ecpif.io import write_atomic
    from ecpif.report import Report, ReportContent
    from ecpif.report import figures as figs

    table = read_table(data, "explore")
    target_cols, feature_cols = default_columns(table, split_list(targets))
    if features is not None:
        feature_cols = split_list(features) or []
    columns = feature_cols + [t for t in target_cols if t not in feature_cols]
    pearson = ex.correlations(table, columns, method="pearson")
    spearman = ex.correlations(table, columns, method="spearman")
    mi = ex.mutual_information(table, feature_cols, target_cols, random_state=seed)
    suggestion = ex.suggest_features(
        table, feature_cols, target_cols, duplicate_threshold, method=method, random_state=seed
    )
    network = ex.feature_network(
        pearson if method == "pearson" else spearman, network_threshold, target_cols
    )

    out.mkdir(parents=True, exist_ok=True)
    written = []
    written += figs.save_figure(figs.correlation_heatmap(pearson, "pearson"), out / "pearson")
    written += figs.save_figure(figs.correlation_heatmap(spearman, "spearman"), out / "spearman")
    written += figs.save_figure(figs.network_figure(network), out / "network")
    for name, frame in (("pearson", pearson), ("spearman", spearman), ("mutual_information", mi)):
        written.append(write_atomic(out / f"{name}.csv", lambda p, f=frame: f.to_csv(p)))
    text = json.dumps(suggestion.to_dict(), indent=2, ensure_ascii=False)
    written.append(
        write_atomic(out / "suggested_features.json", lambda p: p.write_text(text, "utf-8"))
    )
    if html:
        content = ReportContent(
            title=f"Exploration of {data.name}",
            pearson=pearson,
            spearman=spearman,
            mutual_information=mi,
            network=network,
            suggestion=suggestion,
        )
        written.append(Report(content).write_html(out / "exploration.html"))

    console = Console()
    # Column names carry units in square brackets, which rich would read as markup: use Text.
    view = Table("feature", "status", escape("MI [nats]"), "reason", title="Suggested features")
    for row in suggestion.to_frame().itertuples(index=False):
        view.add_row(Text(str(row[0])), str(row[1]), f"{row[2]:.3g}", Text(str(row[3])))
    console.print(view)
    console.print(Text(f"Wrote {len(written)} files to {out}."))
