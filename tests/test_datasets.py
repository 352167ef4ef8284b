"""The bundled demo dataset: loadable in one call, read through the public readers, regenerable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ecpif
from ecpif import schema
from ecpif.datasets import DEMO_SEED, load_experiment, nca_demo_path
from ecpif.errors import ReadError


@pytest.fixture(scope="module")
def demo():
    return ecpif.datasets.load_nca_demo()


def test_demo_is_small_and_complete(demo):
    size = sum(p.stat().st_size for p in nca_demo_path().iterdir())
    assert size < 3 * 2**20
    assert [r.run_id for r in demo] == ["nca-0.2C", "nca-0.5C", "nca-1C", "nca-2C"]
    assert [r.metadata.c_rate for r in demo] == [0.2, 0.5, 1.0, 2.0]
    assert [len(r.patterns) for r in demo] == [67, 53, 44, 0]
    for run in demo:
        assert run.truth is not None
        assert run.metadata.nominal_capacity_Ah == pytest.approx(0.43)
        assert str(run.echem[schema.TIMESTAMP].dt.tz) == "UTC"


def test_demo_equals_a_fresh_simulation_with_its_seed(demo):
    """Regenerable: the shipped files are what `ecpif simulate --seed 2026` produces."""
    from ecpif.simulate import VirtualExperiment, simulate

    fresh = simulate(VirtualExperiment(seed=DEMO_SEED))
    for shipped, new in zip(demo, fresh, strict=True):
        assert shipped.run_id == new.run_id
        # Files carry times to the millisecond and signals to 1e-6 of their unit.
        tolerances = {
            schema.TIME: 1e-3,
            schema.VOLTAGE: 1e-6,
            schema.CURRENT: 1e-8,
            schema.CHARGE: 1e-6,
        }
        for col, atol in tolerances.items():
            np.testing.assert_allclose(shipped.echem[col], new.echem[col], atol=atol, rtol=0)
        pd.testing.assert_series_equal(
            shipped.echem[schema.TIMESTAMP], new.echem[schema.TIMESTAMP], check_dtype=False
        )
        if new.has_patterns:
            assert (
                shipped.patterns[schema.PATTERN_ID].tolist()
                == new.patterns[schema.PATTERN_ID].tolist()
            )
            for name in schema.PARAMETERS:
                col = schema.PARAMETERS[name].column
                np.testing.assert_allclose(shipped.patterns[col], new.patterns[col], atol=1e-6)
        for name in schema.PARAMETERS:
            col = schema.PARAMETERS[name].column
            np.testing.assert_allclose(shipped.truth[col], new.truth[col], atol=1e-7)


def test_load_experiment_needs_a_manifest(tmp_path):
    with pytest.raises(ReadError, match=r"No manifest.json in .*; point to a folder written by"):
        load_experiment(tmp_path)
