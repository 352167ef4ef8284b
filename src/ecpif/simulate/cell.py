"""The electrochemical half of the virtual experiment: a PyBaMM cell cycled at one C-rate.

Output of :func:`simulate_cycling` is the cycler record a real workstation would have written
(time, voltage, current, net charge, step and cycle index, sampled every ``period_s``) and the
cathode's radial Li profile x(r, t), from which the structural model is evaluated shell by shell.

Design decisions
----------------
* PyBaMM's current convention (positive on discharge) is flipped to ecpif's (positive on charge).
* Net charge is ``-1000 * "Discharge capacity [A.h]"``: PyBaMM's own time integral of the current,
  so charge and current are consistent by construction.
* For the DFN, each electrode location has its own particle; shells are averaged over the
  through-thickness mesh too (uniform mesh, so equal weights), which is what a neutron beam that
  illuminates the whole electrode stack measures.
* PyBaMM logs the last point of one step and the first point of the next at the same time; a
  cycler logs one sample, so the later duplicate (the next step's start) is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ecpif.errors import ConfigError, did_you_mean, require

MODELS = ("SPMe", "SPM", "DFN")


@dataclass(frozen=True)
class CyclingResult:
    """Arrays from one simulated cycling run (all 1-D over time unless stated)."""

    time_s: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    charge_mAh: np.ndarray
    step: np.ndarray
    cycle: np.ndarray
    x_shells: np.ndarray  # (n_time, n_shells): Li content per radial shell
    shell_weights: np.ndarray  # (n_shells,): volume fractions, summing to 1
    nominal_capacity_Ah: float
    upper_cutoff_V: float
    lower_cutoff_V: float


def _import_pybamm():
    require("pybamm", "simulate", "The virtual operando experiment")
    # PyBaMM asks about telemetry on first use in an interactive shell; never in ecpif.
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    import pybamm

    return pybamm


def parameter_set_names() -> list[str]:
    """Names of the PyBaMM parameter sets available in this installation."""
    pybamm = _import_pybamm()
    return sorted(pybamm.parameter_sets.keys())


def load_parameter_values(name: str, particle_radius_m: float | None):
    """PyBaMM parameter values by name, with the cathode particle radius overridden."""
    pybamm = _import_pybamm()
    names = parameter_set_names()
    if name not in names:
        raise ConfigError(
            f"Unknown PyBaMM parameter set {name!r}.{did_you_mean(name, names)} "
            f"Available: {', '.join(names)}."
        )
    values = pybamm.ParameterValues(name)
    if particle_radius_m is not None:
        values["Positive particle radius [m]"] = particle_radius_m
    return values


def _shell_weights(r_nodes: np.ndarray) -> np.ndarray:
    """Volume fraction of each finite-volume shell whose centre is at ``r_nodes``."""
    edges = np.concatenate(
        [
            [0.0],
            0.5 * (r_nodes[1:] + r_nodes[:-1]),
            [2 * r_nodes[-1] - 0.5 * (r_nodes[-1] + r_nodes[-2])],
        ]
    )
    vol = edges[1:] ** 3 - edges[:-1] ** 3
    return vol / vol.sum()


def simulate_cycling(
    c_rate: float,
    *,
    parameter_set: str = "NCA_Kim2011",
    model: str = "SPMe",
    particle_radius_m: float | None = 5e-6,
    period_s: float = 10.0,
    rest_s: float = 1800.0,
    n_cycles: int = 1,
    upper_cutoff_V: float | None = None,
    lower_cutoff_V: float | None = None,
) -> CyclingResult:
    """Cycle a PyBaMM cell from the discharged state: (charge, rest, discharge) x ``n_cycles``.

    Examples
    --------
    >>> res = simulate_cycling(1.0)  # doctest: +SKIP
    >>> float(res.voltage_V.max())  # doctest: +SKIP
    4.2
    """
    pybamm = _import_pybamm()
    if model not in MODELS:
        raise ConfigError(
            f"Unknown PyBaMM model {model!r}.{did_you_mean(model, MODELS)} Choose one of {MODELS}."
        )
    values = load_parameter_values(parameter_set, particle_radius_m)
    upper = float(
        upper_cutoff_V if upper_cutoff_V is not None else values["Upper voltage cut-off [V]"]
    )
    lower = float(
        lower_cutoff_V if lower_cutoff_V is not None else values["Lower voltage cut-off [V]"]
    )
    if not upper > lower:
        raise ConfigError(
            f"The upper cut-off voltage ({upper} V) must exceed the lower one ({lower} V)."
        )
    steps: list[str] = []
    for k in range(n_cycles):
        steps += [
            f"Charge at {c_rate:g}C until {upper:g} V",
            f"Rest for {rest_s:g} seconds",
            f"Discharge at {c_rate:g}C until {lower:g} V",
        ]
        if k < n_cycles - 1:
            steps.append(f"Rest for {rest_s:g} seconds")
    experiment = pybamm.Experiment(steps, period=f"{period_s:g} seconds")
    pb_model = getattr(pybamm.lithium_ion, model)()
    sim = pybamm.Simulation(pb_model, parameter_values=values, experiment=experiment)
    solution = sim.solve(initial_soc=0.0)

    times, volts, amps, charge, step_idx, cycle_idx, shells = [], [], [], [], [], [], []
    steps_per_cycle = 3
    for i, step_sol in enumerate(solution.sub_solutions):
        t = step_sol["Time [s]"].entries
        times.append(t)
        volts.append(step_sol["Voltage [V]"].entries)
        amps.append(-step_sol["Current [A]"].entries)
        charge.append(-1000.0 * step_sol["Discharge capacity [A.h]"].entries)
        step_idx.append(np.full(t.shape, i + 1))
        cycle_idx.append(np.full(t.shape, i // (steps_per_cycle + 1) + 1))
        if model == "DFN":
            x = step_sol["Positive particle stoichiometry"].entries  # (r, x, t)
            x = x.mean(axis=1)
        else:
            x = step_sol["X-averaged positive particle stoichiometry"].entries  # (r, t)
        shells.append(x.T)
    r_nodes = solution.sub_solutions[0]["r_p [m]"].entries
    r_nodes = r_nodes[:, 0, 0] if r_nodes.ndim == 3 else r_nodes[:, 0]

    time_s = np.concatenate(times)
    # PyBaMM starts each step at the previous step's end time (up to a rounding error far below a
    # cycler clock's millisecond). Keep the end-of-step sample, which holds the cut-off voltage,
    # and drop the repeated start of the next step, as a period-logging cycler would.
    keep = np.insert(np.diff(time_s) > 1e-3, 0, True)
    return CyclingResult(
        time_s=time_s[keep] - time_s[0],
        voltage_V=np.concatenate(volts)[keep],
        current_A=np.concatenate(amps)[keep],
        charge_mAh=np.concatenate(charge)[keep],
        step=np.concatenate(step_idx)[keep],
        cycle=np.concatenate(cycle_idx)[keep],
        x_shells=np.concatenate(shells, axis=0)[keep],
        shell_weights=_shell_weights(r_nodes),
        nominal_capacity_Ah=float(values["Nominal cell capacity [A.h]"]),
        upper_cutoff_V=upper,
        lower_cutoff_V=lower,
    )
