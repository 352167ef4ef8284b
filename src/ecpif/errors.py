"""Exceptions raised by ecpif.

Each subclasses both :class:`EcpifError` (catch everything from ecpif) and the builtin that a Python
user would expect (``ValueError`` for bad data, ``KeyError`` is avoided because its message is
repr-quoted). Messages are one sentence: what was wrong, where, what was received, what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EcpifError(Exception):
    """Base class of every error raised deliberately by ecpif."""


class ConfigError(EcpifError, ValueError):
    """A parameter or setting given by the user is not valid."""


class DataError(EcpifError, ValueError):
    """A frame or a file's content breaks an invariant (units, ordering, ranges, NaN)."""


class ReadError(EcpifError, ValueError):
    """A file cannot be read as the requested format."""


class AlignmentError(EcpifError, ValueError):
    """Diffraction patterns cannot be paired with the cycler data."""


class ModelError(EcpifError, ValueError):
    """A model request cannot be served (unknown model, too few rows, missing features)."""


class BundleError(EcpifError, ValueError):
    """A saved model bundle cannot be loaded safely."""


class MissingDependencyError(EcpifError, ImportError):
    """An optional dependency needed for this feature is not installed."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A short hint naming the closest valid choices, in PyBaMM's manner.

    >>> did_you_mean("NCA_Kim201", ["NCA_Kim2011", "Chen2020"])
    " Did you mean 'NCA_Kim2011'?"
    """
    close = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def require(module: str, extra: str, feature: str) -> None:
    """Raise a clear :class:`MissingDependencyError` when ``module`` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{feature} needs the optional package '{module}', which is not installed; "
            f"install it with: pip install 'ecpif[{extra}]'."
        )
