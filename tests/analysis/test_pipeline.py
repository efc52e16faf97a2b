"""Epoch table contract (alignment, bit-identity, rows) and day summaries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analysis.pipeline import DAY_KEYS, ROW_KEYS, EpochTable, epoch_table, summarise_days
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.conftest import T0_NS, moving, split_blocks, still

_FIELDS = ("start_ns", "n_samples", "covered_s", "enmo_mg", "mad_mg", "sum_g", "sumsq_g2", "min_g", "max_g")


def _assert_bit_identical(a: EpochTable, b: EpochTable) -> None:
    assert a.epoch_s == b.epoch_s and len(a) == len(b)
    for f in _FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f


def _recording(rng: np.random.Generator, fs_hz: float = 50.0) -> list[SampleBlock]:
    """~25 min of mixed activity in random blocks, with two gaps."""
    blocks = []
    t = T0_NS + 1_234_567_890  # not on an epoch boundary
    for n, kind in ((20_000, moving), (30_000, still), (25_000, moving)):
        accel = kind(n, rng)
        blocks += split_blocks(t, fs_hz, accel, rng)
        t += round(n * NS_PER_S / fs_hz) + int(rng.integers(1, 90 * NS_PER_S))
    return blocks


def test_epochs_are_aligned_to_utc_multiples() -> None:
    t0 = T0_NS + 3_500_000_000  # 3.5 s after a 5-s boundary
    block = SampleBlock(t0, 10.0, np.tile(np.float32([0, 0, 1]), (80, 1)))  # 3.5–11.4 s
    table = epoch_table([block], epoch_s=5.0)
    assert table.start_ns.tolist() == [T0_NS, T0_NS + 5 * NS_PER_S, T0_NS + 10 * NS_PER_S]
    assert table.n_samples.tolist() == [15, 50, 15]
    assert np.allclose(table.covered_s, table.n_samples * 0.1)
    assert np.all(table.enmo_mg == 0.0) and np.all(table.mad_mg == 0.0)


def test_epoch_counts_and_sums(rng: np.random.Generator) -> None:
    accel = moving(1000, rng)
    table = epoch_table([SampleBlock(T0_NS, 50.0, accel)], epoch_s=5.0)
    assert table.n_samples.tolist() == [250] * 4
    assert table.covered_s.tolist() == [5.0] * 4  # integer ns periods sum exactly
    a = accel.astype(np.float64).reshape(4, 250, 3)
    assert np.allclose(table.sum_g, a.sum(axis=1), rtol=1e-12)
    assert np.allclose(table.sumsq_g2, (a * a).sum(axis=1), rtol=1e-12)
    assert np.array_equal(table.min_g, a.min(axis=1)) and np.array_equal(table.max_g, a.max(axis=1))
    en = np.linalg.norm(a, axis=2)
    assert np.allclose(table.enmo_mg, 1000 * np.maximum(en - 1, 0).mean(axis=1), rtol=1e-12)
    assert np.allclose(table.mad_mg, 1000 * np.abs(en - en.mean(axis=1, keepdims=True)).mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("fs_hz", [50.0, 52.0, 12.5])
@pytest.mark.parametrize("seed", range(4))
def test_epochs_from_overlapping_blocks_are_bit_identical(seed: int, fs_hz: float) -> None:
    rng = np.random.default_rng(seed)
    blocks = _recording(rng, fs_hz)
    full = epoch_table(blocks)
    for _ in range(10):
        # A range of epochs; recompute from only the blocks that overlap it.
        i, j = sorted(rng.integers(0, len(full), 2))
        lo, hi = int(full.start_ns[i]), int(full.start_ns[j]) + 5 * NS_PER_S
        touching = [b for b in blocks if b.t0_ns < hi and b.end_ns > lo]
        rng.shuffle(touching)  # order of blocks must not matter either
        part = epoch_table(touching).select(lo, hi)
        _assert_bit_identical(part, full.select(lo, hi))


def test_rechunking_the_same_samples_gives_the_same_table(rng: np.random.Generator) -> None:
    accel = moving(30_000, rng)
    a = epoch_table(split_blocks(T0_NS + 7, 50.0, accel, rng, max_len=3000))
    b = epoch_table(split_blocks(T0_NS + 7, 50.0, accel, rng, max_len=97))
    c = epoch_table([SampleBlock(T0_NS + 7, 50.0, accel)])
    _assert_bit_identical(a, b)
    _assert_bit_identical(a, c)


def test_concat_of_disjoint_parts_equals_whole(rng: np.random.Generator) -> None:
    full = epoch_table(_recording(rng))
    mid = int(full.start_ns[len(full) // 2])
    parts = [full.select(mid, 2**62), full.select(-(2**62), mid)]
    _assert_bit_identical(EpochTable.concat(parts), full)
    with pytest.raises(ValueError, match="duplicate"):
        EpochTable.concat([full, full.select(mid, mid + 1)])
    with pytest.raises(ValueError, match="epoch_s"):
        EpochTable.concat([full, EpochTable.empty(60.0)])


def test_rows_round_trip_is_exact(rng: np.random.Generator) -> None:
    full = epoch_table(_recording(rng))
    rows = full.to_rows()
    assert len(rows) == len(full)
    assert tuple(rows[0]) == ROW_KEYS
    assert isinstance(rows[0]["start_ns"], int) and isinstance(rows[0]["enmo_mg"], float)
    _assert_bit_identical(EpochTable.from_rows(rows, epoch_s=5.0), full)
    shuffled = list(rows)
    rng.shuffle(shuffled)
    _assert_bit_identical(EpochTable.from_rows(shuffled, epoch_s=5.0), full)
    assert len(EpochTable.from_rows([], epoch_s=5.0)) == 0
    with pytest.raises(ValueError, match="sum_x_g"):
        EpochTable.from_rows([{k: v for k, v in rows[0].items() if k != "sum_x_g"}], epoch_s=5.0)


def test_table_validation_and_immutability() -> None:
    empty = EpochTable.empty(5.0)
    assert len(empty) == 0 and empty.sum_g.shape == (0, 3)
    assert len(epoch_table([])) == 0
    with pytest.raises(ValueError, match="epoch_s"):
        epoch_table([], epoch_s=0.0)
    with pytest.raises(ValueError, match="NaN"):
        epoch_table([SampleBlock(0, 50.0, np.full((3, 3), np.nan))])
    table = epoch_table([SampleBlock(T0_NS, 50.0, np.ones((10, 3)))])
    with pytest.raises(ValueError):
        table.enmo_mg[0] = 1.0
    with pytest.raises(ValueError, match="strictly increasing"):
        EpochTable(5.0, [2, 1], [1, 1], [0, 0], [0, 0], [0, 0], *([np.zeros((2, 3))] * 4))


def test_one_hour_at_50_hz_in_many_blocks(rng: np.random.Generator) -> None:
    # Speed is measured by benchmarks, not asserted here (a loaded CI machine is no stopwatch).
    accel = moving(180_000, rng)
    blocks = split_blocks(T0_NS, 50.0, accel, rng, max_len=6000)
    table = epoch_table(blocks)
    assert len(table) == 720
    assert int(table.n_samples.sum()) == 180_000


# -- day summaries ---------------------------------------------------------------------


def _utc_ns(local: str, tz: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp()) * NS_PER_S


def _days_table(rng: np.random.Generator, start_local: str, hours: int, tz: str) -> EpochTable:
    fs = 1.0  # low rate keeps multi-day tests fast; epoch logic is rate-independent
    n = int(hours * 3600 * fs)
    return epoch_table([SampleBlock(_utc_ns(start_local, tz), fs, moving(n, rng, sd_g=0.08))])


def test_days_split_at_local_midnight_across_spring_dst(rng: np.random.Generator) -> None:
    tz = "Europe/Berlin"  # 2023-03-26 02:00 CET -> 03:00 CEST: a 23-h day
    table = _days_table(rng, "2023-03-25T22:00:00", 2 + 23 + 1, tz)
    days = summarise_days(table, tz=tz)
    assert [d["date"] for d in days] == ["2023-03-25", "2023-03-26", "2023-03-27"]
    assert [d["recorded_min"] for d in days] == [120.0, 1380.0, 60.0]
    assert sum(d["samples"] for d in days) == 26 * 3600
    for d in days:
        assert tuple(d) == DAY_KEYS
        assert d["cutpoints"] == "hildebrand2014_wrist_actigraph"
        assert d["wear_min"] + d["nonwear_min"] == pytest.approx(d["recorded_min"], abs=0.02)
        classes = d["sedentary_min"] + d["light_min"] + d["moderate_min"] + d["vigorous_min"]
        assert classes == pytest.approx(d["wear_min"], abs=0.04)
        assert d["nonwear_min"] == 0.0  # moving all the time
        assert isinstance(d["mean_enmo_mg"], float) and d["mean_enmo_mg"] > 0


def test_days_across_autumn_dst_last_25_hours(rng: np.random.Generator) -> None:
    tz = "Europe/Berlin"
    table = _days_table(rng, "2023-10-29T00:00:00", 25, tz)
    days = summarise_days(table, tz=tz, cutpoints="migueles2021_wrist_older")
    assert [(d["date"], d["recorded_min"]) for d in days] == [("2023-10-29", 1500.0)]
    assert days[0]["vigorous_min"] == 0.0 and days[0]["cutpoints"] == "migueles2021_wrist_older"


def test_partial_epoch_counts_partially() -> None:
    block = SampleBlock(T0_NS, 50.0, np.tile(np.float32([0, 0, 1.2]), (100, 1)))  # 2 s
    (day,) = summarise_days(epoch_table([block]), tz="UTC")
    assert day["recorded_min"] == round(2 / 60, 2) and day["samples"] == 100
    assert day["moderate_min"] == round(2 / 60, 2) and day["mean_enmo_mg"] == pytest.approx(200.0)


def test_day_without_wear_has_no_mean(rng: np.random.Generator) -> None:
    block = SampleBlock(T0_NS, 10.0, still(2 * 36_000, rng))  # 2 h lying still
    (day,) = summarise_days(epoch_table([block]), tz="UTC")
    assert day["wear_min"] == 0.0 and day["nonwear_min"] == 120.0
    assert day["mean_enmo_mg"] is None


def test_unknown_names_raise() -> None:
    table = epoch_table([SampleBlock(T0_NS, 50.0, np.ones((10, 3)))])
    with pytest.raises(ValueError, match="Mars/Olympus"):
        summarise_days(table, tz="Mars/Olympus")
    with pytest.raises(ValueError, match="no_such_set"):
        summarise_days(table, tz="UTC", cutpoints="no_such_set")
    assert summarise_days(EpochTable.empty(5.0), tz="UTC") == []


def test_day_starts_at_first_instant_when_midnight_does_not_exist(rng: np.random.Generator) -> None:
    tz = "America/Santiago"  # 2023-09-03 00:00 -04 -> 01:00 -03: midnight is skipped
    table = _days_table(rng, "2023-09-02T23:00:00", 3, tz)  # until 03:00 -03
    days = summarise_days(table, tz=tz)
    assert [(d["date"], d["recorded_min"]) for d in days] == [("2023-09-02", 60.0), ("2023-09-03", 120.0)]


def test_single_sample() -> None:
    table = epoch_table([SampleBlock(T0_NS + 1, 50.0, np.float32([[0, 0, 1.5]]))])
    assert len(table) == 1 and table.n_samples.tolist() == [1]
    assert table.enmo_mg.tolist() == [500.0] and table.mad_mg.tolist() == [0.0]
    assert table.covered_s.tolist() == [0.02]
    (day,) = summarise_days(table, tz="UTC")
    assert day["samples"] == 1 and day["vigorous_min"] == 0.0 and day["moderate_min"] == 0.0
