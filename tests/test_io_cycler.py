"""Cycler readers on real instrument files and on small exports written by the tests.

Real fixtures (tests/data, each folder with its upstream LICENSE):
* biologic-mpt: GhostDeini/perex, example/operando/EC (BSD-3-Clause)
* biologic-mpr: be-smith/navani, Example_data (MIT)
* neware-ndax: d-cogswell/NewareNDA, tests/nda/github/PR28 (BSD-3-Clause)
* datalab-operando: datalab-org/datalab-app-plugin-insitu, example_data/xrd (MIT)
"""

from __future__ import annotations

import itertools
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecpif import schema
from ecpif.errors import ConfigError, DataError, MissingDependencyError, ReadError
from ecpif.io import CYCLER_FORMATS, convert, detect_cycler_format, read_cycler
from ecpif.io._common import UNITS, archive_members, normalise_unit, split_header
from ecpif.io.cycler import _unreset, recognise_columns

DATA = Path(__file__).parent / "data"
MPT = DATA / "biologic-mpt" / "220726cell4operandoxascontinuation_C06.mpt"
MPR = DATA / "biologic-mpr" / "00_test_04_MB_C01.mpr"
NDAX = DATA / "neware-ndax" / "TESTCELL0001-Test_Data_Collection_Ndc17.ndax"
DATALAB = DATA / "datalab-operando" / "coincell8_LDE2_reduced.zip"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- real files ----------------------------------------------------------------------------------


def test_mpt_reads_latin1_comma_decimals_and_acquisition_start() -> None:
    table = read_cycler(MPT, timezone="Europe/Paris")
    f = table.frame
    assert table.format == "biologic-mpt"
    assert len(f) == 1402
    # "Acquisition started on : 07/28/2022 13:31:45.341", Paris summer time is UTC+2.
    assert table.start == utc("2022-07-28 11:31:45.341")
    assert f[schema.TIMESTAMP].iloc[0] == utc("2022-07-28 11:31:45.341")
    last = utc("2022-07-28 11:31:45.341") + pd.Timedelta(seconds=3.450666915262747e04)
    assert abs(f[schema.TIMESTAMP].iloc[-1] - last) < pd.Timedelta(microseconds=1)
    assert f[schema.TIME].iloc[-1] == pytest.approx(34506.66915262747)
    assert f[schema.VOLTAGE].iloc[0] == pytest.approx(3.7516155)
    assert f[schema.VOLTAGE].iloc[-1] == pytest.approx(4.1533771)
    # <I>/mA = -3,853964269458745E-001 mA, converted to A.
    assert f[schema.CURRENT].iloc[-1] == pytest.approx(-3.853964269458745e-4)
    assert f[schema.CHARGE].iloc[-1] == pytest.approx(8.938358973457846e-01)
    assert table.units[schema.CURRENT] == "mA"
    assert table.columns[schema.VOLTAGE] == "Ewe/V"
    assert set(f[schema.STEP].unique()) == {0, 1, 2}
    assert table.header["Run on channel"].startswith("6")


def test_mpt_naive_start_needs_a_time_zone() -> None:
    with pytest.raises(DataError, match=r"Acquisition started on.*carry no time zone.*timezone="):
        read_cycler(MPT)


def test_mpt_detected_by_content_whatever_the_suffix(tmp_path: Path) -> None:
    renamed = tmp_path / "export.txt"
    renamed.write_bytes(MPT.read_bytes())
    assert detect_cycler_format(renamed) == "biologic-mpt"
    assert len(read_cycler(renamed, timezone="UTC").frame) == 1402


def test_mpt_truncated_header(tmp_path: Path) -> None:
    cut = tmp_path / "cut.mpt"
    cut.write_bytes(b"\r\n".join(MPT.read_bytes().split(b"\r\n")[:40]))
    with pytest.raises(ReadError, match=r"declares 82 header lines but has only 40 lines"):
        read_cycler(cut, timezone="UTC")


def test_mpt_truncated_last_row(tmp_path: Path) -> None:
    data = MPT.read_bytes()
    cut = tmp_path / "cut.mpt"
    cut.write_bytes(data[: len(data) - 300])  # the last line loses its later fields
    with pytest.raises(DataError, match=r"Row 1401 \(line 1484\) of .*cut.mpt.*missing value"):
        read_cycler(cut, timezone="UTC")


