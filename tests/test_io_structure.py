"""Structure readers: refinement tables, GSAS-II sequential CSV, pattern logs, NeXus times.

Real fixtures: datalab-operando (datalab-org/datalab-app-plugin-insitu, MIT) for the pattern log;
pascal-nmc811 (Märker et al., Chem. Mater. 2019, via MJCliffe/PASCal, MIT) for a lattice table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecpif import schema
from ecpif.errors import ConfigError, DataError, ReadError
from ecpif.io import (
    STRUCTURE_FORMATS,
    read_nexus_times,
    read_pattern_log,
    read_refinement,
    read_table,
)

DATA = Path(__file__).parent / "data"
DATALAB = DATA / "datalab-operando" / "coincell8_LDE2_reduced.zip"
PASCAL = DATA / "pascal-nmc811" / "nmc811_lattice_vs_charge.tsv"

DEMO_REFINEMENT = (
    "pattern,start_time,end_time,a,esd_a,c,esd_c,d,esd_d,li_occupancy,esd_li_occupancy\n"
    "nca-1C-p0000,2026-01-12T09:00:00.000+00:00,2026-01-12T09:03:00.000+00:00,"
    "2.8629,0.0004,14.1845,0.0026,2.5926,0.0026,0.9764,0.0129\n"
    "nca-1C-p0001,2026-01-12T09:03:00.000+00:00,2026-01-12T09:06:00.000+00:00,"
    "2.8622,0.0004,14.1861,0.0026,2.5985,0.0026,0.9547,0.0129\n"
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_layout_refinement(tmp_path: Path) -> None:
    table = read_refinement(_write(tmp_path / "nca-1C_refinement.csv", DEMO_REFINEMENT))
    f = table.frame
    assert table.format == "refinement"
    assert table.parameters == ("a [Å]", "c [Å]", "d [Å]", "li_occupancy [-]")
    assert list(f.columns[:3]) == [schema.PATTERN_ID, schema.START, schema.END]
    assert f[schema.START].iloc[1] == utc("2026-01-12 09:03")
    assert f["c [Å]"].iloc[1] == pytest.approx(14.1861)
    assert f["esd li_occupancy [-]"].iloc[0] == pytest.approx(0.0129)
    assert table.columns["esd c [Å]"] == "esd_c"


def test_datalab_pattern_log_in_zip() -> None:
    log = read_pattern_log(DATALAB, timezone="Europe/London")
    f = log.frame
    assert log.format == "pattern-log"
    assert f[schema.PATTERN_ID].tolist() == [1355639, 1355647, 1355655, 1355663, 1355671]
    assert f[schema.START].iloc[0] == utc("2025-07-02 18:05:59.614")  # 19:05:59.614 BST
    assert f[schema.END].iloc[-1] == utc("2025-07-02 18:43:13.916")
    assert log.parameters == ()
    # read_refinement detects the log by its columns.
    assert read_refinement(DATALAB, timezone="Europe/London").format == "pattern-log"


def test_pattern_log_needs_a_time_zone() -> None:
    with pytest.raises(DataError, match=r"'start_time' of .*log_operando.*no time zone"):
        read_pattern_log(DATALAB)


def test_gsas2_sequential_csv_joined_to_the_log(tmp_path: Path) -> None:
    text = (
        '"name","Rwp","0::a","esd-0::a","0::c","esd-0::c","0::Vol","esd-0::Vol"\n'
        '"PWDR 1355647_summed_mythen3.xye",4.1,2.8710,0.0001,14.2001,0.0007,101.2,0.02\n'
        '"PWDR 1355655_summed_mythen3.xye",4.3,2.8702,0.0001,14.2050,0.0008,101.1,0.02\n'
    )
    path = _write(tmp_path / "seq.csv", text)
    log = read_pattern_log(DATALAB, timezone="Europe/London")
    table = read_refinement(path, pattern_log=log)
    f = table.frame
    assert table.format == "gsas2-seq"
    assert table.parameters == ("a [Å]", "c [Å]", "volume [Å^3]")
    assert "Rwp" in table.ignored
    assert f[schema.START].tolist() == log.frame[schema.START].iloc[1:3].tolist()
    assert f["esd a [Å]"].tolist() == pytest.approx([0.0001, 0.0001])
    # The log can also be given as a path (here: inside the archive).
    again = read_refinement(path, pattern_log=DATALAB, timezone="Europe/London")
    pd.testing.assert_frame_equal(again.frame, f)


def test_gsas2_unmatched_scan(tmp_path: Path) -> None:
    text = '"name","0::a","esd-0::a"\n"PWDR 999_x.xye",2.87,0.0001\n'
    log = read_pattern_log(DATALAB, timezone="UTC")
    with pytest.raises(DataError, match=r"Row 0 \(line 2\).*'PWDR 999_x.xye'.*matches no scan"):
        read_refinement(_write(tmp_path / "seq.csv", text), pattern_log=log)


def test_start_plus_duration_and_parameter_mapping(tmp_path: Path) -> None:
    text = (
        "scan\tstart\tduration/min\ta (nm)\tsig_a (nm)\tFrac_Li\tz_O\tGOF\n"
        "1\t2024-03-01 10:00:00\t5\t0.28650\t0.00002\t0.95\t0.2581\t1.2\n"
        "2\t2024-03-01 10:05:00\t5\t0.28640\t0.00002\t0.93\t0.2583\t1.1\n"
    )
    path = _write(tmp_path / "fit.tsv", text)
    table = read_refinement(
        path,
        timezone="Europe/Berlin",
        parameters={"a": "a", "Frac_Li": "li_occupancy", "z_O": "z_O [-]"},
    )
    f = table.frame
    assert f[schema.START].iloc[0] == utc("2024-03-01 09:00")
    assert f[schema.END].iloc[0] == utc("2024-03-01 09:05")
    assert f["a [Å]"].iloc[0] == pytest.approx(2.8650)  # nm -> Å
    assert f["esd a [Å]"].iloc[0] == pytest.approx(0.0002)
    assert f["li_occupancy [-]"].tolist() == [0.95, 0.93]
    assert f["z_O [-]"].iloc[1] == pytest.approx(0.2583)
    assert "GOF" in table.ignored


def test_excel_refinement(tmp_path: Path) -> None:
    path = tmp_path / "fit.xlsx"
    pd.DataFrame(
        {
            "pattern": ["p1", "p2"],
            "start_time": ["2024-03-01T10:00:00Z", "2024-03-01T10:05:00Z"],
            "end_time": ["2024-03-01T10:05:00Z", "2024-03-01T10:10:00Z"],
            "c": [14.2, 14.3],
            "c_esd": [0.001, 0.002],
        }
    ).to_excel(path, index=False)
    f = read_refinement(path).frame
    assert f["esd c [Å]"].tolist() == [0.001, 0.002]
    assert f[schema.END].iloc[-1] == utc("2024-03-01 10:10")


def test_nexus_acquisition_times(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    paths = []
    for i, (start, end, minutes) in enumerate(
        [
            ("2024-06-01T10:00:00+02:00", "2024-06-01T10:04:00+02:00", None),
            ("2024-06-01T10:05:00+02:00", None, 4.0),
        ]
    ):
        path = tmp_path / f"scan_{i:04d}.nxs"
        with h5py.File(path, "w") as fh:
            entry = fh.create_group("entry")
            entry.attrs["NX_class"] = "NXentry"
            entry["start_time"] = start
            if end is not None:
                entry["end_time"] = end
            if minutes is not None:
                entry["duration"] = minutes
                entry["duration"].attrs["units"] = "min"
        paths.append(path)
    table = read_nexus_times(paths)
    f = table.frame
    assert f[schema.PATTERN_ID].tolist() == ["scan_0000/entry", "scan_0001/entry"]
    assert f[schema.START].iloc[0] == utc("2024-06-01 08:00")
    assert f[schema.END].iloc[1] == utc("2024-06-01 08:09")
    assert read_refinement(paths[0]).format == "nexus"


def test_nexus_without_times(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "bad.nxs"
    with h5py.File(path, "w") as fh:
        entry = fh.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["start_time"] = "2024-06-01T10:00:00Z"
    with pytest.raises(ReadError, match=r"entry 'entry' of .*bad.nxs.*neither end_time nor"):
        read_nexus_times(path)


def test_pascal_lattice_table() -> None:
    names = [
        "q [mA.h/g]",
        "sigma q [mA.h/g]",
        "a [Å]",
        "b [Å]",
        "c [Å]",
        "alpha [deg]",
        "beta [deg]",
        "gamma [deg]",
    ]
    table = read_table(PASCAL, names=names)
    assert len(table) == 79
    assert table["a [Å]"].iloc[0] == pytest.approx(2.8704)
    assert table["a [Å]"].iloc[-1] == pytest.approx(2.8117)
    assert table["c [Å]"].max() == pytest.approx(14.483, abs=1e-3)
    assert table["c [Å]"].iloc[-1] == pytest.approx(14.008, abs=1e-3)
    q_at_max = table["q [mA.h/g]"].iloc[int(np.argmax(table["c [Å]"]))]
    assert 170 < q_at_max < 185
    with pytest.raises(ReadError, match=r"has no header row.*pass names="):
        read_table(PASCAL)
    with pytest.raises(ReadError, match=r"names= has 2 entries but .* has 8 columns"):
        read_table(PASCAL, names=["q [mA.h/g]", "a [Å]"])


# --- bad input -----------------------------------------------------------------------------------


def test_missing_times_without_log(tmp_path: Path) -> None:
    path = _write(tmp_path / "notimes.csv", "pattern,a\np1,2.87\n")
    with pytest.raises(ReadError, match=r"no start/end time columns.*pattern_log="):
        read_refinement(path)


def test_missing_id_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "noid.csv", "start_time,end_time,a\n2024-01-01T00:00Z,2024-01-01T00:05Z,2\n"
    )
    with pytest.raises(ReadError, match=r"noid.csv. has no pattern id column"):
        read_refinement(path)


def test_duplicate_pattern_id(tmp_path: Path) -> None:
    lines = DEMO_REFINEMENT.splitlines()
    text = "\n".join([lines[0], lines[1], lines[2].replace("p0001", "p0000")]) + "\n"
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*repeats pattern id 'nca-1C-p0000'"):
        read_refinement(_write(tmp_path / "dup.csv", text))


def test_end_before_start(tmp_path: Path) -> None:
    text = DEMO_REFINEMENT.replace(
        "2026-01-12T09:03:00.000+00:00,2026-01-12T09:06:00.000+00:00",
        "2026-01-12T09:06:00.000+00:00,2026-01-12T09:03:00.000+00:00",
    )
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*ends at .* not after its start"):
        read_refinement(_write(tmp_path / "back.csv", text))


def test_unsorted_patterns(tmp_path: Path) -> None:
    lines = DEMO_REFINEMENT.splitlines()
    text = "\n".join([lines[0], lines[2], lines[1]]) + "\n"
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*earlier start.*sort the patterns"):
        read_refinement(_write(tmp_path / "unsorted.csv", text))


def test_naive_times_without_zone(tmp_path: Path) -> None:
    text = DEMO_REFINEMENT.replace("+00:00", "")
    with pytest.raises(DataError, match=r"'start_time' of .*naive.csv.*no time zone"):
        read_refinement(_write(tmp_path / "naive.csv", text))


def test_missing_time_value(tmp_path: Path) -> None:
    text = DEMO_REFINEMENT.replace("2026-01-12T09:06:00.000+00:00", "")
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*no time in column 'end_time'"):
        read_refinement(_write(tmp_path / "gap.csv", text))


def test_non_numeric_parameter(tmp_path: Path) -> None:
    text = DEMO_REFINEMENT.replace(",14.1861,", ",14.1861(26),")
    with pytest.raises(DataError, match=r"Row 1 \(line 3\).*'14.1861\(26\)' in column 'c'"):
        read_refinement(_write(tmp_path / "esd.csv", text))


def test_unknown_parameter_requested(tmp_path: Path) -> None:
    path = _write(tmp_path / "fit.csv", DEMO_REFINEMENT)
    with pytest.raises(ReadError, match=r"parameters= names 'cc'.*Did you mean 'c'"):
        read_refinement(path, parameters=["cc"])


def test_unknown_unit_in_parameter(tmp_path: Path) -> None:
    text = DEMO_REFINEMENT.replace(",c,", ",c [parsec],")
    with pytest.raises(ReadError, match=r"Unknown unit 'parsec' of column 'c \[parsec\]'"):
        read_refinement(_write(tmp_path / "unit.csv", text))


def test_duration_without_unit(tmp_path: Path) -> None:
    text = "pattern,start,duration,a\np1,2024-01-01T00:00Z,300,2.87\n"
    with pytest.raises(ReadError, match=r"'duration'.*no unit; pass units=\{'duration': 's'\}"):
        read_refinement(_write(tmp_path / "dur.csv", text))
    table = read_refinement(tmp_path / "dur.csv", units={"duration": "s"})
    assert table.frame[schema.END].iloc[0] == utc("2024-01-01 00:05")


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = _write(tmp_path / "fit.csv", DEMO_REFINEMENT)
    with pytest.raises(ReadError, match=r"does not contain the delimiter semicolon.*','"):
        read_refinement(path, delimiter=";")


def test_empty_and_comment_only(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"is empty"):
        read_refinement(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(ReadError, match=r"only comments or blank lines"):
        read_refinement(_write(tmp_path / "comments.csv", "# nothing\n# here\n"))


def test_unknown_format_name() -> None:
    with pytest.raises(ConfigError, match=r"fmt='gsas-seq'.*Did you mean 'gsas2-seq'"):
        read_refinement(DATALAB, fmt="gsas-seq")
    assert set(STRUCTURE_FORMATS) == {"refinement", "gsas2-seq", "pattern-log", "nexus"}
