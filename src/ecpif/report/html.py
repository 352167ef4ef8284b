"""The HTML report: one self-contained file that opens offline in any browser.

:class:`ReportContent` is a plain container the pipeline fills with what a run computed (every
field optional); :class:`Report` turns it into figures and one HTML page, in skrub's manner::

    report = Report(ReportContent(leaderboard=lb, alignment=alignment_report))
    report.write_html("report.html")
    report.save_figures("figures")          # the same figures as PNG + SVG for papers

Sections (each ``<section id=...>`` with an ``<h2>``): ``data``, ``exploration``, ``leaderboard``,
``ensembles``, ``validation``, ``predictions``, ``rabs``, ``provenance``. A section whose inputs
are missing says "Not computed in this run." instead of failing.

Design decisions
----------------
* **Self-contained and offline**: CSS is inline, there is no JavaScript, figures are embedded as
  ``data:`` URIs (SVG by default, PNG on request). A Content-Security-Policy ``<meta>`` allows
  nothing but inline styles and ``data:`` images, so the page cannot reach the network, and no
  script could run even if one slipped into the page.
* **Escaping**: templates are rendered by a jinja2 environment with ``autoescape=True``; tables are
  passed to the template as lists of already-formatted *strings* (never ``DataFrame.to_html``), so
  a file name or column name such as ``<script>alert(1)</script>`` shows as text. Figures go in
  ``<img>`` elements: an SVG loaded as an image cannot run script either.
* Templates are package data (``ecpif/report/templates``), loaded with
  :class:`jinja2.PackageLoader`.
* A figure that cannot be drawn from the given data (an :class:`ecpif.errors.EcpifError`, e.g. a
  missing column) becomes a visible warning in its section and in :attr:`Report.warnings`, so one
  bad table does not cost the whole report; any other exception is a bug and propagates.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import platform
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif._provenance import STACK_PACKAGES, sha256_file
from ecpif._provenance import package_versions as _package_versions
from ecpif.errors import ConfigError, EcpifError
from ecpif.report import figures as figs

if TYPE_CHECKING:
    import networkx as nx
    from matplotlib.figure import Figure

    from ecpif.explore import Suggestion

#: ``(id, title)`` of every section, in page order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "Data and alignment quality"),
    ("exploration", "Exploration"),
    ("leaderboard", "Leaderboard"),
    ("ensembles", "Ensembles"),
    ("validation", "Validation"),
    ("predictions", "Predictions"),
    ("rabs", "Rabs"),
    ("provenance", "Provenance"),
)
SECTION_IDS: tuple[str, ...] = tuple(s for s, _ in SECTIONS)
NOT_COMPUTED = "Not computed in this run."

_FOLD_ROWS = 30

#: Packages whose versions the provenance section lists by default.
DEFAULT_PACKAGES: tuple[str, ...] = STACK_PACKAGES


# --- provenance helpers -------------------------------------------------------------------------


def hash_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """``{path as given: SHA-256}`` for :attr:`ReportContent.input_files`."""
    return {str(p): sha256_file(p) for p in paths}


def package_versions(names: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Installed version of each package (``"not installed"`` when absent), plus Python's."""
    found = _package_versions(names)
    return {"python": platform.python_version()} | {
        name: version or "not installed" for name, version in found.items()
    }


