"""Bouts, rest breaks, pauses, work-to-rest: analytic cases and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.bouts import (
    active_mask,
    detect_bouts,
    find_runs,
    longest_active_s,
    rest_periods,
    work_to_rest,
)


def _pattern(*parts: tuple[int, int]) -> np.ndarray:
    """Concatenate (value, seconds) parts into a 1-s boolean grid."""
    return np.concatenate([np.full(n, bool(v)) for v, n in parts])


def test_find_runs_and_durations() -> None:
    r = find_runs(np.array([1, 1, 0, 0, 0, 1], bool), epoch_s=5)
    assert r.start.tolist() == [0, 5] and r.stop.tolist() == [2, 6]
    assert r.duration_s.tolist() == [10.0, 5.0] and r.total_s == 15.0 and r.longest_s == 10.0
    empty = find_runs(np.zeros(0, bool))
    assert len(empty) == 0 and empty.longest_s == 0.0
    with pytest.raises(ValueError, match="epoch_s"):
        find_runs(np.ones(3, bool), epoch_s=0)


def test_active_mask_threshold_nan_and_hysteresis() -> None:
    enmo = np.array([50.0, 44.8, 44.79, np.nan, 60.0, 10.0, 60.0, 60.0, 10.0])
    # 44.8 is active (≥); the lone active second at index 4 is dropped (< 2 s).
    assert active_mask(enmo, threshold_mg=44.8).tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0]
    assert active_mask(enmo, threshold_mg=44.8, min_active_s=0).tolist() == [1, 1, 0, 0, 1, 0, 1, 1, 0]
    with pytest.raises(ValueError, match="threshold_mg"):
        active_mask(enmo, threshold_mg=float("nan"))


def test_rest_breaks_and_pauses_within_activity() -> None:
    active = _pattern((0, 40), (1, 10), (0, 45), (1, 10), (0, 20), (1, 10), (0, 3), (1, 10), (0, 30), (1, 5), (0, 100))
    breaks = rest_periods(active, min_s=30)
    # The leading 40 s and trailing 100 s are not within activity; 45 s and exactly 30 s are breaks.
    assert breaks.duration_s.tolist() == [45.0, 30.0]
    assert breaks.start.tolist() == [50, 148]
    assert (breaks.total_s, breaks.longest_s) == (75.0, 45.0)
    pauses = rest_periods(active, min_s=5, max_s=30)
    assert pauses.duration_s.tolist() == [20.0]
    assert work_to_rest(float(active.sum()), breaks.total_s) == pytest.approx(45 / 75)


def test_missing_data_is_never_rest() -> None:
    active = _pattern((1, 10), (0, 45), (1, 10))
    valid = np.ones(active.size, bool)
    valid[30] = False  # one second of gap inside the rest
    assert len(rest_periods(active, valid=valid)) == 0
    valid[:] = True
    assert rest_periods(active, valid=valid).duration_s.tolist() == [45.0]
    with pytest.raises(ValueError, match="valid"):
        rest_periods(active, valid=valid[:-1])


def test_work_to_rest_and_tolerance() -> None:
    assert work_to_rest(510.0, 90.0) == pytest.approx(5.6667, abs=1e-4)
    assert work_to_rest(10.0, 0.0) is None
    with pytest.raises(ValueError, match="active_s"):
        work_to_rest(-1.0, 1.0)
    # 10 s active, 4 s pause (bridged), 10 s active, 5 s pause (not bridged), 12 s active.
    active = _pattern((1, 10), (0, 4), (1, 10), (0, 5), (1, 12))
    assert longest_active_s(active) == 24.0
    assert longest_active_s(active, bridge_s=6) == 41.0


def test_bout_at_exactly_the_criterion() -> None:
    # 4 of every 5 s meet, so every 60-s window holds 48 = 0.8·60; windows must start and end
    # on a meeting second (start mod 5 in 1..3), so the union is [1, 118).
    meets = np.tile([True, True, True, True, False], 24)  # 120 s
    b = detect_bouts(meets, epoch_s=1, min_duration_s=60, criterion=0.8)
    assert b.runs.start.tolist() == [1] and b.runs.stop.tolist() == [118]
    assert b.meeting_s.tolist() == [94.0]
    assert len(detect_bouts(meets, epoch_s=1, min_duration_s=60, criterion=0.9)) == 0


def test_bouts_split_by_a_break_over_one_minute() -> None:
    meets = _pattern((1, 300), (0, 61), (1, 300))
    b = detect_bouts(meets, epoch_s=1, min_duration_s=300)
    assert b.runs.duration_s.tolist() == [300.0, 300.0]
    # A 60-s break is tolerated if the 10-min window still meets 80 %: 600 − 60 = 540 ≥ 480.
    merged = detect_bouts(_pattern((1, 300), (0, 60), (1, 300)), epoch_s=1, min_duration_s=600)
    assert merged.runs.duration_s.tolist() == [660.0] and merged.meeting_s.tolist() == [600.0]
    assert len(detect_bouts(np.ones(10, bool), epoch_s=1, min_duration_s=60)) == 0
    with pytest.raises(ValueError, match="criterion"):
        detect_bouts(meets, epoch_s=1, min_duration_s=60, criterion=0)
    with pytest.raises(ValueError, match="min_duration_s"):
        detect_bouts(meets, epoch_s=5, min_duration_s=1)


def _brute_force_bouts(m: np.ndarray, length: int, criterion: float, max_break: int) -> np.ndarray:
    n = m.size
    covered = np.zeros(n, bool)
    for i in range(n - length + 1):
        w = m[i : i + length]
        longest_off, run = 0, 0
        for v in w:
            run = 0 if v else run + 1
            longest_off = max(longest_off, run)
        # The break run may extend outside the window: measure it in the whole series.
        j0, j1 = i, i + length
        broken = False
        k = j0
        while k < j1:
            if not m[k]:
                a = k
                while a > 0 and not m[a - 1]:
                    a -= 1
                b = k
                while b < n and not m[b]:
                    b += 1
                if b - a > max_break:
                    broken = True
                k = b
            else:
                k += 1
        if w.sum() >= criterion * length and w[0] and w[-1] and not broken:
            covered[i : i + length] = True
    return covered


@pytest.mark.parametrize("seed", range(5))
def test_bouts_equal_a_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Runs of random lengths so that long breaks occur.
    parts, v = [], True
    while sum(len(p) for p in parts) < 400:
        parts.append(np.full(int(rng.integers(1, 25)), v))
        v = not v
    m = np.concatenate(parts)[:400]
    b = detect_bouts(m, epoch_s=1, min_duration_s=30, criterion=0.7, max_break_s=10)
    got = np.zeros(m.size, bool)
    for a, e in zip(b.runs.start, b.runs.stop, strict=True):
        got[a:e] = True
    np.testing.assert_array_equal(got, _brute_force_bouts(m, 30, 0.7, 10))
    assert b.meeting_s.sum() == float((got & m).sum())
