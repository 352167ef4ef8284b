"""The default structural model against the real operando NMC811 data (Märker et al. 2019).

The fixture is the raw file from the PASCal repository (MIT, see tests/data/pascal-nmc811/LICENSE),
read here independently of the package's copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecpif.errors import ConfigError
from ecpif.simulate.structure import (
    NCA_PRISTINE_A,
    NCA_PRISTINE_C,
    NMC811_THEORETICAL_CAPACITY_mAh_g,
    TabulatedStructure,
    as_structural_model,
    nca_structure,
)


@pytest.fixture(scope="module")
def marker(data_dir):
    raw = np.loadtxt(data_dir / "pascal-nmc811" / "nmc811_lattice_vs_charge.tsv", comments="#")
    assert raw.shape == (79, 8)
    return pd.DataFrame(
        {"x": 1 - raw[:, 0] / NMC811_THEORETICAL_CAPACITY_mAh_g, "a": raw[:, 2], "c": raw[:, 4]}
    )


def test_pristine_values_are_nca():
    out = nca_structure()(np.array([1.0]))
    assert out["a"][0] == pytest.approx(NCA_PRISTINE_A, abs=1e-4)
    assert out["c"][0] == pytest.approx(NCA_PRISTINE_C, abs=1e-3)
    assert out["li_occupancy"][0] == pytest.approx(1.0)


def test_c_maximum_position_and_height_match_the_real_data(marker):
    grid = np.linspace(marker["x"].min(), 1.0, 4001)
    c = nca_structure()(grid)["c"]
    x_peak = grid[np.argmax(c)]
    raw_peak = marker["x"][marker["c"].idxmax()]
    assert 0.35 <= x_peak <= 0.40
    assert x_peak == pytest.approx(raw_peak, abs=0.01)
    # Height of the c rise above pristine: measured 14.4834 - 14.1918 = 0.2916 Å.
    measured_rise = marker["c"].max() - marker["c"].iloc[0]
    assert c.max() - c[-1] == pytest.approx(measured_rise, abs=0.003)
    # Collapse below the maximum, as measured (c at the lowest x is below pristine + 0.0 Å).
    assert c[0] < c.max() - 0.4


def test_a_falls_monotonically_on_delithiation(marker):
    grid = np.linspace(marker["x"].min(), 1.0, 4001)
    a = nca_structure()(grid)["a"]
    assert np.all(np.diff(a) > 0)  # a grows with x, i.e. falls as Li is removed
    total_drop = marker["a"].iloc[0] - marker["a"].min()
    assert a[-1] - a[0] == pytest.approx(total_drop, abs=0.001)


def test_changes_follow_every_measured_point(marker):
    model = nca_structure()(marker["x"].to_numpy())
    da_model = model["a"] - NCA_PRISTINE_A
    dc_model = model["c"] - NCA_PRISTINE_C
    da_meas = marker["a"] - marker["a"].iloc[0]
    dc_meas = marker["c"] - marker["c"].iloc[0]
    # Within typical refinement esd (3e-4 Å for a, 2e-3 Å for c), as an RMS over the charge.
    assert np.sqrt(np.mean((da_model - da_meas) ** 2)) < 3e-4
    assert np.sqrt(np.mean((dc_model - dc_meas) ** 2)) < 2e-3


def test_li_slab_thickness_definition():
    x = np.array([1.0, 0.6, 0.36])
    out = nca_structure()(x)
    z_o = 0.2580 + 0.0030 * (1 - x)
    s_mo2 = 2 * (1 / 3 - z_o) * out["c"]
    np.testing.assert_allclose(out["d"], out["c"] / 3 - s_mo2)
    assert 2.55 < out["d"][0] < 2.62
    assert out["d"][2] > out["d"][0]


def test_antisite_offset_lowers_occupancy():
    out = nca_structure(antisite=0.03)(np.array([0.8]))
    assert out["li_occupancy"][0] == pytest.approx(0.77)
    with pytest.raises(ConfigError, match="antisite fraction must lie in"):
        nca_structure(antisite=0.7)


def test_user_table_and_callable_models():
    table = TabulatedStructure({"x": [0.3, 1.0], "a": [2.81, 2.86]})
    assert table(np.array([0.65]))["a"][0] == pytest.approx(2.835)
    model = as_structural_model(lambda x: {"a": 2.8 + 0.06 * x})
    assert model(np.array([1.0]))["a"][0] == pytest.approx(2.86)
    with pytest.raises(ConfigError, match="needs a column 'x'"):
        TabulatedStructure({"a": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="must return a dict"):
        as_structural_model(lambda x: x)
