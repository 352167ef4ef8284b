"""What the page does: each callback reads the session, calls the library, and shows the result.

Science lives in the library: reading is :func:`ecpif.pipeline.load_runs` and
:mod:`ecpif.io`, alignment :func:`ecpif.align.align_run`, exploration :mod:`ecpif.explore`, the
study :func:`ecpif.pipeline.run` and :func:`ecpif.pipeline.write_results`, prediction
:func:`ecpif.predict.predict_run`, bundles :mod:`ecpif.bundle`, figures :mod:`ecpif.report`.
Callbacks only pick arguments from the controls and format what comes back.

Errors: an :class:`ecpif.errors.EcpifError` (bad file, bad choice) is shown next to the control that
caused it; anything else reaches the app-wide ``on_error`` handler (:mod:`ecpif.app.server`), which
shows one sentence at the top of the page. No callback ever sends a traceback to the browser.
"""

from __future__ import annotations

import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from dash import MATCH, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from ecpif import schema
from ecpif.app import views
from ecpif.app.jobs import CANCELLED, CANCELLING, DONE, FAILED, Job
from ecpif.app.layout import FAST_MODELS
from ecpif.app.state import Session, SessionStore, StudyOutcome
from ecpif.app.uploads import (
    ReadOutcome,
    Upload,
    UploadError,
    clean_message,
    decode_upload,
    needs_timezone,
    read_cycler_file,
    read_structure_file,
    safe_name,
    save_upload,
    too_large_message,
)
from ecpif.errors import ConfigError, EcpifError

#: Order of the report's sections shown under "Results", with their headings.
RESULT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("leaderboard", "Leaderboard figure"),
    ("ensembles", "Ensembles"),
    ("validation", "Parity and residuals (out-of-fold)"),
    ("predictions", "Evolution curves with intervals"),
    ("rabs", "Rabs: absolute rate of change"),
)
#: Scheme preferred as the final one, most honest first.
HONEST_ORDER: tuple[str, ...] = ("loro", "grouped", "shuffled")

# Runs in the browser: a file above the limit never leaves the page (see uploads.py).
UPLOAD_GATE_JS = """
function(contents, filename, limits) {
    if (!contents) { return [window.dash_clientside.no_update, window.dash_clientside.no_update]; }
    var comma = contents.indexOf(',');
    var size = Math.floor((contents.length - comma - 1) * 3 / 4);
    var stamp = Date.now();
    if (limits && size > limits.max_bytes) {
        return [{filename: filename, error: 'too-large', size: size, stamp: stamp}, null];
    }
    return [{filename: filename, contents: contents, stamp: stamp}, null];
}
"""


# --- helpers that do not touch the page ---------------------------------------------------------


def page_figures(report: Any) -> dict[str, list[tuple[str, str]]]:
    """The figures of a :class:`ecpif.report.Report` as PNG data URIs, by report section."""
    return {
        section: [(caption, views.figure_uri(fig)) for caption, fig in figs.items()]
        for section, figs in report.figures.items()
    }


def study_work(config: Any, folder: Path) -> Any:
    """The background work of one study: run, write the outputs, draw the page's figures.

    The HTML report is written when it is first downloaded (:func:`report_file`), from the same
    :class:`~ecpif.report.Report` whose figures the page shows: rendering every figure as print
    PNG + SVG takes longer than the study itself on the demo, and most visits never download it.
    """

    def work(progress: Any, cancel: threading.Event) -> StudyOutcome:
        from ecpif import pipeline

        results = pipeline.run(
            config, progress=lambda step, f: progress(step, 0.85 * f), cancel=cancel
        )
        if cancel.is_set():
            raise pipeline.Cancelled("The run was cancelled.")
        progress("writing the results", 0.86)
        out = pipeline.write_results(results, folder / "results", report=False)
        progress("drawing the figures", 0.9)
        report = results.report()
        figures = page_figures(report)
        return StudyOutcome(
            results=results,
            folder=Path(out),
            figures=figures,
            report=report,
            warnings=list(report.warnings),
        )

    return work


def report_file(outcome: StudyOutcome) -> Path:
    """``report.html`` in the results folder, written on first use."""
    path = outcome.folder / "report.html"
    if not path.is_file():
        outcome.report.write_html(path)
    return path


def honest_default(schemes: Sequence[str]) -> str | None:
    """The most demanding scheme among ``schemes`` (the default final scheme)."""
    return next((s for s in HONEST_ORDER if s in schemes), None)


def alignment_of(session: Session, policy: str) -> dict[str, Any]:
    """Alignments of the session's runs under ``policy`` (computed once per policy)."""
    from ecpif.align import align_run

    with session.lock:
        cache = session.extra.setdefault("alignments", {})
        if policy not in cache:
            cache[policy] = {
                run.run_id: align_run(run, policy=policy)  # type: ignore[arg-type]
                for run in session.runs
                if run.has_patterns
            }
        return dict(cache[policy])


