"""Task sessions: labelled spans, detected spans, and their effort summaries.

A session is a stretch of one activity (dressing, cooking …). It is either *labelled*
(start, end and activity given by the collector app or the therapist) or *detected*
from the 1-s active state of a `analysis.effort.SecondGrid`:

1. Active runs (methods.md §2.3: ENMO ≥ θ_act, runs < 2 s dropped) closer than
   `SPLIT_REST_S` are joined; a longer stretch without activity (rest, non-wear or
   missing data) ends a session.
2. A joined stretch is a session when some `DENSITY_WINDOW_S` window of it holds at
   least `MIN_SESSION_ACTIVE_S` active seconds — methods.md §2.5 "detected as wear with
   ≥ 3 min of activity within a 10-min span" — so scattered fidgeting is not a task.
3. The session runs from its first active second to the end of its last one.

Why 5 min for `SPLIT_REST_S`: a rest break starts at 30 s (methods.md §2.3, §4.2) and
the rest breaks OT notes describe within a task last about a minute or two (§4.2's
example: "4 breaks (median 1.5 min)"); five minutes is more than twice such a break,
yet shorter than the 10-min span of the density rule, so two tasks separated by a
real sit-down are reported apart while a task with a long breather stays whole. It is
a design choice, not a published constant: re-tune it once labelled sessions exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from analysis.bouts import find_runs
from analysis.effort import SecondGrid, check_session_marks, grid_gaps, summarise_session
from analysis.gaps import Gap
from analysis.samples import NS_PER_S

__all__ = [
    "DENSITY_WINDOW_S",
    "MIN_SESSION_ACTIVE_S",
    "SPLIT_REST_S",
    "SessionSpan",
    "detect_sessions",
    "labelled_sessions",
    "patient_sessions",
    "summarise_sessions",
    "whole_recording_session",
]

#: A stretch without activity this long (s) ends a detected session (see module docstring).
SPLIT_REST_S = 300.0
#: Active seconds a session needs within one `DENSITY_WINDOW_S` window (methods.md §2.5: 3 min).
MIN_SESSION_ACTIVE_S = 180.0
#: Span in which `MIN_SESSION_ACTIVE_S` must fall (methods.md §2.5: 10 min).
DENSITY_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """A session's span in UTC ns, ``[start_ns, end_ns)``, its activity label, who set it
    (``source``: ``"detected"``, ``"therapist"`` or ``"patient"``) and the patient's Borg
    6-20 rating and note (patient marks only)."""

    start_ns: int
    end_ns: int
    activity: str | None = None
    source: str = "detected"
    borg: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if int(self.end_ns) <= int(self.start_ns):
            raise ValueError(f"end_ns must be after start_ns, got {self.start_ns!r} and {self.end_ns!r}")
        if self.activity is not None and not isinstance(self.activity, str):
            raise ValueError(f"activity must be a string or None, got {self.activity!r}")
        check_session_marks(self.source, self.borg, self.note)


def _time_ns(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be UTC ns or an ISO-8601 time with an offset, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is not None:
            whole = datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, tzinfo=dt.tzinfo)
            return int(whole.timestamp()) * NS_PER_S + dt.microsecond * 1000
    raise ValueError(f"{name} must be UTC ns or an ISO-8601 time with an offset, got {value!r}")


def labelled_sessions(labels: Iterable[Mapping[str, Any]]) -> list[SessionSpan]:
    """Sessions from labels ``{"start": …, "end": …, "activity": …}``, sorted by start.

    ``start``/``end`` are UTC ns (int) or ISO-8601 strings with an offset
    (``"2024-03-01T09:00:00Z"``); ``activity`` is optional, and so are ``source``
    (default ``"therapist"``), ``borg`` and ``note``.

    Raises
    ------
    ValueError
        If a label lacks a time, a time is malformed or naive, ``end <= start``, or two
        labelled sessions overlap (one activity at a time).
    """
    spans = []
    for i, label in enumerate(labels):
        if "start" not in label or "end" not in label:
            raise ValueError(f"labels[{i}] must have 'start' and 'end', got keys {sorted(label)}")
        start = _time_ns(label["start"], f"labels[{i}]['start']")
        end = _time_ns(label["end"], f"labels[{i}]['end']")
        if end <= start:
            raise ValueError(f"labels[{i}]: end must be after start, got {label['start']!r} to {label['end']!r}")
        spans.append(
            SessionSpan(start, end, label.get("activity"), label.get("source", "therapist"), label.get("borg"), label.get("note"))
        )
    spans.sort(key=lambda s: s.start_ns)
    for a, b in itertools.pairwise(spans):
        if b.start_ns < a.end_ns:
            raise ValueError(f"labelled sessions must not overlap, got {a} and {b}")
    return spans


def patient_sessions(marks: Iterable[Mapping[str, Any]]) -> list[SessionSpan]:
    """Sessions from a patient's task marks (``otmon task start/stop``, a button press).

    Parameters
    ----------
    marks : iterable of mapping
        In time order: ``{"kind": "task_start", "at_ns": int, "label": str}`` or
        ``{"kind": "task_stop", "at_ns": int, "borg": int | None, "note": str | None}``.

    Returns
    -------
    list of SessionSpan
        A start and the next stop make a session ``[start, stop)`` with ``source``
        ``"patient"``, the start's label as activity and the stop's ``borg`` and ``note``.
        A start while a task is open ends that task there (without rating); a stop with no
        open task, a task still open at the end and an empty span are left out.

    Raises
    ------
    ValueError
        If a mark has an unknown kind, a time is not an integer, or the marks are not in
        time order.
    """
    out: list[SessionSpan] = []
    open_: tuple[int, str] | None = None
    last = None
    for i, m in enumerate(marks):
        kind, at = m.get("kind"), m.get("at_ns")
        if isinstance(at, bool) or not isinstance(at, int | np.integer):
            raise ValueError(f"marks[{i}]['at_ns'] must be UTC ns, got {at!r}")
        if last is not None and at < last:
            raise ValueError(f"marks must be in time order, marks[{i}] at {at} is before {last}")
        last = at
        if kind == "task_start":
            if open_ is not None and at > open_[0]:
                out.append(SessionSpan(open_[0], int(at), open_[1], "patient"))
            open_ = (int(at), str(m.get("label")))
        elif kind == "task_stop":
            if open_ is not None and at > open_[0]:
                out.append(SessionSpan(open_[0], int(at), open_[1], "patient", m.get("borg"), m.get("note")))
            open_ = None
        else:
            raise ValueError(f"marks[{i}]['kind'] must be 'task_start' or 'task_stop', got {kind!r}")
    return out


def whole_recording_session(grid: SecondGrid, activity: str | None = None) -> SessionSpan:
    """The whole recording as one session (whole UTC seconds from first to last sample); its
    span is the user's choice (``otmon analyze --session``), so ``source`` is ``"therapist"``."""
    return SessionSpan(grid.t0_ns, grid.end_ns, activity, "therapist")