def test_mpr_reads_through_galvani() -> None:
    table = read_cycler(MPR, timezone="Europe/London")
    f = table.frame
    assert table.format == "biologic-mpr"
    assert len(f) == 1501
    # File start 2023-12-08 09:49:52.346 (London = UTC in winter) + first time/s 16.1674 s.
    assert abs(f[schema.TIMESTAMP].iloc[0] - utc("2023-12-08 09:50:08.5134")) < pd.Timedelta("1us")
    assert f[schema.TIME].iloc[-1] == pytest.approx(17.6672 - 16.1674, abs=1e-6)
    assert f[schema.VOLTAGE].iloc[0] == pytest.approx(-1.650138, abs=1e-6)
    assert f[schema.CURRENT].iloc[0] == pytest.approx(-0.044698e-3, rel=1e-4)


def test_mpr_without_galvani_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "galvani", None)  # import galvani -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'ecpif\[mpr\]'"):
        read_cycler(MPR, timezone="UTC")


def test_ndax_aware_timestamps_and_step_boundary_duplicates() -> None:
    table = read_cycler(NDAX)  # this file stores UTC times: no time zone needed
    f = table.frame
    assert table.format == "neware"
    # 80 records, 4 of which repeat the instant of the next step's first record.
    assert len(f) == 76
    assert any("4 sample(s)" in note for note in table.notes)
    assert f[schema.TIMESTAMP].iloc[0] == utc("2025-09-24 14:20:56.575")
    assert f[schema.TIMESTAMP].iloc[-1] == utc("2025-09-24 14:22:11.575")
    assert f[schema.VOLTAGE].iloc[0] == pytest.approx(3.587182, abs=1e-6)
    # Charge 4.1665 mA.h at 1 A, then the same back: net charge rises then returns to ~0.
    assert f[schema.CHARGE].max() == pytest.approx(4.166538, abs=1e-5)
    assert f[schema.CHARGE].iloc[-1] == pytest.approx(0.0, abs=1e-4)
    assert f[schema.CURRENT].max() == pytest.approx(0.99999, abs=1e-4)
    assert schema.TEMPERATURE in f.columns
    assert np.all(np.diff(f[schema.TIME]) > 0)


def test_ndax_inside_zip_with_junk_and_naive_times() -> None:
    assert not any("__MACOSX" in m or m.endswith(".DS_Store") for m in archive_members(DATALAB))
    with pytest.raises(DataError, match=r"cc8.ndax carry no time zone.*timezone="):
        read_cycler(DATALAB)
    table = read_cycler(DATALAB, timezone="Europe/London")
    f = table.frame
    assert table.source.endswith("::coincell8_LDE2/Echem/cc8.ndax")
    assert len(f) == 4647 - 4
    assert f[schema.TIMESTAMP].iloc[0] == utc("2025-07-02 18:08:11")  # 19:08:11 BST
    # Neware stamps whole seconds; the run clock is rebuilt from step times (drift < 2 s).
    assert abs(f[schema.TIMESTAMP].iloc[-1] - utc("2025-07-03 09:11:07")) < pd.Timedelta("2s")
    assert f[schema.VOLTAGE].iloc[0] == pytest.approx(3.0980, abs=1e-4)
    assert f[schema.VOLTAGE].iloc[-1] == pytest.approx(2.5000, abs=1e-4)
    assert f[schema.CURRENT].iloc[-1] == pytest.approx(-0.6251e-3, abs=1e-7)


# --- generic tables ----------------------------------------------------------------------------


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


BIOLOGIC_CSV = (
    "Date Time,time/s,Ewe/V,I/mA,(Q-Qo)/mA.h,Ns,cycle number\n"
    "2026-01-12T09:00:00.000+00:00,0.0,3.50,100.0,0.0,1,1\n"
    "2026-01-12T09:00:10.000+00:00,10.0,3.52,100.0,0.277778,1,1\n"
    "2026-01-12T09:00:20.000+00:00,20.0,3.54,100.0,0.555556,1,1\n"
)


def test_biologic_style_csv(tmp_path: Path) -> None:
    table = read_cycler(_write(tmp_path / "run_cycler.csv", BIOLOGIC_CSV))
    f = table.frame
    assert table.format == "table"
    assert list(f[schema.CURRENT]) == pytest.approx([0.1, 0.1, 0.1])
    assert f[schema.CHARGE].iloc[-1] == pytest.approx(0.555556)
    assert f[schema.TIMESTAMP].iloc[-1] == utc("2026-01-12 09:00:20")
    assert f[schema.STEP].dtype.kind == "i"


