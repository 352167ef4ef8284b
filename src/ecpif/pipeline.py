"""The whole chain as one library call: files -> runs -> aligned patterns -> zoo -> ensemble ->
trajectories with intervals -> Rabs -> results on disk.

``run(config) -> Results`` is the single entry point of the CLI (``ecpif demo``, ``ecpif report``)
and of the web app; neither re-implements a step.

Design decisions
----------------
* **Library first, quiet by default.** Progress is reported through an optional callback
  ``progress(step, fraction)``; cancellation through an optional :class:`threading.Event`, checked
  between steps (a step that has started finishes: scikit-learn fits cannot be interrupted safely).
* **Honest by construction.** Every requested validation scheme is evaluated (shuffled 5-fold for
  comparison with the reference study, grouped by run, leave-one-rate-out); the *final* model's
  ensemble members and its interval calibration come from ``final_scheme`` (leave-one-rate-out by
  default, the scheme that matches predicting an unmeasured rate).
* **Ground truth when there is one.** Simulated runs carry the noise-free parameters at every cycler
  sample; their trajectories are scored against it in units of the 5-minute refinement esd, for the
  trained rates (interpolation) and for rates without patterns (extrapolation).
* **Nothing half-written.** :func:`write_results` renders every output into a temporary sibling
  folder and swaps it in only when all of it exists; a failed run leaves earlier results intact.
* **Default features are physics-informed**: net charge passed since the first sample, voltage,
  current, direction and the C-rate from current. Per-run normalised state of charge is
  deliberately absent: a 2C run delivers less capacity, so the same normalised value means another
  lithiation, and models trained on it fail at 2C (17-21x the esd in a prototype).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import threading
import time
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif._provenance import STACK_PACKAGES, package_versions, sha256_file
from ecpif.errors import ConfigError, EcpifError, did_you_mean
from ecpif.run import OperandoRun, RunMetadata
from ecpif.validate import DEFAULT_FEATURES as _ZOO_DEFAULT_FEATURES

if TYPE_CHECKING:
    from ecpif.ensemble import TrainedEnsemble
    from ecpif.report import Report
    from ecpif.validate import ZooResult

#: Features used when the config names none (see the module docstring for why these): the same
#: as ``ecpif train``'s.
DEFAULT_FEATURES: tuple[str, ...] = _ZOO_DEFAULT_FEATURES
DEFAULT_TARGETS: tuple[str, ...] = ("a", "c", "d", "li_occupancy")
#: What the "grouped" scheme holds out together: a run, or all runs of one cell.
GROUP_BY: tuple[str, ...] = ("run", "cell")
SCHEMES: tuple[str, ...] = ("shuffled", "grouped", "loro")
REFERENCE_EXPOSURE_S = 300.0


class Cancelled(EcpifError, RuntimeError):
    """The run was cancelled by the caller (``cancel`` event set)."""


@dataclass(frozen=True)
class RunSpec:
    """One operando run given as files.

    Parameters
    ----------
    run_id
        Unique short name, e.g. ``"cell4-1C"``.
    cycler
        Cycler file (any format :func:`ecpif.io.read_cycler` reads).
    refinement
        Refinement table (or GSAS-II export); ``None`` for a cycler-only run to predict.
    c_rate, nominal_capacity_Ah
        Protocol C-rate label (1/h) and nominal capacity (A.h).
    timezone
        IANA zone of naive timestamps in the files (e.g. ``"Europe/Berlin"``).
    clock_offset_s
        Seconds to add to the diffractometer's clock to match the cycler's.
    cell
        Free text.
    """

    run_id: str
    cycler: str
    refinement: str | None = None
    c_rate: float | None = None
    nominal_capacity_Ah: float | None = None
    timezone: str | None = None
    clock_offset_s: float = 0.0
    cell: str = ""
    #: Simulated runs only: the noise-free truth file written by ecpif.simulate (``_truth.csv``),
    #: so that trajectories are scored against it.
    truth: str | None = None


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study needs; every field has a sensible default (the demo).

    Examples
    --------
    >>> cfg = StudyConfig(models=("ridge", "knn"), schemes=("loro",))
    >>> cfg.final_scheme
    'loro'
    """

    runs: tuple[RunSpec, ...] = ()
    features: tuple[str, ...] | None = None
    targets: tuple[str, ...] = DEFAULT_TARGETS
    models: str | tuple[str, ...] = "all"
    schemes: tuple[str, ...] = SCHEMES
    final_scheme: str = "loro"
    ensemble: str = "auto"
    top_k: int = 5
    confidence: float = 0.9
    policy: str = "drop"
    explore: bool = True
    seed: int = 0
    n_jobs: int = 2
    #: Where the zoo, the searches and the nested ensemble fits run: "local" or "dask"
    #: (ecpif.backend); "dask" without an address starts a loopback cluster of n_jobs workers.
    backend: str = "local"
    backend_address: str | None = None
    #: Add tuned variants ("<model>_tuned", ecpif.tune) searched inside every training set.
    tune: bool = False
    tune_models: str | tuple[str, ...] = "all"
    tune_trials: int | None = 20
    tune_budget_s: float | None = None
    #: "run" or "cell": the groups of the "grouped" scheme (RunSpec.cell names the cell).
    group_by: str = "run"

    def __post_init__(self) -> None:
        from ecpif.backend import check_backend

        check_backend(self.backend, self.backend_address)
        if self.group_by not in GROUP_BY:
            raise ConfigError(
                f"Unknown group_by {self.group_by!r}.{did_you_mean(str(self.group_by), GROUP_BY)} "
                f"Choose from {list(GROUP_BY)}."
            )
        if self.tune:
            from ecpif.tune import TuningBudget

            TuningBudget(n_trials=self.tune_trials, budget_s=self.tune_budget_s)
        for scheme in self.schemes:
            if scheme not in SCHEMES:
                raise ConfigError(
                    f"Unknown validation scheme {scheme!r}.{did_you_mean(scheme, SCHEMES)} "
                    f"Choose from {list(SCHEMES)}."
                )
        if not self.schemes:
            raise ConfigError(f"At least one validation scheme is needed; choose from {SCHEMES}.")
        if self.final_scheme not in self.schemes:
            raise ConfigError(
                f"The final scheme {self.final_scheme!r} must be one of the evaluated schemes "
                f"{list(self.schemes)}; add it to 'schemes' or pick another."
            )
        if not 0 < self.confidence < 1:
            raise ConfigError(f"The confidence must lie in (0, 1); got {self.confidence!r}.")
        if not self.targets:
            raise ConfigError("At least one target is needed, e.g. targets = ['a', 'c'].")
        ids = [r.run_id for r in self.runs]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"Run ids must be unique; got {ids}.")

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.features if self.features is not None else DEFAULT_FEATURES

    @property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(schema.parameter_column(t) for t in self.targets)

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> StudyConfig:
        """Read a TOML study file; ``overrides`` (e.g. from CLI flags) win over the file.

        The file has the fields of :class:`StudyConfig` at top level and one ``[[runs]]`` table per
        run (fields of :class:`RunSpec`); relative file paths are relative to the TOML file.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Config file {path} does not exist; check the path.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
        return cls.from_dict(data, base=path.parent, source=str(path), **overrides)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base: Path | None = None,
        source: str = "config",
        **overrides: Any,
    ) -> StudyConfig:
        """Build a config from a plain mapping (the parsed TOML)."""
        data = dict(data)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(
                f"Unknown setting {unknown[0]!r} in {source}.{did_you_mean(unknown[0], fields)} "
                f"Valid settings: {sorted(fields)}."
            )
        runs = []
        run_fields = {f.name for f in dataclasses.fields(RunSpec)}
        for i, spec in enumerate(data.pop("runs", []) or []):
            bad = sorted(set(spec) - run_fields)
            if bad:
                raise ConfigError(
                    f"Unknown setting {bad[0]!r} in run {i + 1} of {source}."
                    f"{did_you_mean(bad[0], run_fields)} Valid: {sorted(run_fields)}."
                )
            spec = dict(spec)
            for key in ("cycler", "refinement", "truth"):
                if spec.get(key) and base is not None and not Path(spec[key]).is_absolute():
                    spec[key] = str(base / spec[key])
            try:
                runs.append(RunSpec(**spec))
            except TypeError as exc:
                raise ConfigError(f"Run {i + 1} of {source} is incomplete: {exc}.") from None
        for key in ("features", "targets", "schemes"):
            if key in data and data[key] is not None:
                data[key] = tuple(data[key])
        for key in ("models", "tune_models"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(runs=tuple(runs), **data)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["runs"] = [dataclasses.asdict(r) for r in self.runs]
        out["features"] = list(self.feature_columns)
        return out

    def to_toml(self) -> str:
        """The config as TOML text (what ``config.toml`` in the output folder holds)."""

        def value(v: Any) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, int | float):
                return repr(v)
            if isinstance(v, list | tuple):
                return "[" + ", ".join(value(x) for x in v) + "]"
            return json.dumps(str(v), ensure_ascii=False)

        lines = []
        d = self.to_dict()
        runs = d.pop("runs")
        for key, v in d.items():
            if v is not None:
                lines.append(f"{key} = {value(v)}")
        for spec in runs:
            lines.append("\n[[runs]]")
            lines += [f"{k} = {value(v)}" for k, v in spec.items() if v is not None]
        return "\n".join(lines) + "\n"


@dataclass
class Results:
    """What :func:`run` computed. See ``/docs`` of each field's producer for column meanings."""

    config: StudyConfig
    runs: list[OperandoRun]
    aligned: pd.DataFrame
    alignment_report: pd.DataFrame
    exploration: dict[str, Any] | None
    zoo: dict[str, ZooResult]
    leaderboard: pd.DataFrame
    model: TrainedEnsemble
    predictions: dict[str, pd.DataFrame]
    coverage: pd.DataFrame
    truth_scores: pd.DataFrame | None
    rabs: pd.DataFrame
    rabs_truth: pd.DataFrame | None
    domain: dict[str, pd.DataFrame]
    importance: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def report(self) -> Report:
        """The HTML report of these results (see :mod:`ecpif.report`)."""
        from ecpif.report import Report, ReportContent

        return Report(ReportContent.from_results(self))


