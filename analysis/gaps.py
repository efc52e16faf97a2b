"""Gap accounting: every missing or unworn stretch of a timeline, with its cause.

A patient's timeline is covered by stored sample blocks. Between them data is missing, and
the collector reports why where it knows: a BLE link lost and re-established
(``ble_disconnect``), frames the device's own counter or clock shows missing inside a
connection (``device_drop``), or the collector process not running (``collector_down``).
Data the collector decoded but has not uploaded yet is ``not_uploaded`` (from the backlog
it reports). Missing time nothing explains is ``unknown``. Recorded time the wear analysis
(`analysis.nonwear`) marks as unworn is ``non_wear``: the sensor recorded, the patient did
not wear it. (Contract: docs/architecture.md, "Gaps in days and sessions".)

All times are UTC ns, spans half-open ``[start_ns, end_ns)``. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S

__all__ = [
    "CAUSES",
    "REPORTED_CAUSES",
    "Gap",
    "classify_gaps",
    "clip_gaps",
    "covered_spans",
    "flag_spans",
]

#: Causes a collector reports in its gap events (architecture.md, issue 4 contract).
REPORTED_CAUSES: tuple[str, ...] = ("collector_down", "ble_disconnect", "device_drop")
#: Every cause, in the order that decides overlaps of missing time: a reported cause first,
#: root cause before consequence (a collector that is down also loses the link, a lost link
#: also loses frames), then a not-yet-uploaded backlog, then unknown. ``non_wear`` applies to
#: recorded time only, so it never competes with the others.
CAUSES: tuple[str, ...] = (*REPORTED_CAUSES, "not_uploaded", "unknown", "non_wear")

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch ``[start_ns, end_ns)`` in UTC ns with its cause (one of `CAUSES`)."""

    start_ns: int
    end_ns: int
    cause: str

    def __post_init__(self) -> None:
        if self.cause not in CAUSES:
            raise ValueError(f"cause must be one of {', '.join(CAUSES)}, got {self.cause!r}")
        if int(self.end_ns) <= int(self.start_ns):
            raise ValueError(f"end_ns must be after start_ns, got {self.start_ns!r} and {self.end_ns!r}")

    @property
    def duration_s(self) -> float:
        """Length in s."""
        return (int(self.end_ns) - int(self.start_ns)) / NS_PER_S


def _span(value: Any, name: str) -> Span:
    try:
        a, b = value
        a, b = int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (start_ns, end_ns) pair, got {value!r}") from None
    if b <= a:
        raise ValueError(f"{name}: end_ns must be after start_ns, got {value!r}")
    return a, b


def _union(spans: Iterable[Span]) -> list[Span]:
    """Sorted union of spans (touching spans joined)."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def covered_spans(
    block_spans: Iterable[Sequence[float]], *, fs_tolerance_periods: float = 1.5
) -> list[Span]:
    """Union of block spans, joining spaces shorter than the tolerance.

    Parameters
    ----------
    block_spans : iterable of (start_ns, end_ns, fs_hz)
        Stored blocks, any order; several streams or devices may overlap.
    fs_tolerance_periods : float, optional
        Consecutive samples at most this many sample periods (of the block before) apart
        are contiguous: a space between blocks shorter than ``fs_tolerance_periods - 1``
        periods is clock jitter, not missing data. Default 1.5: a block may start up to
        half a period late, as `collector.assembly.BlockAssembler` continues a block and
        `analysis.effort.recording_summary` reports gaps.

    Returns
    -------
    list of (int, int)
        Disjoint covered spans in time order.

    Raises
    ------
    ValueError
        If a span is not ``start < end`` with a positive finite rate, or the tolerance is
        below 1 period.
    """
    return [(a, b) for a, b, _ in _covered(block_spans, fs_tolerance_periods)]


def _covered(block_spans: Iterable[Sequence[float]], periods: float) -> list[tuple[int, int, int]]:
    """`covered_spans` with the tolerance in ns of each span's last block."""
    if not np.isfinite(periods) or periods < 1:
        raise ValueError(f"fs_tolerance_periods must be >= 1, got {periods!r}")
    spans = []
    for i, item in enumerate(block_spans):
        try:
            a, b, fs = item
        except (TypeError, ValueError):
            raise ValueError(f"block_spans[{i}] must be (start_ns, end_ns, fs_hz), got {item!r}") from None
        a, b = _span((a, b), f"block_spans[{i}]")
        if not np.isfinite(fs) or fs <= 0:
            raise ValueError(f"block_spans[{i}]: fs_hz must be positive, got {fs!r}")
        # Integer ns: a float sum with a UTC ns time (~1.7e18) would round to 256 ns.
        spans.append((a, b, round((periods - 1.0) * NS_PER_S / float(fs))))
    spans.sort()
    out: list[tuple[int, int, int]] = []
    for a, b, tol_ns in spans:
        if out and a < out[-1][1] + out[-1][2]:
            if b >= out[-1][1]:
                # The block ending last decides how late the next one may start.
                tol = tol_ns if b > out[-1][1] else max(tol_ns, out[-1][2])
                out[-1] = (out[-1][0], b, tol)
        else:
            out.append((a, b, tol_ns))
    return out