def aligned_table(session: Session, policy: str) -> pd.DataFrame | None:
    """The training table (aligned rows of every run) under ``policy``."""
    alignments = alignment_of(session, policy)
    if not alignments:
        return None
    return pd.concat([a.frame for a in alignments.values()], ignore_index=True)


def candidate_features(session: Session, policy: str) -> list[str]:
    """Cycler-derived columns usable as model inputs (what :mod:`ecpif.align` marks as such)."""
    out: list[str] = []
    for alignment in alignment_of(session, policy).values():
        out += [c for c in alignment.feature_columns if c not in out]
    return out


def target_columns(session: Session, policy: str) -> list[str]:
    out: list[str] = []
    for alignment in alignment_of(session, policy).values():
        out += [c for c in alignment.parameter_columns if c not in out]
    return out


def build_config(
    session: Session,
    *,
    features: Sequence[str],
    targets: Sequence[str],
    models: Sequence[str],
    all_models: Sequence[str],
    schemes: Sequence[str],
    final_scheme: str | None,
    ensemble: str,
    confidence: float | None,
    policy: str,
) -> Any:
    """The :class:`ecpif.pipeline.StudyConfig` of the page's choices (one sentence if unusable)."""
    from ecpif.pipeline import StudyConfig

    if not session.runs:
        raise ConfigError("No data loaded yet; load the demo or add a run in step 1.")
    if not features:
        raise ConfigError("No feature is ticked; pick at least one model input in step 3.")
    if not targets:
        raise ConfigError("No target is ticked; pick at least one refined parameter in step 3.")
    if not models:
        raise ConfigError("No model is ticked; pick at least one model in step 4.")
    if not schemes:
        raise ConfigError("No validation scheme is ticked; pick at least one in step 4.")
    chosen = "all" if set(models) >= set(all_models) else tuple(models)
    return StudyConfig(
        runs=tuple(session.specs) if session.dataset == "files" else (),
        features=tuple(features),
        targets=tuple(targets),
        models=chosen,
        schemes=tuple(s for s in HONEST_ORDER[::-1] if s in schemes),
        final_scheme=final_scheme or honest_default(schemes) or "shuffled",
        ensemble=ensemble or "auto",
        confidence=float(confidence) if confidence is not None else 0.9,
        policy=policy or "drop",
        n_jobs=2,
    )


def status_view(session: Session) -> tuple[Any, float]:
    """The job line and the progress percentage."""
    job = session.job
    if job is None:
        return "", 0.0
    snap = job.snapshot()
    pct = 100.0 * snap.fraction
    if snap.status == FAILED:
        return views.message(snap.message, "error", id="job-error"), pct
    if snap.status == CANCELLED:
        return views.message("Cancelled; nothing was changed.", "warning", id="job-cancelled"), pct
    if snap.status == DONE:
        return views.message(f"Done in {snap.elapsed_s:.1f} s.", "ok", id="job-done"), 100.0
    verb = "Cancelling" if snap.status == CANCELLING else "Running"
    text = f"{verb}: {snap.step} ({pct:.0f} %, {snap.elapsed_s:.0f} s)"
    return views.message(text, "info", id="job-running"), pct


def _readout(outcome: ReadOutcome | None, slot: str) -> Any:
    if outcome is None:
        return ""
    if outcome.summary is not None:
        return views.summary_card(outcome.summary, slot)
    parts = [views.message(outcome.message, "error", id=f"{slot}-error")]
    if outcome.ask_timezone:
        parts.append(
            views.message(
                "Choose the time zone the instrument clock used in the time-zone box; the file "
                "is read again at once.",
                "warning",
                id=f"{slot}-ask-timezone",
            )
        )
    return html.Div(parts)


def receive(session: Session, slot: str, payload: dict[str, Any], max_bytes: int) -> Upload:
    """Store one upload payload from the page (raises :class:`UploadError` with the sentence)."""
    if payload.get("error") == "too-large":
        raise UploadError(too_large_message(payload.get("filename"), payload["size"], max_bytes))
    raw = decode_upload(payload.get("contents"), payload.get("filename"), max_bytes)
    upload = save_upload(session.folder / "uploads", slot, payload.get("filename"), raw)
    session.uploads[slot] = upload
    return upload


def _stem(name: str) -> str:
    stem = Path(name).stem
    for suffix in ("_cycler", "-cycler", "_echem"):
        stem = stem.removesuffix(suffix)
    return safe_name(stem)


# --- registration ---------------------------------------------------------------------------------


