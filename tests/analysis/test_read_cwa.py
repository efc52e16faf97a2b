"""Axivity .cwa reader: sample-exact against scikit-digital-health's decoded arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import ReaderError
from analysis.read_cwa import _unpack_dword, read_cwa
from analysis.samples import NS_PER_S, concatenate

REC = Path(__file__).parents[2] / "fixtures" / "recordings"


@pytest.mark.parametrize(
    ("stem", "n", "fs_conf", "decimals"),
    [
        ("ax3", 58_800, 200.0, None),  # packed 10-bit + exponent, 1/256 g: exact
        ("ax6", 10_360, 100.0, 6),  # int16 / 4096: skdh stores values rounded to 6 decimals
    ],
)
def test_accel_equals_skdh_and_times_agree(stem: str, n: int, fs_conf: float, decimals: int | None) -> None:
    rec = read_cwa(REC / f"{stem}_sample.cwa")
    truth = np.load(REC / f"{stem}_truth_skdh.npz")
    t_ns, accel = concatenate(rec.blocks)
    assert accel.shape == truth["accel"].shape == (n, 3)
    if decimals is None:
        assert np.array_equal(accel, truth["accel"])
    else:  # equal to the last bit of the 6-decimal value
        assert np.abs(np.round(accel, decimals) - truth["accel"]).max() < 1e-15
    assert rec.device["configured_fs_hz"] == fs_conf
    # skdh's per-sample times are quantised (steps of 5.0/5.1 ms at 200 Hz, 9.7-10.3 ms at
    # 100 Hz); ours interpolate sector times and re-anchor the nominal grid. They agree
    # within 30 ms everywhere and the effective rate matches skdh's own span.
    dt_s = t_ns / NS_PER_S - truth["time"]
    assert np.abs(dt_s).max() < 0.030
    skdh_rate = (n - 1) / (truth["time"][-1] - truth["time"][0])
    assert rec.fs_hz == pytest.approx(skdh_rate, rel=0.003)


def test_packed_sample_worked_value() -> None:
    # x = -1 (0x3FF), y = 2, z = -512 (0x200), exponent 1: values shift left by 1.
    word = np.array([(1 << 30) | (0x200 << 20) | (2 << 10) | 0x3FF], dtype=np.uint32)
    assert _unpack_dword(word).tolist() == [[-2.0, 4.0, -1024.0]]


@given(st.lists(st.tuples(st.integers(-512, 511), st.integers(-512, 511), st.integers(-512, 511),
                          st.integers(0, 3)), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_unpack_dword_round_trip(rows: list[tuple[int, int, int, int]]) -> None:
    words = np.array([(e << 30) | ((z & 0x3FF) << 20) | ((y & 0x3FF) << 10) | (x & 0x3FF)
                      for x, y, z, e in rows], dtype=np.uint32)
    expected = [[x << e, y << e, z << e] for x, y, z, e in rows]
    assert _unpack_dword(words).tolist() == expected


def test_truncated_sector_names_the_byte_offset(tmp_path: Path) -> None:
    data = (REC / "ax6_sample.cwa").read_bytes()
    cut = tmp_path / "cut.cwa"
    cut.write_bytes(data[: 1024 + 512 * 3 + 100])
    with pytest.raises(ReaderError, match=r"cut\.cwa: byte 2560: truncated data sector \(100 of 512 bytes\)"):
        read_cwa(cut)


def test_not_a_cwa_and_header_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cwa"
    bad.write_bytes(b"PK\x03\x04" + bytes(2000))
    with pytest.raises(ReaderError, match=r"bad\.cwa: byte 0: not an Axivity \.cwa file"):
        read_cwa(bad)
    head = tmp_path / "head.cwa"
    head.write_bytes((REC / "ax3_sample.cwa").read_bytes()[:1024])
    with pytest.raises(ReaderError, match=r"head\.cwa: byte 1024: no data sectors"):
        read_cwa(head)


def _packed_time(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    return (y - 2000) << 26 | mo << 22 | d << 17 | h << 12 | mi << 6 | s


def _sector(seq: int, stamp: int, values: np.ndarray, *, rate_code: int = 0x4A, ts_offset: int = 0,
            fractional: int = 0) -> bytes:
    """One 512-byte AX3 data sector, 3-axis int16 ("unpacked") samples, as cwa.h lays it out."""
    head = bytearray(30)
    head[0:2] = b"AX"
    head[2:4] = (508).to_bytes(2, "little")
    head[4:6] = fractional.to_bytes(2, "little")
    head[10:14] = seq.to_bytes(4, "little")
    head[14:18] = stamp.to_bytes(4, "little")
    head[24] = rate_code
    head[25] = 0x32  # 3 axes, 2 bytes per axis
    head[26:28] = ts_offset.to_bytes(2, "little", signed=True)
    head[28:30] = len(values).to_bytes(2, "little")
    body = values.astype("<i2").tobytes().ljust(480, b"\0")
    return bytes(head) + body + b"\0\0"


def test_synthetic_unpacked_sectors_times_and_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(-4096, 4096, (160, 3))
    t = _packed_time(2024, 3, 4, 8, 0, 0)
    # Both sectors carry 08:00:00 + 16712/65536 s (fraction flag 0x8000, value stored >> 1).
    # cwa.h's shim adds floor(fraction * rate) = 25 samples to the stored offsets 0 and -80,
    # so sample 0 of each sector lies at t + 0.2550049 s - (offset + 25) / 100 s:
    # t + 5.004882 ms and t + 805.004882 ms. Ignoring the fraction would give t and t + 0.8 s.
    frac = 0x8000 | (16712 >> 1)
    data = (b"MD" + (1020).to_bytes(2, "little")).ljust(1024, b"\0")
    data += _sector(0, t, counts[:80], ts_offset=0, fractional=frac)
    data += _sector(1, t, counts[80:], ts_offset=-80, fractional=frac)
    path = tmp_path / "s.cwa"
    path.write_bytes(data)
    rec = read_cwa(path)
    t_ns, accel = concatenate(rec.blocks)
    assert np.array_equal(accel, counts / 256.0)  # unpacked AX3 samples are 1/256 g
    t0 = int(np.datetime64("2024-03-04T08:00:00", "ns").astype(np.int64))
    assert rec.fs_hz == 100.0 and rec.device["configured_fs_hz"] == 100.0 and len(rec.blocks) == 1
    assert np.array_equal(t_ns, t0 + 5_004_882 + np.arange(160) * 10_000_000)
