"""Publication figures of an ecpif study (matplotlib), each also saved as PNG and SVG.

Every function takes plain pandas objects in *long* form, keyed by canonical column names, and
returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG (200 dpi) and SVG.

Expected input columns
----------------------
Grouping: rows carry the C-rate in ``schema.C_RATE_LABEL`` (``"C-rate label [1/h]"``); without it,
``schema.RUN_ID`` (``"run id"``) is used to tell curves apart.

* :func:`correlation_heatmap`: a square correlation matrix (:func:`ecpif.explore.correlations`).
* :func:`network_figure`: a graph from :func:`ecpif.explore.feature_network`.
* :func:`leaderboard_figure`: the leaderboard of :mod:`ecpif.validate` (``target``, ``model``,
  ``scheme``, a metric column such as ``RMSE``, optional ``kind``); several schemes concatenated.
* :func:`parity_figure`, :func:`residuals_figure`: out-of-fold predictions in long form
  (``target``, ``scheme``, ``observed``, ``predicted``, optional ``model``; context columns such
  as ``time [s]``, ``state of charge [-]`` and the C-rate for colours).
* :func:`evolution_figure`, :func:`reconstruction_figure`: per-rate curves. ``echem`` rows have
  the x column and ``voltage [V]``; ``refined`` rows (one per pattern) the x column, parameter
  columns ``"a [Å]"`` and optionally ``"esd a [Å]"``; ``predicted`` rows the x column, parameter
  columns and optionally the interval bounds ``"lower a [Å]"`` / ``"upper a [Å]"``
  (:func:`lower_column`, :func:`upper_column`); ``truth`` rows the x column and parameter columns.
* :func:`rabs_figure`: the table of :func:`ecpif.analysis.compare_rates` (C-rate, ``segment``,
  ``Rabs a [Å/h]`` ...), optionally several stacked with a ``source`` column.
* :func:`importance_figure`: ``feature``, ``importance mean``, optional ``importance std`` and
  ``target`` (permutation importance computed on held-out data by the caller).
* :func:`coverage_figure`: the alignment report of :mod:`ecpif.align` (one row per pattern with
  ``coverage [-]`` and ``run id``; the C-rate when known).

Design decisions
----------------
* Figures are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
  global state, no GUI backend (the Agg/SVG canvases are used when saving), nothing to close, safe
  in threads and web servers.
* One style for all (colour-blind-safe palettes, 8-10 pt fonts, constrained layout) is applied with
  :func:`matplotlib.rc_context` inside each function, so the user's own rcParams are untouched.
* **Colour per C-rate is fixed** (Okabe & Ito's palette on the usual ladder 0.1C ... 5C, cividis
  for other rates), so 1C has the same colour in every figure of every report. Validation schemes
  use Paul Tol's high-contrast palette, distinct from the rate colours. Line style and marker shape
  carry meaning as well, never colour alone.
* Scatter layers of more than 2000 points are rasterised inside the SVG so files stay small while
  text and axes stay vector.
* SVG output is reproducible: a fixed hash salt and no date in the metadata.

Examples
--------
>>> import pandas as pd
>>> from ecpif.report.figures import correlation_heatmap, save_figure
>>> corr = pd.DataFrame([[1.0, 0.9], [0.9, 1.0]], index=["q [mA.h]", "c [Å]"],
...                     columns=["q [mA.h]", "c [Å]"])
>>> fig = correlation_heatmap(corr)
>>> paths = save_figure(fig, "out/pearson")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ecpif import schema
from ecpif.align import COVERAGE
from ecpif.analysis import SEGMENT
from ecpif.errors import ConfigError, DataError, did_you_mean
from ecpif.features import STATE_OF_CHARGE
from ecpif.predict import lower_column, upper_column
from ecpif.validate import KIND, MODEL, SCHEME, SCHEMES, TARGET

if TYPE_CHECKING:
    import networkx as nx

# --- column names of the long frames, each imported from the module that writes it ----------------
OBSERVED = "observed"  # as in ecpif.validate.ZooResult.predictions_frame
PREDICTED = "predicted"
SOURCE = "source"
FEATURE = "feature"
IMPORTANCE_MEAN = "importance mean"
IMPORTANCE_STD = "importance std"


# --- palettes -------------------------------------------------------------------------------------
#: Okabe & Ito (2008) colours for the usual C-rate ladder (yellow left out: unreadable on white).
RATE_COLORS: dict[float, str] = {
    0.05: "#000000",
    0.1: "#56B4E9",
    0.2: "#0072B2",
    0.5: "#009E73",
    1.0: "#E69F00",
    2.0: "#D55E00",
    5.0: "#CC79A7",
}
#: Paul Tol's high-contrast palette for the validation schemes of :mod:`ecpif.validate`.
SCHEME_COLORS: dict[str, str] = {"shuffled": "#DDAA33", "grouped": "#BB5566", "loro": "#004488"}
SCHEME_LABELS: dict[str, str] = {
    "shuffled": "shuffled k-fold",
    "grouped": "grouped by run",
    "loro": "leave-one-rate-out",
}
_EXTRA_COLORS = ("#332288", "#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#6699CC")
_FEATURE_COLOR = "#56B4E9"
_TARGET_COLOR = "#D55E00"
_TRUTH_COLOR = "#222222"

_STYLE: dict[Any, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "errorbar.capsize": 0,
    "svg.fonttype": "path",
    "svg.hashsalt": "ecpif",
    "image.cmap": "cividis",
}
_RASTER_ABOVE = 2000
# Continuous curves are thinned to this many points per curve before drawing: far beyond what a
# 7-inch figure resolves, and it keeps a 10-million-sample run from producing a 500 MB SVG.
_MAX_CURVE_POINTS = 800
DPI = 200

P = ParamSpec("P")
R = TypeVar("R")


def _styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a figure function under the house style without touching the caller's rcParams."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def rate_color(rate: float) -> str:
    """The colour of a C-rate, the same in every figure.

    >>> rate_color(1.0)
    '#E69F00'
    """
    for known, color in RATE_COLORS.items():
        if math.isclose(rate, known, rel_tol=1e-6):
            return color
    # Rates off the ladder: a colour-blind-safe sequential map over log10(rate) in [0.01, 10].
    pos = (math.log10(max(rate, 1e-3)) + 2.0) / 3.0
    return str(mpl.colors.to_hex(mpl.colormaps["cividis"](min(max(pos, 0.0), 1.0))))


def rate_label(rate: float) -> str:
    """Legend label of a C-rate: ``0.2`` -> ``"0.2C"``."""
    return f"{rate:.3g}C"


def scheme_label(scheme: str) -> str:
    """Readable name of a validation scheme (``"loro"`` -> ``"leave-one-rate-out"``)."""
    return SCHEME_LABELS.get(scheme, scheme)


def order_schemes(schemes: Iterable[str]) -> list[str]:
    """Schemes in :data:`ecpif.validate.SCHEMES` order (shuffled, grouped, loro), then others."""
    present = list(dict.fromkeys(schemes))
    known = [s for s in SCHEMES if s in present]
    return known + [s for s in present if s not in known]


def honest_scheme(schemes: Iterable[str]) -> str:
    """The most demanding scheme present: ``loro``, else ``grouped``, else ``shuffled``.

    >>> honest_scheme(["shuffled", "loro"])
    'loro'
    """
    ordered = order_schemes(schemes)
    if not ordered:
        raise DataError("No validation scheme is present; the leaderboard has no rows.")
    known = [s for s in reversed(SCHEMES) if s in ordered]
    return known[0] if known else ordered[0]


def _scheme_colors(schemes: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    extra = iter(_EXTRA_COLORS * 10)
    for s in schemes:
        out[s] = SCHEME_COLORS[s] if s in SCHEME_COLORS else next(extra)
    return out


# --- input checks ---------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"The {what} must be a pandas DataFrame; got {type(frame).__name__}.")
    for col in columns:
        if col not in frame.columns:
            names = [str(c) for c in frame.columns]
            raise DataError(
                f"The {what} lacks the column {col!r}; it has {names}."
                f"{did_you_mean(str(col), names)}"
            )
    if len(frame) == 0:
        raise DataError(f"The {what} has no rows; there is nothing to plot.")


def _pick(frame: pd.DataFrame, column: str, value: str | None, what: str) -> pd.DataFrame:
    """Rows of one value of ``column`` (e.g. one target); ``None`` is fine when only one exists."""
    if column not in frame.columns:
        return frame
    values = list(dict.fromkeys(frame[column].astype(str)))
    if value is None:
        if len(values) > 1:
            raise ConfigError(
                f"The {what} holds several {column}s {values}; choose one with {column}=..."
            )
        return frame
    if value not in values:
        raise ConfigError(
            f"{column.capitalize()} {value!r} is not in the {what}, which holds {values}."
            f"{did_you_mean(value, values)}"
        )
    return frame[frame[column].astype(str) == value]


class _Groups:
    """Colour and label per curve group: by C-rate if known, else by run id, else one group."""

    def __init__(self, given: Iterable[pd.DataFrame | None]) -> None:
        frames = [f for f in given if f is not None and len(f)]
        self.colors: dict[Any, str]
        self.labels: dict[Any, str]
        if frames and all(schema.C_RATE_LABEL in f.columns for f in frames):
            self.column: str | None = schema.C_RATE_LABEL
            rates = sorted({float(v) for f in frames for v in f[schema.C_RATE_LABEL].dropna()})
            self.keys: list[Any] = list(rates)
            self.colors = {k: rate_color(k) for k in rates}
            self.labels = {k: rate_label(k) for k in rates}
        elif frames and all(schema.RUN_ID in f.columns for f in frames):
            self.column = schema.RUN_ID
            self.keys = sorted({str(v) for f in frames for v in f[schema.RUN_ID].dropna()})
            self.colors = {
                k: _EXTRA_COLORS[i % len(_EXTRA_COLORS)] for i, k in enumerate(self.keys)
            }
            self.labels = {k: k for k in self.keys}
        else:
            self.column = None
            self.keys = [None]
            self.colors = {None: "#0072B2"}
            self.labels = {None: ""}

    def split(self, frame: pd.DataFrame | None) -> list[tuple[Any, pd.DataFrame]]:
        if frame is None or len(frame) == 0:
            return []
        if self.column is None:
            return [(None, frame)]
        if self.column == schema.C_RATE_LABEL:
            rate_of = frame[self.column].to_numpy(dtype=float)
            return [
                (k, frame[np.isclose(rate_of, k)])
                for k in self.keys
                if np.isclose(rate_of, k).any()
            ]
        name_of = frame[self.column].astype(str).to_numpy()
        return [(k, frame[name_of == k]) for k in self.keys if (name_of == k).any()]

    def handles(self, keys: Iterable[Any] | None = None) -> list[Line2D]:
        keys = self.keys if keys is None else list(keys)
        return [
            Line2D([], [], color=self.colors[k], marker="o", linestyle="-", label=self.labels[k])
            for k in keys
            if self.labels.get(k)
        ]


def _x_axis(x: str) -> tuple[float, str]:
    """Scale and label of an x column: times are shown in hours."""
    if x == schema.TIME:
        return 1.0 / 3600.0, "time [h]"
    return 1.0, x


def _target_unit(target: str) -> str:
    unit = schema.unit_of(target)
    return f" [{unit}]" if unit else ""


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _thin(part: pd.DataFrame, max_points: int = _MAX_CURVE_POINTS) -> pd.DataFrame:
    """Every k-th row (first and last kept) so that a curve has at most ``max_points`` points."""
    if len(part) <= max_points:
        return part
    step = math.ceil(len(part) / max_points)
    keep = np.unique(np.r_[np.arange(0, len(part), step), len(part) - 1])
    return part.iloc[keep]


def _maybe_rasterize(artist: Any, n: int) -> None:
    if n > _RASTER_ABOVE:
        artist.set_rasterized(True)


# --- saving ---------------------------------------------------------------------------------------


def figure_bytes(fig: Figure, fmt: str = "svg", dpi: int = DPI) -> bytes:
    """Render a figure to PNG or SVG bytes in memory (what the HTML report embeds).

    The bytes of the last render per format and resolution are kept on the figure and returned
    again while the figure is unchanged: the report writes each figure's SVG to a file and embeds
    it in the HTML, and rendering is the report's main cost. Any change made through matplotlib
    (a new artist, a new title, new data) marks the figure *stale*, which discards the cache, as
    does a change of the rcParams in effect.
    """
    if fmt not in ("png", "svg"):
        raise ConfigError(f"Figures render as 'png' or 'svg'; got {fmt!r}.")
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with mpl.rc_context(_STYLE):
        key = (fmt, dpi, repr(sorted(mpl.rcParams.items())))
        cache: dict[tuple[str, int, str], bytes] = getattr(fig, "_ecpif_bytes", {})
        if fig.stale or key not in cache:
            if fig.stale:
                cache = {}
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
            cache[key] = buffer.getvalue()
            fig._ecpif_bytes = cache  # type: ignore[attr-defined]
    # Saving restores the face colour, which flags the figure stale although nothing changed;
    # clear the flag so that only a real change after this render invalidates the cache.
    fig.stale = False
    return cache[key]


def save_figure(
    fig: Figure,
    path_stem: str | os.PathLike[str],
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = DPI,
) -> list[Path]:
    """Write a figure as PNG (``dpi``) and SVG beside each other, atomically.

    Parameters
    ----------
    fig
        The figure.
    path_stem
        Path without extension; ``".png"`` / ``".svg"`` are appended (so ``"fig.v2"`` stays whole).
    formats
        Any of ``"png"``, ``"svg"``.
    dpi
        Resolution of the PNG.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Examples
    --------
    >>> save_figure(fig, "figures/parity_c")  # doctest: +SKIP
    [PosixPath('figures/parity_c.png'), PosixPath('figures/parity_c.svg')]
    """
    from ecpif.io import write_atomic

    stem = Path(path_stem)
    written = []
    for fmt in formats:
        data = figure_bytes(fig, fmt, dpi)
        written.append(
            write_atomic(stem.parent / f"{stem.name}.{fmt}", lambda p, d=data: p.write_bytes(d))
        )
    return written


# --- exploration ----------------------------------------------------------------------------------


@_styled
def correlation_heatmap(
    corr: pd.DataFrame, method: str = "pearson", title: str | None = None
) -> Figure:
    """Heatmap of a correlation matrix, annotated with the coefficients when it is small.

    Parameters
    ----------
    corr
        Square matrix from :func:`ecpif.explore.correlations`.
    method
        ``"pearson"`` or ``"spearman"``: names the colour bar (``r`` or ``ρ``).
    title
        Axes title (default: ``"Pearson correlation"`` / ``"Spearman correlation"``).
    """
    if not isinstance(corr, pd.DataFrame) or list(corr.index) != list(corr.columns) or corr.empty:
        raise DataError(
            "correlation_heatmap needs a non-empty square DataFrame whose index equals its "
            "columns; pass the output of ecpif.explore.correlations."
        )
    n = len(corr)
    side = min(max(3.5, 0.42 * n + 2.2), 14.0)
    fig = _new_figure(side + 0.9, side)
    ax = fig.add_subplot()
    values = corr.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    labels = [str(c) for c in corr.columns]
    ax.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if n <= 16:
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                if np.isfinite(v):
                    color = "white" if abs(v) > 0.6 else "black"
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color=color)
    symbol = "ρ" if method == "spearman" else "r"
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label(f"{method.capitalize()} {symbol} [-]")
    ax.set_title(title or f"{method.capitalize()} correlation")
    return fig


@_styled
def network_figure(graph: nx.Graph, title: str | None = None) -> Figure:
    """Feature network: features and targets as nodes, strong correlations as edges.

    Edge width grows with ``|r|``; negative correlations are dashed. Features are blue circles,
    targets vermilion squares (node attribute ``kind`` of :func:`ecpif.explore.feature_network`),
    targets on the inner ring and features on the outer one.
    """
    import networkx as nx

    if not isinstance(graph, nx.Graph) or graph.number_of_nodes() == 0:
        raise DataError(
            "network_figure needs a networkx graph with at least one node; pass the output of "
            "ecpif.explore.feature_network."
        )
    fig = _new_figure(6.5, 5.0)
    ax = fig.add_subplot()
    # Shell layout: targets on the inner ring, features on the outer one, so every
    # feature-target edge is a spoke and the cliques of near-duplicate features stay readable
    # (a spring layout collapses such cliques into one blot).
    targets = [n for n, d in graph.nodes(data=True) if d.get("kind") == "target"]
    features = [n for n in graph.nodes if n not in set(targets)]
    shells = [targets, features] if targets and features else [list(graph.nodes)]
    pos = nx.shell_layout(graph, nlist=shells, rotate=0.3)
    for u, v, data in graph.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        weight = float(data.get("weight", 1.0))
        ax.plot(
            [x0, x1],
            [y0, y1],
            color="#555555",
            linewidth=0.5 + 4.5 * weight**4,
            linestyle="--" if data.get("r", 1.0) < 0 else "-",
            alpha=0.8,
            zorder=1,
        )
    for kind, color, marker in (("feature", _FEATURE_COLOR, "o"), ("target", _TARGET_COLOR, "s")):
        nodes = [n for n, d in graph.nodes(data=True) if d.get("kind", "feature") == kind]
        if nodes:
            xy = np.array([pos[n] for n in nodes])
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                s=140,
                c=color,
                marker=marker,
                edgecolors="black",
                linewidths=0.6,
                zorder=2,
            )
    for node, (x, y) in pos.items():
        # Labels point away from the centre so they do not sit on the edges.
        angle = math.atan2(y, x) if (x or y) else math.pi / 2
        ax.annotate(
            str(node),
            (x, y),
            xytext=(12 * math.cos(angle), 12 * math.sin(angle)),
            textcoords="offset points",
            ha="left"
            if math.cos(angle) > 0.2
            else ("right" if math.cos(angle) < -0.2 else "center"),
            va="bottom" if math.sin(angle) > 0 else "top",
            fontsize=7,
            zorder=3,
        )
    ax.set_axis_off()
    ax.margins(0.3)
    ax.set_aspect("equal")
    threshold = graph.graph.get("threshold")
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            color="none",
            markerfacecolor=_FEATURE_COLOR,
            markeredgecolor="black",
            markersize=8,
            label="feature",
        ),
        Line2D(
            [],
            [],
            marker="s",
            color="none",
            markerfacecolor=_TARGET_COLOR,
            markeredgecolor="black",
            markersize=8,
            label="target",
        ),
        Line2D([], [], color="#555555", linestyle="-", label="r > 0 (width ∝ |r|)"),
        Line2D([], [], color="#555555", linestyle="--", label="r < 0"),
    ]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, -0.08), ncols=4)
    default = "Feature network" + (
        f" (edges: |r| > {threshold:g})" if threshold is not None else ""
    )
    ax.set_title(title or default)
    return fig


@_styled
def coverage_figure(coverage: pd.DataFrame, value: str = COVERAGE) -> Figure:
    """Coverage of each diffraction pattern's window by cycler samples, per run (or C-rate).

    ``coverage`` has one row per pattern, in acquisition order within each run.
    """
    _require(coverage, [value], "coverage table")
    groups = _Groups([coverage])
    fig = _new_figure(6.5, 2.8)
    ax = fig.add_subplot()
    for key, part in groups.split(coverage):
        ax.plot(
            np.arange(len(part)),
            part[value].to_numpy(dtype=float),
            marker="o",
            markersize=3,
            linewidth=0.8,
            color=groups.colors[key],
            label=groups.labels[key],
        )
    ax.set_xlabel("pattern number in run [-]")
    ax.set_ylabel(value)
    ax.set_ylim(bottom=min(0.0, float(coverage[value].min())), top=1.05)
    if groups.column is not None:
        ax.legend(loc="lower right", ncols=min(len(groups.keys), 4))
    ax.set_title("Cycler coverage of each pattern window")
    return fig


# --- models ---------------------------------------------------------------------------------------


def _higher_is_better(metric: str) -> bool:
    return metric.upper().startswith("R2") or metric.startswith("R²")


def _metric_label(metric: str, target: str) -> str:
    if metric in ("RMSE", "MAE"):
        return f"{metric}{_target_unit(target)}"
    return f"{metric} [-]"


@_styled
def leaderboard_figure(
    leaderboard: pd.DataFrame,
    metric: str = "RMSE",
    targets: Sequence[str] | None = None,
    top: int | None = 12,
    rank_by: str | None = None,
) -> Figure:
    """Horizontal bar chart of a metric per model, one panel per target, bars per scheme.

    Parameters
    ----------
    leaderboard
        Rows of ``target``, ``model``, ``scheme``, ``metric`` (several schemes concatenated;
        repeated rows are averaged). Ensembles (``kind == "ensemble"``) get hatched bars.
    metric
        Column to plot (``"RMSE"``, ``"MAE"``, ``"R²"``, ``"RMSE/esd"``).
    targets
        Targets to show (default: all, in order of appearance).
    top
        Models shown per target (``None``: all).
    rank_by
        Scheme whose metric orders the models, best first (default: :func:`honest_scheme`).
    """
    _require(leaderboard, [TARGET, MODEL, SCHEME, metric], "leaderboard")
    all_targets = list(dict.fromkeys(leaderboard[TARGET].astype(str)))
    targets = list(targets) if targets is not None else all_targets
    for t in targets:
        if t not in all_targets:
            raise ConfigError(
                f"Target {t!r} is not in the leaderboard, which holds {all_targets}."
                f"{did_you_mean(t, all_targets)}"
            )
    schemes = order_schemes(leaderboard[SCHEME].astype(str))
    rank_by = rank_by or honest_scheme(schemes)
    if rank_by not in schemes:
        raise ConfigError(
            f"Scheme {rank_by!r} is not in the leaderboard, which holds {schemes}."
            f"{did_you_mean(rank_by, schemes)}"
        )
    colors = _scheme_colors(schemes)
    better_high = _higher_is_better(metric)
    ensembles = (
        set(leaderboard.loc[leaderboard[KIND] == "ensemble", MODEL].astype(str))
        if KIND in leaderboard.columns
        else set()
    )
    tables = []
    for t in targets:
        rows = leaderboard[leaderboard[TARGET].astype(str) == t]
        table = rows.pivot_table(index=MODEL, columns=SCHEME, values=metric, aggfunc="mean")
        table = table.reindex(columns=[s for s in schemes if s in table.columns])
        key = [rank_by] + [c for c in table.columns if c != rank_by] if rank_by in table else []
        table = table.sort_values(key or list(table.columns), ascending=not better_high)
        tables.append(table.head(top) if top else table)
    heights = [0.55 + 0.16 * len(tab) * max(len(tab.columns), 1) for tab in tables]
    fig = _new_figure(6.5, sum(heights) + 0.6)
    axes = fig.subplots(len(tables), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, t, table in zip(axes, targets, tables, strict=True):
        n_s = len(table.columns)
        bar = 0.8 / max(n_s, 1)
        y = np.arange(len(table))
        for k, s in enumerate(table.columns):
            offsets = y - 0.4 + bar * (k + 0.5)
            hatches = ["///" if m in ensembles else "" for m in table.index]
            ax.barh(
                offsets,
                table[s].to_numpy(dtype=float),
                height=bar,
                color=colors[s],
                hatch=hatches,
                edgecolor="white",
                linewidth=0.3,
                label=scheme_label(s),
            )
        ax.set_yticks(y, [str(m) for m in table.index])
        ax.invert_yaxis()
        ax.set_xlabel(_metric_label(metric, t))
        ax.set_title(t, loc="left")
        ax.grid(axis="y", visible=False)
    handles = [Patch(color=colors[s], label=scheme_label(s)) for s in schemes]
    if ensembles:
        handles.append(Patch(facecolor="#BBBBBB", hatch="///", edgecolor="white", label="ensemble"))
    fig.legend(
        handles=handles, loc="outside upper center", ncols=len(handles), title="validation scheme"
    )
    return fig


def _prepare_predictions(
    predictions: pd.DataFrame, target: str | None, model: str | None
) -> tuple[pd.DataFrame, str]:
    _require(predictions, [OBSERVED, PREDICTED], "prediction table")
    frame = _pick(predictions, TARGET, target, "prediction table")
    frame = _pick(frame, MODEL, model, "prediction table")
    name = target or (str(frame[TARGET].iloc[0]) if TARGET in frame.columns else "value")
    frame = frame[
        np.isfinite(frame[OBSERVED].astype(float)) & np.isfinite(frame[PREDICTED].astype(float))
    ]
    if len(frame) == 0:
        raise DataError(f"The prediction table has no finite observed/predicted pair for {name!r}.")
    return frame, name


def _schemes_of(frame: pd.DataFrame) -> list[str | None]:
    if SCHEME not in frame.columns:
        return [None]
    return list(order_schemes(frame[SCHEME].astype(str)))


@_styled
def parity_figure(
    predictions: pd.DataFrame, target: str | None = None, model: str | None = None
) -> Figure:
    """Predicted against measured, one panel per validation scheme, with ``y = x`` and R²/RMSE.

    Parameters
    ----------
    predictions
        Out-of-fold predictions in long form: ``observed``, ``predicted``, optional ``target``,
        ``model``, ``scheme`` and the C-rate (points coloured by rate).
    target, model
        Which target / model to show; needed only when the table holds several.
    """
    frame, name = _prepare_predictions(predictions, target, model)
    schemes = _schemes_of(frame)
    groups = _Groups([frame])
    lo = float(min(frame[OBSERVED].min(), frame[PREDICTED].min()))
    hi = float(max(frame[OBSERVED].max(), frame[PREDICTED].max()))
    pad = 0.04 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    fig = _new_figure(min(3.0 * len(schemes) + 0.4, 13.0), 3.5)
    axes = fig.subplots(1, len(schemes), squeeze=False, sharex=True, sharey=True)[0]
    unit = schema.unit_of(name) or ""
    for ax, s in zip(axes, schemes, strict=True):
        part = frame if s is None else frame[frame[SCHEME].astype(str) == s]
        ax.plot([lo, hi], [lo, hi], color="#777777", linestyle="--", linewidth=0.9, zorder=1)
        for key, sub in groups.split(part):
            pts = ax.scatter(
                sub[OBSERVED],
                sub[PREDICTED],
                s=9,
                color=groups.colors[key],
                alpha=0.7,
                linewidths=0,
                zorder=2,
            )
            _maybe_rasterize(pts, len(sub))
        obs = part[OBSERVED].to_numpy(dtype=float)
        pred = part[PREDICTED].to_numpy(dtype=float)
        rmse = float(np.sqrt(np.mean((pred - obs) ** 2)))
        ss_tot = float(np.sum((obs - obs.mean()) ** 2))
        r2 = 1.0 - float(np.sum((pred - obs) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
        ax.text(
            0.04,
            0.96,
            f"R² = {r2:.4f}\nRMSE = {rmse:.3g} {unit}".rstrip(),
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#cccccc"},
        )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"measured {name}")
        if s is not None:
            ax.set_title(scheme_label(s))
    axes[0].set_ylabel(f"predicted {name}")
    if groups.column is not None:
        fig.legend(handles=groups.handles(), loc="outside right upper")
    return fig


@_styled
def residuals_figure(
    predictions: pd.DataFrame,
    target: str | None = None,
    model: str | None = None,
    x: Sequence[str] = (schema.TIME, STATE_OF_CHARGE),
) -> Figure:
    """Residuals (measured − predicted) against time and state of charge, one row per scheme.

    Columns of ``x`` missing from ``predictions`` are skipped; at least one must be present.
    """
    frame, name = _prepare_predictions(predictions, target, model)
    xs = [c for c in x if c in frame.columns]
    if not xs:
        raise DataError(
            f"The prediction table has none of the x columns {list(x)}; join the aligned table's "
            f"context columns (e.g. {schema.TIME!r}) to the predictions."
        )
    schemes = _schemes_of(frame)
    groups = _Groups([frame])
    fig = _new_figure(min(3.3 * len(xs) + 0.8, 13.0), 2.3 * len(schemes) + 0.4)
    axes = fig.subplots(len(schemes), len(xs), squeeze=False, sharey=True)
    for i, s in enumerate(schemes):
        part = frame if s is None else frame[frame[SCHEME].astype(str) == s]
        for j, col in enumerate(xs):
            ax = axes[i, j]
            scale, label = _x_axis(col)
            ax.axhline(0.0, color="#777777", linestyle="--", linewidth=0.9)
            for key, sub in groups.split(part):
                resid = sub[OBSERVED].to_numpy(dtype=float) - sub[PREDICTED].to_numpy(dtype=float)
                pts = ax.scatter(
                    sub[col].to_numpy(dtype=float) * scale,
                    resid,
                    s=8,
                    color=groups.colors[key],
                    alpha=0.7,
                    linewidths=0,
                )
                _maybe_rasterize(pts, len(sub))
            ax.set_xlabel(label)
            if j == 0:
                ax.set_ylabel(f"residual {name}")
            if s is not None:
                ax.set_title(scheme_label(s), loc="left")
    if groups.column is not None:
        fig.legend(handles=groups.handles(), loc="outside right upper")
    return fig


@_styled
def importance_figure(
    importance: pd.DataFrame,
    target: str | None = None,
    xlabel: str = "permutation importance (drop in R²) [-]",
    top: int | None = 15,
) -> Figure:
    """Permutation feature importance as horizontal bars with ± one standard deviation.

    ``importance`` rows: ``feature``, ``importance mean``, optional ``importance std``, optional
    ``target`` (one panel per target unless ``target`` is given).
    """
    _require(importance, [FEATURE, IMPORTANCE_MEAN], "importance table")
    if target is not None:
        importance = _pick(importance, TARGET, target, "importance table")
    targets = (
        list(dict.fromkeys(importance[TARGET].astype(str))) if TARGET in importance else [None]
    )
    parts = []
    for t in targets:
        part = importance if t is None else importance[importance[TARGET].astype(str) == t]
        part = part.sort_values(IMPORTANCE_MEAN, ascending=False)
        parts.append(part.head(top) if top else part)
    heights = [0.5 + 0.22 * len(p) for p in parts]
    fig = _new_figure(5.5, sum(heights) + 0.3)
    axes = fig.subplots(len(parts), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, t, part in zip(axes, targets, parts, strict=True):
        y = np.arange(len(part))
        err = part[IMPORTANCE_STD].to_numpy(dtype=float) if IMPORTANCE_STD in part else None
        ax.barh(
            y,
            part[IMPORTANCE_MEAN].to_numpy(dtype=float),
            xerr=err,
            color="#0072B2",
            error_kw={"ecolor": "#333333", "elinewidth": 0.8},
        )
        ax.set_yticks(y, [str(f) for f in part[FEATURE]])
        ax.invert_yaxis()
        ax.axvline(0.0, color="#333333", linewidth=0.6)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        if t is not None:
            ax.set_title(t, loc="left")
    return fig


# --- trajectories ---------------------------------------------------------------------------------


def _parameters(
    parameters: Sequence[str] | None, frames: Sequence[pd.DataFrame | None]
) -> list[str]:
    present = {c for f in frames if f is not None for c in f.columns}
    if parameters is not None:
        out = [schema.parameter_column(p) for p in parameters]
        missing = [p for p in out if p not in present]
        if missing:
            raise DataError(
                f"Parameter column {missing[0]!r} is in none of the given frames."
                f"{did_you_mean(missing[0], sorted(map(str, present)))}"
            )
        return out
    return [p.column for p in schema.PARAMETERS.values() if p.column in present]


def _plot_refined(
    ax: Axes, part: pd.DataFrame, x: str, col: str, scale: float, color: str, alpha: float = 1.0
) -> None:
    esd = schema.esd_column(col)
    yerr = part[esd].to_numpy(dtype=float) if esd in part.columns else None
    ax.errorbar(
        part[x].to_numpy(dtype=float) * scale,
        part[col].to_numpy(dtype=float),
        yerr=yerr,
        fmt="o",
        markersize=3,
        color=color,
        elinewidth=0.7,
        alpha=alpha,
        zorder=3,
    )


def _plot_predicted(
    ax: Axes, part: pd.DataFrame, x: str, col: str, scale: float, color: str, linewidth: float = 1.4
) -> None:
    part = _thin(part)
    xs = part[x].to_numpy(dtype=float) * scale
    lo, hi = lower_column(col), upper_column(col)
    if lo in part.columns and hi in part.columns:
        band = ax.fill_between(
            xs,
            part[lo].to_numpy(dtype=float),
            part[hi].to_numpy(dtype=float),
            color=color,
            alpha=0.22,
            linewidth=0,
            zorder=1,
        )
        band.set_rasterized(True)  # a translucent band needs no vector precision
    ax.plot(xs, part[col].to_numpy(dtype=float), color=color, linewidth=linewidth, zorder=2)


def _plot_truth(ax: Axes, part: pd.DataFrame, x: str, col: str, scale: float, color: str) -> None:
    part = _thin(part)
    ax.plot(
        part[x].to_numpy(dtype=float) * scale,
        part[col].to_numpy(dtype=float),
        color=color,
        linestyle=(0, (4, 2)),
        linewidth=0.9,
        zorder=4,
    )


def _style_handles(refined: bool, predicted: bool, truth: bool, interval: bool) -> list[Any]:
    handles: list[Any] = []
    if refined:
        handles.append(
            Line2D(
                [],
                [],
                color="#555555",
                marker="o",
                linestyle="none",
                markersize=4,
                label="refined ± esd",
            )
        )
    if predicted:
        handles.append(Line2D([], [], color="#555555", label="predicted"))
    if interval:
        handles.append(Patch(color="#555555", alpha=0.22, label="prediction interval"))
    if truth:
        handles.append(
            Line2D(
                [], [], color="#555555", linestyle=(0, (4, 2)), linewidth=0.9, label="ground truth"
            )
        )
    return handles


def _check_x(frames: dict[str, pd.DataFrame | None], x: str) -> None:
    for what, frame in frames.items():
        if frame is not None:
            _require(frame, [x], f"{what} table")


@_styled
def evolution_figure(
    echem: pd.DataFrame | None = None,
    refined: pd.DataFrame | None = None,
    predicted: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    parameters: Sequence[str] | None = None,
    x: str = schema.TIME,
) -> Figure:
    """Voltage and each structural parameter against time (or charge), one colour per C-rate.

    Refined points carry their esd as error bars, the predicted continuous curve its interval band
    (when ``lower``/``upper`` columns exist), the ground truth (simulated runs) a dashed line.

    Parameters
    ----------
    echem, refined, predicted, truth
        Long frames (see the module docstring); any may be ``None`` but not all.
    parameters
        Parameter columns or short names (default: every :data:`ecpif.schema.PARAMETERS` column
        found in the frames).
    x
        ``"time [s]"`` (shown in hours) or ``"charge [mA.h]"`` or any column all frames share.
    """
    frames = {"cycler": echem, "refined": refined, "predicted": predicted, "truth": truth}
    if all(f is None for f in frames.values()):
        raise DataError("evolution_figure needs at least one of echem, refined, predicted, truth.")
    _check_x(frames, x)
    if echem is not None:
        _require(echem, [schema.VOLTAGE], "cycler table")
    params = _parameters(parameters, [refined, predicted, truth])
    rows = ([schema.VOLTAGE] if echem is not None else []) + params
    if not rows:
        raise DataError(
            "evolution_figure found no structural parameter column in the frames and no cycler "
            "table; name the parameter columns with parameters=[...]."
        )
    groups = _Groups(frames.values())
    scale, xlabel = _x_axis(x)
    fig = _new_figure(6.8, 1.75 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), 1, squeeze=False, sharex=True)[:, 0]
    for ax, col in zip(axes, rows, strict=True):
        if col == schema.VOLTAGE and echem is not None:
            for key, whole in groups.split(echem):
                part = _thin(whole)
                ax.plot(
                    part[x].to_numpy(dtype=float) * scale,
                    part[col].to_numpy(dtype=float),
                    color=groups.colors[key],
                    linewidth=1.1,
                )
        else:
            for key, part in groups.split(predicted):
                if col in part.columns:
                    _plot_predicted(ax, part, x, col, scale, groups.colors[key])
            for key, part in groups.split(refined):
                if col in part.columns:
                    _plot_refined(ax, part, x, col, scale, groups.colors[key])
            for _key, part in groups.split(truth):
                if col in part.columns:
                    _plot_truth(ax, part, x, col, scale, _TRUTH_COLOR)
        ax.set_ylabel(col)
    axes[-1].set_xlabel(xlabel)
    interval = predicted is not None and any(lower_column(p) in predicted.columns for p in params)
    handles = groups.handles() + _style_handles(
        refined is not None, predicted is not None, truth is not None, interval
    )
    if handles:
        fig.legend(handles=handles, loc="outside right upper")
    return fig


@_styled
def reconstruction_figure(
    refined: pd.DataFrame,
    predicted: pd.DataFrame,
    target_rate: float,
    truth: pd.DataFrame | None = None,
    parameters: Sequence[str] | None = None,
    x: str = schema.CHARGE,
) -> Figure:
    """A reconstructed rate (e.g. 2C, no diffraction) laid over the measured lower rates.

    Measured rates show refined points with esd bars (faded); the reconstructed rate shows its
    predicted curve with interval band in its rate colour and, for simulated data, the ground
    truth of that rate as a dashed line. All frames need the C-rate column.
    """
    frames = {"refined": refined, "predicted": predicted, "truth": truth}
    _check_x(frames, x)
    for what, frame in frames.items():
        if frame is not None:
            _require(frame, [schema.C_RATE_LABEL], f"{what} table")
    rates = predicted[schema.C_RATE_LABEL].astype(float)
    if not np.isclose(rates, target_rate).any():
        raise ConfigError(
            f"The predicted table has no rows at {rate_label(target_rate)}; it holds "
            f"{sorted(rate_label(r) for r in set(rates))}."
        )
    predicted = predicted[np.isclose(rates, target_rate)]
    if truth is not None:
        truth = truth[np.isclose(truth[schema.C_RATE_LABEL].astype(float), target_rate)]
    measured = refined[~np.isclose(refined[schema.C_RATE_LABEL].astype(float), target_rate)]
    params = _parameters(parameters, [measured, predicted])
    if not params:
        raise DataError("reconstruction_figure found no structural parameter column to plot.")
    groups = _Groups([measured, predicted])
    scale, xlabel = _x_axis(x)
    ncols = 2 if len(params) > 1 else 1
    nrows = math.ceil(len(params) / ncols)
    fig = _new_figure(3.4 * ncols + 1.2, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    color = rate_color(target_rate)
    for ax, col in zip(axes, params, strict=False):
        for key, part in groups.split(measured):
            if col in part.columns:
                _plot_refined(ax, part, x, col, scale, groups.colors[key], alpha=0.55)
        if col in predicted.columns:
            _plot_predicted(ax, predicted, x, col, scale, color, linewidth=2.0)
        if truth is not None and col in truth.columns:
            _plot_truth(ax, truth, x, col, scale, _TRUTH_COLOR)
        ax.set_ylabel(col)
        ax.set_xlabel(xlabel)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    interval = any(lower_column(p) in predicted.columns for p in params)
    handles = groups.handles() + _style_handles(
        True, True, truth is not None and len(truth) > 0, interval
    )
    fig.legend(handles=handles, loc="outside right upper")
    measured_labels = [
        rate_label(r) for r in sorted(set(measured[schema.C_RATE_LABEL].astype(float)))
    ]
    fig.suptitle(
        f"{rate_label(target_rate)} reconstruction over measured "
        f"{', '.join(measured_labels) or 'rates'}"
    )
    return fig


_RABS_UNIT_SUFFIX = {"time": "/h", "charge": "/(mA.h)"}


@_styled
def rabs_figure(
    rabs: pd.DataFrame,
    per: str = "time",
    segments: Sequence[str] = ("charge", "discharge"),
) -> Figure:
    """Rabs of each parameter across C-rates, as grouped bars.

    One panel per parameter; along x one group per C-rate (bars in the rate's colour); within a
    group one bar per segment (and per ``source`` when that column exists), told apart by hatching.

    Parameters
    ----------
    rabs
        Output of :func:`ecpif.analysis.compare_rates`: the C-rate, ``segment`` and
        ``Rabs <p> [unit/h]`` / ``Rabs <p> [unit/(mA.h)]`` columns. Several tables may be
        concatenated with a ``source`` column (``"refined"``, ``"predicted"``, ``"truth"``).
        ``lower <column>`` / ``upper <column>`` give error bars.
    per
        ``"time"`` (Rabs per hour) or ``"charge"`` (Rabs per mA.h).
    segments
        Segments shown (rows of other segments, e.g. SOC windows, are left out).
    """
    if per not in _RABS_UNIT_SUFFIX:
        raise ConfigError(f"per must be 'time' or 'charge'; got {per!r}.")
    _require(rabs, [schema.C_RATE_LABEL], "Rabs table")
    suffix = _RABS_UNIT_SUFFIX[per]
    columns = [
        str(c)
        for c in rabs.columns
        if str(c).startswith("Rabs ") and (schema.unit_of(str(c)) or "").endswith(suffix)
    ]
    if not columns:
        raise DataError(
            f"The Rabs table has no 'Rabs <parameter> [unit{suffix}]' column; pass the output of "
            f"ecpif.analysis.compare_rates (its columns are {[str(c) for c in rabs.columns]})."
        )
    table = rabs
    if SEGMENT in rabs.columns:
        table = rabs[rabs[SEGMENT].astype(str).isin(list(segments))]
        if table.empty:
            raise DataError(
                f"The Rabs table has no rows of the segments {list(segments)}; its segments are "
                f"{list(dict.fromkeys(rabs[SEGMENT].astype(str)))}."
            )
    keys = [c for c in (SOURCE, SEGMENT) if c in table.columns]
    series: list[tuple[str, ...]] = (
        list(dict.fromkeys(zip(*(table[k].astype(str) for k in keys), strict=True)))
        if keys
        else [()]
    )
    hatch_cycle = ("", "///", "...", "xxx", "\\\\", "ooo")
    hatches = {s: hatch_cycle[i % len(hatch_cycle)] for i, s in enumerate(series)}
    rates = sorted({float(r) for r in table[schema.C_RATE_LABEL]})
    ncols = min(len(columns), 2)
    nrows = math.ceil(len(columns) / ncols)
    fig = _new_figure(3.4 * ncols + 0.6, 2.5 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    width = 0.8 / len(series)
    rate_of = table[schema.C_RATE_LABEL].astype(float)
    for ax, col in zip(axes, columns, strict=False):
        lo, hi = lower_column(col), upper_column(col)
        for k, ser in enumerate(series):
            mask = np.ones(len(table), dtype=bool)
            for key, value in zip(keys, ser, strict=True):
                mask &= (table[key].astype(str) == value).to_numpy()
            for i, r in enumerate(rates):
                row = table[mask & np.isclose(rate_of, r)]
                if row.empty or not np.isfinite(float(row[col].iloc[0])):
                    continue
                v = float(row[col].iloc[0])
                yerr = None
                if lo in row.columns and hi in row.columns:
                    yerr = [[v - float(row[lo].iloc[0])], [float(row[hi].iloc[0]) - v]]
                ax.bar(
                    i - 0.4 + width * (k + 0.5),
                    v,
                    width=width,
                    yerr=yerr,
                    color=rate_color(r),
                    hatch=hatches[ser],
                    edgecolor="white",
                    linewidth=0.3,
                    error_kw={"elinewidth": 0.8},
                )
        ax.set_xticks(range(len(rates)), [rate_label(r) for r in rates])
        ax.set_ylabel(col)
        ax.set_xlabel("C-rate")
        ax.grid(axis="x", visible=False)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    if keys:
        handles = [
            Patch(facecolor="#BBBBBB", hatch=hatches[s], edgecolor="white", label=" / ".join(s))
            for s in series
        ]
        fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4))
    return fig


__all__ = [
    "DPI",
    "RATE_COLORS",
    "SCHEME_COLORS",
    "correlation_heatmap",
    "coverage_figure",
    "evolution_figure",
    "figure_bytes",
    "honest_scheme",
    "importance_figure",
    "leaderboard_figure",
    "lower_column",
    "network_figure",
    "order_schemes",
    "parity_figure",
    "rabs_figure",
    "rate_color",
    "rate_label",
    "reconstruction_figure",
    "residuals_figure",
    "save_figure",
    "scheme_label",
    "upper_column",
]