def register(app: Dash, store: SessionStore, max_bytes: int, models: list[str]) -> None:
    """Attach every callback of the page to ``app``."""

    app.clientside_callback(
        UPLOAD_GATE_JS,
        Output({"type": "payload", "slot": MATCH}, "data"),
        Output({"type": "upload", "slot": MATCH}, "contents"),
        Input({"type": "upload", "slot": MATCH}, "contents"),
        State({"type": "upload", "slot": MATCH}, "filename"),
        State("limits", "data"),
        prevent_initial_call=True,
    )

    # --- step 1: uploads of a training run --------------------------------------------------------

    @app.callback(
        Output("cycler-readout", "children"),
        Output("refinement-readout", "children"),
        Output("timezone", "className"),
        Output("run-id", "value"),
        Input({"type": "payload", "slot": "cycler"}, "data"),
        Input({"type": "payload", "slot": "refinement"}, "data"),
        Input("timezone", "value"),
        State("run-id", "value"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_training_upload(
        cycler: dict | None, refinement: dict | None, tz: str | None, run_id: str | None, sid: str
    ) -> tuple[Any, Any, str, Any]:
        session = store.get(sid)
        trigger = ctx.triggered_id
        errors: dict[str, Any] = {}
        new_id: Any = no_update
        for slot, payload in (("cycler", cycler), ("refinement", refinement)):
            if isinstance(trigger, dict) and trigger.get("slot") == slot and payload:
                try:
                    upload = receive(session, slot, payload, max_bytes)
                except UploadError as exc:
                    session.uploads.pop(slot, None)
                    session.readouts.pop(slot, None)
                    errors[slot] = views.message(str(exc), "error", id=f"{slot}-error")
                    continue
                # Suggest the file's stem unless the user typed a run id of their own.
                if slot == "cycler" and (not run_id or run_id == session.extra.get("auto_id")):
                    new_id = session.extra["auto_id"] = _stem(upload.name)
        for slot, reader in (("cycler", read_cycler_file), ("refinement", read_structure_file)):
            if slot in session.uploads and slot not in errors:
                session.readouts[slot] = reader(session.uploads[slot], tz)
        outs = [
            errors.get(slot, _readout(session.readouts.get(slot), slot))
            for slot in ("cycler", "refinement")
        ]
        ask = any(
            session.readouts[slot].ask_timezone
            for slot in ("cycler", "refinement")
            if slot in session.uploads and slot in session.readouts
        )
        return outs[0], outs[1], "tz needs-answer" if ask else "tz", new_id

    # --- step 1: load demo / add run / clear --------------------------------------------------

    @app.callback(
        Output("data-message", "children"),
        Output("runs-table", "children"),
        Output("data-version", "data"),
        Input("load-demo", "n_clicks"),
        Input("add-run", "n_clicks"),
        Input("clear-runs", "n_clicks"),
        State("run-id", "value"),
        State("c-rate", "value"),
        State("capacity", "value"),
        State("timezone", "value"),
        State("clock-offset", "value"),
        State("data-version", "data"),
        State("session", "data"),
    )
    def on_data(
        _demo: int | None,
        _add: int | None,
        _clear: int | None,
        run_id: str | None,
        c_rate: float | None,
        capacity: float | None,
        tz: str | None,
        offset: float | None,
        version: int,
        sid: str,
    ) -> tuple[Any, Any, int]:
        session = store.get(sid)
        trigger = ctx.triggered_id
        note: Any = ""
        if trigger is None:
            # Page (re)load: show whatever this session already holds.
            return "", views.table(views.runs_frame(session.runs), "runs"), version
        if session.busy:
            note = views.message(
                "A study is running on these data; cancel it before changing the data.",
                "warning",
                id="data-busy",
            )
            return note, no_update, version
        if trigger == "load-demo":
            from ecpif.pipeline import StudyConfig, load_runs

            runs = load_runs(StudyConfig())
            session.set_runs(runs, "demo", [])
            session.extra.pop("alignments", None)
            note = views.message(
                f"Loaded the demo dataset: {len(runs)} runs ({', '.join(r.run_id for r in runs)}).",
                "ok",
                id="data-ok",
            )
        elif trigger == "clear-runs":
            session.clear_runs()
            session.extra.pop("alignments", None)
            note = views.message("All runs removed.", "info", id="data-ok")
        elif trigger == "add-run":
            try:
                note = add_run(session, run_id, c_rate, capacity, tz, offset or 0.0)
            except EcpifError as exc:
                text = clean_message(str(exc), session.folder)
                parts = [views.message(text, "error", id="data-error")]
                if needs_timezone(exc):
                    parts.append(
                        views.message(
                            "Choose the time zone above and add the run again.",
                            "warning",
                            id="data-ask-timezone",
                        )
                    )
                return html.Div(parts), no_update, version
        return note, views.table(views.runs_frame(session.runs), "runs"), version + 1

    def add_run(
        session: Session,
        run_id: str | None,
        c_rate: float | None,
        capacity: float | None,
        tz: str | None,
        offset: float,
    ) -> Any:
        from ecpif.pipeline import RunSpec, StudyConfig, load_runs

        cycler = session.uploads.get("cycler")
        if cycler is None:
            raise ConfigError("No cycler file uploaded yet; upload the run's cycler file first.")
        run_id = (run_id or _stem(cycler.name)).strip()
        # Uploaded runs replace the demo (once this one has been read successfully).
        runs = [] if session.dataset == "demo" else list(session.runs)
        specs = [] if session.dataset == "demo" else list(session.specs)
        if any(r.run_id == run_id for r in runs):
            raise ConfigError(
                f"A run called {run_id!r} is already loaded; give this run another run id."
            )
        # Each run keeps its own copies, so a later upload to the same slot cannot change it.
        folder = session.folder / "runs" / safe_name(run_id)
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "cycler").mkdir(parents=True)
        cycler_path = shutil.copy2(cycler.path, folder / "cycler" / cycler.name)
        refinement = session.uploads.get("refinement")
        ref_path = None
        if refinement is not None:
            (folder / "refinement").mkdir()
            ref_path = shutil.copy2(refinement.path, folder / "refinement" / refinement.name)
        spec = RunSpec(
            run_id=run_id,
            cycler=str(cycler_path),
            refinement=None if ref_path is None else str(ref_path),
            c_rate=float(c_rate) if c_rate else None,
            nominal_capacity_Ah=float(capacity) if capacity else None,
            timezone=tz or None,
            clock_offset_s=float(offset),
        )
        try:
            (run,) = load_runs(StudyConfig(runs=(spec,)))
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        session.set_runs([*runs, run], "files", [*specs, spec])
        session.extra.pop("alignments", None)
        session.uploads.pop("cycler", None)
        session.uploads.pop("refinement", None)
        what = f"{len(run.patterns)} patterns" if run.has_patterns else "no patterns (to predict)"
        text = f"Added run {run_id!r}: {len(run.echem):,} cycler samples, {what}."
        if spec.c_rate is None:
            text += " No C-rate given: leave-one-rate-out needs one for every run."
        return views.message(text, "ok", id="data-ok")

    # --- step 2: alignment ----------------------------------------------------------------------

    @app.callback(
        Output("align-run", "options"),
        Output("align-run", "value"),
        Output("align-summary", "children"),
        Output("align-graph", "figure"),
        Output("align-report", "children"),
        Input("data-version", "data"),
        Input("align-policy", "value"),
        Input("align-run", "value"),
        State("session", "data"),
    )
    def on_alignment(_v: int, policy: str, chosen: str | None, sid: str) -> tuple[Any, ...]:
        from ecpif.align import STATUS
        from ecpif.report.figures import coverage_figure

        session = store.get(sid)
        if not session.runs:
            empty = views.empty_figure("Load data first.")
            return [], None, "", empty, ""
        try:
            alignments = alignment_of(session, policy or "drop")
        except EcpifError as exc:
            return (
                no_update,
                no_update,
                views.message(str(exc), "error", id="align-error"),
                views.empty_figure("Alignment failed."),
                "",
            )
        ids = [r.run_id for r in session.runs]
        value = chosen if chosen in ids else (next(iter(alignments), ids[0]))
        run = next(r for r in session.runs if r.run_id == value)
        report = (
            pd.concat(
                [a.report.assign(**{schema.RUN_ID: rid}) for rid, a in alignments.items()],
                ignore_index=True,
            )
            if alignments
            else pd.DataFrame()
        )
        if len(report):
            counts = report.groupby([schema.RUN_ID, STATUS]).size().unstack(fill_value=0)
            counts = counts.reset_index()
            summary: Any = html.Div(
                [html.H3("Alignment quality"), views.table(counts, "align-counts")]
            )
        else:
            summary = views.message("No run has diffraction patterns to align.", "info")
        details: list[Any] = []
        if len(report):
            rates = {r.run_id: r.metadata.c_rate for r in session.runs}
            cov = report.assign(**{schema.C_RATE_LABEL: report[schema.RUN_ID].map(rates)})
            if cov[schema.C_RATE_LABEL].isna().any():
                cov = cov.drop(columns=schema.C_RATE_LABEL)
            details.append(
                views.image(
                    views.figure_uri(coverage_figure(cov)),
                    "Coverage of each pattern window",
                    id="coverage-img",
                )
            )
            issues = report[report[STATUS] != "kept"]
            details.append(html.H3(f"Patterns not kept as they are ({len(issues)})"))
            details.append(
                views.table(
                    issues, "align-issues", empty="Every window is fully covered by cycler data."
                )
            )
        figure = views.alignment_figure(run, alignments.get(value))
        return [{"label": i, "value": i} for i in ids], value, summary, figure, details

    # --- step 3: exploration and choices ------------------------------------------------------

    @app.callback(
        Output("explore-figures", "children"),
        Output("suggestion", "children"),
        Output("features", "options"),
        Output("features", "value"),
        Output("targets", "options"),
        Output("targets", "value"),
        Input("data-version", "data"),
        Input("align-policy", "value"),
        Input("corr-method", "value"),
        Input("net-threshold", "value"),
        State("features", "value"),
        State("targets", "value"),
        State("session", "data"),
    )
    def on_explore(
        _v: int,
        policy: str,
        method: str,
        threshold: float,
        features: list[str],
        targets: list[str],
        sid: str,
    ) -> tuple[Any, ...]:
        from ecpif import explore
        from ecpif.pipeline import DEFAULT_FEATURES
        from ecpif.report.figures import correlation_heatmap, network_figure

        session = store.get(sid)
        policy = policy or "drop"
        data = aligned_table(session, policy) if session.runs else None
        if data is None or not len(data):
            hint = "Load runs with diffraction patterns to explore features."
            return html.Div(hint, className="muted"), "", [], [], [], []
        candidates = candidate_features(session, policy)
        params = target_columns(session, policy)
        data_changed = ctx.triggered_id in (None, "data-version", "align-policy")
        if data_changed or not features:
            features = [f for f in DEFAULT_FEATURES if f in candidates]
        else:
            features = [f for f in features if f in candidates]
        if data_changed or not targets:
            targets = list(params)
        else:
            targets = [t for t in targets if t in params]
        session.extra.pop("suggestion", None)
        if not params:
            note: Any = views.message(
                "The loaded pattern tables hold no refined parameter (a pattern log gives only "
                "times): add runs with a refinement table to explore and train.",
                "warning",
                id="explore-note",
            )
            return note, "", candidates, features, params, targets
        # Constant columns (e.g. the cycle of a single-cycle run) carry no correlation.
        varying = [c for c in candidates if data[c].nunique(dropna=True) > 1]
        try:
            corr = explore.correlations(data, [*varying, *params], method=method)
            graph = explore.feature_network(corr, threshold=float(threshold), targets=params)
            suggestion = explore.suggest_features(data, varying, params, method=method)
        except EcpifError as exc:
            note = views.message(str(exc), "error", id="explore-error")
            return note, "", candidates, features, params, targets
        session.extra["suggestion"] = list(suggestion.kept)
        figures = [
            views.image(
                views.figure_uri(correlation_heatmap(corr, method=method)),
                f"{method.capitalize()} correlation",
                id="heatmap-img",
            ),
            views.image(
                views.figure_uri(network_figure(graph)),
                f"Feature network (|r| > {float(threshold):.2f})",
                id="network-img",
            ),
        ]
        table = html.Div(
            [
                html.H3("Suggested feature set (near-duplicates dropped)"),
                views.table(suggestion.to_frame(), "suggestion-table"),
            ]
        )
        return figures, table, candidates, features, params, targets

    @app.callback(
        Output("features", "value", allow_duplicate=True),
        Input("use-suggested", "n_clicks"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_use_suggested(_n: int, sid: str) -> list[str]:
        kept = store.get(sid).extra.get("suggestion")
        if not kept:
            raise PreventUpdate
        return list(kept)

    # --- step 4: models and schemes ------------------------------------------------------------

    @app.callback(
        Output("models", "value"),
        Input("models-all", "n_clicks"),
        Input("models-fast", "n_clicks"),
        Input("models-none", "n_clicks"),
        prevent_initial_call=True,
    )
    def on_model_preset(_a: int, _f: int, _n: int) -> list[str]:
        if ctx.triggered_id == "models-all":
            return list(models)
        if ctx.triggered_id == "models-fast":
            return [m for m in FAST_MODELS if m in models]
        return []

    @app.callback(
        Output("final-scheme", "options"),
        Output("final-scheme", "value"),
        Input("schemes", "value"),
        State("final-scheme", "value"),
    )
    def on_schemes(schemes: list[str], final: str | None) -> tuple[list[str], str | None]:
        ordered = [s for s in HONEST_ORDER[::-1] if s in (schemes or [])]
        if final in ordered:
            return ordered, final
        return ordered, honest_default(ordered)

    @app.callback(
        Output("job-status", "children"),
        Output("progress", "value"),
        Output("poll", "disabled"),
        Output("run-study", "disabled"),
        Output("cancel-study", "disabled"),
        Output("results-version", "data"),
        Input("run-study", "n_clicks"),
        Input("cancel-study", "n_clicks"),
        Input("poll", "n_intervals"),
        State("features", "value"),
        State("targets", "value"),
        State("models", "value"),
        State("schemes", "value"),
        State("final-scheme", "value"),
        State("ensemble-mode", "value"),
        State("confidence", "value"),
        State("align-policy", "value"),
        State("results-version", "data"),
        State("session", "data"),
    )
    def on_job(
        _run: int | None,
        _cancel: int | None,
        _tick: int | None,
        features: list[str],
        targets: list[str],
        chosen: list[str],
        schemes: list[str],
        final: str | None,
        ensemble: str,
        confidence: float | None,
        policy: str,
        version: int,
        sid: str,
    ) -> tuple[Any, ...]:
        session = store.get(sid)
        trigger = ctx.triggered_id
        if trigger == "run-study":
            if session.busy:
                text = "A study is already running; cancel it or wait for it to finish."
                return (
                    views.message(text, "warning", id="job-busy"),
                    no_update,
                    False,
                    True,
                    False,
                    no_update,
                )
            try:
                config = build_config(
                    session,
                    features=features or [],
                    targets=targets or [],
                    models=chosen or [],
                    all_models=models,
                    schemes=schemes or [],
                    final_scheme=final,
                    ensemble=ensemble,
                    confidence=confidence,
                    policy=policy,
                )
            except EcpifError as exc:
                return (
                    views.message(str(exc), "error", id="job-error"),
                    0,
                    True,
                    False,
                    True,
                    no_update,
                )
            session.outcome = None
            session.job = Job(study_work(config, session.folder), name="study").start()
            status, pct = status_view(session)
            return status, f"{pct:.0f}", False, True, False, version + 1
        if trigger == "cancel-study" and session.job is not None:
            session.job.cancel()
        job = session.job
        if job is None:
            return "", "0", True, False, True, no_update
        status, pct = status_view(session)
        snap = job.snapshot()
        if not snap.finished:
            return status, f"{pct:.0f}", False, True, snap.status == CANCELLING, no_update
        if job.alive:
            # Cancelled or failed, but the last step is still winding down: keep polling.
            return status, f"{pct:.0f}", False, True, True, no_update
        new_version: Any = no_update
        if snap.status == DONE and session.outcome is not job.result:
            session.outcome = job.result
            new_version = version + 1
        return status, f"{pct:.0f}", True, False, True, new_version

    # --- step 5: results -------------------------------------------------------------------------

    @app.callback(
        Output("results-summary", "children"),
        Output("lb-scheme", "options"),
        Output("lb-target", "options"),
        Output("ensembles-box", "children"),
        Output("figures-box", "children"),
        Output("download-report", "disabled"),
        Output("download-predictions", "disabled"),
        Output("download-bundle", "disabled"),
        Input("results-version", "data"),
        State("session", "data"),
    )
    def on_results(_v: int, sid: str) -> tuple[Any, ...]:
        from ecpif.validate import SCHEME, TARGET

        session = store.get(sid)
        outcome = session.outcome
        if outcome is None:
            return "No results yet.", [], [], "", "", True, True, True
        res = outcome.results
        model = res.model
        n_runs = res.aligned[schema.RUN_ID].nunique() if schema.RUN_ID in res.aligned else 0
        summary = html.Div(
            [
                views.message(
                    f"Trained on {len(res.aligned)} patterns from {n_runs} runs; final scheme "
                    f"{res.config.final_scheme!r}; {res.timings.get('total', 0.0):.1f} s.",
                    "ok",
                    id="results-ok",
                ),
                *[views.message(w, "warning") for w in outcome.warnings],
            ]
        )
        ens = pd.DataFrame(
            [
                {
                    "target": t,
                    "kind": model.kinds.get(t, ""),
                    "members": ", ".join(model.members.get(t, [])),
                    "weights": ", ".join(f"{w:.3f}" for w in model.weights.get(t, [])),
                    "scheme": model.scheme,
                }
                for t in model.targets
            ]
        )
        boxes: list[Any] = [views.table(ens, "final-model")]
        if res.coverage is not None and len(res.coverage):
            boxes += [
                html.H3("Held-out interval coverage"),
                views.table(res.coverage, "coverage-table"),
            ]
        if res.truth_scores is not None and len(res.truth_scores):
            boxes += [
                html.H3("Trajectories against the ground truth"),
                views.table(res.truth_scores, "truth-table"),
            ]
        figs: list[Any] = []
        for section, heading in RESULT_SECTIONS:
            items = outcome.figures.get(section, [])
            if section == "rabs":
                figs += [
                    html.H3(heading),
                    views.gallery(items, id=f"fig-{section}"),
                    views.table(res.rabs, "rabs-table"),
                ]
            elif items:
                figs += [html.H3(heading), views.gallery(items, id=f"fig-{section}")]
        schemes = list(dict.fromkeys(res.leaderboard[SCHEME].astype(str)))
        targets = list(dict.fromkeys(res.leaderboard[TARGET].astype(str)))
        return summary, schemes, targets, boxes, figs, False, False, False

    @app.callback(
        Output("leaderboard-box", "children"),
        Input("results-version", "data"),
        Input("lb-scheme", "value"),
        Input("lb-target", "value"),
        State("session", "data"),
    )
    def on_leaderboard(_v: int, scheme: str | None, target: str | None, sid: str) -> Any:
        from ecpif.validate import RANK, SCHEME, TARGET

        outcome = store.get(sid).outcome
        if outcome is None:
            return html.Div("Run a study to see the leaderboard.", className="muted")
        lb = outcome.results.leaderboard
        if scheme:
            lb = lb[lb[SCHEME] == scheme]
        if target:
            lb = lb[lb[TARGET] == target]
        lb = lb.sort_values([SCHEME, TARGET, RANK], kind="mergesort")
        return views.table(lb.reset_index(drop=True), "leaderboard")

    # --- step 6: prediction of an uploaded cycler-only run -------------------------------------

    @app.callback(
        Output("predict-readout", "children"),
        Output("predict-timezone", "className"),
        Output("predict-run-id", "value"),
        Input({"type": "payload", "slot": "predict"}, "data"),
        Input("predict-timezone", "value"),
        State("predict-run-id", "value"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_predict_upload(
        payload: dict | None, tz: str | None, run_id: str | None, sid: str
    ) -> tuple[Any, str, Any]:
        session = store.get(sid)
        new_id: Any = no_update
        if isinstance(ctx.triggered_id, dict) and payload:
            try:
                upload = receive(session, "predict", payload, max_bytes)
            except UploadError as exc:
                session.uploads.pop("predict", None)
                session.readouts.pop("predict", None)
                return views.message(str(exc), "error", id="predict-error"), "tz", no_update
            if not run_id or run_id == session.extra.get("auto_predict_id"):
                new_id = session.extra["auto_predict_id"] = _stem(upload.name)
        if "predict" not in session.uploads:
            raise PreventUpdate
        outcome = read_cycler_file(session.uploads["predict"], tz)
        session.readouts["predict"] = outcome
        css = "tz needs-answer" if outcome.ask_timezone else "tz"
        return _readout(outcome, "predict"), css, new_id

    @app.callback(
        Output("bundle-readout", "children"),
        Output("predict-model", "value"),
        Input({"type": "payload", "slot": "bundle"}, "data"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_bundle(payload: dict | None, sid: str) -> tuple[Any, Any]:
        from ecpif.bundle import load_bundle

        session = store.get(sid)
        if not payload:
            raise PreventUpdate
        try:
            upload = receive(session, "bundle", payload, max_bytes)
            model = load_bundle(upload.path)
        except EcpifError as exc:
            session.bundle_model = None
            text = clean_message(str(exc), session.folder)
            return views.message(text, "error", id="bundle-error"), no_update
        session.bundle_model = model
        session.bundle_name = upload.name
        facts = [
            ("bundle", upload.name),
            ("targets", ", ".join(model.targets)),
            ("features", ", ".join(model.features)),
            ("ensembles", ", ".join(f"{t}: {k}" for t, k in model.kinds.items())),
            ("trained on", f"{model.n_rows} patterns, scheme {model.scheme!r}"),
        ]
        return html.Div(
            views.facts_list(facts), className="readout ok", id="bundle-summary"
        ), "bundle"

    @app.callback(
        Output("predict-output", "children"),
        Output("download-prediction", "disabled"),
        Input("predict-button", "n_clicks"),
        State("predict-model", "value"),
        State("predict-run-id", "value"),
        State("predict-c-rate", "value"),
        State("predict-capacity", "value"),
        State("predict-timezone", "value"),
        State("confidence", "value"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_predict(
        _n: int,
        source: str,
        run_id: str | None,
        c_rate: float | None,
        capacity: float | None,
        tz: str | None,
        confidence: float | None,
        sid: str,
    ) -> tuple[Any, bool]:
        session = store.get(sid)
        try:
            frame, notes = predict_upload(session, source, run_id, c_rate, capacity, tz, confidence)
        except EcpifError as exc:
            session.prediction = None
            text = clean_message(str(exc), session.folder)
            return views.message(text, "error", id="predict-error"), True
        from ecpif.report.figures import evolution_figure

        targets = [t for t in (session.extra.get("predict_targets") or []) if t in frame]
        echem = frame[[schema.RUN_ID, schema.TIME, schema.VOLTAGE]]
        fig = evolution_figure(echem=echem, predicted=frame, parameters=targets)
        parts: list[Any] = [
            views.message(
                f"Predicted {', '.join(targets)} at {len(frame):,} cycler samples of "
                f"{session.prediction_name!r}.",
                "ok",
                id="predict-ok",
            ),
            *[views.message(n, "warning") for n in notes],
            views.image(
                views.figure_uri(fig), "Predicted trajectories with intervals", id="predict-figure"
            ),
            views.table(frame, "predict-table", max_rows=10),
        ]
        return html.Div(parts), False

    def predict_upload(
        session: Session,
        source: str,
        run_id: str | None,
        c_rate: float | None,
        capacity: float | None,
        tz: str | None,
        confidence: float | None,
    ) -> tuple[pd.DataFrame, list[str]]:
        from ecpif import predict
        from ecpif.pipeline import RunSpec, StudyConfig, load_runs

        if source == "bundle":
            model = session.bundle_model
            if model is None:
                raise ConfigError("No model bundle loaded; upload a .skops bundle first.")
        else:
            if session.outcome is None:
                raise ConfigError(
                    "No model trained yet; run a study in step 4 or choose a saved bundle."
                )
            model = session.outcome.results.model
        upload = session.uploads.get("predict")
        if upload is None:
            raise ConfigError("No cycler file to predict; upload one first.")
        name = (run_id or _stem(upload.name)).strip() or "run"
        spec = RunSpec(
            run_id=name,
            cycler=str(upload.path),
            c_rate=float(c_rate) if c_rate else None,
            nominal_capacity_Ah=float(capacity) if capacity else None,
            timezone=tz or None,
        )
        (run,) = load_runs(StudyConfig(runs=(spec,)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", predict.ApplicabilityWarning)
            traj = predict.predict_run(
                model, run, confidence=float(confidence) if confidence else 0.9
            )
        notes = [
            str(w.message) for w in caught if issubclass(w.category, predict.ApplicabilityWarning)
        ]
        base = run.echem[
            [schema.TIMESTAMP, schema.TIME, schema.VOLTAGE, schema.CURRENT, schema.CHARGE]
        ]
        extra = traj.drop(columns=[c for c in base.columns if c in traj.columns])
        frame = pd.concat([base, extra], axis=1)
        frame.insert(0, schema.RUN_ID, name)
        session.prediction = frame
        session.prediction_name = upload.name
        session.extra["predict_targets"] = list(model.targets)
        return frame, notes

    # --- step 7: downloads ---------------------------------------------------------------------

    def _result_file(sid: str, name: str) -> Path:
        outcome = store.get(sid).outcome
        if outcome is None or not (outcome.folder / name).is_file():
            raise PreventUpdate
        return outcome.folder / name

    @app.callback(
        Output("download-report-file", "data"),
        Input("download-report", "n_clicks"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_download_report(_n: int, sid: str) -> dict[str, Any]:
        session = store.get(sid)
        if session.outcome is None:
            raise PreventUpdate
        with session.lock:
            path = report_file(session.outcome)
        return dcc.send_file(str(path), filename="ecpif_report.html")

    @app.callback(
        Output("download-predictions-file", "data"),
        Input("download-predictions", "n_clicks"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_download_predictions(_n: int, sid: str) -> dict[str, Any]:
        return dcc.send_file(
            str(_result_file(sid, "predictions.csv")), filename="ecpif_predictions.csv"
        )

    @app.callback(
        Output("download-bundle-file", "data"),
        Input("download-bundle", "n_clicks"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_download_bundle(_n: int, sid: str) -> dict[str, Any]:
        return dcc.send_file(str(_result_file(sid, "model.skops")), filename="ecpif_model.skops")

    @app.callback(
        Output("download-prediction-file", "data"),
        Input("download-prediction", "n_clicks"),
        State("session", "data"),
        prevent_initial_call=True,
    )
    def on_download_prediction(_n: int, sid: str) -> dict[str, Any]:
        session = store.get(sid)
        if session.prediction is None:
            raise PreventUpdate
        stem = Path(session.prediction_name).stem or "run"
        return dcc.send_data_frame(
            session.prediction.to_csv, f"{safe_name(stem)}_predictions.csv", index=False
        )


__all__ = [
    "HONEST_ORDER",
    "RESULT_SECTIONS",
    "aligned_table",
    "alignment_of",
    "build_config",
    "candidate_features",
    "honest_default",
    "page_figures",
    "receive",
    "register",
    "report_file",
    "status_view",
    "study_work",
]