# --- steps -----------------------------------------------------------------------------------


def load_runs(config: StudyConfig) -> list[OperandoRun]:
    """Read every run of the config (or the bundled demo when it names none)."""
    if not config.runs:
        from ecpif.datasets import load_nca_demo

        return load_nca_demo()
    from ecpif.io import read_run

    runs = []
    for spec in config.runs:
        metadata = RunMetadata(
            run_id=spec.run_id,
            cell=spec.cell,
            nominal_capacity_Ah=spec.nominal_capacity_Ah,
            c_rate=spec.c_rate,
            timezone=spec.timezone or "UTC",
            source=f"{spec.cycler}" + (f" + {spec.refinement}" if spec.refinement else ""),
        )
        run = read_run(
            spec.cycler,
            spec.refinement,
            metadata=metadata,
            timezone=spec.timezone,
            clock_offset_s=spec.clock_offset_s,
            allow_partial_windows=True,
        )
        if spec.truth:
            from ecpif.datasets import read_truth

            run = run.replace(truth=read_truth(Path(spec.truth), run.echem))
        runs.append(run)
    return runs


def five_minute_esd(aligned: pd.DataFrame, target: str) -> float:
    """The refinement esd of ``target`` scaled to a 300 s exposure (esd ∝ 1/sqrt(exposure)).

    Returns NaN when the table has no esd column for the target.
    """
    esd_col = schema.esd_column(target)
    if esd_col not in aligned.columns or "duration [s]" not in aligned.columns:
        return math.nan
    scaled = aligned[esd_col] * np.sqrt(aligned["duration [s]"] / REFERENCE_EXPOSURE_S)
    return float(np.nanmedian(scaled.to_numpy(dtype=float)))


