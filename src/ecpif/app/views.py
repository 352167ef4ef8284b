"""Small pieces of page built from library objects: tables, messages, figures.

Scientific figures are the report's own (:mod:`ecpif.report.figures`), rendered to PNG, so the page
and the downloaded report show the same thing. The one interactive figure, the cycler curve with
the pattern windows, is drawn with Plotly here because zooming into a window is the point of it;
it plots data as they are and computes nothing.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from dash import html

from ecpif import schema

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    from ecpif.align import Alignment
    from ecpif.app.uploads import FileSummary
    from ecpif.run import OperandoRun

#: Screen resolution of figures (the report writes 200 dpi files for print).
SCREEN_DPI = 110
#: Points of a cycler curve drawn in the browser; more adds nothing visible at screen width.
MAX_PLOT_POINTS = 4000
STATUS_COLOURS = {
    "kept": "rgba(0, 114, 178, 0.16)",
    "clipped": "rgba(230, 159, 0, 0.30)",
    "kept-nan": "rgba(120, 120, 120, 0.30)",
    "dropped": "rgba(213, 94, 0, 0.35)",
}


def figure_uri(fig: Figure, dpi: int = SCREEN_DPI) -> str:
    """A matplotlib figure as a ``data:image/png`` URI (rendered with the report's style)."""
    from ecpif.report.figures import figure_bytes

    png = figure_bytes(fig, "png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(uri: str | None, caption: str, id: str | None = None) -> html.Figure:
    """An ``<img>`` with a caption (alt text = caption)."""
    props: dict[str, Any] = {} if id is None else {"id": id}
    return html.Figure(
        [html.Img(src=uri or "", alt=caption, className="plot"), html.Figcaption(caption)],
        className="figure",
        **props,
    )


def message(text: str, kind: str = "error", id: str | None = None) -> html.Div:
    """A visible one-sentence message (``kind``: error, warning, info, ok)."""
    props: dict[str, Any] = {} if id is None else {"id": id}
    role = "alert" if kind in ("error", "warning") else "status"
    return html.Div(text, className=f"msg msg-{kind}", role=role, **props)


def _format(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return ""
        v = float(value)
        return f"{v:.4g}" if (abs(v) >= 1e-3 or v == 0) else f"{v:.3e}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, list | tuple):
        return ", ".join(str(_format(v)) for v in value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` with display-formatted values (numbers to 4 significant digits)."""
    return [{str(k): _format(v) for k, v in row.items()} for row in frame.to_dict("records")]


def table(
    frame: pd.DataFrame | None,
    id: str,
    max_rows: int = 60,
    empty: str = "Nothing to show yet.",
) -> html.Div:
    """An HTML table of ``frame`` (values formatted for reading), the first ``max_rows`` rows.

    A plain ``<table>`` rather than ``dash_table.DataTable``, which Dash 4 deprecates.
    """
    if frame is None or not len(frame):
        return html.Div(empty, className="muted", id=id)
    columns = [str(c) for c in frame.columns]
    rows = records(frame.head(max_rows))
    body = [html.Tr([html.Td(str(row[c])) for c in columns]) for row in rows]
    parts: list[Any] = [
        html.Table(
            [html.Thead(html.Tr([html.Th(c) for c in columns])), html.Tbody(body)],
            className="data",
        )
    ]
    if len(frame) > max_rows:
        parts.append(
            html.P(
                f"First {max_rows} of {len(frame)} rows; the downloads hold all.", className="muted"
            )
        )
    return html.Div(parts, id=id, className="table-box")


def facts_list(pairs: Iterable[tuple[str, str]]) -> html.Dl:
    """A definition list of ``(label, value)`` pairs."""
    items: list[Any] = []
    for label, value in pairs:
        items += [html.Dt(label), html.Dd(value)]
    return html.Dl(items, className="facts")


def summary_card(summary: FileSummary, slot: str) -> html.Div:
    """What was read from one uploaded file: facts, the column table and the reader's notes."""
    frame = pd.DataFrame(summary.columns)
    parts: list[Any] = [
        html.H4(f"Read {summary.name}"),
        facts_list(summary.facts()),
        table(frame, id=f"{slot}-columns"),
    ]
    if summary.notes:
        parts.append(html.Ul([html.Li(n) for n in summary.notes], className="notes"))
    return html.Div(parts, className="readout ok", id=f"{slot}-summary")


def runs_frame(runs: Sequence[OperandoRun]) -> pd.DataFrame:
    """One row per loaded run: id, C-rate, samples, patterns, time range, time zone, parameters."""
    rows = []
    for run in runs:
        echem = run.echem
        first = echem[schema.TIMESTAMP].iloc[0]
        last = echem[schema.TIMESTAMP].iloc[-1]
        rows.append(
            {
                schema.RUN_ID: run.run_id,
                schema.C_RATE_LABEL: run.metadata.c_rate,
                "nominal capacity [A.h]": run.metadata.nominal_capacity_Ah,
                "cycler samples": len(echem),
                "patterns": len(run.patterns),
                "start (UTC)": first,
                "duration [h]": (last - first).total_seconds() / 3600,
                "time zone": run.metadata.timezone,
                "parameters": ", ".join(run.parameter_columns) or "none (to predict)",
                "ground truth": "yes" if run.truth is not None else "no",
            }
        )
    return pd.DataFrame(rows)


def _thin(frame: pd.DataFrame, limit: int = MAX_PLOT_POINTS) -> pd.DataFrame:
    step = max(1, math.ceil(len(frame) / limit))
    return frame.iloc[::step]


def alignment_figure(run: OperandoRun, alignment: Alignment | None) -> go.Figure:
    """Cycler voltage against time with each pattern window shaded by its alignment status."""
    import plotly.graph_objects as go

    from ecpif.align import COVERAGE, REASON, STATUS

    echem = _thin(run.echem)
    t0 = run.echem[schema.TIMESTAMP].iloc[0]
    hours = (echem[schema.TIMESTAMP] - t0).dt.total_seconds() / 3600
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=echem[schema.VOLTAGE],
            mode="lines",
            name="voltage",
            line={"color": "#222", "width": 1.2},
            hovertemplate="%{x:.2f} h, %{y:.3f} V<extra></extra>",
        )
    )
    if alignment is not None and len(alignment.report):
        rep = alignment.report
        start = (rep[schema.START] - t0).dt.total_seconds().to_numpy() / 3600
        end = (rep[schema.END] - t0).dt.total_seconds().to_numpy() / 3600
        # One filled polygon per status keeps the figure light even with thousands of windows.
        vmin = float(run.echem[schema.VOLTAGE].min())
        vmax = float(run.echem[schema.VOLTAGE].max())
        for status, colour in STATUS_COLOURS.items():
            mask = (rep[STATUS] == status).to_numpy()
            if not mask.any():
                continue
            xs: list[float | None] = []
            ys: list[float | None] = []
            for a, b in zip(start[mask], end[mask], strict=True):
                xs += [a, a, b, b, a, None]
                ys += [vmin, vmax, vmax, vmin, vmin, None]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    fill="toself",
                    fillcolor=colour,
                    mode="none",
                    name=f"pattern window: {status} ({int(mask.sum())})",
                    hoverinfo="skip",
                )
            )
        hover = [
            f"{pid}<br>{status}, coverage {cov:.2f}" + (f"<br>{reason}" if reason else "")
            for pid, status, cov, reason in zip(
                rep[schema.PATTERN_ID], rep[STATUS], rep[COVERAGE], rep[REASON], strict=True
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=(start + end) / 2,
                y=np.full(len(rep), vmax),
                mode="markers",
                marker={"size": 5, "color": "#0072B2"},
                name="pattern (hover)",
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        height=360,
        margin={"l": 60, "r": 20, "t": 30, "b": 45},
        xaxis_title="time since first cycler sample [h]",
        yaxis_title=schema.VOLTAGE,
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
        title={
            "text": f"{run.run_id}: cycler curve and diffraction pattern windows",
            "font": {"size": 14},
        },
    )
    return fig


def empty_figure(text: str) -> go.Figure:
    """A blank Plotly figure carrying a short note."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        height=200,
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": text, "showarrow": False, "font": {"size": 14}}],
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def gallery(figures: Sequence[tuple[str, str]], id: str) -> html.Div:
    """Figures (caption, PNG data URI) side by side."""
    if not figures:
        return html.Div("Not computed in this run.", className="muted", id=id)
    return html.Div([image(uri, caption) for caption, uri in figures], className="gallery", id=id)
