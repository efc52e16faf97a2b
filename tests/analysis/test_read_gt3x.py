"""ActiGraph .gt3x reader against ActiLife exports, pygt3x/GGIR figures and hand-packed bytes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import ReaderError
from analysis.read_gt3x import _unpack12, read_gt3x
from analysis.samples import NS_PER_S, concatenate

REC = Path(__file__).parents[2] / "fixtures" / "recordings"
SHARED = Path(__file__).parents[2].parent / "shared" / "data"
NEO = SHARED / "pygt3x_neo_actilife_csv"  # GPL-3.0 data: read in place, not copied


def _pack12_yxz(counts_xyz: np.ndarray) -> bytes:
    """Reference packer written from Activity.md: Y, X, Z 12-bit values, MSB first."""
    bits = "".join(format(int(v) & 0xFFF, "012b") for row in counts_xyz for v in (row[1], row[0], row[2]))
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


@given(st.lists(st.tuples(*[st.integers(-2048, 2047)] * 3), min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_unpack12_inverts_the_documented_packing(rows: list[tuple[int, int, int]]) -> None:
    counts = np.array(rows, dtype=np.int64)
    packed = np.frombuffer(_pack12_yxz(counts), dtype=np.uint8)
    assert np.array_equal(_unpack12(packed, len(rows)), counts)


def test_unpack12_matches_the_worked_example_in_activity_md() -> None:
    data = np.frombuffer(bytes.fromhex("006008EBD007009EBF007008EBF0"), dtype=np.uint8)
    counts = _unpack12(data, 3)
    # Activity.md: Y=6, X=8, Z=-323; Y=7, X=9, Z=-321; Y=7, X=8, Z=-321 (returned as X, Y, Z).
    assert counts.tolist() == [[8, 6, -323], [9, 7, -321], [8, 7, -321]]
    assert np.round(counts / 341.0, 3).tolist()[0] == [0.023, 0.018, -0.947]


def test_agcounts_example_is_18000_samples_at_100_hz_from_the_start_date() -> None:
    rec = read_gt3x(REC / "agcounts_example.gt3x")
    assert rec.fs_hz == 100.0 and rec.n_samples == 18_000 and len(rec.blocks) == 1
    assert rec.device["scale_lsb_per_g"] == 256.0 and rec.device["idle_sleep_s"] == 0
    # info.txt Start Date 638222420400000000 ticks, local UTC-05:00 -> 2023-06-13T13:34:00Z.
    assert rec.blocks[0].t0_ns == np.datetime64("2023-06-13T13:34:00", "ns").astype(np.int64)
    accel = rec.blocks[0].accel_g
    assert np.all(np.abs(accel) <= 8.0)
    # Every value is a whole number of 1/256 g (int16 ACTIVITY2 or 12-bit ACTIVITY counts).
    assert np.array_equal(accel * 256, np.rint(accel * 256))
    # A wrist at rest-to-moderate: vector magnitude averages about 1 g.
    assert 0.9 < float(np.linalg.norm(accel, axis=1).mean()) < 1.2


@pytest.mark.skipif(not NEO.is_dir(), reason="../shared/data/pygt3x_neo_actilife_csv not present (GPL data, not copied)")
def test_neo_nhanes_layout_equals_the_actilife_export_on_every_sample() -> None:
    rec = read_gt3x(NEO / "neo.gt3x")
    actilife = np.loadtxt(NEO / "neo.csv", delimiter=",", skiprows=11)
    accel = rec.blocks[0].accel_g
    assert rec.device["layout"] == "nhanes" and rec.device["scale_lsb_per_g"] == 341.0
    assert accel.shape == actilife.shape == (18_004, 3)
    assert np.array_equal(np.round(accel, 3), actilife)
    # Start Date 637755981000000000 ticks = 2021-12-20 11:55 local, TimeZone -06:00.
    assert rec.blocks[0].t0_ns == np.datetime64("2021-12-20T17:55:00", "ns").astype(np.int64)


def test_ggir_testfile_idle_sleep_conventions() -> None:
    filled = read_gt3x(REC / "actigraph_testfile.gt3x")  # ActiLife/pygt3x: repeat last sample
    gaps = read_gt3x(REC / "actigraph_testfile.gt3x", idle_sleep="gap")  # GGIR/read.gt3x
    _, a_filled = concatenate(filled.blocks)
    _, a_gaps = concatenate(gaps.blocks)
    # pygt3x 0.7.1: 53,040 samples, sum(x+y+z) of the first 17,640 = -3012.04 (ggir_testfiles README).
    assert a_filled.shape[0] == 53_040 and len(filled.blocks) == 1
    assert a_filled[:17_640].sum() == pytest.approx(-3012.04, abs=0.01)
    # GGIR: 17,640 recorded rows, sum 2732.35 +- 0.01 with read.gt3x's 3-decimal truncation.
    assert a_gaps.shape[0] == 17_640 and len(gaps.blocks) == 24
    assert (np.trunc(a_gaps * 1000) / 1000).sum() == pytest.approx(2732.35, abs=0.01)
    assert filled.device["idle_sleep_s"] == gaps.device["idle_sleep_s"] == (53_040 - 17_640) // 30
    # The filled stretch repeats the sample before it; gap blocks keep their record times.
    t_filled, _ = concatenate(filled.blocks)
    t_gaps, _ = concatenate(gaps.blocks)
    idx = np.searchsorted(t_filled, t_gaps)
    assert np.array_equal(t_filled[idx], t_gaps) and np.array_equal(a_filled[idx], a_gaps)
    second_block = gaps.blocks[1]
    i = int(np.searchsorted(t_filled, second_block.t0_ns))
    assert np.all(a_filled[i - 30 : i] == a_filled[i - 31])  # an idle second repeats the last sample


def _log_record(rtype: int, t_s: int, payload: bytes) -> bytes:
    head = bytes([0x1E, rtype]) + t_s.to_bytes(4, "little") + len(payload).to_bytes(2, "little")
    chk = 0
    for b in head + payload:
        chk ^= b
    return head + payload + bytes([~chk & 0xFF])


def _gt3x(tmp_path: Path, log: bytes, rate: int = 30, name: str = "x.gt3x") -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("info.txt", f"Serial Number: MOS2E00000000\nSample Rate: {rate}\nTimeZone: 01:00:00\n"
                                "Acceleration Scale: 256.0\nStart Date: 637340333400000000\n")
        zf.writestr("log.bin", log)
    path = tmp_path / name
    path.write_bytes(buf.getvalue())
    return path


def test_activity2_and_activity_records_and_a_usb_event(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    c1 = rng.integers(-2048, 2048, (30, 3))
    c2 = rng.integers(-2048, 2048, (30, 3))
    t = 1_600_000_000
    log = (_log_record(0x1A, t, c1.astype("<i2").tobytes()) + _log_record(0x1A, t + 1, b"\x01")
           + _log_record(0x00, t + 1, _pack12_yxz(c2)) + b"\x00\x00" + _log_record(0x05, t + 2, b"\x10\x00"))
    rec = read_gt3x(_gt3x(tmp_path, log))
    assert len(rec.blocks) == 1
    assert rec.blocks[0].t0_ns == (t - 3600) * NS_PER_S
    assert np.array_equal(rec.blocks[0].accel_g, np.concatenate([c1, c2]) / 256.0)


def test_truncated_log_names_the_byte_offset(tmp_path: Path) -> None:
    good = _log_record(0x1A, 1_600_000_000, bytes(180))
    path = _gt3x(tmp_path, good + _log_record(0x1A, 1_600_000_001, bytes(180))[:100])
    with pytest.raises(ReaderError, match=rf"x\.gt3x: log\.bin byte {len(good)}: truncated record"):
        read_gt3x(path)


def test_not_a_zip_and_missing_members(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gt3x"
    bad.write_bytes(b"hello")
    with pytest.raises(ReaderError, match="bad.gt3x: not a .gt3x file"):
        read_gt3x(bad)
    with pytest.raises(ValueError, match="idle_sleep must be one of"):
        read_gt3x(REC / "actigraph_testfile.gt3x", idle_sleep="zero")  # type: ignore[arg-type]


@pytest.mark.skipif(not NEO.is_dir(), reason="../shared/data/pygt3x_neo_actilife_csv not present (GPL data, not copied)")
def test_agdc_xyz12_records_equal_the_actilife_lsb_export() -> None:
    from analysis.read_gt3x import _read_log

    with zipfile.ZipFile(NEO / "WRIST_rawLSB_032Hz_test.agdc") as zf:
        log = np.frombuffer(zf.read("log.bin"), dtype=np.uint8)
    rec = _read_log(log, "agdc", 32.0, 1.0, 0, "last", {})  # scale 1: raw counts
    lsb = np.loadtxt(NEO / "WRIST_rawLSB_032Hz.csv", delimiter=",", skiprows=11)
    assert np.array_equal(rec.blocks[0].accel_g, lsb) and lsb.shape == (1_920, 3)
    # Through the public reader the file is refused: its counts need calibration.json.
    with pytest.raises(ReaderError, match="Acceleration Scale 1 is not LSB per g"):
        read_gt3x(NEO / "WRIST_rawLSB_032Hz_test.agdc")


def test_agcounts_example_equals_pygt3x_and_gives_actilife_counts() -> None:
    import sqlite3

    from analysis.counts import actigraph_counts

    rec = read_gt3x(REC / "agcounts_example.gt3x")
    ref = np.load(REC / "actigraph_link_example_100hz.npz")  # decoded once with pygt3x 0.7.1
    assert np.array_equal(rec.blocks[0].accel_g, ref["xyz_lsb"] / 256.0)
    # pygt3x keeps the device's local clock (UTC-05:00); we return UTC.
    assert rec.blocks[0].t0_ns == round(float(ref["t0_s"]) * NS_PER_S) + 5 * 3600 * NS_PER_S
    counts = actigraph_counts(rec.blocks[0].accel_g, fs_hz=rec.fs_hz, epoch_s=5)
    with sqlite3.connect(REC / "actigraph_link_example_5s.agd") as db:
        actilife = np.array(db.execute("SELECT axis2, axis1, axis3 FROM data ORDER BY dataTimestamp").fetchall())
    assert counts.shape == actilife.shape == (36, 3)
    assert np.array_equal(counts, actilife)  # ActiLife 6.13.4, all 36 epochs, X/Y/Z sums 10420/6513/9018
