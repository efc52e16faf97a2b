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
from analysis.effort import SecondGrid, summarise_session
from analysis.samples import NS_PER_S

__all__ = [
    "DENSITY_WINDOW_S",
    "MIN_SESSION_ACTIVE_S",
    "SPLIT_REST_S",
    "SessionSpan",
    "detect_sessions",
    "labelled_sessions",
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
    """A session's span in UTC ns, ``[start_ns, end_ns)``, and its activity label."""

    start_ns: int
    end_ns: int
    activity: str | None = None

    def __post_init__(self) -> None:
        if int(self.end_ns) <= int(self.start_ns):
            raise ValueError(f"end_ns must be after start_ns, got {self.start_ns!r} and {self.end_ns!r}")
        if self.activity is not None and not isinstance(self.activity, str):
            raise ValueError(f"activity must be a string or None, got {self.activity!r}")


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
    (``"2024-03-01T09:00:00Z"``); ``activity`` is optional.

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
        spans.append(SessionSpan(start, end, label.get("activity")))
    spans.sort(key=lambda s: s.start_ns)
    for a, b in itertools.pairwise(spans):
        if b.start_ns < a.end_ns:
            raise ValueError(f"labelled sessions must not overlap, got {a} and {b}")
    return spans


def whole_recording_session(grid: SecondGrid, activity: str | None = None) -> SessionSpan:
    """The whole recording as one session (whole UTC seconds from first to last sample)."""
    return SessionSpan(grid.t0_ns, grid.end_ns, activity)


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
    grid: SecondGrid, spans: Sequence[SessionSpan], *, personal_peak_mg: float | None = None
) -> list[dict[str, Any]]:
    """`analysis.effort.summarise_session` of each span, in the given order."""
    return [
        summarise_session(grid, start_ns=s.start_ns, end_ns=s.end_ns, activity=s.activity, personal_peak_mg=personal_peak_mg)
        for s in spans
    ]