def truth_scores(
    runs: Sequence[OperandoRun],
    predictions: Mapping[str, pd.DataFrame],
    targets: Sequence[str],
    esd_5min: Mapping[str, float],
) -> pd.DataFrame | None:
    """RMSE of each predicted trajectory against the ground truth, also in 5-min esd units."""
    from ecpif.predict import lower_column, upper_column

    rows = []
    for run in runs:
        if run.truth is None or run.run_id not in predictions:
            continue
        pred = predictions[run.run_id]
        for t in targets:
            if t not in run.truth.columns or t not in pred.columns:
                continue
            err = pred[t].to_numpy(dtype=float) - run.truth[t].to_numpy(dtype=float)
            rmse = float(np.sqrt(np.nanmean(err**2)))
            lo = pred.get(lower_column(t))
            hi = pred.get(upper_column(t))
            cov = math.nan
            if lo is not None and hi is not None:
                truth = run.truth[t].to_numpy(dtype=float)
                cov = float(np.mean((truth >= lo.to_numpy()) & (truth <= hi.to_numpy())))
            rows.append(
                {
                    schema.RUN_ID: run.run_id,
                    schema.CELL: run.metadata.cell,
                    schema.C_RATE_LABEL: run.metadata.c_rate,
                    "regime": "interpolation (trained rate)"
                    if run.has_patterns
                    else "extrapolation (no patterns)",
                    "target": t,
                    "RMSE": rmse,
                    "esd 5 min": esd_5min.get(t, math.nan),
                    "RMSE/esd": rmse / esd_5min.get(t, math.nan),
                    "truth inside interval [-]": cov,
                    "samples": int(np.isfinite(err).sum()),
                }
            )
    return pd.DataFrame(rows) if rows else None