def test_neware_export_with_step_capacities_and_hms_times(tmp_path: Path) -> None:
    text = (
        "DataPoint,Cycle Index,Step Index,Step Type,Time,Total Time,Current(mA),Voltage(V),"
        "Capacity(mAh),Chg. Cap.(mAh),DChg. Cap.(mAh),Date\n"
        "1,1,1,CC Chg,00:00:00,00:00:00,50,3.60,0,0,0,2025-03-01 10:00:00\n"
        "2,1,1,CC Chg,00:00:36,00:00:36,50,3.70,0.5,0.5,0,2025-03-01 10:00:36\n"
        "3,1,2,CC DChg,00:00:00,00:00:37,-50,3.65,0,0,0,2025-03-01 10:00:37\n"
        "4,1,2,CC DChg,00:00:36,00:01:13,-50,3.55,0.5,0,0.5,2025-03-01 10:01:13\n"
    )
    table = read_cycler(_write(tmp_path / "neware.csv", text), timezone="Asia/Shanghai")
    f = table.frame
    assert f[schema.TIMESTAMP].iloc[0] == utc("2025-03-01 02:00:00")
    assert list(f[schema.TIME]) == pytest.approx([0, 36, 37, 73])  # "Total Time", not "Time"
    assert list(f[schema.CHARGE]) == pytest.approx([0, 0.5, 0.5, 0.0])
    assert list(f[schema.CURRENT]) == pytest.approx([0.05, 0.05, -0.05, -0.05])
    assert table.columns[schema.TIME] == "Total Time"


def test_arbin_export_in_amp_hours(tmp_path: Path) -> None:
    text = (
        "Data_Point,Test_Time(s),Date_Time,Step_Time(s),Step_Index,Cycle_Index,Current(A),"
        "Voltage(V),Charge_Capacity(Ah),Discharge_Capacity(Ah)\n"
        "1,0,2024-05-02 08:00:00,0,1,1,0.5,3.0,0,0\n"
        "2,3600,2024-05-02 09:00:00,3600,1,1,0.5,4.0,0.5,0\n"
        "3,7200,2024-05-02 10:00:00,3600,2,1,-0.5,3.5,0.5,0.5\n"
        "4,7300,2024-05-02 10:01:40,100,1,2,0.5,3.6,0.0139,0\n"
    )
    f = read_cycler(_write(tmp_path / "arbin.csv", text), timezone="America/Chicago").frame
    assert f[schema.TIMESTAMP].iloc[0] == utc("2024-05-02 13:00:00")  # CDT = UTC-5
    # 0.5 A.h charged, 0.5 A.h discharged, then a new cycle resets the counters.
    assert list(f[schema.CHARGE]) == pytest.approx([0.0, 500.0, 0.0, 13.9])
    assert f[schema.CYCLE].tolist() == [1, 1, 1, 2]


def test_maccor_export_with_unsigned_current_and_state(tmp_path: Path) -> None:
    text = (
        "Today's Date,05/06/2024\n"
        "Rec#\tCyc#\tStep\tTest Time (sec)\tState\tAmps\tVolts\tAmp-hr\tDPt Time\n"
        "1\t0\t1\t0\tR\t0\t3.20\t0\t2024-05-06T12:00:00+02:00\n"
        "2\t0\t2\t60\tC\t1.0\t3.60\t0.016667\t2024-05-06T12:01:00+02:00\n"
        "3\t0\t3\t120\tD\t1.0\t3.40\t0.016667\t2024-05-06T12:02:00+02:00\n"
    )
    table = read_cycler(_write(tmp_path / "maccor.txt", text))
    f = table.frame
    assert list(f[schema.CURRENT]) == pytest.approx([0.0, 1.0, -1.0])
    assert list(f[schema.CHARGE]) == pytest.approx([0.0, 16.667, 0.0])
    assert f[schema.TIMESTAMP].iloc[0] == utc("2024-05-06 10:00:00")
    assert any("State" in note for note in table.notes)


