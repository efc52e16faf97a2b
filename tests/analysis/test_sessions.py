"""Detected and labelled task sessions on synthetic arm tasks with known structure."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.effort import second_grid
from analysis.samples import NS_PER_S
from analysis.sessions import (
    SessionSpan,
    detect_sessions,
    labelled_sessions,
    summarise_sessions,
    whole_recording_session,
)
from tests.analysis.task_signals import ENMO_OF_AMPLITUDE_MG, T0_NS, blocks_of, tables, task_signal

# 6 min still, 10 min of arm movement in three 200-s parts with two 45-s rests, 6 min still.
TASK = [("still", 360), ("move", 200), ("still", 45), ("move", 200), ("still", 45), ("move", 200), ("still", 360)]


def _grid(parts: list[tuple[str, float]], **kw: object):  # type: ignore[no-untyped-def]
    ones, fives = tables(blocks_of(task_signal(parts), **kw))  # type: ignore[arg-type]
    return second_grid(ones, class_epochs=fives)


def test_ten_minute_task_with_two_rests_is_one_session() -> None:
    grid = _grid(TASK)
    spans = detect_sessions(grid)
    assert spans == [SessionSpan(T0_NS + 360 * NS_PER_S, T0_NS + 1050 * NS_PER_S)]
    (s,) = summarise_sessions(grid, spans, personal_peak_mg=120.0)
    assert s["start"] == "2023-03-25T00:06:00Z" and s["end"] == "2023-03-25T00:17:30Z"
    assert s["activity"] is None and s["met"] is None
    assert s["duration_s"] == 690.0
    assert s["active_s"] == 600.0
    assert s["rest_breaks"] == {"count": 2, "total_s": 90.0, "longest_s": 45.0}
    assert s["pauses"] == {"count": 0, "total_s": 0.0}
    assert s["work_to_rest"] == pytest.approx(600 / 90, abs=0.01)
    assert s["time_to_first_break_s"] == 200.0
    assert s["longest_active_s"] == 200.0
    assert s["mean_enmo_mg"] == pytest.approx(ENMO_OF_AMPLITUDE_MG[0.5], abs=0.5)
    assert s["peak_enmo_mg"] == pytest.approx(ENMO_OF_AMPLITUDE_MG[0.5], abs=0.5)
    assert s["pct_personal_peak"] == pytest.approx(100 * ENMO_OF_AMPLITUDE_MG[0.5] / 120, abs=0.5)
    # 59.8 mg is light for Hildebrand's wrist set (44.8 ≤ x < 100.6); the rests are sedentary.
    assert s["minutes_by_class"] == {"sedentary": 1.5, "light": 10.0, "moderate": 0.0, "vigorous": 0.0}
    assert s["mvpa_bouts"] == {"1_min": 0, "5_min": 0, "10_min": 0}
    assert s["completeness"] == {"wear_fraction": 1.0, "nonwear_fraction": 0.0, "gap_fraction": 0.0}


def test_a_long_rest_separates_two_sessions_a_shorter_one_does_not() -> None:
    apart = _grid([("still", 60), ("move", 240), ("still", 301), ("move", 240), ("still", 60)])
    assert [(s.start_ns - T0_NS) // NS_PER_S for s in detect_sessions(apart)] == [60, 601]
    together = _grid([("still", 60), ("move", 240), ("still", 240), ("move", 240), ("still", 60)])
    (span,) = detect_sessions(together)
    (s,) = summarise_sessions(together, [span])
    assert s["duration_s"] == 720.0 and s["rest_breaks"] == {"count": 1, "total_s": 240.0, "longest_s": 240.0}


def test_scattered_fidgeting_is_not_a_session() -> None:
    # 15 s of movement every minute for 20 min: 150 s active per 10 min < 180 s.
    parts = [p for _ in range(20) for p in (("move", 15), ("still", 45))]
    assert detect_sessions(_grid(parts)) == []
    # 20 s per minute: 200 s per 10 min ≥ 180 s → one session spanning the fidgeting.
    parts = [p for _ in range(20) for p in (("move", 20), ("still", 40))]
    (span,) = detect_sessions(_grid(parts))
    assert (span.end_ns - span.start_ns) // NS_PER_S == 19 * 60 + 20


def test_missing_data_inside_a_rest_is_a_gap_not_a_rest() -> None:
    grid = _grid(TASK, drop=(560.0, 605.0))  # the first 45-s rest is not recorded
    (span,) = detect_sessions(grid)
    (s,) = summarise_sessions(grid, [span])
    assert s["rest_breaks"]["count"] == 1 and s["active_s"] == 600.0
    assert s["completeness"]["gap_fraction"] == pytest.approx(45 / 690, abs=0.005)
    assert s["completeness"]["wear_fraction"] == pytest.approx(645 / 690, abs=0.005)


def test_labelled_session_with_a_known_task_gets_its_compendium_met() -> None:
    grid = _grid(TASK)
    spans = labelled_sessions(
        [
            {"start": "2023-03-25T00:06:00Z", "end": "2023-03-25T00:17:30+00:00", "activity": "Cooking"},
            {"start": T0_NS + 1100 * NS_PER_S, "end": T0_NS + 1200 * NS_PER_S, "activity": "juggling"},
        ]
    )
    first, second = summarise_sessions(grid, spans)
    assert first["activity"] == "Cooking" and first["met"] == 2.0 and first["active_s"] == 600.0
    assert second["met"] is None and second["active_s"] == 0.0 and second["mean_enmo_mg"] is None
    assert second["work_to_rest"] is None and second["time_to_first_break_s"] is None


def test_whole_recording_session() -> None:
    grid = _grid(TASK)
    span = whole_recording_session(grid, "dressing")
    assert (span.start_ns, span.end_ns) == (T0_NS, T0_NS + 1410 * NS_PER_S)
    (s,) = summarise_sessions(grid, [span])
    assert s["duration_s"] == 1410.0 and s["met"] == 2.5 and s["rest_breaks"]["count"] == 2


def test_label_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"labels\[0\] must have 'start' and 'end'"):
        labelled_sessions([{"start": 1}])
    with pytest.raises(ValueError, match=r"labels\[0\]\['start'\].*offset"):
        labelled_sessions([{"start": "2023-03-25T00:06:00", "end": "2023-03-25T00:07:00Z"}])
    with pytest.raises(ValueError, match="end must be after start"):
        labelled_sessions([{"start": 10, "end": 10}])
    with pytest.raises(ValueError, match="overlap"):
        labelled_sessions([{"start": 0, "end": 10}, {"start": 5, "end": 20}])
    with pytest.raises(ValueError, match="split_rest_s"):
        detect_sessions(_grid(TASK), split_rest_s=0)


def test_no_activity_no_session() -> None:
    grid = _grid([("still", 120)])
    assert detect_sessions(grid) == []
    assert not np.any(grid.active)
