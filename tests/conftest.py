"""Shared fixtures: the virtual experiment is simulated once per test session (a few seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def simulated_runs():
    """The default virtual experiment (0.2C, 0.5C, 1C with patterns; 2C cycler only), seed 7."""
    from ecpif.simulate import VirtualExperiment, simulate

    return simulate(VirtualExperiment(seed=7))