# --- the content ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReportContent:
    """Everything a report can show; every field is optional.

    Frames use canonical column names (:mod:`ecpif.schema`) and the column names of the module
    that produced them; see :mod:`ecpif.report.figures` for each figure's expected columns.

    Attributes
    ----------
    title, description
        Page title and an introductory paragraph (plain text).
    runs
        One row per run, any columns (e.g. run id, C-rate, cycler rows, patterns, duration).
    alignment
        The alignment reports of :func:`ecpif.align.align_run` stacked (one row per pattern:
        ``run id``, ``pattern id``, ``coverage [-]``, ``cycler samples [-]``, ``status``,
        ``reason``; the C-rate column when known, for colours).
    pearson, spearman
        Correlation matrices (:func:`ecpif.explore.correlations`).
    mutual_information
        Features x targets (:func:`ecpif.explore.mutual_information`).
    network
        Graph of :func:`ecpif.explore.feature_network`.
    suggestion
        :class:`ecpif.explore.Suggestion`.
    leaderboard
        Leaderboards of :func:`ecpif.validate.evaluate_zoo` for each scheme, concatenated
        (``target``, ``model``, ``kind``, ``scheme``, ``R²``, ``RMSE``, ...).
    primary_scheme
        Scheme that ranks the leaderboard (default: the most demanding present: ``loro``, else
        ``grouped``, else ``shuffled``).
    ensembles
        Ensemble details (``ZooResult.ensemble_details``, several schemes concatenated with a
        ``scheme`` column), any columns.
    oof_predictions
        Out-of-fold predictions in long form: ``ZooResult.predictions_frame()`` of each scheme
        with a ``scheme`` column, joined with context columns of the aligned table (C-rate,
        ``time [s]``, ``state of charge [-]``) for colours and residual plots.
    echem
        Cycler data of the runs shown, stacked, with the C-rate column: x column and voltage.
    refined
        The aligned table (refined parameters with esd, window-mean time and charge, C-rate).
    trajectories
        Predicted trajectories (:func:`ecpif.predict.predict_run` of each run, stacked, with the
        C-rate column): parameter, ``lower``/``upper`` columns.
    truth
        Ground truth of simulated runs, stacked, with the C-rate column.
    reconstruction_rate
        C-rate reconstructed without diffraction (e.g. ``2.0``), shown over the measured rates.
    importance
        Permutation importance on held-out data: ``feature``, ``importance mean``,
        ``importance std``, optional ``target``.
    truth_scores
        Accuracy of the trajectories against the ground truth of simulated runs, any columns
        (e.g. run id, target, RMSE, RMSE/esd).
    interval_coverage
        Held-out coverage of the prediction intervals
        (:func:`ecpif.uncertainty.held_out_coverage`), any columns.
    domain
        Applicability domain per run (``DomainReport.table`` of :func:`ecpif.predict.check_domain`
        stacked with a ``run id`` column), any columns.
    rabs
        :func:`ecpif.analysis.compare_rates` output (optionally several with a ``source`` column).
    config, seed
        The run's configuration (JSON-serialisable mapping) and its random seed.
    package_versions
        ``{package: version}``; default: collected when the report is rendered.
    input_files
        ``{file: SHA-256}`` (:func:`hash_files`).
    timings
        ``{step: seconds}`` of the run.
    provenance_details
        Anything else worth recording (machine, creation time ...), shown as a two-column table.
    generated_at
        Time stamp shown; default: when the report is rendered.
    figures
        Extra figures: ``{section id: {caption: matplotlib Figure}}``, appended to the section.
    notes
        ``{section id: plain text}`` shown at the top of the section.
    """

    title: str = "ecpif report"
    description: str = ""
    runs: pd.DataFrame | None = None
    alignment: pd.DataFrame | None = None
    pearson: pd.DataFrame | None = None
    spearman: pd.DataFrame | None = None
    mutual_information: pd.DataFrame | None = None
    network: nx.Graph | None = None
    suggestion: Suggestion | None = None
    leaderboard: pd.DataFrame | None = None
    primary_scheme: str | None = None
    ensembles: pd.DataFrame | None = None
    oof_predictions: pd.DataFrame | None = None
    echem: pd.DataFrame | None = None
    refined: pd.DataFrame | None = None
    trajectories: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    reconstruction_rate: float | None = None
    importance: pd.DataFrame | None = None
    truth_scores: pd.DataFrame | None = None
    interval_coverage: pd.DataFrame | None = None
    domain: pd.DataFrame | None = None
    rabs: pd.DataFrame | None = None
    config: Mapping[str, Any] | None = None
    seed: int | None = None
    package_versions: Mapping[str, str | None] | None = None
    input_files: Mapping[str, str] | None = None
    timings: Mapping[str, float] | None = None
    provenance_details: Mapping[str, Any] | None = None
    generated_at: dt.datetime | None = None
    figures: Mapping[str, Mapping[str, Figure]] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ecpif.validate import SCHEME

        lb = self.leaderboard
        if self.primary_scheme is not None and lb is not None and SCHEME in lb.columns:
            schemes = list(dict.fromkeys(lb[SCHEME].astype(str)))
            if self.primary_scheme not in schemes:
                raise ConfigError(
                    f"ReportContent.primary_scheme is {self.primary_scheme!r}, but the "
                    f"leaderboard holds the schemes {schemes}."
                )
        for what, mapping in (("figures", self.figures), ("notes", self.notes)):
            unknown = [k for k in mapping if k not in SECTION_IDS]
            if unknown:
                raise ConfigError(
                    f"ReportContent.{what} has the section id {unknown[0]!r}, which does not "
                    f"exist; use one of {list(SECTION_IDS)}."
                )

    @classmethod
    def from_results(cls, results: Any, *, title: str | None = None) -> ReportContent:
        """Fill every field from the :class:`ecpif.pipeline.Results` of a run.

        Frames are stacked over runs with the C-rate column (for colours), out-of-fold
        predictions of every scheme are joined with the aligned table's time, state of charge and
        C-rate, and the cycler-only run with the highest C-rate becomes the reconstruction shown
        over the measured rates. Permutation importance comes from ``results.importance``
        (held-out, see :mod:`ecpif.importance`).

        Examples
        --------
        >>> results = ecpif.pipeline.run()  # doctest: +SKIP
        >>> Report(ReportContent.from_results(results)).write_html("report.html")  # doctest: +SKIP
        """
        from ecpif import explore
        from ecpif.validate import SCHEME

        runs = list(results.runs)
        rate_of = {r.run_id: r.metadata.c_rate for r in runs}

        def with_rate(frame: pd.DataFrame, run: Any) -> pd.DataFrame:
            return frame.assign(**{schema.C_RATE_LABEL: run.metadata.c_rate})

        summary = pd.DataFrame(
            {
                schema.RUN_ID: [r.run_id for r in runs],
                schema.C_RATE_LABEL: [r.metadata.c_rate for r in runs],
                "cell": [r.metadata.cell for r in runs],
                "cycler samples": [len(r.echem) for r in runs],
                "patterns": [len(r.patterns) for r in runs],
                "duration [h]": [float(r.echem[schema.TIME].iloc[-1]) / 3600 for r in runs],
                "ground truth": ["yes" if r.truth is not None else "no" for r in runs],
            }
        )
        alignment = results.alignment_report
        if schema.RUN_ID in alignment.columns and schema.C_RATE_LABEL not in alignment.columns:
            alignment = alignment.assign(
                **{schema.C_RATE_LABEL: alignment[schema.RUN_ID].map(rate_of)}
            )
        targets = list(results.model.targets)
        ex = results.exploration or {}
        pearson = ex.get("pearson")
        network = None
        if pearson is not None and len(pearson):
            network = explore.feature_network(
                pearson, 0.8, [t for t in targets if t in pearson.columns]
            )
        context = [
            c
            for c in (schema.C_RATE_LABEL, schema.TIME, figs.STATE_OF_CHARGE)
            if c in results.aligned.columns
        ]
        oof, details = [], []
        for scheme, zoo in results.zoo.items():
            pred = zoo.predictions_frame()
            pred[SCHEME] = scheme
            oof.append(pred.join(results.aligned[context], on="row") if context else pred)
            if len(zoo.ensemble_details):
                details.append(zoo.ensemble_details.assign(**{SCHEME: scheme}))
        truth = [
            with_rate(r.truth.assign(**{schema.CHARGE: r.echem[schema.CHARGE].to_numpy()}), r)
            for r in runs
            if r.truth is not None
        ]
        unmeasured = [
            r.metadata.c_rate for r in runs if not r.has_patterns and r.metadata.c_rate is not None
        ]
        rabs = results.rabs
        rabs_truth = getattr(results, "rabs_truth", None)
        if rabs is not None and rabs_truth is not None and len(rabs_truth):
            rabs = pd.concat(
                [rabs.assign(source="predicted"), rabs_truth.assign(source="truth")],
                ignore_index=True,
            )
        domain = getattr(results, "domain", None) or {}
        domain_table = (
            pd.concat(
                [t.assign(**{schema.RUN_ID: k}) for k, t in domain.items()], ignore_index=True
            )
            if domain
            else None
        )
        predicted = [
            with_rate(results.predictions[r.run_id], r)
            for r in runs
            if r.run_id in results.predictions
        ]
        trajectories = pd.concat(predicted, ignore_index=True) if predicted else None
        provenance = dict(getattr(results, "provenance", None) or {})
        config = provenance.pop("config", None)
        if config is None and hasattr(results.config, "to_dict"):
            config = results.config.to_dict()
        seed = provenance.pop("seed", getattr(results.config, "seed", None))
        versions = provenance.pop("versions", None)
        files = provenance.pop("input files (SHA-256)", None)
        provenance.pop("runs", None)  # already in the runs table
        return cls(
            title=title or "ecpif study: " + ", ".join(r.run_id for r in runs),
            runs=summary,
            alignment=alignment,
            pearson=pearson,
            spearman=ex.get("spearman"),
            mutual_information=ex.get("mutual_information"),
            network=network,
            suggestion=ex.get("suggestion"),
            leaderboard=results.leaderboard,
            primary_scheme=getattr(results.config, "final_scheme", None),
            ensembles=pd.concat(details, ignore_index=True) if details else None,
            oof_predictions=pd.concat(oof, ignore_index=True) if oof else None,
            echem=pd.concat([with_rate(r.echem, r) for r in runs], ignore_index=True),
            refined=results.aligned,
            trajectories=trajectories,
            truth=pd.concat(truth, ignore_index=True) if truth else None,
            reconstruction_rate=max(unmeasured) if unmeasured else None,
            truth_scores=results.truth_scores,
            importance=getattr(results, "importance", None),
            interval_coverage=getattr(results, "coverage", None),
            domain=domain_table,
            rabs=rabs,
            config=config,
            seed=seed,
            package_versions=versions,
            input_files=files,
            timings=getattr(results, "timings", None),
            provenance_details=provenance or None,
            notes={"validation": " ".join(getattr(results, "notes", None) or [])},
        )


