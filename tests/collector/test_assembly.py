"""BlockAssembler: merging, exact cuts, gaps, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.samples import SampleBlock
from collector.assembly import BlockAssembler, Gap

PERIOD = 20_000_000  # 50 Hz
T0 = 1_682_373_720_000_000_000


def frames(n_frames: int, per: int = 36, *, start: int = T0, seed: int = 0) -> list[SampleBlock]:
    rng = np.random.default_rng(seed)
    return [
        SampleBlock(start + k * per * PERIOD, 50.0, rng.normal(size=(per, 3)).astype(np.float32))
        for k in range(n_frames)
    ]


def run(
    blocks: list[SampleBlock], max_samples: int = 3000
) -> tuple[list[SampleBlock], BlockAssembler]:
    asm = BlockAssembler(max_samples)
    out: list[SampleBlock] = []
    for b in blocks:
        out += asm.push(b)
    return out + asm.flush(), asm


def concat(blocks: list[SampleBlock]) -> np.ndarray:
    return np.concatenate([b.accel_g for b in blocks])


def test_merges_contiguous_frames_and_cuts_exactly() -> None:
    src = frames(100)  # 3600 samples
    out, asm = run(src, max_samples=1000)
    assert [b.n_samples for b in out] == [1000, 1000, 1000, 600]
    assert all(b.fs_hz == 50.0 for b in out)
    assert [b.t0_ns for b in out] == [T0 + i * 1000 * PERIOD for i in range(4)]
    assert np.array_equal(concat(out), concat(src))
    assert out[0].accel_g.dtype == np.float32
    assert asm.gaps == []


def test_jitter_within_half_period_merges() -> None:
    src = frames(3)
    jittered = [src[0], SampleBlock(src[1].t0_ns + PERIOD // 2 - 1, 50.0, src[1].accel_g), src[2]]
    out, asm = run(jittered)
    assert len(out) == 1 and out[0].t0_ns == T0 and asm.n_gaps == 0


def test_gap_starts_new_block_and_is_reported() -> None:
    src = frames(4)
    late = SampleBlock(src[2].t0_ns + 10 * PERIOD, 50.0, src[2].accel_g)
    out, asm = run([src[0], src[1], late])
    assert [b.n_samples for b in out] == [72, 36]
    assert asm.gaps == [Gap(start_ns=out[0].end_ns, length_ns=10 * PERIOD)]
    assert out[1].t0_ns == late.t0_ns


def test_rate_change_starts_new_block() -> None:
    src = frames(2)
    fast = SampleBlock(src[1].t0_ns, 100.0, src[1].accel_g)
    out, asm = run([src[0], fast])
    assert [(b.fs_hz, b.n_samples) for b in out] == [(50.0, 36), (100.0, 36)]
    assert asm.n_rate_changes == 1 and asm.n_gaps == 0


def test_rate_within_tolerance_merges() -> None:
    src = frames(2)
    close = SampleBlock(src[1].t0_ns, 50.0 * 1.0009, src[1].accel_g)
    out, _ = run([src[0], close])
    assert len(out) == 1 and out[0].fs_hz == 50.0


def test_overlapping_samples_are_dropped() -> None:
    src = frames(3)
    out, asm = run([src[0], src[1], src[1], src[2]])  # a duplicated frame
    assert np.array_equal(concat(out), concat(src))
    assert asm.n_overlap_samples_dropped == 36 and asm.n_gaps == 0


@pytest.mark.parametrize("seed", range(5))
def test_batching_does_not_change_blocks(seed: int) -> None:
    """Pushing the same samples in any batch sizes gives identical blocks."""
    src = frames(300, seed=seed)
    src = src[:150] + [SampleBlock(b.t0_ns + 7 * PERIOD, 50.0, b.accel_g) for b in src[150:]]
    reference, ref_asm = run(src, max_samples=1000)
    rng = np.random.default_rng(seed)
    batched: list[SampleBlock] = []
    i = 0
    while i < len(src):
        k = int(rng.integers(1, 40))
        group = src[i : i + k]
        if i < 150 < i + k:  # never merge across the gap
            group = src[i:150]
        batched.append(SampleBlock(group[0].t0_ns, 50.0, concat(group)))
        i += len(group)
    out, asm = run(batched, max_samples=1000)
    assert out == reference
    assert asm.gaps == ref_asm.gaps and len(asm.gaps) == 1
    # Splitting frames into single samples gives the same blocks too.
    singles = [
        SampleBlock(b.t0_ns + j * PERIOD, 50.0, b.accel_g[j : j + 1])
        for b in src
        for j in range(36)
    ]
    assert run(singles, max_samples=1000)[0] == reference


def test_flush_empty_and_bad_max() -> None:
    assert BlockAssembler().flush() == []
    with pytest.raises(ValueError):
        BlockAssembler(0)