def flag_spans(start_ns: NDArray[np.int64], step_ns: int, flags: NDArray[np.bool_]) -> list[Span]:
    """Spans ``[start_ns[i], start_ns[i] + step_ns)`` of flagged slots, touching ones joined.

    Parameters
    ----------
    start_ns : ndarray of int64, shape (n,)
        Slot starts (epochs or seconds), increasing.
    step_ns : int
        Slot length in ns.
    flags : ndarray of bool, shape (n,)
        Which slots to keep (e.g. non-wear epochs).
    """
    starts = np.asarray(start_ns, dtype=np.int64)
    f = np.asarray(flags, dtype=bool)
    if starts.shape != f.shape or starts.ndim != 1:
        raise ValueError(f"start_ns and flags must be 1-D of one length, got {starts.shape} and {f.shape}")
    if step_ns <= 0:
        raise ValueError(f"step_ns must be positive, got {step_ns!r}")
    s = starts[f]
    if s.size == 0:
        return []
    # A new run starts where a flagged slot does not begin at the previous one's end.
    new = np.concatenate(([True], s[1:] != s[:-1] + step_ns))
    first = np.flatnonzero(new)
    last = np.concatenate((first[1:] - 1, [s.size - 1]))
    return [(int(s[i]), int(s[j]) + int(step_ns)) for i, j in zip(first.tolist(), last.tolist(), strict=True)]


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    """Intersection of two sorted disjoint span lists."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _backlog_spans(backlog: Any) -> list[Span]:
    if backlog is None:
        return []
    if isinstance(backlog, tuple) and len(backlog) == 2 and all(isinstance(x, int | np.integer) for x in backlog):
        return [_span(backlog, "backlog")]
    return [_span(s, f"backlog[{i}]") for i, s in enumerate(backlog)]


def classify_gaps(
    block_spans: Iterable[Sequence[float]],
    *,
    events: Iterable[Gap],
    nonwear: Iterable[Span],
    backlog: Span | Sequence[Span] | None = None,
    until_ns: int | None = None,
    fs_tolerance_periods: float = 1.5,
    from_ns: int | None = None,
) -> list[Gap]:
    """Every gap of a timeline with its cause.

    Parameters
    ----------
    block_spans : iterable of (start_ns, end_ns, fs_hz)
        Stored sample blocks (all streams and devices of the timeline).
    events : iterable of Gap
        Gaps the collector reported, cause in `REPORTED_CAUSES`. Where several cover the
        same missing time, the first cause of `CAUSES` wins.
    nonwear : iterable of (start_ns, end_ns)
        Unworn time from the wear analysis (e.g. `flag_spans` of non-wear epochs); only
        its recorded part becomes ``non_wear``.
    backlog : (start_ns, end_ns) or sequence of them, optional
        Time the collector decoded but has not uploaded yet (its reported backlog, e.g.
        from the oldest unsent block to the last decoded sample); missing time it covers
        and no event explains is ``not_uploaded``.
    until_ns, from_ns : int, optional
        Extend the timeline to these times (e.g. a session's bounds); by default it runs
        from the first to the last of the blocks, events and backlog. A missing stretch at
        either end shorter than the tolerance is not a gap (as between blocks).
    fs_tolerance_periods : float, optional
        See `covered_spans` (default 1.5 sample periods).

    Returns
    -------
    list of Gap
        In time order (by start, then end). The gaps whose cause is not ``non_wear`` and
        the covered spans tile the timeline without overlap; ``non_wear`` gaps lie inside
        covered spans. Adjacent gaps of one cause are joined.

    Raises
    ------
    ValueError
        If a span is malformed or an event's cause is not a reported cause.
    """
    covered3 = _covered(block_spans, fs_tolerance_periods)
    covered = [(a, b) for a, b, _ in covered3]
    reported: list[Gap] = []
    for i, e in enumerate(events):
        if not isinstance(e, Gap) or e.cause not in REPORTED_CAUSES:
            raise ValueError(f"events[{i}] must be a Gap with a cause in {REPORTED_CAUSES}, got {e!r}")
        reported.append(e)
    queued = _union(_backlog_spans(backlog))
    unworn = _union(_span(s, f"nonwear[{i}]") for i, s in enumerate(nonwear))

    bounds = [a for a, _ in covered] + [b for _, b in covered]
    bounds += [int(e.start_ns) for e in reported] + [int(e.end_ns) for e in reported]
    bounds += [a for a, _ in queued] + [b for _, b in queued]
    bounds += [int(t) for t in (from_ns, until_ns) if t is not None]
    if not bounds:
        return []
    t0, t1 = min(bounds), max(bounds)
    missing: list[Span] = []
    tolerance_ns: list[int] = []  # per missing stretch: jitter tolerance of the block before
    cursor, tol = t0, covered3[0][2] if covered3 else 0
    for a, b, t in covered3:
        if a > cursor:
            missing.append((cursor, a))
            tolerance_ns.append(tol)
        cursor, tol = max(cursor, b), t
    if cursor < t1:
        missing.append((cursor, t1))
        tolerance_ns.append(tol)
    # At the ends of a timeline extended to from_ns/until_ns (e.g. a session of whole
    # seconds), a stretch shorter than the tolerance is jitter as between blocks: no gap.
    if covered3 and missing:
        if missing[-1][0] == cursor and missing[-1][1] - missing[-1][0] < tolerance_ns[-1]:
            missing.pop(), tolerance_ns.pop()
        if missing and missing[0][1] == covered3[0][0] and missing[0][1] - missing[0][0] < covered3[0][2]:
            missing.pop(0), tolerance_ns.pop(0)

    # Sweep over every boundary: per cause the number of spans open; emit the missing
    # stretches between consecutive boundaries with the winning cause.
    rank = {c: k for k, c in enumerate(CAUSES)}
    deltas: dict[int, list[int]] = {}

    def add(a: int, b: int, slot: int) -> None:
        deltas.setdefault(a, [0] * len(CAUSES))[slot] += 1
        deltas.setdefault(b, [0] * len(CAUSES))[slot] -= 1

    missing_slot = rank["non_wear"]  # a free slot: non_wear never enters the sweep
    for a, b in missing:
        add(a, b, missing_slot)
    for e in reported:
        add(int(e.start_ns), int(e.end_ns), rank[e.cause])
    for a, b in queued:
        add(a, b, rank["not_uploaded"])
    open_ = [0] * len(CAUSES)
    out: list[Gap] = []
    times = sorted(deltas)
    for t, t_next in zip(times, times[1:], strict=False):
        open_ = [o + d for o, d in zip(open_, deltas[t], strict=True)]
        if open_[missing_slot] <= 0:
            continue
        cause = next((c for c in CAUSES[: rank["unknown"]] if open_[rank[c]] > 0), "unknown")
        if out and out[-1].end_ns == t and out[-1].cause == cause:
            out[-1] = Gap(out[-1].start_ns, t_next, cause)
        else:
            out.append(Gap(t, t_next, cause))
    out = _absorb_slivers(out, missing, tolerance_ns)
    out += [Gap(a, b, "non_wear") for a, b in _intersect(unworn, covered)]
    out.sort(key=lambda g: (g.start_ns, g.end_ns))
    return out


def _absorb_slivers(gaps: list[Gap], missing: list[Span], tolerance_ns: list[int]) -> list[Gap]:
    """Give an ``unknown`` piece shorter than the jitter tolerance the cause of a neighbour.

    A collector's gap event starts at the predicted next sample, the stored block ends where
    its fitted rate puts it: they may differ by a fraction of a sample period, which must
    not show as an unknown gap beside a reported one.
    """
    out = list(gaps)
    k = 0  # index into missing: the stretch holding out[i]
    for i, g in enumerate(out):
        while missing[k][1] < g.end_ns:
            k += 1
        if g.cause != "unknown" or g.end_ns - g.start_ns >= tolerance_ns[k]:
            continue
        before = out[i - 1] if i > 0 and out[i - 1].end_ns == g.start_ns else None
        after = out[i + 1] if i + 1 < len(out) and out[i + 1].start_ns == g.end_ns else None
        neighbour = before if before is not None and before.cause != "unknown" else after
        if neighbour is not None and neighbour.cause != "unknown":
            out[i] = Gap(g.start_ns, g.end_ns, neighbour.cause)
    joined: list[Gap] = []
    for g in out:
        if joined and joined[-1].end_ns == g.start_ns and joined[-1].cause == g.cause:
            joined[-1] = Gap(joined[-1].start_ns, g.end_ns, g.cause)
        else:
            joined.append(g)
    return joined


def clip_gaps(gaps: Iterable[Gap], start_ns: int, end_ns: int) -> list[Gap]:
    """The parts of ``gaps`` inside ``[start_ns, end_ns)``, in the given order."""
    out = []
    for g in gaps:
        a, b = max(int(g.start_ns), int(start_ns)), min(int(g.end_ns), int(end_ns))
        if a < b:
            out.append(Gap(a, b, g.cause))
    return out