def detect_sessions(
    grid: SecondGrid,
    *,
    split_rest_s: float = SPLIT_REST_S,
    min_active_s: float = MIN_SESSION_ACTIVE_S,
    window_s: float = DENSITY_WINDOW_S,
) -> list[SessionSpan]:
    """Sessions of sustained activity separated by long rest (see the module docstring).

    Parameters
    ----------
    grid : SecondGrid
        The recording's 1-s grid (its ``active`` state).
    split_rest_s : float, optional
        Inactive stretch in s that separates sessions (default 300).
    min_active_s : float, optional
        Active seconds needed within `window_s` (default 180).
    window_s : float, optional
        Density window in s (default 600).

    Returns
    -------
    list of SessionSpan
        In time order, ``activity`` None.

    Raises
    ------
    ValueError
        If a parameter is not positive.
    """
    for name, v in (("split_rest_s", split_rest_s), ("min_active_s", min_active_s), ("window_s", window_s)):
        if not isinstance(v, int | float) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
    runs = find_runs(grid.active)
    if len(runs) == 0:
        return []
    # Join runs whose inactive gap is shorter than split_rest_s.
    gap_s = (runs.start[1:] - runs.stop[:-1]).astype(np.float64)
    cut = np.flatnonzero(gap_s >= split_rest_s)
    seg_start = runs.start[np.concatenate(([0], cut + 1))]
    seg_stop = runs.stop[np.concatenate((cut, [len(runs) - 1]))]
    c = np.concatenate(([0], np.cumsum(grid.active, dtype=np.int64)))
    k_max = round(window_s)
    spans = []
    for a, b in zip(seg_start.tolist(), seg_stop.tolist(), strict=True):
        k = min(k_max, b - a)
        j = np.arange(a, b - k + 1)
        if int((c[j + k] - c[j]).max()) >= min_active_s:
            spans.append(SessionSpan(grid.t0_ns + a * NS_PER_S, grid.t0_ns + b * NS_PER_S))
    return spans


def summarise_sessions(
    grid: SecondGrid,
    spans: Sequence[SessionSpan],
    *,
    personal_peak_mg: float | None = None,
    block_spans: Sequence[tuple[int, int, float]] | None = None,
    gap_events: Sequence[Gap] = (),
    backlog: Sequence[tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """The session objects of the spans, in the given order (the one place they are built).

    Each is `analysis.effort.summarise_session` with the span's activity, source, Borg
    rating and note, and its ``gaps`` from one `analysis.effort.grid_gaps` of the whole
    timeline (``block_spans``, ``gap_events``, ``backlog`` as there), extended to sessions
    that reach outside the grid (a patient's marks with no data).
    """
    if not spans:
        return []
    lo, hi = min(s.start_ns for s in spans), max(s.end_ns for s in spans)
    empty = len(grid) == 0
    gaps = grid_gaps(
        grid,
        block_spans=block_spans,
        gap_events=gap_events,
        backlog=backlog,
        from_ns=lo if empty or lo < grid.t0_ns else None,
        until_ns=hi if empty or hi > grid.end_ns else None,
    )
    return [
        summarise_session(
            grid,
            start_ns=s.start_ns,
            end_ns=s.end_ns,
            activity=s.activity,
            personal_peak_mg=personal_peak_mg,
            source=s.source,
            borg=s.borg,
            note=s.note,
            gaps=gaps,
        )
        for s in spans
    ]