# --- formatting -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """One table cell as text: 4 significant digits, a dash for missing values."""
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "–" if not math.isfinite(float(value)) else f"{float(value):.4g}"
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    try:
        if pd.isna(value):
            return "–"
    except (TypeError, ValueError):
        pass
    return str(value)


def _table(
    frame: pd.DataFrame, caption: str = "", max_rows: int = 200, index: bool | None = None
) -> dict[str, Any]:
    """A table block: header and rows as strings (the template escapes them)."""
    if index is None:
        index = not isinstance(frame.index, pd.RangeIndex)
    if index:
        names = [n for n in frame.index.names]
        frame = frame.reset_index()
        if names == [None]:
            frame = frame.rename(columns={"index": ""})
    shown = frame.head(max_rows)
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    return {
        "kind": "table",
        "caption": caption,
        "columns": [str(c) for c in frame.columns],
        "numeric": numeric,
        "rows": rows,
        "more": max(len(frame) - max_rows, 0),
        # Long tables fold away (a native <details>, no script) so figures stay in reach.
        "folded": len(rows) > _FOLD_ROWS,
        "n_rows": len(frame),
    }


def _text(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


def _warning(text: str) -> dict[str, Any]:
    return {"kind": "warning", "text": text}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:80] or "figure"


def _present(frame: pd.DataFrame | None) -> bool:
    return frame is not None and len(frame) > 0


