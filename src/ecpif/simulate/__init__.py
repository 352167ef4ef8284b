"""The virtual operando experiment: PyBaMM cell + structural model + diffraction sampling.

>>> from ecpif.simulate import simulate, VirtualExperiment  # doctest: +SKIP
>>> runs = simulate(VirtualExperiment(rates=(0.5, 2.0)))  # doctest: +SKIP
"""

from ecpif.simulate.experiment import (
    DEFAULT_ESD_5MIN,
    DEFAULT_EXPOSURES,
    DEFAULT_RATES,
    VirtualExperiment,
    simulate,
    simulate_run,
    write_experiment,
)
from ecpif.simulate.structure import (
    NickelRichLayeredStructure,
    TabulatedStructure,
    load_nmc811_reference,
    nca_structure,
)

__all__ = [
    "DEFAULT_ESD_5MIN",
    "DEFAULT_EXPOSURES",
    "DEFAULT_RATES",
    "NickelRichLayeredStructure",
    "TabulatedStructure",
    "VirtualExperiment",
    "load_nmc811_reference",
    "nca_structure",
    "simulate",
    "simulate_run",
    "write_experiment",
]
