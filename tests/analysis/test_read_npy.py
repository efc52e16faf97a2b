"""Memory-mapped .npy arrays with an explicit rate and start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ReaderError
from analysis.read_npy import read_npy
from analysis.samples import NS_PER_S


def test_array_is_memory_mapped_not_copied(tmp_path: Path) -> None:
    accel = np.random.default_rng(7).normal(0, 0.3, (100_000, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", accel)
    rec = read_npy(tmp_path / "a.npy", fs_hz=100.0, start="2024-03-04T08:00:00+01:00")
    block = rec.blocks[0]
    assert isinstance(block.accel_g, np.memmap) and not block.accel_g.flags.writeable
    assert block.accel_g.dtype == np.float32 and np.array_equal(block.accel_g, accel)
    assert block.t0_ns == np.datetime64("2024-03-04T07:00:00", "ns").astype(np.int64)
    assert block.fs_hz == 100.0 and block.end_ns - block.t0_ns == 1000 * NS_PER_S


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 4)), r"a\.npy: expected an array of shape \(n, 3\) in g, got shape \(10, 4\)"),
        (np.zeros((10, 3), dtype=np.int16), r"a\.npy: expected float32 or float64 values in g, got int16"),
        (np.zeros((1, 3)), r"a\.npy: need at least 2 samples, got 1"),
        (np.full((5, 3), np.nan), r"a\.npy: row 0: value is NaN or infinite"),
    ],
)
def test_bad_arrays(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(ReaderError, match=message):
        read_npy(tmp_path / "a.npy", fs_hz=50.0, start="2024-01-01T00:00:00Z")


def test_nan_found_in_a_later_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.read_npy as mod

    monkeypatch.setattr(mod, "_CHECK_ROWS", 16)
    accel = np.zeros((100, 3))
    accel[77, 2] = np.inf
    np.save(tmp_path / "a.npy", accel)
    with pytest.raises(ReaderError, match=r"row 77: value is NaN or infinite"):
        read_npy(tmp_path / "a.npy", fs_hz=50.0, start="2024-01-01T00:00:00Z")


def test_bad_options_and_not_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((10, 3)))
    with pytest.raises(ValueError, match="fs_hz must be a positive finite number, got 0"):
        read_npy(tmp_path / "a.npy", fs_hz=0, start="2024-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="start must be ISO-8601 with a UTC offset or Z, got '2024-01-01 00:00'"):
        read_npy(tmp_path / "a.npy", fs_hz=50.0, start="2024-01-01 00:00")
    (tmp_path / "b.npy").write_bytes(b"not numpy at all")
    with pytest.raises(ReaderError, match=r"b\.npy: not a readable \.npy array"):
        read_npy(tmp_path / "b.npy", fs_hz=50.0, start="2024-01-01T00:00:00Z")
