"""The virtual operando experiment: a PyBaMM cell, a structural model, and a diffractometer.

:func:`simulate` turns a :class:`VirtualExperiment` (the settings) into one
:class:`~ecpif.run.OperandoRun` per C-rate, each carrying the noise-free ground truth at every
cycler sample. :func:`write_experiment` writes them in the formats users have (a BioLogic-style
cycler CSV, a refinement table with esd columns, the truth, and a manifest), so the demo goes
through the same readers as a user's data.

How a pattern is "measured"
---------------------------
1. PyBaMM gives the cathode particle's Li content x(r, t) on a radial mesh.
2. The structural model maps x to a, c, d and Li occupancy *per radial shell*; the shells are
   volume-averaged (r² weights), as a diffraction peak averages over the illuminated volume. At
   high rate x(r) is steep, so the non-linear c(x) is smeared and lags the bulk: the kinetic
   hysteresis of the reference study emerges from the physics, not from a rule.
3. Patterns are collected back to back from the start of the run, each over ``exposure`` seconds
   (plus an optional dead time for read-out). The refined value is the truth averaged over the
   window (trapezoid rule on the cycler samples) plus Gaussian noise with
   ``esd = esd_5min * sqrt(300 s / exposure)``, and the esd is written beside it, as a refinement
   program would.

Randomness
----------
One ``numpy.random.Generator`` per run, seeded by ``SeedSequence([seed, run index])``, draws only
the refinement noise. The electrochemistry and the truth are deterministic, so changing the seed
changes the noise and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError
from ecpif.run import OperandoRun, RunMetadata, empty_patterns
from ecpif.simulate.cell import CyclingResult, simulate_cycling
from ecpif.simulate.structure import as_structural_model

#: Refinement esd for a 5-minute pattern (reference exposure 300 s).
DEFAULT_ESD_5MIN: Mapping[str, float] = {"a": 3e-4, "c": 2e-3, "d": 2e-3, "li_occupancy": 0.01}
DEFAULT_RATES: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)
#: Exposure per pattern in seconds; ``None`` means no diffraction at that rate (as at 2C).
DEFAULT_EXPOSURES: Mapping[float, float | None] = {0.2: 600.0, 0.5: 300.0, 1.0: 180.0, 2.0: None}
REFERENCE_EXPOSURE_S = 300.0


@dataclass(frozen=True)
class VirtualExperiment:
    """Settings of a virtual operando experiment. All checks run in :func:`simulate`.

    Parameters
    ----------
    rates
        C-rates of the runs, in 1/h.
    exposures
        Exposure time per pattern for each rate, in s; ``None`` = no diffraction at that rate.
        Rates not listed get no diffraction.
    parameter_set, model
        PyBaMM parameter set and model (``"SPMe"``, ``"SPM"`` or ``"DFN"``).
    particle_radius_m
        Cathode particle radius; 5 µm is a real NCA secondary particle (``None`` keeps the set's).
    period_s
        Cycler sampling period.
    rest_s, n_cycles
        Rest after each charge (and between cycles), number of charge/discharge cycles.
    esd_5min
        Refinement esd of each parameter at a 300 s exposure.
    dead_time_s
        Detector read-out time between consecutive patterns.
    structure
        Structural model (callable or table); ``None`` = the NMC811-anchored NCA model.
    seed
        Seed of the refinement noise.
    start
        Absolute time of the first cycler sample of the first run (UTC); later runs start one day
        apart.
    cell
        Free-text cell description written to the metadata.
    """

    rates: Sequence[float] = DEFAULT_RATES
    exposures: Mapping[float, float | None] = field(default_factory=lambda: dict(DEFAULT_EXPOSURES))
    parameter_set: str = "NCA_Kim2011"
    model: str = "SPMe"
    particle_radius_m: float | None = 5e-6
    period_s: float = 10.0
    rest_s: float = 1800.0
    n_cycles: int = 1
    esd_5min: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ESD_5MIN))
    dead_time_s: float = 0.0
    structure: Any = None
    seed: int = 0
    start: str = "2026-01-12T09:00:00+00:00"
    cell: str = "virtual NCA||graphite pouch cell (PyBaMM)"

    def exposure_for(self, rate: float) -> float | None:
        for key, value in self.exposures.items():
            if math.isclose(float(key), rate, rel_tol=1e-9):
                return None if value is None else float(value)
        return None

    def check(self) -> None:
        """Raise :class:`ConfigError` with one sentence for the first invalid setting."""
        if len(self.rates) == 0:
            raise ConfigError("The virtual experiment needs at least one C-rate; got none.")
        for rate in self.rates:
            if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
                raise ConfigError(
                    f"C-rates must be positive numbers (1/h); got {rate!r}. Use e.g. 0.5 for C/2."
                )
        if len(set(self.rates)) != len(self.rates):
            raise ConfigError(f"C-rates must be unique; got {list(self.rates)}.")
        for rate, exposure in self.exposures.items():
            if exposure is not None and not (math.isfinite(exposure) and exposure > 0):
                raise ConfigError(
                    f"The exposure time at {rate:g}C must be a positive number of seconds (or "
                    f"None for no diffraction); got {exposure!r}."
                )
        if not self.period_s > 0:
            raise ConfigError(f"The cycler sampling period must be > 0 s; got {self.period_s!r}.")
        if self.rest_s < 0:
            raise ConfigError(f"The rest time must be >= 0 s; got {self.rest_s!r}.")
        if not (isinstance(self.n_cycles, int) and self.n_cycles >= 1):
            raise ConfigError(
                f"The number of cycles must be an integer >= 1; got {self.n_cycles!r}."
            )
        if self.dead_time_s < 0:
            raise ConfigError(f"The dead time must be >= 0 s; got {self.dead_time_s!r}.")
        if self.particle_radius_m is not None and not self.particle_radius_m > 0:
            raise ConfigError(
                f"The cathode particle radius must be > 0 m; got {self.particle_radius_m!r}."
            )
        for name, esd in self.esd_5min.items():
            if not esd >= 0:
                raise ConfigError(f"The esd of {name!r} must be >= 0; got {esd!r}.")
        try:
            pd.Timestamp(self.start)
        except ValueError as exc:
            raise ConfigError(
                f"The start time {self.start!r} is not an ISO-8601 timestamp ({exc})."
            ) from None
        if pd.Timestamp(self.start).tzinfo is None:
            raise ConfigError(
                f"The start time {self.start!r} has no time zone; add one, e.g. '+00:00'."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rates": [float(r) for r in self.rates],
            "exposures_s": {f"{float(k):g}": v for k, v in self.exposures.items()},
            "parameter_set": self.parameter_set,
            "model": self.model,
            "particle_radius_m": self.particle_radius_m,
            "period_s": self.period_s,
            "rest_s": self.rest_s,
            "n_cycles": self.n_cycles,
            "esd_5min": dict(self.esd_5min),
            "dead_time_s": self.dead_time_s,
            "structure": "default (NMC811 Märker 2019 -> NCA)"
            if self.structure is None
            else repr(self.structure),
            "seed": self.seed,
            "start": self.start,
        }


def run_id_for(rate: float) -> str:
    """Run id of the virtual run at ``rate``: ``nca-0.2C``, ``nca-1C``..."""
    return f"nca-{rate:g}C"


def volume_average(cycling: CyclingResult, structure: Any) -> dict[str, np.ndarray]:
    """Evaluate the structural model on every radial shell and volume-average over the particle."""
    per_shell = structure(cycling.x_shells)
    return {name: values @ cycling.shell_weights for name, values in per_shell.items()}


def _window_means(t: np.ndarray, y: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Time average of a piecewise-linear signal over [start, end] windows (exact trapezoid)."""
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(t))])

    def integral_to(tq: np.ndarray) -> np.ndarray:
        yq = np.interp(tq, t, y)
        i = np.clip(np.searchsorted(t, tq, side="right") - 1, 0, len(t) - 2)
        return cum[i] + 0.5 * (y[i] + yq) * (tq - t[i])

    return (integral_to(ends) - integral_to(starts)) / (ends - starts)


