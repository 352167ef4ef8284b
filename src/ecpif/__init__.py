"""ecpif: the Electrochemical-to-Crystallographic Parameter Inference Framework.

Learn, from operando diffraction experiments, how a cathode's crystal structure follows its
electrochemistry, and reconstruct that structure where no diffraction was measured.

Heavy modules (PyBaMM, the model zoo, plotting) are imported lazily, on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from ecpif import schema
from ecpif.errors import EcpifError
from ecpif.run import OperandoRun, RunMetadata

__version__ = "0.1.0"

_LAZY_SUBMODULES = (
    "align",
    "analysis",
    "bundle",
    "datasets",
    "ensemble",
    "explore",
    "features",
    "importance",
    "io",
    "pipeline",
    "predict",
    "report",
    "simulate",
    "uncertainty",
    "validate",
    "zoo",
)

__all__ = ["EcpifError", "OperandoRun", "RunMetadata", "__version__", "schema", *_LAZY_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"ecpif.{name}")
    raise AttributeError(f"module 'ecpif' has no attribute {name!r}")
