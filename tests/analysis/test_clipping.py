"""GGIR clipping per 15-min block (methods.md §1.8) on signals with known clipping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.clipping import ClippingBlocks, clip_threshold_for_range_g, detect_clipping
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.conftest import T0_NS, moving

FS_HZ = 10.0
PER_BLOCK = int(900 * FS_HZ)  # 9000 samples per 15 min


def _four_blocks(rng: np.random.Generator) -> np.ndarray:
    """Block 0 clean, 1: 10 % of x at 7.9 g, 2: 40 % of y at −7.8 g, 3: one z sample at 12 g."""
    accel = moving(4 * PER_BLOCK, rng).astype(np.float64)
    accel[PER_BLOCK : PER_BLOCK + 900, 0] = 7.9
    accel[2 * PER_BLOCK : 2 * PER_BLOCK + 3600, 1] = -7.8
    accel[3 * PER_BLOCK + 17, 2] = 12.0
    return accel


def test_fractions_and_flags_per_block(rng: np.random.Generator) -> None:
    res = detect_clipping([SampleBlock(T0_NS, FS_HZ, _four_blocks(rng))])
    assert isinstance(res, ClippingBlocks) and len(res) == 4 and res.threshold_g == 7.5
    assert np.array_equal(res.start_ns, T0_NS + np.arange(4) * 900 * NS_PER_S)
    assert np.array_equal(res.n_samples, [PER_BLOCK] * 4)
    assert np.allclose(res.clip_fraction, [0.0, 0.1, 0.4, 1.0])
    assert res.hard_clipped.tolist() == [False, False, False, True]
    assert res.some_clipping.tolist() == [False, True, True, True]
    assert res.invalid.tolist() == [False, False, True, True]


def test_thresholds_are_strict_and_configurable(rng: np.random.Generator) -> None:
    accel = np.zeros((PER_BLOCK, 3))
    accel[:, 2] = 1.0
    accel[:450, 0] = 7.5  # exactly at the threshold: not clipped (|a| > thr)
    accel[450:451, 0] = 7.5001
    res = detect_clipping([SampleBlock(T0_NS, FS_HZ, accel)])
    assert res.clip_fraction[0] == pytest.approx(1 / PER_BLOCK)
    # ±2 g device: 5 % of samples beyond 1.875 g exactly is not "some clipping" (> 0.05),
    # one more sample is; one sample beyond 1.5 × 1.875 g clips the whole block.
    thr = clip_threshold_for_range_g(2.0)
    assert thr == 1.875
    small = np.zeros((PER_BLOCK, 3))
    small[:, 2] = 1.0
    small[: int(0.05 * PER_BLOCK), 1] = 1.9
    res2 = detect_clipping([SampleBlock(T0_NS, FS_HZ, small)], threshold_g=thr)
    assert res2.clip_fraction[0] == pytest.approx(0.05) and not res2.some_clipping[0]
    small[int(0.05 * PER_BLOCK), 1] = 1.9
    res3 = detect_clipping([SampleBlock(T0_NS, FS_HZ, small)], threshold_g=thr)
    assert res3.some_clipping[0] and not res3.invalid[0] and not res3.hard_clipped[0]
    small[0, 0] = -2.9
    res4 = detect_clipping([SampleBlock(T0_NS, FS_HZ, small)], threshold_g=thr)
    assert res4.hard_clipped[0] and res4.invalid[0] and res4.clip_fraction[0] == 1.0
    # The default ±8 g threshold sees nothing in the same data.
    assert detect_clipping([SampleBlock(T0_NS, FS_HZ, small)]).clip_fraction[0] == 0.0


def test_blocks_are_utc_quarter_hours_across_sample_blocks(rng: np.random.Generator) -> None:
    accel = _four_blocks(rng)
    # Start 7.5 min into a quarter hour and cut the samples into uneven upload blocks.
    t0 = T0_NS + 450 * NS_PER_S
    cuts = [0, 1234, 9999, 20000, 36000]
    parts = [
        SampleBlock(t0 + round(a * NS_PER_S / FS_HZ), FS_HZ, accel[a:b])
        for a, b in itertools.pairwise(cuts)
    ]
    res = detect_clipping(parts[::-1])  # order does not matter
    assert np.array_equal(res.start_ns, T0_NS + np.arange(5) * 900 * NS_PER_S)
    assert res.n_samples.tolist() == [4500, 9000, 9000, 9000, 4500]
    # Samples 9000–9899 (x = 7.9 g) fall in quarter hour 1 (samples 4500–13499): 900/9000.
    assert res.clip_fraction[1] == pytest.approx(0.1)
    # y clipping 18000–21599 falls in quarter hour 2 (13500–22499) and 3 (22500–): 3600 in 2.
    assert res.clip_fraction[2] == pytest.approx(3600 / 9000)
    assert res.hard_clipped.tolist() == [False, False, False, True, False]
    epoch_starts = T0_NS + np.array([0, 900, 1799, 1800, 2700, 3600, 99999]) * NS_PER_S
    assert res.invalid_at(epoch_starts).tolist() == [False, False, False, True, True, False, False]


def test_empty_and_bad_input(rng: np.random.Generator) -> None:
    res = detect_clipping([])
    assert len(res) == 0 and res.invalid_at(np.array([T0_NS])).tolist() == [False]
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="threshold_g"):
            detect_clipping([], threshold_g=bad)
    with pytest.raises(ValueError, match="range_g"):
        clip_threshold_for_range_g(0.0)
    accel = np.zeros((10, 3))
    accel[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detect_clipping([SampleBlock(T0_NS, FS_HZ, accel)])
