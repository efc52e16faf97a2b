"""GGIR-2023 non-wear from epoch aggregates (methods.md §1.8)."""

from __future__ import annotations

import numpy as np

from analysis.nonwear import detect_nonwear
from analysis.pipeline import EpochTable, epoch_table
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.conftest import T0_NS, moving, still

FS_HZ = 10.0  # the rule does not depend on the rate; 10 Hz keeps the tests fast
PER_MIN = int(60 * FS_HZ)


def _table(
    *segments: tuple[str, int], rng: np.random.Generator, t0_ns: int = T0_NS
) -> tuple[EpochTable, np.ndarray]:
    """5-s epoch table and the segment kind per epoch for consecutive segments."""
    parts, kinds = [], []
    for kind, minutes in segments:
        n = minutes * PER_MIN
        parts.append(still(n, rng) if kind == "still" else moving(n, rng))
        kinds += [kind] * n
    table = epoch_table([SampleBlock(t0_ns, FS_HZ, np.concatenate(parts))])
    return table, np.array(kinds)[:: int(5 * FS_HZ)]


def _flags(*segments: tuple[str, int], rng: np.random.Generator, t0_ns: int = T0_NS) -> tuple[np.ndarray, np.ndarray]:
    """Non-wear flag per epoch (default rule) and the segment kind per epoch."""
    table, per_epoch = _table(*segments, rng=rng, t0_ns=t0_ns)
    return detect_nonwear(table), per_epoch


def test_still_hour_and_a_half_is_nonwear_and_movement_is_not(rng: np.random.Generator) -> None:
    flags, kind = _flags(("move", 60), ("still", 90), ("move", 60), rng=rng)
    assert np.array_equal(flags, kind == "still")


def test_still_shorter_than_an_hour_between_movement_is_wear(rng: np.random.Generator) -> None:
    flags, _ = _flags(("move", 60), ("still", 45), ("move", 60), rng=rng)
    assert not flags.any()


def test_partly_covered_window_needs_half_an_hour_of_data(rng: np.random.Generator) -> None:
    # Only 40 min of data, all still: windows hold ≥ 30 min (≥ 50 %) -> evaluated -> non-wear.
    flags, _ = _flags(("still", 40), rng=rng)
    assert flags.all()
    # 20 min still at the end of a recording: every window with it has < 30 min of
    # still data or includes movement -> never flagged.
    flags, _ = _flags(("move", 60), ("still", 20), rng=rng)
    assert not flags.any()


def test_sd_criterion_is_exact_with_ddof_one(rng: np.random.Generator) -> None:
    # Square wave ±a on every axis around a constant: range 2a < 50 mg, SD = a·√(n/(n−1)).
    n = 60 * PER_MIN
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    base = np.array([0.1, -0.2, 0.97])
    for amp_g, expected in ((0.012999, True), (0.013001, False)):
        block = SampleBlock(T0_NS, FS_HZ, base + amp_g * sign * np.ones((1, 3)))
        assert detect_nonwear(epoch_table([block])).all() == expected
        assert detect_nonwear(epoch_table([block])).any() == expected


def test_range_criterion(rng: np.random.Generator) -> None:
    accel = still(60 * PER_MIN, rng).astype(np.float64)
    # Spikes on two axes at minutes 10 and 50: every evaluated window (≥ 30 min of data:
    # those starting at minutes −30 … 30) holds one, so x and y have a range ≥ 50 mg while
    # their SD stays far below 13 mg. Only z is flagged -> score 1 -> wear.
    accel[10 * PER_MIN, :2] += 0.06
    accel[50 * PER_MIN, :2] += 0.06
    flags = detect_nonwear(epoch_table([SampleBlock(T0_NS, FS_HZ, accel)]))
    assert not flags.any()


def test_blocks_follow_utc_quarter_hours_with_ggir_steps(rng: np.random.Generator) -> None:
    # Still data from 07:30 after a quarter-hour boundary; movement before it.
    t0 = T0_NS - 60 * 60 * NS_PER_S
    table, _ = _table(("move", 67), ("still", 68), ("move", 45), rng=rng, t0_ns=t0)
    flags = detect_nonwear(table, step_s=900)
    # Still spans 67–135 min; only the quarter hours fully inside it (75–135) are non-wear
    # ... and the 60-min window 75–135 holds only still data.
    minute = (table.start_ns - t0) / (60 * NS_PER_S)
    assert np.array_equal(flags, (minute >= 75) & (minute < 135))


def test_default_steps_find_the_edges_to_the_minute(rng: np.random.Generator) -> None:
    t0 = T0_NS - 60 * 60 * NS_PER_S
    flags, _ = _flags(("move", 67), ("still", 68), ("move", 45), rng=rng, t0_ns=t0)
    minute = (t0 + np.arange(flags.size) * 5 * NS_PER_S - t0) / (60 * NS_PER_S)
    # Every minute of the still stretch lies in a 60-min window of still data only.
    assert np.array_equal(flags, (minute >= 67) & (minute < 135))


def test_gaps_and_empty_input(rng: np.random.Generator) -> None:
    assert detect_nonwear(EpochTable.empty(5.0)).shape == (0,)
    # Two still half-hours separated by a 1-day gap never share a window.
    a = SampleBlock(T0_NS, FS_HZ, still(20 * PER_MIN, rng))
    b = SampleBlock(T0_NS + 86_400 * NS_PER_S, FS_HZ, still(20 * PER_MIN, rng))
    assert not detect_nonwear(epoch_table([a, b])).any()
