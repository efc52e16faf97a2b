"""ActiLife RAW CSV exports: the real exports beside their .gt3x, and header/LSB/bad-input cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ReaderError
from analysis.read_actilife_csv import read_actilife_csv
from analysis.read_gt3x import read_gt3x

SHARED = Path(__file__).parents[2].parent / "shared" / "data"
NEO = SHARED / "pygt3x_neo_actilife_csv"  # GPL-3.0 data: read in place, not copied
needs_neo = pytest.mark.skipif(not NEO.is_dir(), reason="../shared/data/pygt3x_neo_actilife_csv not present")

BANNER = ("------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 Firmware v2.5.0 "
          "date format {fmt} at {fs} Hz  Filter Normal -----------")


def _export(path: Path, rows: str, *, fmt: str = "M/d/yyyy", date: str = "12/20/2021", fs: int = 30,
            columns: str = "Accelerometer X,Accelerometer Y,Accelerometer Z") -> Path:
    header = [BANNER.format(fmt=fmt, fs=fs), "Serial Number: NEO1C04110003", "Start Time 11:55:00",
              f"Start Date {date}", "Epoch Period (hh:mm:ss) 00:00:00", "Download Time 12:09:58",
              "Download Date 12/20/2021", "Current Memory Address: 0",
              "Current Battery Voltage: 4.26     Mode = 12", "-" * 50, columns]
    path.write_text("\n".join(header) + "\n" + rows)
    return path


@needs_neo
def test_neo_export_equals_the_gt3x_it_came_from() -> None:
    csv = read_actilife_csv(NEO / "neo.csv")
    gt3x = read_gt3x(NEO / "neo.gt3x")
    assert csv.fs_hz == 30.0 and csv.n_samples == 18_004
    assert np.array_equal(csv.blocks[0].accel_g, np.round(gt3x.blocks[0].accel_g, 3))
    # The CSV has local time and no zone (taken as UTC); the .gt3x knows it is UTC-06:00.
    assert csv.blocks[0].t0_ns - gt3x.blocks[0].t0_ns == -6 * 3600 * 10**9
    assert csv.blocks[0].t0_ns == np.datetime64("2021-12-20T11:55:00", "ns").astype(np.int64)


@needs_neo
def test_wrist_lsb_export_is_the_calibrated_one_in_counts() -> None:
    lsb = read_actilife_csv(NEO / "WRIST_rawLSB_032Hz.csv", scale_lsb_per_g=256.0)
    cal = read_actilife_csv(NEO / "WRIST_rawCalibrated_032Hz.csv")
    assert lsb.fs_hz == cal.fs_hz == 32.0 and lsb.n_samples == cal.n_samples == 1_920
    assert lsb.blocks[0].t0_ns == cal.blocks[0].t0_ns
    # Same samples: ActiLife's per-device calibration is nearly linear per axis (r > 0.99).
    for axis in range(3):
        r = np.corrcoef(lsb.blocks[0].accel_g[:, axis], cal.blocks[0].accel_g[:, axis])[0, 1]
        assert r > 0.99
    with pytest.raises(ReaderError, match="LSB-count export; pass scale_lsb_per_g"):
        read_actilife_csv(NEO / "WRIST_rawLSB_032Hz.csv")


def test_timestamp_column_and_day_first_dates(tmp_path: Path) -> None:
    path = _export(tmp_path / "a.csv", "20.12.2021 11:55:00.000,0.1,0.2,0.9\n20.12.2021 11:55:00.033,0.2,0.3,1.0\n",
                   fmt="dd.MM.yyyy", date="20.12.2021",
                   columns="Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z")
    rec = read_actilife_csv(path)
    assert rec.blocks[0].accel_g.tolist() == [[0.1, 0.2, 0.9], [0.2, 0.3, 1.0]]
    assert rec.blocks[0].t0_ns == np.datetime64("2021-12-20T11:55:00", "ns").astype(np.int64)


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        ("0.1,0.2,0.9\n0.1,0.2\n", {}, r"a\.csv: line 13: expected 3 numeric columns"),
        ("0.1,0.2,0.9\n0.1,nan,0.9\n", {}, r"a\.csv: line 13: value is NaN or infinite"),
        ("0.1,0.2,0.9\n0.1,0.2,0.9\n0.1,x,0.9\n", {}, r"a\.csv: line 14: expected 3 numeric columns"),
        ("0.1,0.2,0.9\n0.1,0.2,0.9\n0.1,0.9\n", {}, r"a\.csv: line 14: expected 3 numeric columns"),
        ("0.1,0.2,0.9\n", {}, r"a\.csv: line 12: need at least 2 samples, got 1"),
        ("", {}, r"a\.csv: line 12: need at least 2 samples, got 0"),
        ("0.1,0.2,0.9\n0.1,0.2,0.9\n", {"date": "13/20/2021"}, r"a\.csv: line 4: start date '13/20/2021' is not a date"),
    ],
)
def test_bad_exports(tmp_path: Path, rows: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ReaderError, match=message):
        read_actilife_csv(_export(tmp_path / "a.csv", rows, **kwargs))