def _pattern_windows(duration_s: float, exposure_s: float, dead_time_s: float) -> np.ndarray:
    n = int((duration_s + dead_time_s) // (exposure_s + dead_time_s))
    starts = np.arange(n) * (exposure_s + dead_time_s)
    return np.column_stack([starts, starts + exposure_s])


def simulate_run(config: VirtualExperiment, rate: float, index: int = 0) -> OperandoRun:
    """Simulate the run at one C-rate (``index`` orders runs for their start date and seed)."""
    structure = as_structural_model(config.structure)
    cycling = simulate_cycling(
        rate,
        parameter_set=config.parameter_set,
        model=config.model,
        particle_radius_m=config.particle_radius_m,
        period_s=config.period_s,
        rest_s=config.rest_s,
        n_cycles=config.n_cycles,
    )
    truth_params = volume_average(cycling, structure)
    t = cycling.time_s
    t0 = pd.Timestamp(config.start).tz_convert("UTC") + pd.Timedelta(days=index)
    timestamps = t0 + pd.to_timedelta(np.round(t * 1e3).astype("int64"), unit="ms")
    run_id = run_id_for(rate)

    echem = pd.DataFrame(
        {
            schema.TIMESTAMP: timestamps,
            schema.TIME: t,
            schema.VOLTAGE: cycling.voltage_V,
            schema.CURRENT: cycling.current_A,
            schema.CHARGE: cycling.charge_mAh,
            schema.STEP: cycling.step,
            schema.CYCLE: cycling.cycle,
        }
    )
    truth = pd.DataFrame({schema.TIMESTAMP: timestamps, schema.TIME: t})
    for name, values in truth_params.items():
        truth[schema.parameter_column(name) if name in schema.PARAMETERS else f"{name} [-]"] = (
            values
        )
    truth[schema.X_BULK] = cycling.x_shells @ cycling.shell_weights
    truth[schema.X_SURFACE] = cycling.x_shells[:, -1]

    exposure = config.exposure_for(rate)
    patterns = empty_patterns()
    if exposure is not None:
        windows = _pattern_windows(float(t[-1]), exposure, config.dead_time_s)
        if len(windows) == 0:
            raise ConfigError(
                f"The exposure time at {rate:g}C ({exposure:g} s) is longer than the run itself "
                f"({t[-1]:.0f} s), so no pattern fits; shorten the exposure or set it to None."
            )
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
        scale = math.sqrt(REFERENCE_EXPOSURE_S / exposure)
        patterns = pd.DataFrame(
            {
                schema.PATTERN_ID: [f"{run_id}-p{k:04d}" for k in range(len(windows))],
                schema.START: t0
                + pd.to_timedelta(np.round(windows[:, 0] * 1e3).astype("int64"), unit="ms"),
                schema.END: t0
                + pd.to_timedelta(np.round(windows[:, 1] * 1e3).astype("int64"), unit="ms"),
            }
        )
        for name, values in truth_params.items():
            if name not in schema.PARAMETERS:
                continue
            column = schema.PARAMETERS[name].column
            mean = _window_means(t, values, windows[:, 0], windows[:, 1])
            esd = config.esd_5min.get(name, 0.0) * scale
            patterns[column] = mean + rng.normal(0.0, 1.0, size=len(mean)) * esd
            patterns[schema.esd_column(column)] = esd

    metadata = RunMetadata(
        run_id=run_id,
        cell=config.cell,
        nominal_capacity_Ah=cycling.nominal_capacity_Ah,
        c_rate=float(rate),
        timezone="UTC",
        source="ecpif.simulate",
        extra={
            "parameter_set": config.parameter_set,
            "model": config.model,
            "exposure_s": exposure,
            "upper_cutoff_V": cycling.upper_cutoff_V,
            "lower_cutoff_V": cycling.lower_cutoff_V,
            "seed": config.seed,
        },
    )
    return OperandoRun(echem=echem, patterns=patterns, metadata=metadata, truth=truth)


def simulate(config: VirtualExperiment | None = None, **overrides: Any) -> list[OperandoRun]:
    """Run the virtual operando experiment: one :class:`OperandoRun` per C-rate, with truth.

    Parameters
    ----------
    config
        The settings; ``None`` = defaults (NCA_Kim2011, SPMe, 0.2/0.5/1/2C, 5 µm particles).
    **overrides
        Fields of :class:`VirtualExperiment` to change, e.g. ``rates=(1.0,)``.

    Examples
    --------
    >>> runs = simulate(rates=(1.0,), exposures={1.0: 180.0})  # doctest: +SKIP
    >>> runs[0].patterns.shape[0]  # doctest: +SKIP
    44
    """
    config = config or VirtualExperiment()
    if overrides:
        unknown = set(overrides) - set(VirtualExperiment.__dataclass_fields__)
        if unknown:
            from ecpif.errors import did_you_mean

            name = sorted(unknown)[0]
            raise ConfigError(
                f"Unknown setting {name!r} of the virtual experiment."
                f"{did_you_mean(name, VirtualExperiment.__dataclass_fields__)}"
            )
        import dataclasses

        config = dataclasses.replace(config, **overrides)
    config.check()
    # Fail fast on bad names before any simulation runs.
    from ecpif.simulate.cell import MODELS, load_parameter_values

    load_parameter_values(config.parameter_set, None)
    if config.model not in MODELS:
        from ecpif.errors import did_you_mean

        raise ConfigError(
            f"Unknown PyBaMM model {config.model!r}.{did_you_mean(config.model, MODELS)} "
            f"Choose one of {MODELS}."
        )
    return [simulate_run(config, float(rate), i) for i, rate in enumerate(config.rates)]


# --- files ---------------------------------------------------------------------------------------

CYCLER_SUFFIX = "_cycler.csv"
REFINEMENT_SUFFIX = "_refinement.csv"
TRUTH_SUFFIX = "_truth.csv"
MANIFEST = "manifest.json"


def _iso(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "+00:00"


def cycler_export(run: OperandoRun) -> pd.DataFrame:
    """The cycler record in a BioLogic-export-like layout (``time/s``, ``Ewe/V``, ``I/mA`` ...)."""
    e = run.echem
    return pd.DataFrame(
        {
            "Date Time": _iso(e[schema.TIMESTAMP]),
            "time/s": e[schema.TIME].round(3),
            "Ewe/V": e[schema.VOLTAGE].round(6),
            "I/mA": (e[schema.CURRENT] * 1000.0).round(5),
            "(Q-Qo)/mA.h": e[schema.CHARGE].round(6) + 0.0,  # + 0.0 turns -0.0 into 0.0
            "Ns": e[schema.STEP],
            "cycle number": e[schema.CYCLE],
        }
    )


def refinement_export(run: OperandoRun) -> pd.DataFrame:
    """The pattern table as a sequential-refinement program would export it."""
    p = run.patterns
    out = pd.DataFrame(
        {
            "pattern": p[schema.PATTERN_ID],
            "start_time": _iso(p[schema.START]),
            "end_time": _iso(p[schema.END]),
        }
    )
    for name, param in schema.PARAMETERS.items():
        if param.column in p.columns:
            out[name] = p[param.column].round(7)
            out[f"esd_{name}"] = p[param.esd_column].round(7)
    return out


def truth_export(run: OperandoRun) -> pd.DataFrame:
    """The noise-free truth at every cycler sample (short names, Å and dimensionless)."""
    assert run.truth is not None  # only called on simulated runs
    t = run.truth
    out = pd.DataFrame({"time/s": t[schema.TIME].round(3)})
    for name, param in schema.PARAMETERS.items():
        if param.column in t.columns:
            out[name] = t[param.column].round(8)
    out["x_bulk"] = t[schema.X_BULK].round(8)
    out["x_surface"] = t[schema.X_SURFACE].round(8)
    return out


def _write_atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_experiment(
    runs: Sequence[OperandoRun],
    folder: str | os.PathLike[str],
    config: VirtualExperiment | None = None,
) -> Path:
    """Write the runs as files users have, plus ``manifest.json``; every file is written atomically.

    Returns the folder. Files: ``<run>_cycler.csv`` (BioLogic-like), ``<run>_refinement.csv``
    (only for runs with patterns), ``<run>_truth.csv``.
    """
    out = Path(folder)
    manifest: dict[str, Any] = {"format": "ecpif-virtual-experiment/1", "runs": []}
    if config is not None:
        manifest["settings"] = config.to_dict()
    # Render every file before writing any, so a failure cannot leave a half-updated folder.
    texts: dict[str, str] = {}
    for run in runs:
        files = {"cycler": run.run_id + CYCLER_SUFFIX}
        texts[files["cycler"]] = cycler_export(run).to_csv(index=False, lineterminator="\n")
        if run.has_patterns:
            files["refinement"] = run.run_id + REFINEMENT_SUFFIX
            texts[files["refinement"]] = refinement_export(run).to_csv(
                index=False, lineterminator="\n"
            )
        if run.truth is not None:
            files["truth"] = run.run_id + TRUTH_SUFFIX
            texts[files["truth"]] = truth_export(run).to_csv(index=False, lineterminator="\n")
        manifest["runs"].append({"metadata": run.metadata.to_dict(), "files": files})
    texts[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _write_atomic_text(out / name, text)
    return out
