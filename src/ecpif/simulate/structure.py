"""Structural models: cathode Li content x -> lattice a, c, Li-slab thickness d, Li occupancy.

A structural model is any callable ``model(x) -> dict[str, ndarray]`` that maps an array of Li
contents (``x`` in Li_xMO2, any shape) to arrays of the same shape, one per structural parameter
(short names of :data:`ecpif.schema.PARAMETERS`). The simulator calls it on every radial shell of
the cathode particle, then volume-averages, so a non-linear model smears out at high rate.

The default, :func:`nca_structure`, is anchored on **real operando data**: the lattice parameters of
NMC811 measured by operando XRD during the first charge by Märker et al. (Chem. Mater. 2019, 31,
2545-2554, doi:10.1021/acs.chemmater.9b00140), shipped with ecpif under the MIT licence of the
PASCal
repository they were taken from (``ecpif/data/structure/``). NCA (LiNi0.8Co0.15Al0.05O2) and NMC811
are both Ni-rich R-3m oxides whose lattices follow the same course with x: *a* contracts
monotonically as Ni is oxidised, *c* expands as the O-O repulsion across the emptying Li layer
grows,
peaks near x ≈ 0.35-0.4 and collapses at high states of charge (the H2->H3 transition). ecpif keeps
the measured *changes* Δa(x), Δc(x) and shifts them to NCA's pristine values (a ≈ 2.864 Å,
c ≈ 14.18 Å at x = 1; e.g. Robert et al., J. Power Sources 2004, and the reference study's refined
pristine NCA).

Design decisions
----------------
* x = 1 - q / Q_th with Q_th = 275.5 mA.h/g, the theoretical capacity of LiNi0.8Mn0.1Co0.1O2
  (M = 97.28 g/mol); this places Märker's c maximum (q ≈ 177 mA.h/g) at x ≈ 0.357.
* The data are smoothed with a cubic smoothing spline (``scipy.interpolate.make_smoothing_spline``,
  λ = 1e-5): residuals are 1.3e-4 Å (a) and 1.4e-3 Å (c) RMS, below the refinement esd, and the
  derivatives (needed for Rabs) stay smooth. Outside the measured range (x < 0.12 or x > 1) the
  parameters are held at their end values rather than extrapolated.
* Li-slab thickness ("Li interlayer distance" d): I(LiO2) = c/3 - S(MO2) with the MO2 slab
  thickness S(MO2) = 2 (1/3 - z_O) c, so d = c (2 z_O - 1/3). z_O, the oxygen coordinate on 6c,
  is ≈ 0.258 for lithiated Ni-rich oxides and rises mildly on delithiation as the MO2 slab
  contracts; we use z_O(x) = 0.2580 + 0.0030 (1 - x), which gives d ≈ 2.59 Å at x = 1 and
  ≈ 2.70 Å near the c maximum, the magnitude reported for Ni-rich layered oxides.
* Li occupancy of the active phase's 3a site = x minus an optional constant Li/Ni antisite
  fraction (Ni on Li sites lowers the Li that the refinement can place there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.interpolate import make_smoothing_spline

from ecpif.errors import ConfigError

#: Theoretical capacity of LiNi0.8Mn0.1Co0.1O2 used to convert Märker's q to Li content x.
NMC811_THEORETICAL_CAPACITY_mAh_g = 275.5
NCA_PRISTINE_A = 2.864
NCA_PRISTINE_C = 14.18
Z_O_PRISTINE = 0.2580
Z_O_SLOPE = 0.0030


_Curve = Callable[[np.ndarray], np.ndarray]


class StructuralModel(Protocol):
    """Anything that maps Li content to structural parameters."""

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]: ...


def load_nmc811_reference() -> pd.DataFrame:
    """The real operando NMC811 lattice data of Märker et al. (2019), as shipped with ecpif.

    Returns a frame with columns ``q [mA.h/g]``, ``x [-]``, ``a [Å]``, ``c [Å]`` (79 rows, first
    charge).

    >>> ref = load_nmc811_reference()
    >>> len(ref)
    79
    """
    path = resources.files("ecpif") / "data" / "structure" / "nmc811_lattice_vs_charge.tsv"
    with resources.as_file(path) as p:
        raw = np.loadtxt(p, comments="#")
    q = raw[:, 0]
    return pd.DataFrame(
        {
            "q [mA.h/g]": q,
            "x [-]": 1.0 - q / NMC811_THEORETICAL_CAPACITY_mAh_g,
            "a [Å]": raw[:, 2],
            "c [Å]": raw[:, 4],
        }
    )


@cache
def _nmc811_splines() -> tuple[_Curve, _Curve, float, float]:
    ref = load_nmc811_reference().sort_values("x [-]")
    x = ref["x [-]"].to_numpy()
    spline_a = make_smoothing_spline(x, ref["a [Å]"].to_numpy(), lam=1e-5)
    spline_c = make_smoothing_spline(x, ref["c [Å]"].to_numpy(), lam=1e-5)
    return spline_a, spline_c, float(x.min()), float(x.max())


@dataclass(frozen=True)
class NickelRichLayeredStructure:
    """Default structural model: NMC811 operando shape (Märker 2019) shifted to a pristine lattice.

    Parameters
    ----------
    a0, c0
        Lattice parameters at x = 1, in Å (defaults: NCA).
    z_o0, z_o_slope
        Oxygen coordinate z_O(x) = z_o0 + z_o_slope (1 - x), used for the Li-slab thickness d.
    antisite
        Li/Ni antisite fraction subtracted from x to give the 3a Li occupancy.

    Examples
    --------
    >>> model = NickelRichLayeredStructure()
    >>> out = model(np.array([1.0, 0.36]))
    >>> bool(out["c"][1] > out["c"][0])
    True
    """

    a0: float = NCA_PRISTINE_A
    c0: float = NCA_PRISTINE_C
    z_o0: float = Z_O_PRISTINE
    z_o_slope: float = Z_O_SLOPE
    antisite: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.antisite < 0.5:
            raise ConfigError(
                f"The Li/Ni antisite fraction must lie in [0, 0.5); got {self.antisite!r}."
            )

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        spline_a, spline_c, lo, hi = _nmc811_splines()
        x = np.asarray(x, dtype=float)
        xc = np.clip(x, lo, hi)
        a = self.a0 + (spline_a(xc) - spline_a(np.array(hi)))
        c = self.c0 + (spline_c(xc) - spline_c(np.array(hi)))
        z_o = self.z_o0 + self.z_o_slope * (1.0 - x)
        d = c * (2.0 * z_o - 1.0 / 3.0)
        return {"a": a, "c": c, "d": d, "li_occupancy": x - self.antisite}


def nca_structure(antisite: float = 0.0) -> NickelRichLayeredStructure:
    """The default NCA structural model (see the module docstring for sources)."""
    return NickelRichLayeredStructure(antisite=antisite)


@dataclass(frozen=True)
class TabulatedStructure:
    """A structural model given as a table: parameters against Li content, linearly interpolated.

    Parameters
    ----------
    table
        Mapping (or DataFrame) with a column ``"x"`` and one column per parameter short name.
        Outside the tabulated x range the end values are held.

    Examples
    --------
    >>> model = TabulatedStructure({"x": [0.3, 1.0], "a": [2.81, 2.86]})
    >>> float(model(np.array([0.65]))["a"][0])
    2.835
    """

    table: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frame = pd.DataFrame(dict(self.table))
        if "x" not in frame.columns or frame.shape[1] < 2:
            raise ConfigError(
                "A tabulated structural model needs a column 'x' (Li content) and at least one "
                f"parameter column; got columns {list(frame.columns)}."
            )
        if frame.isna().any().any():
            raise ConfigError("The tabulated structural model contains NaN; fill or drop rows.")
        frame = frame.sort_values("x")
        if frame["x"].duplicated().any():
            raise ConfigError(
                "The tabulated structural model repeats an x value; x must be unique."
            )
        object.__setattr__(self, "table", frame.reset_index(drop=True))

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        frame = pd.DataFrame(self.table)
        xs = frame["x"].to_numpy(dtype=float)
        x = np.asarray(x, dtype=float)
        return {
            col: np.interp(x, xs, frame[col].to_numpy(dtype=float))
            for col in frame.columns
            if col != "x"
        }


def as_structural_model(model: object) -> StructuralModel:
    """Accept a structural model, a table (mapping / DataFrame) or a callable; validate it."""
    if model is None:
        return nca_structure()
    if isinstance(model, pd.DataFrame | dict):
        return TabulatedStructure(model)  # type: ignore[arg-type]
    if callable(model):
        probe = model(np.array([0.5, 0.9]))
        if not isinstance(probe, Mapping) or not probe:
            raise ConfigError(
                "A structural model must return a dict of parameter arrays, e.g. "
                f"{{'a': ..., 'c': ...}}; got {type(probe).__name__}."
            )
        return model
    raise ConfigError(
        "The structural model must be a callable x -> dict of arrays, or a table with an 'x' "
        f"column; got {type(model).__name__}."
    )