def test_semicolon_and_decimal_comma_latin1(tmp_path: Path) -> None:
    text = "time/s;Ewe/V;I/µA;(Q-Qo)/mA.h\n0,0;3,700;250,0;0,000\n1,5;3,705;250,0;0,000104\n"
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("latin-1"))
    f = read_cycler(path, start="2024-01-01T00:00:00+00:00").frame
    assert f[schema.TIME].iloc[-1] == pytest.approx(1.5)
    assert f[schema.VOLTAGE].iloc[-1] == pytest.approx(3.705)
    assert f[schema.CURRENT].iloc[0] == pytest.approx(2.5e-4)
    assert f[schema.TIMESTAMP].iloc[-1] == utc("2024-01-01 00:00:01.5")


def test_column_map_and_units_override(tmp_path: Path) -> None:
    text = "t,U,amps_x,q\n0,3.0,5,0\n10,3.1,5,0.0139\n"
    path = _write(tmp_path / "custom.csv", text)
    table = read_cycler(
        path,
        column_map={"time": "t", "voltage": "U", "current": "amps_x", "charge [mA.h]": "q"},
        units={"time": "s", "voltage": "V", "current": "mA", "charge": "A.h"},
        start=pd.Timestamp("2024-02-01 12:00"),
        timezone="Europe/Berlin",
    )
    f = table.frame
    assert f[schema.CURRENT].iloc[0] == pytest.approx(0.005)
    assert f[schema.CHARGE].iloc[-1] == pytest.approx(13.9)
    assert f[schema.TIMESTAMP].iloc[0] == utc("2024-02-01 11:00")
    assert table.units[schema.CHARGE] == "A.h"


def test_charge_integrated_when_absent(tmp_path: Path) -> None:
    text = "time/s,Ewe/V,I/A\n0,3.0,1.8\n1000,3.5,1.8\n2000,3.6,1.8\n"
    table = read_cycler(_write(tmp_path / "noq.csv", text), start="2024-01-01T00:00:00Z")
    # 1.8 A for 2000 s = 3600 A.s = 1000 mA.h
    assert table.frame[schema.CHARGE].iloc[-1] == pytest.approx(1000.0)
    assert any("integrated" in note for note in table.notes)


def test_excel_export_with_preamble(tmp_path: Path) -> None:
    path = tmp_path / "arbin.xlsx"
    body = pd.DataFrame(
        {
            "Test_Time(s)": [0.0, 60.0, 120.0],
            "Date_Time": ["2024-05-02 08:00:00", "2024-05-02 08:01:00", "2024-05-02 08:02:00"],
            "Current(A)": [0.2, 0.2, 0.2],
            "Voltage(V)": [3.1, 3.2, 3.3],
            "Charge_Capacity(Ah)": [0.0, 0.00333, 0.00667],
            "Discharge_Capacity(Ah)": [0.0, 0.0, 0.0],
        }
    )
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"info": ["Global_Info"]}).to_excel(xl, sheet_name="Info", index=False)
        body.to_excel(xl, sheet_name="Channel_1-001", index=False)
    table = read_cycler(path, timezone="UTC")
    assert table.format == "excel"
    assert "Channel_1-001" in table.source
    assert table.frame[schema.CHARGE].iloc[-1] == pytest.approx(6.67)


# --- header recognition, units -------------------------------------------------------------------


def test_header_recognition_of_vendor_exports() -> None:
    assert recognise_columns(["time/s", "Ewe/V", "<I>/mA", "(Q-Qo)/mA.h", "Ns"]) == {
        "time": "time/s",
        "voltage": "Ewe/V",
        "current": "<I>/mA",
        "charge": "(Q-Qo)/mA.h",
        "step": "Ns",
    }
    arbin = recognise_columns(["Test_Time(s)", "Voltage(V)", "Current(A)", "Step_Index"])
    assert arbin == {
        "time": "Test_Time(s)",
        "voltage": "Voltage(V)",
        "current": "Current(A)",
        "step": "Step_Index",
    }
    assert split_header("Temperature (C)_1") == ("temperature 1", "C")
    assert normalise_unit("C", dimension="temperature") == "degC"
    assert normalise_unit("C", dimension="charge") == "C"


DIMENSION_UNITS = {
    dim: [u for u, spec in UNITS.items() if spec.dimension == dim]
    for dim in {spec.dimension for spec in UNITS.values()}
}
UNIT_PAIRS = [
    pair for units in DIMENSION_UNITS.values() for pair in itertools.permutations(units, 2)
]


