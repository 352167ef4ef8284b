"""The page: one column of numbered steps, from data to downloads.

Every control has a stable ``id`` (the browser tests and the callbacks use them). The layout is a
function, so each page load gets a fresh session id.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from dash import dcc, html

from ecpif.app.state import new_session_id
from ecpif.app.views import empty_figure

#: Models proposed by the "fast" button: three families, each fitting in well under a second.
FAST_MODELS: tuple[str, ...] = ("ridge", "knn", "extra_trees")
ENSEMBLE_MODES: tuple[tuple[str, str], ...] = (
    ("auto", "auto: best of single / voting / stacking, per target"),
    ("best_single", "best single model"),
    ("voting", "voting (mean of the top models)"),
    ("stacking", "stacking (convex weights)"),
    ("study", "reference study (voting for a, c, d; stacking for Li occupancy)"),
)
SCHEME_LABELS: dict[str, str] = {
    "shuffled": "shuffled 5-fold (interpolation in time)",
    "grouped": "grouped by run (whole runs held out)",
    "loro": "leave one rate out (honest for a new rate)",
}
POLICIES: tuple[tuple[str, str], ...] = (
    ("drop", "drop windows not fully covered"),
    ("clip", "average over the covered part"),
    ("keep", "keep them with missing values"),
    ("error", "stop with an error"),
)


def _zones() -> list[str]:
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
    return ["UTC", *zones]


def _upload(slot: str, label: str, accept: str | None = None) -> html.Div:
    return html.Div(
        [
            dcc.Upload(
                id={"type": "upload", "slot": slot},
                children=html.Div(
                    [label, html.Span(" (drop a file here or click)", className="muted")]
                ),
                className="upload",
                multiple=False,
                accept=accept,
            ),
            dcc.Store(id={"type": "payload", "slot": slot}),
            html.Div(id=f"{slot}-readout", className="readout-box"),
        ],
        className="upload-block",
    )


def _field(label: str, control: Any, hint: str = "") -> html.Div:
    parts: list[Any] = [html.Span(label, className="label"), control]
    if hint:
        parts.append(html.Span(hint, className="hint"))
    return html.Div(parts, className="field")


def _section(number: int, title: str, sid: str, children: list[Any], intro: str = "") -> Any:
    head: list[Any] = [html.H2(f"{number}. {title}")]
    if intro:
        head.append(html.P(intro, className="intro"))
    return html.Section([*head, *children], id=sid, className="step")


def data_section(zones: list[str]) -> Any:
    return _section(
        1,
        "Data",
        "data-section",
        [
            html.Div(
                [
                    html.Button("Load the demo dataset", id="load-demo", className="primary"),
                    html.Span(
                        " virtual NCA‖graphite operando experiment: 0.2C, 0.5C, 1C with "
                        "diffraction, 2C cycler only, ground truth everywhere",
                        className="muted",
                    ),
                ],
                className="row",
            ),
            html.H3("…or upload one run at a time"),
            html.Div(
                [
                    _upload("cycler", "Cycler file (.mpt, .mpr, .nda(x), .csv, .xlsx, .zip)"),
                    _upload(
                        "refinement",
                        "Refinement table or pattern log (.csv, .xlsx, .zip; optional)",
                    ),
                ],
                className="two",
            ),
            html.Div(
                [
                    _field(
                        "run id",
                        dcc.Input(
                            id="run-id", type="text", debounce=True, placeholder="e.g. cell4-1C"
                        ),
                    ),
                    _field(
                        "C-rate [1/h]",
                        dcc.Input(
                            id="c-rate", type="number", min=0, step="any", placeholder="e.g. 1"
                        ),
                        "needed for leave-one-rate-out",
                    ),
                    _field(
                        "nominal capacity [A.h]",
                        dcc.Input(
                            id="capacity",
                            type="number",
                            min=0,
                            step="any",
                            placeholder="e.g. 0.005",
                        ),
                    ),
                    _field(
                        "time zone of the instrument clocks",
                        dcc.Dropdown(
                            id="timezone",
                            options=zones,
                            placeholder="only for naive times",
                            clearable=True,
                            className="tz",
                        ),
                    ),
                    _field(
                        "clock offset [s]",
                        dcc.Input(id="clock-offset", type="number", value=0, step="any"),
                        "added to the diffraction times",
                    ),
                ],
                className="fields",
            ),
            html.Div(
                [
                    html.Button("Add this run", id="add-run"),
                    html.Button("Remove all runs", id="clear-runs", className="quiet"),
                ],
                className="row",
            ),
            dcc.Loading(html.Div(id="data-message"), type="dot"),
            html.H3("Loaded runs"),
            html.Div(id="runs-table"),
        ],
        "Load the demo, or upload a cycler file with its refinement table (or pattern log). "
        "Runs without a refinement table are predicted, not trained on.",
    )


def alignment_section() -> Any:
    return _section(
        2,
        "Alignment",
        "alignment-section",
        [
            html.Div(
                [
                    _field(
                        "windows not fully covered by cycler data",
                        dcc.Dropdown(
                            id="align-policy",
                            options=[{"label": label, "value": v} for v, label in POLICIES],
                            value="drop",
                            clearable=False,
                        ),
                    ),
                    _field("run", dcc.Dropdown(id="align-run", options=[], clearable=False)),
                ],
                className="fields",
            ),
            dcc.Loading(
                [
                    html.Div(id="align-summary"),
                    dcc.Graph(
                        id="align-graph",
                        figure=empty_figure("Load data first."),
                        config={"displaylogo": False},
                    ),
                    html.Div(id="align-report"),
                ],
                type="dot",
            ),
        ],
        "Each diffraction pattern is paired with the cycler data of its acquisition window; "
        "windows are shaded by status.",
    )


def explore_section() -> Any:
    return _section(
        3,
        "Features and targets",
        "explore-section",
        [
            html.Div(
                [
                    _field(
                        "correlation",
                        dcc.RadioItems(
                            id="corr-method",
                            options=["pearson", "spearman"],
                            value="pearson",
                            inline=True,
                        ),
                    ),
                    _field(
                        "network edge |r| >",
                        dcc.Slider(
                            id="net-threshold",
                            min=0.5,
                            max=0.99,
                            step=0.01,
                            value=0.8,
                            marks={0.5: "0.5", 0.8: "0.8", 0.95: "0.95"},
                        ),
                    ),
                ],
                className="fields",
            ),
            dcc.Loading(
                [html.Div(id="explore-figures", className="gallery"), html.Div(id="suggestion")],
                type="dot",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Features (model inputs)"),
                            html.Button(
                                "Use the suggested set", id="use-suggested", className="quiet"
                            ),
                            dcc.Checklist(id="features", options=[], value=[], className="checks"),
                        ]
                    ),
                    html.Div(
                        [
                            html.H3("Targets (refined parameters)"),
                            dcc.Checklist(id="targets", options=[], value=[], className="checks"),
                        ]
                    ),
                ],
                className="two",
            ),
        ],
        "Which cycler-derived features follow which structural parameter, and which are "
        "near-copies of each other.",
    )


def models_section(models: list[str]) -> Any:
    return _section(
        4,
        "Models, validation and run",
        "models-section",
        [
            html.Div(
                [
                    html.Button("All", id="models-all", className="quiet"),
                    html.Button(
                        "Fast (ridge, knn, extra trees)", id="models-fast", className="quiet"
                    ),
                    html.Button("None", id="models-none", className="quiet"),
                ],
                className="row",
            ),
            dcc.Checklist(
                id="models",
                options=models,
                value=list(models),
                className="checks models",
                inline=True,
            ),
            html.Div(
                [
                    _field(
                        "validation schemes",
                        dcc.Checklist(
                            id="schemes",
                            options=[
                                {"label": lab, "value": v} for v, lab in SCHEME_LABELS.items()
                            ],
                            value=list(SCHEME_LABELS),
                            className="checks",
                        ),
                    ),
                    _field(
                        "final scheme (chooses the ensemble, calibrates intervals)",
                        dcc.Dropdown(
                            id="final-scheme",
                            options=list(SCHEME_LABELS),
                            value="loro",
                            clearable=False,
                        ),
                    ),
                    _field(
                        "ensemble",
                        dcc.Dropdown(
                            id="ensemble-mode",
                            options=[{"label": lab, "value": v} for v, lab in ENSEMBLE_MODES],
                            value="auto",
                            clearable=False,
                        ),
                    ),
                    _field(
                        "interval confidence",
                        dcc.Input(
                            id="confidence", type="number", min=0.5, max=0.99, step=0.01, value=0.9
                        ),
                    ),
                ],
                className="fields",
            ),
            html.Div(
                [
                    html.Button("Run", id="run-study", className="primary"),
                    html.Button("Cancel", id="cancel-study", disabled=True, className="quiet"),
                ],
                className="row",
            ),
            html.Progress(id="progress", value="0", max="100", className="progress"),
            html.Div(id="job-status", role="status"),
            dcc.Interval(id="poll", interval=600, disabled=True),
        ],
        "Every chosen model is cross-validated under every chosen scheme; the run happens in "
        "the background and can be cancelled.",
    )


def results_section() -> Any:
    return _section(
        5,
        "Results",
        "results-section",
        [
            html.Div(id="results-summary", className="muted", children="No results yet."),
            html.H3("Leaderboard"),
            html.Div(
                [
                    _field(
                        "scheme",
                        dcc.Dropdown(id="lb-scheme", options=[], clearable=True, placeholder="all"),
                    ),
                    _field(
                        "target",
                        dcc.Dropdown(id="lb-target", options=[], clearable=True, placeholder="all"),
                    ),
                ],
                className="fields",
            ),
            html.Div(id="leaderboard-box"),
            html.H3("Final model and ensembles"),
            html.Div(id="ensembles-box"),
            html.Div(id="figures-box"),
        ],
    )


def predict_section(zones: list[str]) -> Any:
    return _section(
        6,
        "Predict a cycler-only run",
        "predict-section",
        [
            html.Div(
                [
                    _upload("predict", "Cycler file to predict"),
                    html.Div(
                        [
                            _field(
                                "model",
                                dcc.RadioItems(
                                    id="predict-model",
                                    options=[
                                        {"label": "the model trained above", "value": "trained"},
                                        {"label": "a saved bundle (.skops)", "value": "bundle"},
                                    ],
                                    value="trained",
                                ),
                            ),
                            _upload("bundle", "Model bundle (.skops)", accept=".skops"),
                        ]
                    ),
                ],
                className="two",
            ),
            html.Div(
                [
                    _field(
                        "run id",
                        dcc.Input(
                            id="predict-run-id", type="text", placeholder="from the file name"
                        ),
                    ),
                    _field(
                        "C-rate [1/h]",
                        dcc.Input(id="predict-c-rate", type="number", min=0, step="any"),
                    ),
                    _field(
                        "nominal capacity [A.h]",
                        dcc.Input(id="predict-capacity", type="number", min=0, step="any"),
                    ),
                    _field(
                        "time zone",
                        dcc.Dropdown(
                            id="predict-timezone",
                            options=zones,
                            clearable=True,
                            className="tz",
                            placeholder="only for naive times",
                        ),
                    ),
                ],
                className="fields",
            ),
            html.Div(
                [
                    html.Button("Predict", id="predict-button", className="primary"),
                    html.Button(
                        "Download these predictions (CSV)",
                        id="download-prediction",
                        disabled=True,
                        className="quiet",
                    ),
                ],
                className="row",
            ),
            dcc.Loading(html.Div(id="predict-output"), type="dot"),
            dcc.Download(id="download-prediction-file"),
        ],
        "Structural trajectories at every cycler sample, with intervals, for a run measured "
        "without diffraction.",
    )


def downloads_section() -> Any:
    return _section(
        7,
        "Downloads",
        "downloads-section",
        [
            html.Div(
                [
                    html.Button("Report (HTML)", id="download-report", disabled=True),
                    html.Button("Predictions (CSV)", id="download-predictions", disabled=True),
                    html.Button("Model bundle (.skops)", id="download-bundle", disabled=True),
                ],
                className="row",
            ),
            # The report is rendered on first download (a few seconds): show that it is coming.
            dcc.Loading(
                [
                    dcc.Download(id="download-report-file"),
                    dcc.Download(id="download-predictions-file"),
                    dcc.Download(id="download-bundle-file"),
                ],
                type="dot",
            ),
        ],
    )


def make_layout(models: list[str], max_upload_bytes: int) -> Any:
    """The whole page; called once per page load (fresh session id)."""
    zones = _zones()
    return html.Div(
        [
            dcc.Store(id="session", data=new_session_id()),
            dcc.Store(id="limits", data={"max_bytes": max_upload_bytes}),
            dcc.Store(id="data-version", data=0),
            dcc.Store(id="results-version", data=0),
            html.Header(
                [
                    html.H1("ecpif"),
                    html.P(
                        "Structure from electrochemistry: learn how a cathode's lattice follows "
                        "its cycling from operando diffraction, and predict it where no "
                        "diffraction was measured."
                    ),
                    html.P(
                        f"Uploads up to {max_upload_bytes / 1e6:g} MB per file.", className="muted"
                    ),
                ]
            ),
            html.Div(id="page-error", role="alert", className="page-error", hidden=True),
            data_section(zones),
            alignment_section(),
            explore_section(),
            models_section(models),
            results_section(),
            predict_section(zones),
            downloads_section(),
            html.Footer("ecpif · BSD-3-Clause · runs locally; nothing leaves this machine."),
        ],
        className="page",
    )
