"""analysis.gaps.classify_gaps: tiling, causes from covering events, unknown, non_wear, not_uploaded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.gaps import CAUSES, REPORTED_CAUSES, Gap, classify_gaps, clip_gaps, covered_spans, flag_spans

S = 1_000_000_000
T0 = 1_709_287_200 * S  # 2024-03-01 10:00 UTC


def test_worked_example() -> None:
    period = S // 50
    blocks = [
        (T0, T0 + 10 * S, 50.0),
        (T0 + 10 * S + period // 3, T0 + 20 * S, 50.0),  # a third of a period late: jitter, no gap
        (T0 + 30 * S, T0 + 40 * S, 50.0),  # 10 s missing, explained by a BLE drop
        (T0 + 45 * S, T0 + 50 * S, 50.0),  # 5 s missing, nothing explains it
        (T0 + 60 * S, T0 + 70 * S, 50.0),  # 10 s missing: frames dropped, then not uploaded
    ]
    events = [
        Gap(T0 + 19 * S, T0 + 31 * S, "ble_disconnect"),  # the collector's view is wider
        Gap(T0 + 50 * S, T0 + 55 * S, "device_drop"),
    ]
    gaps = classify_gaps(
        blocks, events=events, nonwear=[(T0 + 35 * S, T0 + 47 * S)], backlog=(T0 + 52 * S, T0 + 90 * S),
    )
    assert gaps == [
        Gap(T0 + 20 * S, T0 + 30 * S, "ble_disconnect"),
        Gap(T0 + 35 * S, T0 + 40 * S, "non_wear"),
        Gap(T0 + 40 * S, T0 + 45 * S, "unknown"),
        Gap(T0 + 45 * S, T0 + 47 * S, "non_wear"),
        Gap(T0 + 50 * S, T0 + 55 * S, "device_drop"),
        Gap(T0 + 55 * S, T0 + 60 * S, "not_uploaded"),
        Gap(T0 + 70 * S, T0 + 90 * S, "not_uploaded"),  # decoded, not yet sent
    ]
    assert [g.duration_s for g in gaps] == [10.0, 5.0, 5.0, 2.0, 5.0, 5.0, 20.0]


def test_timeline_extends_to_from_and_until() -> None:
    gaps = classify_gaps([(T0, T0 + S, 10.0)], events=[], nonwear=[], from_ns=T0 - 5 * S, until_ns=T0 + 3 * S)
    assert gaps == [Gap(T0 - 5 * S, T0, "unknown"), Gap(T0 + S, T0 + 3 * S, "unknown")]
    assert classify_gaps([], events=[], nonwear=[]) == []
    only_event = classify_gaps([], events=[Gap(T0, T0 + S, "collector_down")], nonwear=[])
    assert only_event == [Gap(T0, T0 + S, "collector_down")]


def test_overlapping_reported_causes_rank_root_cause_first() -> None:
    blocks = [(T0, T0 + S, 50.0), (T0 + 10 * S, T0 + 11 * S, 50.0)]
    events = [
        Gap(T0 + 2 * S, T0 + 8 * S, "device_drop"),
        Gap(T0 + 3 * S, T0 + 7 * S, "ble_disconnect"),
        Gap(T0 + 4 * S, T0 + 5 * S, "collector_down"),
    ]
    gaps = classify_gaps(blocks, events=events, nonwear=[], backlog=[(T0, T0 + 11 * S)])
    assert [(g.start_ns - T0) // S for g in gaps] == [1, 2, 3, 4, 5, 7, 8]
    assert [g.cause for g in gaps] == [
        "not_uploaded", "device_drop", "ble_disconnect", "collector_down", "ble_disconnect", "device_drop",
        "not_uploaded",
    ]


def test_overlapping_streams_cover_each_other() -> None:
    blocks = [(T0, T0 + 10 * S, 50.0), (T0 + 5 * S, T0 + 20 * S, 25.0), (T0 + 2 * S, T0 + 3 * S, 100.0)]
    assert covered_spans(blocks) == [(T0, T0 + 20 * S)]
    assert classify_gaps(blocks, events=[], nonwear=[]) == []


def test_flag_spans_joins_touching_slots() -> None:
    starts = np.array([0, 5, 10, 20, 25, 35], dtype=np.int64) * S
    flags = np.array([True, True, False, True, True, True])
    assert flag_spans(starts, 5 * S, flags) == [(0, 10 * S), (20 * S, 30 * S), (35 * S, 40 * S)]
    assert flag_spans(starts, 5 * S, np.zeros(6, bool)) == []


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"block_spans": [(T0, T0, 50.0)]}, "block_spans[0]"),
        ({"block_spans": [(T0, T0 + S, 0.0)]}, "fs_hz"),
        ({"block_spans": [(T0, T0 + S)]}, "block_spans[0]"),
        ({"events": [Gap(T0, T0 + S, "unknown")]}, "events[0]"),
        ({"events": [(T0, T0 + S, "ble_disconnect")]}, "events[0]"),
        ({"nonwear": [(T0 + S, T0)]}, "nonwear[0]"),
        ({"backlog": (T0 + S, T0)}, "backlog"),
        ({"fs_tolerance_periods": 0.5}, "fs_tolerance_periods"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict, word: str) -> None:
    args = {"block_spans": [(T0, T0 + S, 50.0)], "events": [], "nonwear": [], **kwargs}
    spans = args.pop("block_spans")
    with pytest.raises(ValueError, match=word.replace("[", r"\[").replace("]", r"\]")):
        classify_gaps(spans, **args)


def test_gap_rejects_unknown_cause_and_empty_span() -> None:
    with pytest.raises(ValueError, match="cause"):
        Gap(0, 1, "lunch")
    with pytest.raises(ValueError, match="end_ns"):
        Gap(1, 1, "unknown")


def test_jitter_slivers_beside_a_reported_gap_take_its_cause() -> None:
    period = S // 50
    blocks = [(T0, T0 + 10 * S, 50.0), (T0 + 20 * S, T0 + 30 * S, 50.0), (T0 + 40 * S, T0 + 50 * S, 50.0)]
    events = [
        Gap(T0 + 10 * S + period // 3, T0 + 20 * S - period // 4, "ble_disconnect"),  # predicted ends
        Gap(T0 + 30 * S + 2 * period, T0 + 40 * S, "device_drop"),  # 2 periods late: a real hole
    ]
    gaps = classify_gaps(blocks, events=events, nonwear=[])
    assert gaps == [
        Gap(T0 + 10 * S, T0 + 20 * S, "ble_disconnect"),
        Gap(T0 + 30 * S, T0 + 30 * S + 2 * period, "unknown"),
        Gap(T0 + 30 * S + 2 * period, T0 + 40 * S, "device_drop"),
    ]
    # Without a reported neighbour a short stretch stays unknown (only between-block jitter
    # below the tolerance is no gap at all).
    lone = classify_gaps([(T0, T0 + S, 50.0), (T0 + S + period, T0 + 2 * S, 50.0)], events=[], nonwear=[])
    assert lone == [Gap(T0 + S, T0 + S + period, "unknown")]  # one lost sample is a gap
    assert classify_gaps([(T0, T0 + S, 50.0), (T0 + S + period // 2 - 1, T0 + 2 * S, 50.0)], events=[], nonwear=[]) == []


def test_clip_gaps() -> None:
    gaps = [Gap(0, 10, "unknown"), Gap(20, 30, "non_wear")]
    assert clip_gaps(gaps, 5, 25) == [Gap(5, 10, "unknown"), Gap(20, 25, "non_wear")]
    assert clip_gaps(gaps, 10, 20) == []


# --- properties ---------------------------------------------------------------------------
UNIT = S // 10  # coarse integer grid keeps shrunk examples readable
spans_st = st.lists(
    st.tuples(st.integers(0, 200), st.integers(1, 30)).map(lambda p: (p[0] * UNIT, (p[0] + p[1]) * UNIT)),
    max_size=8,
)


@st.composite
def timelines(draw: st.DrawFn) -> dict:
    # Rates whose jitter tolerance (half a period) is below UNIT: every space between blocks is a gap, and
    # no unknown piece is a jitter sliver (those are tested in test_jitter_slivers_*).
    blocks = [(a, b, draw(st.sampled_from([25.0, 50.0, 100.0]))) for a, b in draw(spans_st)]
    events = [Gap(a, b, draw(st.sampled_from(REPORTED_CAUSES))) for a, b in draw(spans_st)]
    return {"blocks": blocks, "events": events, "nonwear": draw(spans_st), "backlog": draw(spans_st)}


def _bounds(tl: dict) -> list[int]:
    bounds = [t for a, b, _ in tl["blocks"] for t in (a, b)]
    return bounds + [t for e in tl["events"] for t in (e.start_ns, e.end_ns)] + [t for s in tl["backlog"] for t in s]


def _inside(t: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= t < b for a, b in spans)


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_gaps_and_covered_spans_tile_the_timeline(tl: dict) -> None:
    gaps = classify_gaps(tl["blocks"], events=tl["events"], nonwear=tl["nonwear"], backlog=tl["backlog"])
    covered = covered_spans(tl["blocks"])
    missing = [(g.start_ns, g.end_ns) for g in gaps if g.cause != "non_wear"]
    pieces = sorted(missing + covered)
    bounds = _bounds(tl)
    if not bounds:
        assert gaps == []
        return
    assert pieces[0][0] == min(bounds) and pieces[-1][1] == max(bounds)
    for (a0, b0), (a1, b1) in zip(pieces, pieces[1:]):
        assert b0 == a1, "gaps and covered spans must meet exactly, never overlap"
    assert gaps == sorted(gaps, key=lambda g: (g.start_ns, g.end_ns))
    for g0, g1 in zip(gaps, gaps[1:]):
        assert not (g0.end_ns == g1.start_ns and g0.cause == g1.cause), "same-cause neighbours are joined"


@settings(max_examples=150, deadline=None)
@given(timelines(), st.lists(st.integers(0, 240 * 10), max_size=20))
def test_cause_of_every_instant(tl: dict, probes_tenths: list[int]) -> None:
    """Reference: at each instant, the cause follows from which spans cover it."""
    gaps = classify_gaps(tl["blocks"], events=tl["events"], nonwear=tl["nonwear"], backlog=tl["backlog"])
    covered = covered_spans(tl["blocks"])
    for g in gaps:
        assert g.cause in CAUSES
    probes = [p * UNIT // 10 for p in probes_tenths] + [(g.start_ns + g.end_ns) // 2 for g in gaps]
    bounds = _bounds(tl)
    for t in probes:
        found = [g.cause for g in gaps if g.start_ns <= t < g.end_ns]
        if not bounds or not min(bounds) <= t < max(bounds):
            assert found == []  # outside the timeline
            continue
        if _inside(t, covered):
            expected = ["non_wear"] if _inside(t, tl["nonwear"]) else []
        else:
            covering = {e.cause for e in tl["events"] if e.start_ns <= t < e.end_ns}
            if covering:
                expected = [next(c for c in REPORTED_CAUSES if c in covering)]
            elif _inside(t, tl["backlog"]):
                expected = ["not_uploaded"]
            else:
                expected = ["unknown"]
        assert found == expected, (t, found, expected)


# --- days and sessions ---------------------------------------------------------------------
def _blocks(spans_s: list[tuple[int, int]], fs_hz: float = 10.0, t0_ns: int = T0) -> list:
    from analysis.samples import SampleBlock

    rng = np.random.default_rng(1)
    out = []
    for a, b in spans_s:
        n = int((b - a) * fs_hz)
        accel = (rng.normal(0, 0.3, (n, 3)) + [0, 0, 1]).astype(np.float32)
        out.append(SampleBlock(t0_ns + a * S, fs_hz, accel))
    return out


def test_day_gaps_are_clipped_at_local_midnight_across_dst() -> None:
    from analysis.pipeline import epoch_table, summarise_days

    # Berlin leaves DST on 2023-10-29 (03:00 CEST -> 02:00 CET): that day lasts 25 h.
    start = 1_698_444_000 * S  # 2023-10-28 00:00 CEST = 2023-10-27 22:00 UTC
    blocks = _blocks([(22 * 3600, 23 * 3600), (48 * 3600, 49 * 3600)], t0_ns=start)
    events = [Gap(start + 23 * 3600 * S, start + 48 * 3600 * S, "collector_down")]
    days = summarise_days(epoch_table(blocks), tz="Europe/Berlin",
                          block_spans=[(b.t0_ns, b.end_ns, b.fs_hz) for b in blocks], gap_events=events)
    # Data 22:00-23:00 CEST on the 28th and 23:00-24:00 CET on the 29th; the collector was down between.
    assert [d["date"] for d in days] == ["2023-10-28", "2023-10-29"]
    assert days[0]["gaps"] == [{"start": "2023-10-28T21:00:00Z", "end": "2023-10-28T22:00:00Z",
                                "cause": "collector_down", "duration_s": 3600.0}]
    # The 29th runs 22:00 UTC to 23:00 UTC next day (25 h): 24 h down, then 1 h of data.
    assert days[1]["gaps"] == [{"start": "2023-10-28T22:00:00Z", "end": "2023-10-29T22:00:00Z",
                                "cause": "collector_down", "duration_s": 86400.0}]
    assert [d["samples"] for d in days] == [36_000, 36_000]


def test_days_without_block_spans_use_the_epochs() -> None:
    from analysis.pipeline import epoch_table, summarise_days

    blocks = _blocks([(0, 600), (900, 1200)])
    exact = summarise_days(epoch_table(blocks), tz="UTC", block_spans=[(b.t0_ns, b.end_ns, b.fs_hz) for b in blocks])
    coarse = summarise_days(epoch_table(blocks), tz="UTC")
    assert exact[0]["gaps"] == coarse[0]["gaps"] == [
        {"start": "2024-03-01T10:10:00Z", "end": "2024-03-01T10:15:00Z", "cause": "unknown", "duration_s": 300.0}
    ]


def test_session_objects_carry_source_marks_and_gaps() -> None:
    from analysis.effort import second_grid
    from analysis.pipeline import epoch_table
    from analysis.seconds import enmo_by_second
    from analysis.sessions import SessionSpan, summarise_sessions, whole_recording_session

    blocks = _blocks([(0, 600), (900, 1200)])
    grid = second_grid(enmo_by_second(blocks), class_epochs=epoch_table(blocks))
    spans = [
        SessionSpan(T0 - 60 * S, T0 + 660 * S, "cooking", "patient", 15, "felt dizzy"),
        SessionSpan(T0 + 700 * S, T0 + 1000 * S, "ironing", "therapist"),
        whole_recording_session(grid, "vacuuming"),
    ]
    events = [Gap(T0 + 600 * S, T0 + 900 * S, "ble_disconnect")]
    a, b, whole = summarise_sessions(grid, spans, block_spans=[(x.t0_ns, x.end_ns, x.fs_hz) for x in blocks],
                                     gap_events=events)
    assert (a["source"], a["borg"], a["note"], b["source"], b["borg"]) == ("patient", 15, "felt dizzy", "therapist", None)
    assert [(g["start"], g["end"], g["cause"]) for g in a["gaps"]] == [
        ("2024-03-01T09:59:00Z", "2024-03-01T10:00:00Z", "unknown"),  # marked before any data
        ("2024-03-01T10:10:00Z", "2024-03-01T10:11:00Z", "ble_disconnect"),
    ]
    assert b["gaps"] == [{"start": "2024-03-01T10:11:40Z", "end": "2024-03-01T10:15:00Z",
                          "cause": "ble_disconnect", "duration_s": 200.0}]
    assert whole["source"] == "therapist" and [g["duration_s"] for g in whole["gaps"]] == [300.0]
    assert list(a)[:7] == ["start", "end", "activity", "source", "borg", "note", "duration_s"]
    assert list(a)[-2:] == ["completeness", "gaps"]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"source": "nurse"}, "source"), ({"borg": 5}, "borg"), ({"borg": 21}, "borg"), ({"borg": True}, "borg"),
     ({"borg": 12.0}, "borg"), ({"note": 3}, "note")],
)
def test_session_span_rejects_bad_marks(kwargs: dict, word: str) -> None:
    from analysis.sessions import SessionSpan

    with pytest.raises(ValueError, match=word):
        SessionSpan(T0, T0 + S, "x", **kwargs)


def test_patient_sessions_pair_marks() -> None:
    from analysis.sessions import SessionSpan, patient_sessions

    def start(t: int, label: str) -> dict:
        return {"kind": "task_start", "at_ns": T0 + t * S, "label": label}

    def stop(t: int, borg: int | None = None, note: str | None = None) -> dict:
        return {"kind": "task_stop", "at_ns": T0 + t * S, "borg": borg, "note": note}

    marks = [stop(0), start(10, "cooking"), stop(70, 12, "ok"), start(80, "a"), start(90, "b"), stop(95),
             start(100, "c"), stop(100), start(200, "open")]
    assert patient_sessions(marks) == [
        SessionSpan(T0 + 10 * S, T0 + 70 * S, "cooking", "patient", 12, "ok"),
        SessionSpan(T0 + 80 * S, T0 + 90 * S, "a", "patient"),
        SessionSpan(T0 + 90 * S, T0 + 95 * S, "b", "patient"),
    ]
    with pytest.raises(ValueError, match="time order"):
        patient_sessions([start(10, "x"), stop(5)])
    with pytest.raises(ValueError, match="kind"):
        patient_sessions([{"kind": "nap", "at_ns": T0}])
    with pytest.raises(ValueError, match="at_ns"):
        patient_sessions([{"kind": "task_start", "at_ns": "soon"}])
