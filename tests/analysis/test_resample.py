"""Resampling onto a uniform grid with analytic signals; gaps stay gaps."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.pipeline import epoch_table
from analysis.resample import grid_blocks, resample_blocks, resample_irregular
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.conftest import T0_NS


def _grid_times_s(grid) -> np.ndarray:  # type: ignore[no-untyped-def]
    k = np.arange(grid.mask.size, dtype=np.float64)
    return (np.rint(k * NS_PER_S / grid.fs_hz) + (grid.t0_ns - T0_NS)) / NS_PER_S


def _linear(t_s: np.ndarray) -> np.ndarray:
    return np.stack([0.1 + 0.01 * t_s, -0.5 - 0.02 * t_s, np.full_like(t_s, 1.0)], axis=1)


def test_linear_signal_on_jittered_times_is_exact(rng: np.random.Generator) -> None:
    # 25 Hz nominal with ±8 ms jitter: linear interpolation reproduces a ramp exactly.
    t_s = np.arange(2000) / 25.0 + rng.uniform(-0.008, 0.008, 2000)
    times = T0_NS + np.rint(t_s * NS_PER_S).astype(np.int64)
    grid = resample_irregular(times, _linear(t_s), fs_hz=30.0, max_gap_s=0.1)
    assert grid.mask[1:].all()
    ok = grid.mask
    assert np.abs(grid.accel_g[ok] - _linear(_grid_times_s(grid)[ok])).max() < 1e-9


def test_sine_error_within_linear_interpolation_bound() -> None:
    # 1.3 Hz sine, 0.5 g, sampled at 100 Hz, resampled to 30 Hz: |error| ≤ A·ω²·h²/8.
    f_hz, amp_g, fs_in = 1.3, 0.5, 100.0
    block = SampleBlock(T0_NS, fs_in, _sine(np.arange(6000) / fs_in, f_hz, amp_g))
    grid = resample_blocks([block], fs_hz=30.0)
    assert grid.mask.all() and grid.accel_g.shape == (1800, 3)
    bound = amp_g * (2 * np.pi * f_hz) ** 2 * (1 / fs_in) ** 2 / 8
    err = np.abs(grid.accel_g - _sine(_grid_times_s(grid), f_hz, amp_g)).max()
    assert 0.1 * bound < err <= bound * 1.0001


def _sine(t_s: np.ndarray, f_hz: float, amp_g: float) -> np.ndarray:
    s = amp_g * np.sin(2 * np.pi * f_hz * t_s)
    return np.stack([s, 0.5 * s, 1.0 + 0 * s], axis=1)


def test_gap_between_blocks_stays_nan_and_is_never_bridged() -> None:
    fs = 10.0
    t_a = np.arange(50) / fs
    t_b = 7.0 + np.arange(50) / fs  # 2.1 s after A's last sample (4.9 s)
    a = SampleBlock(T0_NS, fs, _linear(t_a))
    b = SampleBlock(T0_NS + 7 * NS_PER_S, fs, _linear(t_b) + 1.0)  # a jump across the gap
    grid = resample_blocks([b, a], fs_hz=20.0)
    t = _grid_times_s(grid)
    in_gap = (t > 4.9 + 1e-9) & (t < 7.0 - 1e-9)
    assert not grid.mask[in_gap].any() and np.isnan(grid.accel_g[in_gap]).all()
    assert grid.mask[~in_gap].all()
    # Values on both sides come only from their own block (the +1 g jump is not smeared).
    assert np.allclose(grid.accel_g[t <= 4.9 + 1e-9], _linear(t[t <= 4.9 + 1e-9]))
    assert np.allclose(grid.accel_g[t >= 7.0 - 1e-9], _linear(t[t >= 7.0 - 1e-9]) + 1.0)
    # The same with an explicit tolerance that bridges 2.1 s.
    assert resample_blocks([a, b], fs_hz=20.0, max_gap_s=2.5).mask.all()


def test_contiguous_upload_blocks_and_rate_change_are_joined() -> None:
    fs = 50.0
    t = np.arange(1000) / fs
    sig = _linear(t)
    parts = [
        SampleBlock(T0_NS + round(i * NS_PER_S / fs), fs, sig[i : i + 300])
        for i in (0, 300, 600, 900)
    ]
    grid = resample_blocks(parts, fs_hz=fs)
    assert grid.mask.all() and np.array_equal(grid.accel_g, sig)  # same grid: bit-exact copy
    # 50 Hz then 25 Hz, contiguous: joined; then one dropped 25-Hz sample: a gap.
    slow_t0 = T0_NS + 20 * NS_PER_S
    slow = SampleBlock(slow_t0, 25.0, _linear(20.0 + np.arange(100) / 25.0))
    after = SampleBlock(slow_t0 + 102 * 40_000_000, 25.0, _linear(24.08 + np.arange(10) / 25.0))
    grid = resample_blocks([*parts, slow, after], fs_hz=50.0)
    t_g = _grid_times_s(grid)
    assert grid.mask[t_g <= 23.96 + 1e-9].all()
    assert not grid.mask[(t_g > 23.96 + 1e-9) & (t_g < 24.08 - 1e-9)].any()
    assert np.abs(grid.accel_g[grid.mask] - _linear(t_g[grid.mask])).max() < 1e-12


def test_grid_origin_and_round_trip_to_epochs() -> None:
    fs = 10.0
    block = SampleBlock(T0_NS + 123_456_789, fs, _linear(np.arange(600) / fs))
    grid = resample_blocks([block], fs_hz=5.0, t0_ns=T0_NS)
    assert grid.t0_ns == T0_NS and not grid.mask[0]  # before the first sample
    blocks = grid_blocks(grid)
    assert len(blocks) == 1 and blocks[0].fs_hz == 5.0
    assert blocks[0].n_samples == int(grid.mask.sum())
    table = epoch_table(blocks, epoch_s=5.0)
    assert int(table.n_samples.sum()) == int(grid.mask.sum())
    assert (
        grid_blocks(
            resample_irregular(np.array([T0_NS]), np.zeros((1, 3)), fs_hz=1.0, max_gap_s=1.0)
        )[0].n_samples
        == 1
    )


def test_bad_input() -> None:
    times = T0_NS + np.arange(5, dtype=np.int64) * NS_PER_S
    acc = np.zeros((5, 3))
    with pytest.raises(ValueError, match="strictly increasing"):
        resample_irregular(times[::-1], acc, fs_hz=1.0, max_gap_s=2.0)
    with pytest.raises(ValueError, match="shape"):
        resample_irregular(times, acc[:4], fs_hz=1.0, max_gap_s=2.0)
    with pytest.raises(ValueError, match="fs_hz"):
        resample_irregular(times, acc, fs_hz=0.0, max_gap_s=2.0)
    with pytest.raises(ValueError, match="max_gap_s"):
        resample_irregular(times, acc, fs_hz=1.0, max_gap_s=float("nan"))
    with pytest.raises(ValueError, match="at least one"):
        resample_irregular(times[:0], acc[:0], fs_hz=1.0, max_gap_s=2.0)
    nan = acc.copy()
    nan[2, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        resample_irregular(times, nan, fs_hz=1.0, max_gap_s=2.0)
    a = SampleBlock(T0_NS, 1.0, acc)
    with pytest.raises(ValueError, match="overlap"):
        resample_blocks([a, SampleBlock(T0_NS + 2 * NS_PER_S, 1.0, acc)], fs_hz=1.0)
    with pytest.raises(ValueError, match="at least one"):
        resample_blocks([], fs_hz=1.0)