def _truth_columns(run: OperandoRun, targets: Sequence[str]) -> pd.DataFrame:
    truth = run.truth if run.truth is not None else pd.DataFrame(index=run.echem.index)
    return truth[[c for c in targets if c in truth.columns]]


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("The run was cancelled; earlier results were left untouched.")


def run(
    config: StudyConfig | None = None,
    *,
    progress: Callable[[str, float], None] | None = None,
    cancel: threading.Event | None = None,
) -> Results:
    """Run the whole chain; see the module docstring.

    Examples
    --------
    >>> res = run(StudyConfig(models=("ridge", "knn", "extra_trees")))  # doctest: +SKIP
    >>> res.truth_scores[["run id", "target", "RMSE/esd"]]  # doctest: +SKIP
    """
    from ecpif import align, ensemble, predict, uncertainty, validate
    from ecpif.importance import held_out_importance

    config = config or StudyConfig()
    report = progress or (lambda step, fraction: None)
    timings: dict[str, float] = {}
    notes: list[str] = []
    n_steps = 5 + len(config.schemes)
    done = 0

    def step(name: str) -> None:
        nonlocal done
        _check_cancel(cancel)
        report(name, done / n_steps)
        done += 1

    t0 = time.perf_counter()
    step("reading files")
    runs = load_runs(config)
    timings["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    step("aligning patterns with the cycler data")
    trained_runs = [r for r in runs if r.has_patterns]
    if not trained_runs:
        raise ConfigError(
            "None of the runs has diffraction patterns, so there is nothing to learn from; give "
            "at least one run a refinement table."
        )
    alignments = [align.align_run(r, policy=config.policy) for r in trained_runs]  # type: ignore[arg-type]
    aligned = pd.concat([a.frame for a in alignments], ignore_index=True)
    alignment_report = pd.concat(
        [
            a.report.assign(**{schema.RUN_ID: a_run.run_id})
            if schema.RUN_ID not in a.report
            else a.report
            for a, a_run in zip(alignments, trained_runs, strict=True)
        ],
        ignore_index=True,
    )
    cell_of = {r.run_id: r.metadata.cell for r in trained_runs}
    aligned.insert(1, schema.CELL, aligned[schema.RUN_ID].map(cell_of))
    features = list(config.feature_columns)
    targets = list(config.target_columns)
    missing = [c for c in features if c not in aligned.columns]
    if missing:
        raise ConfigError(
            f"Unknown feature {missing[0]!r}.{did_you_mean(missing[0], aligned.columns)} "
            f"Features available after alignment: {sorted(map(str, aligned.columns))}."
        )
    timings["align"] = time.perf_counter() - t

    exploration = None
    t = time.perf_counter()
    step("exploring features")
    if config.explore:
        from ecpif import explore

        columns = features + [c for c in targets if c in aligned.columns]
        candidates = [
            c
            for c in (
                *features,
                "state of charge [-]",
                "nominal state of charge [-]",
                "dQ/dV [mA.h/V]",
                "dV/dt [V/h]",
                "step time [s]",
                "step charge [mA.h]",
            )
            if c in aligned.columns
        ]
        candidates = list(dict.fromkeys(candidates))
        exploration = {
            "pearson": explore.correlations(
                aligned, list(dict.fromkeys(candidates + targets)), method="pearson"
            ),
            "spearman": explore.correlations(
                aligned, list(dict.fromkeys(candidates + targets)), method="spearman"
            ),
            "mutual_information": explore.mutual_information(
                aligned, candidates, targets, random_state=config.seed
            ),
            "suggestion": explore.suggest_features(aligned, candidates, targets),
            "columns": columns,
        }
    timings["explore"] = time.perf_counter() - t

    from ecpif.backend import parallel_backend

    zoo: dict[str, ZooResult] = {}
    # Fits shared between schemes: grouped and leave-one-rate-out folds coincide when every run
    # has its own rate, and a fit is deterministic, so it is made once (validate.evaluate_zoo).
    fit_cache: dict[Any, Any] = {}
    group_col = schema.CELL if config.group_by == "cell" else schema.RUN_ID
    budget = None
    if config.tune:
        from ecpif import tune

        budget = tune.TuningBudget(n_trials=config.tune_trials, budget_s=config.tune_budget_s)
    t = time.perf_counter()
    # One switch moves every joblib-parallel step (zoo fits, searches, nested ensemble fits).
    n_workers = int(config.n_jobs) if config.n_jobs > 0 else (os.cpu_count() or 1)
    with parallel_backend(config.backend, config.backend_address, n_workers=n_workers) as engine:
        timings["backend start"] = time.perf_counter() - t
        n_jobs = config.n_jobs if engine.name == "local" else engine.n_jobs
        for scheme in config.schemes:
            t = time.perf_counter()
            step(f"cross-validating the model zoo ({scheme})")
            folds = validate.make_folds(
                aligned, scheme, group_col=group_col, random_state=config.seed
            )
            # Ensembles choose their members inside each training fold, which needs >= 3 folds
            # (e.g. leave-one-rate-out with only two measured rates cannot): evaluate models alone.
            with_ensembles = folds.n_folds >= 3
            if not with_ensembles:
                notes.append(
                    f"The {scheme!r} scheme has only {folds.n_folds} folds, so ensembles were not "
                    f"evaluated under it (they need 3 to choose members inside each training fold)."
                )
            kwargs: dict[str, Any] = dict(
                models=config.models, scheme=scheme, group_col=group_col,
                ensembles=with_ensembles, top_k=config.top_k,
                preset="study" if config.ensemble == "study" else None,
                n_jobs=n_jobs, random_state=config.seed,
            )  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if budget is not None:
                    zoo[scheme] = tune.evaluate_tuned(
                        aligned, features, targets, tune=config.tune_models, budget=budget,
                        **kwargs,
                    )  # fmt: skip
                else:
                    zoo[scheme] = validate.evaluate_zoo(
                        aligned, features, targets, fit_cache=fit_cache, **kwargs
                    )
            timings[f"zoo {scheme}"] = time.perf_counter() - t
    leaderboard = pd.concat([z.leaderboard for z in zoo.values()], ignore_index=True)

    t = time.perf_counter()
    step("fitting the final ensemble")
    final = zoo[config.final_scheme]
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        if budget is not None:
            # Tuned members of the final model (and the importance refits) search again on their
            # training rows, with the budget one search had in the evaluation.
            info = final.settings["tuning"]
            stack.enter_context(
                tune.tuned_variants(
                    info["models"], n_trials=budget.n_trials,
                    timeout_s=info["timeout per search [s]"], cv=budget.cv, inner=budget.inner,
                )
            )  # fmt: skip
        model = ensemble.fit_ensemble(aligned, final, kind=config.ensemble)
        importance = held_out_importance(aligned, final, random_state=config.seed)
    coverage = pd.DataFrame()
    if final.inner:
        coverage = uncertainty.held_out_coverage(final, model="auto", confidence=config.confidence)
    timings["fit"] = time.perf_counter() - t

    t = time.perf_counter()
    step("predicting trajectories")
    predictions: dict[str, pd.DataFrame] = {}
    domain: dict[str, pd.DataFrame] = {}
    for r in runs:
        # Features once per run: they feed both the prediction and the domain report.
        feats = predict.run_features(model, r)
        traj = predict.predict_frame(model, feats, confidence=config.confidence, warn=False)
        domain[r.run_id] = predict.check_domain(model, feats).table
        base = r.echem[
            [schema.TIMESTAMP, schema.TIME, schema.VOLTAGE, schema.CURRENT, schema.CHARGE]
        ]
        extra = traj.drop(columns=[c for c in base.columns if c in traj.columns])
        predictions[r.run_id] = pd.concat([base, extra], axis=1)
    esd_5min = {tgt: five_minute_esd(aligned, tgt) for tgt in targets}
    scores = truth_scores(runs, predictions, targets, esd_5min)
    timings["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    step("computing Rabs")
    truth_traj = {
        r.run_id: pd.concat(
            [r.echem[[schema.TIME, schema.CHARGE, schema.CURRENT]], _truth_columns(r, targets)],
            axis=1,
        )
        for r in runs
        if r.truth is not None
    }
    rabs_table = _compare_runs(runs, predictions, targets)
    rabs_truth = None
    if len(truth_traj) == len(runs):
        rabs_truth = _compare_runs(runs, truth_traj, targets)
    timings["rabs"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report("done", 1.0)

    return Results(
        config=config,
        runs=runs,
        aligned=aligned,
        alignment_report=alignment_report,
        exploration=exploration,
        zoo=zoo,
        leaderboard=leaderboard,
        model=model,
        predictions=predictions,
        coverage=coverage,
        truth_scores=scores,
        rabs=rabs_table,
        rabs_truth=rabs_truth,
        domain=domain,
        importance=importance,
        notes=notes,
        timings=timings,
        provenance=provenance(config, runs),
    )


def _compare_runs(
    runs: Sequence[OperandoRun], trajectories: Mapping[str, pd.DataFrame], targets: Sequence[str]
) -> pd.DataFrame:
    """Rabs per rate; when rates repeat (several cells at the same rates), per run.

    Repeated rates cannot key one comparison, so each run is compared on its own and the rows
    carry its run id and cell beside the (numeric) rate label.
    """
    from ecpif import analysis

    rates = [r.metadata.c_rate for r in runs]
    if None not in rates and len(set(rates)) == len(rates):
        return analysis.compare_rates(
            {float(c): trajectories[r.run_id] for r, c in zip(runs, rates, strict=True) if c},
            targets,
        )
    parts = []
    for r in runs:
        part = analysis.compare_rates({r.metadata.c_rate or r.run_id: trajectories[r.run_id]},
                                      targets)  # fmt: skip
        part.insert(0, schema.CELL, r.metadata.cell)
        part.insert(0, schema.RUN_ID, r.run_id)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# --- provenance and output ----------------------------------------------------------------------


def provenance(config: StudyConfig, runs: Sequence[OperandoRun]) -> dict[str, Any]:
    """Config, seed, package versions and SHA-256 of every input file."""
    import ecpif

    versions: dict[str, str | None] = {
        "ecpif": ecpif.__version__,
        "python": platform.python_version(),
    }
    versions |= package_versions(p for p in STACK_PACKAGES if p != "ecpif")
    files: dict[str, str] = {}
    if config.runs:
        for spec in config.runs:
            for name in (spec.cycler, spec.refinement):
                if name and Path(name).is_file():
                    files[str(name)] = sha256_file(name)
    else:
        from ecpif.datasets import nca_demo_path

        for path in sorted(nca_demo_path().iterdir()):
            files[f"ecpif demo/{path.name}"] = sha256_file(path)
    return {
        "config": config.to_dict(),
        "seed": config.seed,
        "versions": versions,
        "input files (SHA-256)": files,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "runs": [r.metadata.to_dict() for r in runs],
    }


def predictions_table(results: Results) -> pd.DataFrame:
    """All predicted trajectories in one long table (one row per cycler sample and run)."""
    parts = []
    for run_id, frame in results.predictions.items():
        part = frame.copy()
        part.insert(0, schema.RUN_ID, run_id)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_results(
    results: Results, out_dir: str | os.PathLike[str], *, report: bool = True
) -> Path:
    """Write every output into ``out_dir``, atomically as a whole.

    Files: ``report.html``, ``figures/*.png|svg``, ``leaderboard.csv``, ``predictions.csv``,
    ``truth_scores.csv``, ``coverage.csv``, ``rabs.csv``, ``aligned.csv``, ``aligned.parquet``,
    ``alignment_report.csv``, ``model.skops``, ``config.toml``, ``provenance.json``; with tuning,
    ``tuning.csv`` (every search); with runs from several cells, ``cells.csv``
    (:func:`ecpif.study.compare_cells`).

    Everything is rendered into a temporary sibling folder first; only when all files exist is the
    old ``out_dir`` (if any) moved aside and the new one renamed into place, so a failure at any
    point leaves the earlier results as they were.
    """
    from ecpif.bundle import save_bundle

    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"The output path {out} exists and is a file; choose a folder.")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        results.leaderboard.to_csv(stage / "leaderboard.csv", index=False)
        predictions_table(results).to_csv(stage / "predictions.csv", index=False)
        results.coverage.to_csv(stage / "coverage.csv", index=False)
        results.rabs.to_csv(stage / "rabs.csv", index=False)
        if results.importance is not None:
            results.importance.to_csv(stage / "importance.csv", index=False)
        if results.truth_scores is not None:
            results.truth_scores.to_csv(stage / "truth_scores.csv", index=False)
        results.aligned.to_csv(stage / "aligned.csv", index=False)
        results.aligned.to_parquet(stage / "aligned.parquet", index=False)
        results.alignment_report.to_csv(stage / "alignment_report.csv", index=False)
        searches = [z.tuning.assign(scheme=s) for s, z in results.zoo.items() if len(z.tuning)]
        if searches:
            pd.concat(searches, ignore_index=True).to_csv(stage / "tuning.csv", index=False)
        if len({r.metadata.cell for r in results.runs}) > 1:
            from ecpif.study import compare_cells

            compare_cells(results).to_csv(stage / "cells.csv", index=False)
        save_bundle(results.model, stage / "model.skops")
        (stage / "config.toml").write_text(results.config.to_toml(), encoding="utf-8")
        (stage / "provenance.json").write_text(
            json.dumps(results.provenance, indent=2, default=str) + "\n", encoding="utf-8"
        )
        if report:
            rep = results.report()
            rep.save_figures(stage / "figures")
            rep.write_html(stage / "report.html")
        # Temporary files are created 0600; give the outputs a plain open()'s permissions.
        umask = os.umask(0)
        os.umask(umask)
        for path in stage.rglob("*"):
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
        os.chmod(stage, 0o777 & ~umask)
        backup = None
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            backup.rmdir()
            os.replace(out, backup)
        os.replace(stage, out)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out
