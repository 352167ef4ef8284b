"""Canonical column names, each written once, with its unit.

Every frame that crosses a module boundary in ecpif uses these names. The unit sits in square
brackets at the end of the name, as in PyBaMM (``"Voltage [V]"``), so a column can never lose it.

Conventions
-----------
* Absolute times are ``datetime64[ns, UTC]``. Relative times are seconds from the first cycler
  sample of the run.
* **Current is positive on charge** (lithium leaves the cathode), as BioLogic and Neware record it.
  PyBaMM's convention (positive on discharge) is flipped where the simulator writes its files.
* ``charge [mA.h]`` is the net charge passed into the cell since the first cycler sample: it rises
  on charge and falls on discharge. Vendor "capacity" columns that reset every step are converted
  to this by the readers.
* Structural parameters use short names (``"a"``, ``"c"``, ``"d"``, ``"li_occupancy"``) in the API
  and canonical columns ``"a [Å]"``; the refinement's estimated standard deviation sits beside the
  value as ``"esd a [Å]"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- cycler (echem) frame -----------------------------------------------------------------------
TIMESTAMP = "timestamp [UTC]"
TIME = "time [s]"
VOLTAGE = "voltage [V]"
CURRENT = "current [A]"
CHARGE = "charge [mA.h]"
STEP = "step index [-]"
CYCLE = "cycle index [-]"
TEMPERATURE = "temperature [degC]"

ECHEM_REQUIRED: tuple[str, ...] = (TIMESTAMP, TIME, VOLTAGE, CURRENT, CHARGE)
ECHEM_OPTIONAL: tuple[str, ...] = (STEP, CYCLE, TEMPERATURE)

# --- diffraction pattern table ------------------------------------------------------------------
PATTERN_ID = "pattern id"
START = "start [UTC]"
END = "end [UTC]"
PATTERNS_REQUIRED: tuple[str, ...] = (PATTERN_ID, START, END)

# --- ground truth (simulated runs only) ---------------------------------------------------------
X_BULK = "x bulk [-]"
X_SURFACE = "x surface [-]"

RUN_ID = "run id"
C_RATE_LABEL = "C-rate label [1/h]"
#: The cell a run was measured on (free text from the run's metadata); groups runs of one cell.
CELL = "cell"

_UNIT_RE = re.compile(r"^(?P<name>.+?) \[(?P<unit>[^\[\]]+)\]$")


@dataclass(frozen=True)
class Parameter:
    """A refined structural parameter: its short name, canonical column, unit and meaning."""

    name: str
    unit: str
    description: str

    @property
    def column(self) -> str:
        """The canonical column name, e.g. ``"a [Å]"``."""
        return f"{self.name} [{self.unit}]"

    @property
    def esd_column(self) -> str:
        """The column of the refinement's estimated standard deviation, e.g. ``"esd a [Å]"``."""
        return esd_column(self.column)


A = Parameter("a", "Å", "hexagonal lattice parameter a (in-plane M-M distance)")
C = Parameter("c", "Å", "hexagonal lattice parameter c (three MO2 + Li layers)")
D = Parameter("d", "Å", "Li interlayer distance: Li-slab thickness I(LiO2) = c/3 - S(MO2)")
LI_OCCUPANCY = Parameter(
    "li_occupancy", "-", "Li occupancy of the 3a site of the active layered phase"
)

PARAMETERS: dict[str, Parameter] = {p.name: p for p in (A, C, D, LI_OCCUPANCY)}


def esd_column(column: str) -> str:
    """Name of the esd column that belongs to a parameter column."""
    return f"esd {column}"


def unit_of(column: str) -> str | None:
    """The unit in a canonical column name, or ``None`` when the name carries none.

    >>> unit_of("voltage [V]")
    'V'
    """
    match = _UNIT_RE.match(column)
    return match.group("unit") if match else None


def base_name(column: str) -> str:
    """The name without its unit: ``"a [Å]"`` -> ``"a"``."""
    match = _UNIT_RE.match(column)
    return match.group("name") if match else column


def parameter_column(name_or_column: str) -> str:
    """Resolve a short structural-parameter name (``"c"``) or a column (``"c [Å]"``) to a column.

    Unknown short names are returned unchanged when they already carry a unit, so that users can
    bring their own refined parameters (``"z_O [-]"``).
    """
    if name_or_column in PARAMETERS:
        return PARAMETERS[name_or_column].column
    return name_or_column