# --- the report -----------------------------------------------------------------------------------


class Report:
    """An HTML report of one ecpif study, built from a :class:`ReportContent`.

    Parameters
    ----------
    content
        What to show.
    figure_format
        ``"svg"`` (sharp at any zoom, the default) or ``"png"`` (smaller for dense scatter plots).
    max_rows
        Rows shown per table; the rest are counted.

    Examples
    --------
    >>> report = Report(ReportContent(title="NCA demo"))
    >>> "Not computed in this run." in report.html()
    True
    >>> report.write_html("report.html")  # doctest: +SKIP
    """

    def __init__(
        self, content: ReportContent, *, figure_format: str = "svg", max_rows: int = 200
    ) -> None:
        if not isinstance(content, ReportContent):
            raise ConfigError(
                f"Report needs a ReportContent; got {type(content).__name__}. Build one with "
                f"ecpif.report.ReportContent(...)."
            )
        if figure_format not in ("svg", "png"):
            raise ConfigError(f"figure_format must be 'svg' or 'png'; got {figure_format!r}.")
        self.content = content
        self.figure_format = figure_format
        self.max_rows = max_rows
        self.warnings: list[str] = []
        self._figures: dict[str, dict[str, Figure]] | None = None
        self._blocks: dict[str, list[dict[str, Any]]] = {}
        self._html: str | None = None

    # --- figures --------------------------------------------------------------------------------

    @property
    def figures(self) -> dict[str, dict[str, Figure]]:
        """``{section id: {caption: Figure}}``, drawn on first use."""
        if self._figures is None:
            self._build()
        assert self._figures is not None  # set by _build
        return self._figures

    def save_figures(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every figure as PNG and SVG into ``folder`` (``<section>_<caption>.png``)."""
        written: list[Path] = []
        used: set[str] = set()
        for section, figures in self.figures.items():
            for caption, fig in figures.items():
                name = base = f"{section}_{_slug(caption)}"
                n = 1
                while name in used:  # captions that differ only in symbols keep both files
                    n += 1
                    name = f"{base}_{n}"
                used.add(name)
                written += figs.save_figure(fig, Path(folder) / name)
        return written

    # --- html -----------------------------------------------------------------------------------

    def html(self) -> str:
        """The whole report as one HTML document (rendered once, then cached)."""
        if self._html is None:
            self._html = self._render()
        return self._html

    def write_html(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`html` to ``path`` atomically (UTF-8); returns the path."""
        from ecpif.io import write_atomic

        text = self.html()
        return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))

    def _repr_html_(self) -> str:
        return self.html()

    # --- building -------------------------------------------------------------------------------

    def _figure(
        self, section: str, caption: str, draw: Callable[..., Figure], *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Draw one figure; an EcpifError from bad data becomes a visible warning."""
        assert self._figures is not None
        try:
            fig = draw(*args, **kwargs)
        except EcpifError as exc:
            message = f"Figure '{caption}' could not be drawn: {exc}"
            self.warnings.append(message)
            return _warning(message)
        self._figures[section][caption] = fig
        return {"kind": "figure", "caption": caption, "figure": fig}

    def _build(self) -> None:
        self._figures = {s: {} for s in SECTION_IDS}
        self.warnings = []
        builders: dict[str, Callable[[], list[dict[str, Any] | None]]] = {
            "data": self._data,
            "exploration": self._exploration,
            "leaderboard": self._leaderboard,
            "ensembles": self._ensembles,
            "validation": self._validation,
            "predictions": self._predictions,
            "rabs": self._rabs,
            "provenance": self._provenance,
        }
        for section, build in builders.items():
            blocks = [b for b in build() if b is not None]
            for caption, fig in self.content.figures.get(section, {}).items():
                self._figures[section][caption] = fig
                blocks.append({"kind": "figure", "caption": caption, "figure": fig})
            self._blocks[section] = blocks

    def _embed(self, fig: Figure) -> str:
        data = figs.figure_bytes(fig, self.figure_format)
        mime = "image/svg+xml" if self.figure_format == "svg" else "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def _render(self) -> str:
        import jinja2

        if self._figures is None:
            self._build()
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("ecpif.report", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        sections = []
        for section, title in SECTIONS:
            blocks = []
            for block in self._blocks[section]:
                if block["kind"] == "figure":
                    block = {**block, "src": self._embed(block["figure"])}
                blocks.append(block)
            sections.append(
                {
                    "id": section,
                    "title": title,
                    "note": self.content.notes.get(section, ""),
                    "blocks": blocks,
                }
            )
        generated = self.content.generated_at or dt.datetime.now(dt.UTC)
        from ecpif import __version__

        return env.get_template("report.html.j2").render(
            title=self.content.title,
            description=self.content.description,
            sections=sections,
            not_computed=NOT_COMPUTED,
            generated=generated.isoformat(timespec="seconds"),
            version=__version__,
            warnings=self.warnings,
        )

    # --- sections -------------------------------------------------------------------------------

    def _data(self) -> list[dict[str, Any] | None]:
        c = self.content
        blocks: list[dict[str, Any] | None] = []
        if _present(c.runs):
            assert c.runs is not None
            blocks.append(_table(c.runs, "Runs", self.max_rows))
        if _present(c.alignment):
            assert c.alignment is not None
            blocks += self._alignment_blocks(c.alignment)
        return blocks

    def _alignment_blocks(self, report: pd.DataFrame) -> list[dict[str, Any] | None]:
        from ecpif.align import COVERAGE, N_SAMPLES, REASON, STATUS

        blocks: list[dict[str, Any] | None] = []
        run_col = schema.RUN_ID if schema.RUN_ID in report.columns else None
        if run_col is not None:
            rows = []
            for run_id, part in report.groupby(run_col, sort=False):
                row: dict[str, Any] = {"run id": run_id, "patterns": len(part)}
                if STATUS in part.columns:
                    counts = part[STATUS].astype(str).value_counts()
                    for status in ("kept", "clipped", "kept-nan", "dropped"):
                        row[status] = int(counts.get(status, 0))
                if COVERAGE in part.columns:
                    row["min coverage [-]"] = float(part[COVERAGE].min())
                    row["median coverage [-]"] = float(part[COVERAGE].median())
                if N_SAMPLES in part.columns:
                    row["median cycler samples [-]"] = float(part[N_SAMPLES].median())
                rows.append(row)
            blocks.append(_table(pd.DataFrame(rows), "Coverage per run", self.max_rows))
        if COVERAGE in report.columns:
            blocks.append(
                self._figure(
                    "data", "Coverage of each pattern window", figs.coverage_figure, report
                )
            )
        if STATUS in report.columns:
            bad = report[report[STATUS].astype(str) != "kept"]
            if len(bad):
                cols = [
                    c
                    for c in (run_col, schema.PATTERN_ID, STATUS, COVERAGE, REASON)
                    if c is not None and c in bad.columns
                ]
                blocks.append(
                    _table(bad[cols], "Windows not kept as measured, and why", self.max_rows, False)
                )
            else:
                blocks.append(_text("Every pattern window was covered by cycler data and kept."))
        return blocks

    def _exploration(self) -> list[dict[str, Any] | None]:
        c = self.content
        blocks: list[dict[str, Any] | None] = []
        for method, corr in (("pearson", c.pearson), ("spearman", c.spearman)):
            if corr is not None and not corr.empty:
                caption = f"{method.capitalize()} correlation of features and targets"
                blocks.append(
                    self._figure("exploration", caption, figs.correlation_heatmap, corr, method)
                )
        if c.network is not None:
            blocks.append(
                self._figure("exploration", "Feature network", figs.network_figure, c.network)
            )
        if _present(c.mutual_information):
            assert c.mutual_information is not None
            blocks.append(
                _table(
                    c.mutual_information,
                    "Mutual information between features and targets [nats]",
                    self.max_rows,
                    True,
                )
            )
        if c.suggestion is not None:
            s = c.suggestion
            symbol = "ρ" if s.method == "spearman" else "r"
            blocks.append(
                _table(
                    s.to_frame(),
                    f"Suggested features (near-duplicates: |{symbol}| > {s.threshold:g})",
                    self.max_rows,
                    False,
                )
            )
        return blocks

    def _schemes(self, leaderboard: pd.DataFrame) -> list[str]:
        from ecpif.validate import SCHEME

        return figs.order_schemes(leaderboard[SCHEME].astype(str))

    def _primary(self, leaderboard: pd.DataFrame) -> str:
        return self.content.primary_scheme or figs.honest_scheme(self._schemes(leaderboard))

    def _leaderboard_ok(self) -> bool:
        from ecpif.validate import MODEL, RMSE, SCHEME, TARGET

        lb = self.content.leaderboard
        if not _present(lb):
            return False
        assert lb is not None
        missing = [col for col in (TARGET, MODEL, SCHEME, RMSE) if col not in lb.columns]
        if missing:
            message = (
                f"The leaderboard lacks the column(s) {missing}; pass the leaderboard of "
                f"ecpif.validate.evaluate_zoo."
            )
            if message not in self.warnings:
                self.warnings.append(message)
            return False
        return True

    def _leaderboard(self) -> list[dict[str, Any] | None]:
        from ecpif.validate import KIND, LEADERBOARD_COLUMNS, RMSE, SCHEME

        if not self._leaderboard_ok():
            return self._missing_columns_warning()
        lb = self.content.leaderboard
        assert lb is not None
        primary = self._primary(lb)
        blocks: list[dict[str, Any] | None] = [
            self._figure(
                "leaderboard",
                "RMSE of each model per target and scheme",
                figs.leaderboard_figure,
                lb,
            )
        ]
        table = lb[lb[SCHEME].astype(str) == primary]
        cols = [c for c in LEADERBOARD_COLUMNS if c in table.columns and c != SCHEME]
        if KIND in table.columns and (table[KIND].astype(str) == "ensemble").any():
            blocks.append(
                _text(
                    "Ensembles (kind 'ensemble') were built from inner cross-validation only; "
                    "see the Ensembles section."
                )
            )
        blocks.append(
            _table(
                table[cols],
                f"Ranked by {RMSE} under {figs.scheme_label(primary)} validation",
                self.max_rows,
                False,
            )
        )
        return blocks

    def _missing_columns_warning(self) -> list[dict[str, Any] | None]:
        return [_warning(w) for w in self.warnings if w.startswith("The leaderboard lacks")]

    def _ensembles(self) -> list[dict[str, Any] | None]:
        from ecpif.validate import KIND, MODEL, RMSE, SCHEME, TARGET

        c = self.content
        blocks: list[dict[str, Any] | None] = []
        if self._leaderboard_ok() and c.leaderboard is not None and KIND in c.leaderboard.columns:
            lb = c.leaderboard
            ens = lb[lb[KIND].astype(str) == "ensemble"]
            if len(ens):
                wide = ens.pivot_table(index=[TARGET, MODEL], columns=SCHEME, values=RMSE)
                wide = wide.reindex(columns=[s for s in self._schemes(lb) if s in wide.columns])
                wide.columns = [f"RMSE ({figs.scheme_label(s)})" for s in wide.columns]
                blocks.append(_table(wide, "Ensembles, out-of-fold RMSE per scheme", self.max_rows))
        if _present(c.ensembles):
            assert c.ensembles is not None
            blocks.append(
                _table(c.ensembles, "Members and weights (chosen on inner folds)", self.max_rows)
            )
        return blocks

    def _best_models(self, predictions: pd.DataFrame) -> dict[str, str | None]:
        """Per target, the model to plot: best of the leaderboard's primary scheme."""
        from ecpif.validate import MODEL, RMSE, SCHEME, TARGET

        targets = (
            list(dict.fromkeys(predictions[TARGET].astype(str)))
            if TARGET in predictions.columns
            else [None]
        )
        if MODEL not in predictions.columns:
            return dict.fromkeys(targets)  # type: ignore[arg-type]
        out: dict[str, str | None] = {}
        lb = self.content.leaderboard if self._leaderboard_ok() else None
        for t in targets:
            available = predictions[MODEL].astype(str)
            if t is not None and TARGET in predictions.columns:
                available = available[predictions[TARGET].astype(str) == t]
            names = set(available)
            choice = None
            if lb is not None:
                rows = lb[
                    (lb[TARGET].astype(str) == t) & (lb[SCHEME].astype(str) == self._primary(lb))
                ]
                rows = rows[rows[MODEL].astype(str).isin(names)].sort_values(RMSE)
                if len(rows):
                    choice = str(rows[MODEL].iloc[0])
            out[str(t)] = choice or sorted(names)[0]
        return out

    def _validation(self) -> list[dict[str, Any] | None]:
        from ecpif.validate import MODEL, R2, RMSE, SCHEME, TARGET

        c = self.content
        blocks: list[dict[str, Any] | None] = []
        if self._leaderboard_ok() and c.leaderboard is not None:
            lb = c.leaderboard
            schemes = self._schemes(lb)
            values = [v for v in (RMSE, R2) if v in lb.columns]
            wide = lb.pivot_table(index=[TARGET, MODEL], columns=SCHEME, values=values, sort=False)
            columns = [(v, s) for v in values for s in schemes if (v, s) in wide.columns]
            wide = wide[columns]
            wide.columns = [f"{v} ({figs.scheme_label(s)})" for v, s in columns]
            # Targets in leaderboard order, models best first under the primary scheme.
            primary = f"{RMSE} ({figs.scheme_label(self._primary(lb))})"
            order = {t: i for i, t in enumerate(dict.fromkeys(lb[TARGET].astype(str)))}
            flat = wide.reset_index()
            flat["_t"] = flat[TARGET].astype(str).map(order)
            flat = flat.sort_values(["_t", primary], kind="mergesort").drop(columns="_t")
            wide = flat.set_index([TARGET, MODEL])
            blocks.append(
                _text(
                    "Shuffled k-fold measures interpolation between neighbouring patterns; grouped "
                    "holds out whole runs; leave-one-rate-out holds out a C-rate, the honest "
                    "estimate for a rate never measured."
                )
            )
            blocks.append(_table(wide, "The same models under each scheme", self.max_rows))
        if _present(c.interval_coverage):
            assert c.interval_coverage is not None
            blocks.append(
                _table(
                    c.interval_coverage,
                    "Prediction intervals: coverage of held-out rows",
                    self.max_rows,
                    False,
                )
            )
        if _present(c.oof_predictions):
            assert c.oof_predictions is not None
            oof = c.oof_predictions
            for target, model in self._best_models(oof).items():
                label = target if target != "None" else "target"
                subset = oof
                if TARGET in oof.columns:
                    subset = oof[oof[TARGET].astype(str) == target]
                suffix = f" ({model}, out-of-fold)" if model else " (out-of-fold)"
                blocks.append(
                    self._figure(
                        "validation",
                        f"Parity of {label}{suffix}",
                        figs.parity_figure,
                        subset,
                        model=model,
                    )
                )
                if any(x in oof.columns for x in (schema.TIME, figs.STATE_OF_CHARGE)):
                    blocks.append(
                        self._figure(
                            "validation",
                            f"Residuals of {label}{suffix}",
                            figs.residuals_figure,
                            subset,
                            model=model,
                        )
                    )
        return blocks

    def _predictions(self) -> list[dict[str, Any] | None]:
        c = self.content
        blocks: list[dict[str, Any] | None] = []
        frames = (c.echem, c.refined, c.trajectories, c.truth)
        if any(_present(f) for f in frames):
            blocks.append(
                self._figure(
                    "predictions",
                    "Voltage and structural parameters against time, per C-rate",
                    figs.evolution_figure,
                    *(f if _present(f) else None for f in frames),
                )
            )
        if c.reconstruction_rate is not None and _present(c.refined) and _present(c.trajectories):
            rate = figs.rate_label(c.reconstruction_rate)
            blocks.append(
                self._figure(
                    "predictions",
                    f"{rate} reconstruction over the measured rates",
                    figs.reconstruction_figure,
                    c.refined,
                    c.trajectories,
                    c.reconstruction_rate,
                    c.truth if _present(c.truth) else None,
                )
            )
        if _present(c.truth_scores):
            assert c.truth_scores is not None
            blocks.append(
                _table(
                    c.truth_scores, "Trajectories against the ground truth", self.max_rows, False
                )
            )
        if _present(c.domain):
            assert c.domain is not None
            blocks.append(
                _table(
                    c.domain,
                    "Applicability domain: features against their training range",
                    self.max_rows,
                    False,
                )
            )
        if _present(c.importance):
            assert c.importance is not None
            blocks.append(
                self._figure(
                    "predictions",
                    "Permutation feature importance on held-out data",
                    figs.importance_figure,
                    c.importance,
                )
            )
        return blocks

    def _rabs(self) -> list[dict[str, Any] | None]:
        c = self.content
        if not _present(c.rabs):
            return []
        assert c.rabs is not None
        return [
            self._figure(
                "rabs", "Rabs per hour across C-rates", figs.rabs_figure, c.rabs, per="time"
            ),
            self._figure(
                "rabs", "Rabs per mA.h across C-rates", figs.rabs_figure, c.rabs, per="charge"
            ),
            _table(c.rabs, "Rabs per segment and C-rate", self.max_rows, False),
        ]

    def _provenance(self) -> list[dict[str, Any] | None]:
        c = self.content
        blocks: list[dict[str, Any] | None] = []
        if c.seed is not None:
            blocks.append(_table(pd.DataFrame({"seed": [c.seed]}), "Random seed", index=False))
        if c.config is not None:
            text = json.dumps(c.config, indent=2, sort_keys=True, default=str, ensure_ascii=False)
            blocks.append({"kind": "pre", "caption": "Configuration", "text": text})
        if c.input_files:
            frame = pd.DataFrame(
                {"file": list(c.input_files), "SHA-256": list(c.input_files.values())}
            )
            blocks.append(_table(frame, "Input files", self.max_rows, False))
        if c.provenance_details:
            frame = pd.DataFrame(
                {
                    "item": list(c.provenance_details),
                    "value": [_cell(v) for v in c.provenance_details.values()],
                }
            )
            blocks.append(_table(frame, "Run", self.max_rows, False))
        if c.timings:
            frame = pd.DataFrame(
                {"step": list(c.timings), "time [s]": [float(v) for v in c.timings.values()]}
            )
            blocks.append(_table(frame, "Timings", self.max_rows, False))
        if not blocks:
            blocks.append(_text("No configuration, seed or input files were recorded in this run."))
        # Versions are always known, so provenance is never empty: it records this rendering.
        versions = c.package_versions if c.package_versions is not None else package_versions()
        frame = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
        blocks.append(_table(frame, "Package versions", self.max_rows, False))
        return blocks


__all__ = [
    "DEFAULT_PACKAGES",
    "NOT_COMPUTED",
    "SECTIONS",
    "SECTION_IDS",
    "Report",
    "ReportContent",
    "hash_files",
    "package_versions",
    "sha256_file",
]