@settings(max_examples=200, deadline=None)
@given(
    pair=st.sampled_from(UNIT_PAIRS),
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_unit_conversions_round_trip(pair: tuple[str, str], value: float) -> None:
    src, dst = pair
    back = convert(convert(value, src, dst), dst, src)
    assert float(back) == pytest.approx(value, rel=1e-12, abs=1e-9)


def test_known_conversions() -> None:
    assert float(convert(1.0, "A.h", "mA.h")) == pytest.approx(1000.0)
    assert float(convert(3.6, "C", "mA.h")) == pytest.approx(1.0)
    assert float(convert(25.0, "degC", "K")) == pytest.approx(298.15)
    assert float(convert(1.0, "h", "s")) == pytest.approx(3600.0)
    with pytest.raises(ConfigError, match=r"Cannot convert 'mA' \(current\) to 'V'"):
        convert(1.0, "mA", "V")


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([-1, 1]),
            st.lists(st.floats(min_value=0.01, max_value=5.0), min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_counter_resets_give_the_net_charge(steps: list[tuple[int, list[float]]]) -> None:
    """Counters that restart at 0 each step become the running sum of signed increments."""
    chg, dchg, expected = [], [], []
    net = 0.0
    for sign, increments in steps:
        counter = 0.0
        for inc in [0.0, *increments]:  # a step's first record has its counter at 0
            counter += inc
            net += sign * inc
            chg.append(counter if sign > 0 else 0.0)
            dchg.append(counter if sign < 0 else 0.0)
            expected.append(net)
    result = _unreset(np.array(chg), np.array(dchg))
    np.testing.assert_allclose(result, expected, atol=1e-9)


# --- bad input: one sentence naming file, row or column, and the fix -----------------------------


def test_missing_voltage_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "novolt.csv", "time/s,I/mA\n0,1\n1,1\n")
    with pytest.raises(ReadError, match=r"novolt.csv. has no recognisable voltage.*column_map"):
        read_cycler(path, start="2024-01-01T00:00:00Z")


def test_unknown_unit(tmp_path: Path) -> None:
    path = _write(tmp_path / "unit.csv", "time/s,Ewe/furlong,I/mA\n0,1,1\n1,1,1\n")
    with pytest.raises(ReadError, match=r"Unknown unit 'furlong' of column 'Ewe/furlong'"):
        read_cycler(path, start="2024-01-01T00:00:00Z")


def test_missing_unit(tmp_path: Path) -> None:
    path = _write(tmp_path / "nounit.csv", "time/s,voltage,current\n0,1,1\n1,1,1\n")
    with pytest.raises(ReadError, match=r"'voltage'.*carries no unit.*units=\{'voltage': 'V'\}"):
        read_cycler(path, start="2024-01-01T00:00:00Z")


def test_nan_value_names_row_line_and_column(tmp_path: Path) -> None:
    text = BIOLOGIC_CSV.replace(",3.52,", ",,")
    with pytest.raises(DataError, match=r"Row 1 \(line 3\) of .*nan.csv.*NaN.*'Ewe/V'"):
        read_cycler(_write(tmp_path / "nan.csv", text))


def test_unsorted_times(tmp_path: Path) -> None:
    lines = BIOLOGIC_CSV.splitlines()
    text = "\n".join([lines[0], lines[1], lines[3], lines[2]]) + "\n"
    with pytest.raises(DataError, match=r"Row 2 \(line 4\).*earlier time.*sort the file"):
        read_cycler(_write(tmp_path / "unsorted.csv", text))


def test_duplicate_times_within_a_step(tmp_path: Path) -> None:
    lines = BIOLOGIC_CSV.splitlines()
    text = "\n".join([lines[0], lines[1], lines[2], lines[2]]) + "\n"
    with pytest.raises(DataError, match=r"Row 2 \(line 4\).*the same time as.*remove duplicated"):
        read_cycler(_write(tmp_path / "dup.csv", text))


def test_naive_timestamps_without_zone(tmp_path: Path) -> None:
    text = BIOLOGIC_CSV.replace("+00:00", "")
    with pytest.raises(DataError, match=r"'Date Time' of .*naive.csv.*no time zone.*timezone="):
        read_cycler(_write(tmp_path / "naive.csv", text))
    f = read_cycler(tmp_path / "naive.csv", timezone="Asia/Tokyo").frame
    assert f[schema.TIMESTAMP].iloc[0] == utc("2026-01-12 00:00:00")


def test_dst_ambiguous_local_time(tmp_path: Path) -> None:
    text = (
        "Date Time,time/s,Ewe/V,I/mA\n2024-10-27 02:30:00,0,3.0,1\n2024-10-27 02:31:00,60,3.0,1\n"
    )
    with pytest.raises(DataError, match=r"ambiguous in time zone 'Europe/Paris'"):
        read_cycler(_write(tmp_path / "dst.csv", text), timezone="Europe/Paris")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"empty.csv.* is empty"):
        read_cycler(_write(tmp_path / "empty.csv", ""))


