"""EpochAccumulator and chunked epoch_table equal the whole-input bincount kernel bit for bit."""

from __future__ import annotations

import itertools
import mmap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from analysis.epoch_kernels import aggregate_sorted
from analysis.epochs import EpochTable, epoch_table
from analysis.read_npy import read_npy, release_pages
from analysis.samples import NS_PER_S, SampleBlock
from analysis.seconds import SecondEnmo, enmo_by_second
from analysis.streaming import EpochAccumulator, stream_block
from otmon.analyze_cmd import Progress, build_report

FIELDS = (
    "start_ns",
    "n_samples",
    "covered_s",
    "enmo_mg",
    "mad_mg",
    "sum_g",
    "sumsq_g2",
    "min_g",
    "max_g",
)
SUB_FIELDS = ("start_ns", "n_samples", "covered_s", "enmo_mg")
T0 = 1_709_510_400 * NS_PER_S + 3_370_000_000  # 2024-03-04T00:00:03.37Z: not on an epoch edge


def wrist(n: int, seed: int, dtype: type = np.float32) -> np.ndarray:
    """Gravity in changing postures + 2 Hz movement + noise, quantised to 1/256 g (±0.0 occur)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    d = rng.normal(size=(n // 700 + 1, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    a = (
        np.repeat(d, 700, axis=0)[:n]
        + 0.3 * np.sin(2 * np.pi * 2.0 * t)[:, None] * (rng.random(n) < 0.5)[:, None]
    )
    a += rng.normal(scale=0.004, size=a.shape)
    return (np.round(a * 256) / 256).astype(dtype)


def reference(blocks: list[SampleBlock], epoch_s: float) -> EpochTable:
    """The bincount kernel over all samples at once (what epoch_table always computed)."""
    times = np.concatenate([b.times_ns() for b in blocks])
    accel = np.concatenate([b.accel_g.astype(np.float64) for b in blocks])
    period = np.concatenate([np.full(b.n_samples, b.period_ns) for b in blocks])
    return EpochTable(epoch_s, **aggregate_sorted(times, accel, period, round(epoch_s * NS_PER_S)))


def assert_bits(a: object, b: object, fields: tuple[str, ...]) -> None:
    for f in fields:
        x, y = np.ascontiguousarray(getattr(a, f)), np.ascontiguousarray(getattr(b, f))
        assert x.dtype == y.dtype and x.shape == y.shape, f
        assert x.tobytes() == y.tobytes(), f"{f} differs (max {np.max(np.abs(x - y))})"


def stream(
    blocks: list[SampleBlock], cuts_per_block: list[list[int]], chunk: int, sub: float | None = 1.0
) -> tuple[EpochTable, SecondEnmo | None]:
    acc = EpochAccumulator(epoch_s=5.0, chunk_samples=chunk, sub_epoch_s=sub)
    out = []
    for b, cuts in zip(blocks, cuts_per_block, strict=True):
        edges = [0, *cuts, b.n_samples]
        for lo, hi in itertools.pairwise(edges):
            out.append(
                acc.feed_array(b.accel_g[lo:hi], t0_ns=b.t0_ns, fs_hz=b.fs_hz, first_index=lo)
            )
    out.append(acc.finish())
    secs = acc.pop_sub_epochs() if sub is not None else None
    return EpochTable.concat([t for t in out if len(t)]), secs


@pytest.mark.parametrize("seed", range(6))
def test_random_chunkings_equal_the_whole_input(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b = SampleBlock(T0, 100.0, wrist(37_213, seed))
    cuts = sorted(
        rng.choice(np.arange(1, b.n_samples), size=int(rng.integers(1, 40)), replace=False).tolist()
    )
    got, secs = stream([b], [cuts], chunk=int(rng.integers(50, 9000)))
    assert_bits(got, reference([b], 5.0), FIELDS)
    assert_bits(secs, reference([b], 1.0), SUB_FIELDS)
    # epoch_table (default chunking) is the same table.
    assert_bits(epoch_table([b]), got, FIELDS)


def test_chunk_edge_inside_an_epoch_is_carried() -> None:
    b = SampleBlock(T0, 100.0, wrist(3000, 1))
    acc = EpochAccumulator(epoch_s=5.0)
    # Samples 0..162 are in the first (partial) epoch; 163 starts 00:00:05 UTC.
    first = acc.feed_array(b.accel_g[:400], t0_ns=b.t0_ns, fs_hz=100.0)
    assert len(first) == 1 and first.n_samples.tolist() == [163]
    assert acc.pending_samples == 400 - 163  # the epoch at 00:00:05 is still open
    second = acc.feed_array(b.accel_g[400:], t0_ns=b.t0_ns, fs_hz=100.0, first_index=400)
    last = acc.finish()
    assert acc.pending_samples == 0
    assert (
        second.n_samples[0] == 500 and int(second.start_ns[0]) == T0 - 3_370_000_000 + 5 * NS_PER_S
    )
    assert_bits(EpochTable.concat([first, second, last]), reference([b], 5.0), FIELDS)


def test_gaps_rate_changes_and_blocks_sharing_an_epoch() -> None:
    p30 = NS_PER_S / 30.0
    b1 = SampleBlock(T0, 100.0, wrist(12_345, 2))
    # 0.7 s gap inside an epoch, then 50 Hz; then 30 Hz (non-integer period) after 2 min.
    b2 = SampleBlock(b1.end_ns + 700_000_000, 50.0, wrist(9_001, 3, np.float64))
    b3 = SampleBlock(b2.end_ns + 120 * NS_PER_S, 30.0, wrist(7_777, 4))
    b4 = SampleBlock(b3.t0_ns + round(7_777 * p30) + 13, 30.0, wrist(5, 5))  # a tiny block
    blocks = [b1, b2, b3, b4]
    ref5, ref1 = reference(blocks, 5.0), reference(blocks, 1.0)
    got, secs = stream(blocks, [[5000], [], [1, 3000], []], chunk=2048)
    assert_bits(got, ref5, FIELDS)
    assert_bits(secs, ref1, SUB_FIELDS)
    assert_bits(epoch_table(blocks[::-1]), ref5, FIELDS)  # any block order
    assert_bits(epoch_table(blocks, epoch_s=1.0), ref1, FIELDS)
    # The shared epoch holds samples of both blocks; the 2-min gap leaves no epochs.
    shared = (b1.end_ns // (5 * NS_PER_S)) * 5 * NS_PER_S
    i = int(np.searchsorted(got.start_ns, shared))
    n1 = int((b1.times_ns() >= shared).sum())
    n2 = int((b2.times_ns() < shared + 5 * NS_PER_S).sum())
    assert n1 > 0 and n2 > 0 and int(got.start_ns[i]) == shared
    assert got.n_samples[i] == n1 + n2 and got.covered_s[i] == pytest.approx(
        n1 * 0.01 + n2 * 0.02, abs=1e-12
    )
    gap = np.diff(got.start_ns) > 5 * NS_PER_S
    assert gap.sum() == 1
    # enmo_by_second agrees within its documented summation tolerance.
    light = enmo_by_second(blocks)
    np.testing.assert_array_equal(light.start_ns, secs.start_ns)
    np.testing.assert_allclose(light.enmo_mg, secs.enmo_mg, rtol=0, atol=1e-9)


def test_overlapping_blocks_fall_back_to_sorting() -> None:
    b1 = SampleBlock(T0, 100.0, wrist(2000, 6))
    b2 = SampleBlock(T0 + 5 * NS_PER_S, 100.0, wrist(2000, 7))  # overlaps b1 by 15 s
    times = np.concatenate([b1.times_ns(), b2.times_ns()])
    order = np.argsort(times, kind="stable")
    accel = np.concatenate([b1.accel_g, b2.accel_g]).astype(np.float64)[order]
    ref = EpochTable(5.0, **aggregate_sorted(times[order], accel, np.full(4000, 1e7), 5 * NS_PER_S))
    assert_bits(epoch_table([b1, b2]), ref, FIELDS)


def test_bad_input_is_refused() -> None:
    acc = EpochAccumulator(epoch_s=5.0)
    acc.feed_array(wrist(600, 8), t0_ns=T0, fs_hz=100.0)
    with pytest.raises(ValueError, match="time order"):
        acc.feed_array(wrist(10, 8), t0_ns=T0, fs_hz=100.0, first_index=5)
    bad = wrist(600, 9)
    bad[321, 1] = np.nan
    with pytest.raises(ValueError, match="sample 321 "):
        EpochAccumulator().feed_array(bad, t0_ns=T0, fs_hz=100.0)
    with pytest.raises(ValueError, match="block 0 .* NaN"):
        epoch_table([SampleBlock(T0, 100.0, bad)])
    with pytest.raises(ValueError, match="sub_epoch_s must divide"):
        EpochAccumulator(epoch_s=5.0, sub_epoch_s=2.0)
    with pytest.raises(ValueError, match="sub_epoch_s was not given"):
        EpochAccumulator().pop_sub_epochs()
    with pytest.raises(ValueError, match="first_index"):
        EpochAccumulator().feed_array(wrist(10, 8), t0_ns=T0, fs_hz=100.0, first_index=-1)


def test_epoch_table_memory_does_not_scale_with_the_input() -> None:
    accel = wrist(4_000_000, 10)  # 46 MiB of float32; a float64 copy alone would be 92 MiB
    b = SampleBlock(T0, 100.0, accel)
    tracemalloc.start()
    try:
        table = epoch_table([b])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 8001
    assert peak < 70 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_release_pages_drops_a_scanned_memory_map_from_the_resident_set(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    data = wrist(3_000_000, 11)  # 34 MiB
    np.save(path, data)
    m = np.load(path, mmap_mode="r")
    before = _resident_bytes()
    total = float(np.asarray(m, dtype=np.float64).sum())  # touches every page
    touched = _resident_bytes()
    release_pages(m)
    after = _resident_bytes()
    assert touched - before > 25 * 2**20 and touched - after > 25 * 2**20
    assert float(np.asarray(m, dtype=np.float64).sum()) == total  # the data are unchanged
    release_pages(data)  # not a memory map: nothing happens
    assert float(data.astype(np.float64).sum()) == total
    cow = np.load(path, mmap_mode="c")  # copy-on-write: released pages would lose edits
    cow[:100_000] = 0.0
    release_pages(cow)
    assert not cow[:100_000].any()


def test_npy_analysis_streams_and_reports_what_the_block_path_reports(tmp_path: Path) -> None:
    fs_hz, n = 50.0, 50 * 3 * 3600  # 3 h at 50 Hz
    path = tmp_path / "wrist.npy"
    np.save(path, wrist(n, 12))
    rec = read_npy(path, fs_hz=fs_hz, start="2024-03-04T07:59:58.13Z")
    (b,) = rec.blocks
    epochs, secs = stream_block(b)
    assert_bits(epochs, epoch_table([b]), FIELDS)
    assert_bits(secs, epoch_table([b], epoch_s=1.0), SUB_FIELDS)
    # The same samples as two blocks take the old path (epoch_table + enmo_by_second).
    m = 250_000  # 5000 s: a whole number of ns from t0
    split = [
        SampleBlock(b.t0_ns, fs_hz, np.array(b.accel_g[:m])),
        SampleBlock(b.t0_ns + m * 20_000_000, fs_hz, np.array(b.accel_g[m:])),
    ]
    opts = {
        "tz": "Europe/Berlin",
        "cutpoints": None,
        "whole_file": False,
        "activity": None,
        "progress": Progress(),
    }
    streamed, _ = build_report(path, [b], {"format": "npy"}, **opts)  # type: ignore[arg-type]
    old, _ = build_report(path, split, {"format": "npy"}, **opts)  # type: ignore[arg-type]
    assert streamed["days"] == old["days"] and streamed["sessions"] == old["sessions"]
    assert streamed["calibration"] == old["calibration"]
    assert len(streamed["sessions"]) >= 1 and sum(d["samples"] for d in streamed["days"]) == n
