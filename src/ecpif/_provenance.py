"""Provenance helpers shared by the pipeline, the report and model bundles.

Kept at the bottom of the import graph (it imports nothing from ecpif) so that every layer can
record what it ran with: file hashes and installed package versions.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Iterable

#: The scientific stack whose versions provenance records (pipeline, report).
STACK_PACKAGES: tuple[str, ...] = (
    "ecpif",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "catboost",
    "pybamm",
    "networkx",
    "matplotlib",
    "jinja2",
    "skops",
    "dash",
)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as hex, read in 1 MiB chunks (files may be gigabytes).

    >>> len(sha256_file(__file__))
    64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution, ``None`` when it is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