def test_header_only_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "header.csv", BIOLOGIC_CSV.splitlines()[0] + "\n")
    with pytest.raises(ReadError, match=r"header.csv. holds a header but no data rows"):
        read_cycler(path)


def test_truncated_csv_row(tmp_path: Path) -> None:
    text = BIOLOGIC_CSV.rstrip("\n")[:-12]  # cut inside the last row
    with pytest.raises(DataError, match=r"Row 2 \(line 4\) of .*trunc.csv.*truncated"):
        read_cycler(_write(tmp_path / "trunc.csv", text))


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = _write(tmp_path / "comma.csv", BIOLOGIC_CSV)
    with pytest.raises(ReadError, match=r"does not contain the delimiter tab.*delimiter=','"):
        read_cycler(path, delimiter="\t")


def test_single_column_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.csv", "time/s Ewe/V I/mA\n0 1 1\n1 1 1\n")
    with pytest.raises(ReadError, match=r"one.csv. has a single column.*delimiter="):
        read_cycler(path)


def test_non_numeric_value(tmp_path: Path) -> None:
    text = BIOLOGIC_CSV.replace(",3.52,", ",overload,")
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*'overload' in column 'Ewe/V'"):
        read_cycler(_write(tmp_path / "text.csv", text))


def test_relative_times_without_start(tmp_path: Path) -> None:
    path = _write(tmp_path / "rel.csv", "time/s,Ewe/V,I/mA\n0,3,1\n1,3,1\n")
    with pytest.raises(ReadError, match=r"relative times only.*pass start="):
        read_cycler(path)


def test_unknown_format_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "cell.res"
    path.write_bytes(b"\x00\x01binary arbin database\x00")
    with pytest.raises(ReadError, match=r"not in a supported cycler format.*biologic-mpt.*neware"):
        read_cycler(path)
    assert set(CYCLER_FORMATS) == {"biologic-mpt", "biologic-mpr", "neware", "table", "excel"}


def test_unknown_fmt_name_suggests() -> None:
    with pytest.raises(ConfigError, match=r"fmt='biologic-mtp'.*Did you mean 'biologic-mpt'"):
        read_cycler(MPT, fmt="biologic-mtp")


def test_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match=r"Unknown time zone 'Europe/Pariss'"):
        read_cycler(MPT, timezone="Europe/Pariss")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"does not exist"):
        read_cycler(tmp_path / "nope.csv")
    with pytest.raises(ReadError, match=r"is a folder"):
        read_cycler(tmp_path)


def test_zip_member_choice(tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", BIOLOGIC_CSV)
        zf.writestr("b.csv", BIOLOGIC_CSV)
        zf.writestr("__MACOSX/._a.csv", "junk")
    with pytest.raises(ReadError, match=r"several candidate cycler files.*member="):
        read_cycler(archive)
    assert len(read_cycler(archive, member="b.csv").frame) == 3
    with pytest.raises(ReadError, match=r"no single member 'c.csv'"):
        read_cycler(archive, member="c.csv")


def test_broken_zip(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(DATALAB.read_bytes()[:1000])
    with pytest.raises(ReadError, match=r"not a valid zip archive.*truncated"):
        read_cycler(path)


def test_truncated_ndax(tmp_path: Path) -> None:
    path = tmp_path / "cut.ndax"
    path.write_bytes(NDAX.read_bytes()[:2000])
    with pytest.raises(ReadError, match=r"cut.ndax. cannot be read as a Neware file"):
        read_cycler(path)


def test_inputs_are_not_modified(tmp_path: Path) -> None:
    before = MPT.read_bytes()
    read_cycler(MPT, timezone="UTC")
    assert MPT.read_bytes() == before
