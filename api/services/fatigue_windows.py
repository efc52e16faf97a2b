"""Fatigue windows of sample blocks over a range of window starts (pure; no database).

Shared by `otmon analyze` (`otmon.fatigue_report`) and the service (`api.services.fatigue`) so
that both compute every window the same way and get identical rows:

- A window starting at ``s`` (a UTC multiple of 30 s) depends only on the samples in
  ``[s − 15 s, s + 75 s)`` (contract of `analysis.fatigue_features.window_features`). The
  windows ``first..last`` are computed from the blocks overlapping the 30-s aligned region
  ``[first − 30 s, last + 90 s)``, which holds every padded span.
- Samples are laid on an *absolute* grid (sample k at ``k / fs_hz`` s since the Unix epoch,
  each sample at its nearest grid point, NaN where none), so a sample gets the same place
  whatever region it is loaded in; `analysis.samples.Recording.to_uniform` anchors the grid at
  the first block instead, which would shift with the region. The shift is at most half a
  sample period.
- Blocks of another sampling rate (to 0.1 Hz, `grid_rate_hz`) are laid on their own grid; where
  two rates cover one window, the one with more samples in ``[s, s + 60 s)`` wins (ties: the
  earlier rate seen).
  Blocks below `analysis.fatigue_features.MIN_FS_HZ` (20 Hz) give no windows; a session whose
  samples are mostly at such a rate fails the rate gate (`session_rates_hz`, "rate_lt_20hz").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.fatigue import build_baseline, session_fatigue
from analysis.fatigue_features import (
    FEATURES,
    MIN_ACTIVE_S,
    MIN_FS_HZ,
    MIN_WORN_S,
    FatigueWindows,
    window_features,
)
from analysis.samples import NS_PER_S, SampleBlock
from analysis.seconds import SecondGrid
from analysis.sessions import SessionSpan

# Window grid of analysis.fatigue_features (architecture.md "Interfaces fixed for issue 6"):
# 60-s windows at UTC multiples of 30 s, each reading [start − 15 s, start + 75 s).
STEP_NS = 30 * NS_PER_S
WINDOW_NS = 60 * NS_PER_S
PAD_BEFORE_NS = 15 * NS_PER_S
PAD_AFTER_NS = 75 * NS_PER_S
# Samples per computed region: 2 h at 100 Hz (720 000 x 3 x 8 B = 17 MB of float64), so memory
# grows neither with the length of a session or an upload nor with the sampling rate.
MAX_REGION_SAMPLES = 720_000


def grid_rate_hz(fs_hz: float) -> float:
    """The rate of the grid a block is laid on: its rate to 0.1 Hz.

    A collector re-estimates a stream's rate from arrival times (collector.timing.SampleClock),
    so consecutive blocks report e.g. 50.003 and 49.998 Hz; they share the 50 Hz grid (each
    sample at its nearest point, as `analysis.samples.Recording.to_uniform` does), rather than
    each rate competing for a window.
    """
    return round(float(fs_hz), 1)


def touched_starts(t0_ns: int, end_ns: int) -> tuple[int, int]:
    """First and last window start whose padded span meets samples in ``[t0_ns, end_ns)``."""
    # s + 75 s > t0 and s − 15 s < end, s a multiple of 30 s.
    first = ((t0_ns - PAD_AFTER_NS) // STEP_NS + 1) * STEP_NS
    last = (-(-(end_ns + PAD_BEFORE_NS) // STEP_NS) - 1) * STEP_NS
    return first, last


def merged_start_ranges(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged ``(first, last)`` window-start ranges touched by sample spans ``(t0_ns, end_ns)``."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(touched_starts(a, b) for a, b in spans):
        if out and first <= out[-1][1] + STEP_NS:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def region(first_start_ns: int, last_start_ns: int) -> tuple[int, int]:
    """The 30-s aligned sample span ``[lo, hi)`` read for windows ``first..last``."""
    return first_start_ns - STEP_NS, last_start_ns + WINDOW_NS + STEP_NS


@dataclass(frozen=True, slots=True)
class RegionWindows:
    """Windows of a region and, per window, the samples in its ``[start, start + 60 s)``."""

    windows: FatigueWindows
    n_samples: NDArray[np.int64]


def _laid_out(
    blocks: Sequence[SampleBlock], fs_hz: float, lo_ns: int, hi_ns: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Samples of ``blocks`` (all at ``fs_hz``) on the absolute grid over ``[lo_ns, hi_ns)``."""
    period_ns = NS_PER_S / fs_hz
    k_lo, k_hi = round(lo_ns / period_ns), round(hi_ns / period_ns)
    accel = np.full((k_hi - k_lo, 3), np.nan)
    mask = np.zeros(k_hi - k_lo, dtype=bool)
    for b in blocks:
        # Only the block's samples near the region (a whole-file block may be 30 days long);
        # their times as `SampleBlock.times_ns` computes them.
        i0 = max(0, int((lo_ns - b.t0_ns) // b.period_ns) - 1)
        i1 = min(b.n_samples, int(-(-(hi_ns - b.t0_ns) // b.period_ns)) + 1)
        if i1 <= i0:
            continue
        times_ns = b.t0_ns + np.rint(np.arange(i0, i1, dtype=np.float64) * b.period_ns).astype(
            np.int64
        )
        k = np.rint(times_ns.astype(np.float64) / period_ns).astype(np.int64) - k_lo
        inside = (k >= 0) & (k < k_hi - k_lo)
        accel[k[inside]] = b.accel_g[i0:i1][inside]
        mask[k[inside]] = True
    return accel, mask


def windows_for_starts(
    blocks: Sequence[SampleBlock], *, first_start_ns: int, last_start_ns: int
) -> RegionWindows:
    """The windows starting in ``[first_start_ns, last_start_ns]`` that hold samples.

    ``blocks`` must include every block with samples in `region` of the range (more do no
    harm), in time order. Long ranges are computed about `MAX_REGION_SAMPLES` samples at a time
    (exact, as windows are local), so memory does not grow with the range.
    """
    fs_max = max((float(b.fs_hz) for b in blocks if b.n_samples), default=1.0)
    per_region = max(1, int(MAX_REGION_SAMPLES / (fs_max * STEP_NS / NS_PER_S)))
    parts = []
    for first in range(first_start_ns, last_start_ns + 1, per_region * STEP_NS):
        last = min(last_start_ns, first + (per_region - 1) * STEP_NS)
        parts.append(_windows_for_region(blocks, first, last))
    if len(parts) == 1:
        return parts[0]
    return RegionWindows(
        FatigueWindows.concat([p.windows for p in parts]),
        np.concatenate([p.n_samples for p in parts]),
    )


def _windows_for_region(
    blocks: Sequence[SampleBlock], first_start_ns: int, last_start_ns: int
) -> RegionWindows:
    """`windows_for_starts` of one region."""
    lo_ns, hi_ns = region(first_start_ns, last_start_ns)
    by_rate: dict[float, list[SampleBlock]] = {}
    for b in blocks:
        if b.n_samples and b.t0_ns < hi_ns and b.end_ns > lo_ns:
            by_rate.setdefault(grid_rate_hz(b.fs_hz), []).append(b)
    parts: list[tuple[FatigueWindows, NDArray[np.int64]]] = []
    for fs_hz, group in by_rate.items():
        if fs_hz < MIN_FS_HZ:
            continue  # too slow for the movement band (no windows: the session fails a gate)
        accel, mask = _laid_out(group, fs_hz, lo_ns, hi_ns)
        found = window_features(accel, fs_hz=fs_hz, t0_ns=lo_ns)
        start = np.asarray(found.start_ns, dtype=np.int64)
        # Samples per window core [s, s + 60 s), from the grid mask.
        c = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
        period_ns = NS_PER_S / fs_hz
        i0 = np.clip(np.rint((start - lo_ns) / period_ns).astype(np.int64), 0, mask.size)
        i1 = np.clip(
            np.rint((start + WINDOW_NS - lo_ns) / period_ns).astype(np.int64), 0, mask.size
        )
        n = c[i1] - c[i0]
        keep = np.flatnonzero((start >= first_start_ns) & (start <= last_start_ns) & (n > 0))
        parts.append((found.take(keep), n[keep]))
    return _best_per_start(parts)


def _best_per_start(parts: Sequence[tuple[FatigueWindows, NDArray[np.int64]]]) -> RegionWindows:
    """One row per window start: the part with the most samples (ties: the earlier part)."""
    if not parts:
        return RegionWindows(FatigueWindows.empty(), np.empty(0, np.int64))
    if len(parts) == 1:
        return RegionWindows(*parts[0])
    # Plain concatenation (FatigueWindows.concat would drop repeated starts before the choice).
    windows = FatigueWindows(
        **{
            f.name: np.concatenate([getattr(w, f.name) for w, _ in parts])
            for f in fields(FatigueWindows)
        }
    )
    n = np.concatenate([c for _, c in parts])
    part = np.concatenate([np.full(c.size, i) for i, (_, c) in enumerate(parts)])
    start = np.asarray(windows.start_ns, dtype=np.int64)
    order = np.lexsort((part, -n, start))
    first = np.ones(order.size, dtype=bool)
    first[1:] = start[order][1:] != start[order][:-1]
    pick = order[first]
    return RegionWindows(windows.take(pick), n[pick])


# Stored form of a window (api.models.FatigueWindowRow.data): every FatigueWindows column but
# start_ns, in field order, as little-endian float64 (bools as 0/1), one row per window.
_F8 = np.dtype("<f8")
LAYOUT: tuple[tuple[str, int], ...] = tuple(
    (
        f.name,
        1
        if getattr(FatigueWindows.empty(), f.name).ndim == 1
        else getattr(FatigueWindows.empty(), f.name).shape[1],
    )
    for f in fields(FatigueWindows)
    if f.name != "start_ns"
)
ROW_VALUES = sum(width for _, width in LAYOUT)


def encode(windows: FatigueWindows) -> list[bytes]:
    """The stored form of each row of ``windows``."""
    cols = [
        np.asarray(getattr(windows, name), dtype=np.float64).reshape(len(windows), width)
        for name, width in LAYOUT
    ]
    table = np.ascontiguousarray(
        np.concatenate(cols, axis=1) if cols else np.empty((len(windows), 0)), dtype=_F8
    )
    return [row.tobytes() for row in table]


def decode(start_ns: Sequence[int], data: Sequence[bytes]) -> FatigueWindows:
    """Windows from their starts and stored forms (inverse of `encode`)."""
    if not data:
        return FatigueWindows.empty()
    table = np.frombuffer(b"".join(data), dtype=_F8).reshape(len(data), ROW_VALUES)
    empty = FatigueWindows.empty()
    cols: dict[str, Any] = {"start_ns": np.asarray(start_ns, dtype=np.int64)}
    pos = 0
    for name, width in LAYOUT:
        part = table[:, pos : pos + width]
        pos += width
        dtype = getattr(empty, name).dtype
        col = part[:, 0] if getattr(empty, name).ndim == 1 else part.copy()
        cols[name] = col != 0 if dtype == np.bool_ else col.astype(dtype)
    return FatigueWindows(**cols)


#: Sessions of one activity forming the patient's between-session baseline (methods.md §2.5
#: step 4, "first 3 sessions"): every session of the activity is scored against the first 3.
BASELINE_SESSIONS = 3
#: The service keeps no calibration QC (it never reads raw blocks at read time) and `otmon
#: analyze` applies none; both score with the calibration gate off (docs/fatigue-api.md).
CALIBRATION_OK = True


def session_start_ranges(spans: Sequence[SessionSpan]) -> list[tuple[int, int]]:
    """Merged ``(first, last)`` starts of the windows that can lie inside the sessions."""
    out: list[tuple[int, int]] = []
    for s in sorted(spans, key=lambda s: s.start_ns):
        first = -(-s.start_ns // STEP_NS) * STEP_NS
        last = (s.end_ns - WINDOW_NS) // STEP_NS * STEP_NS
        if last < first:
            continue
        if out and first <= out[-1][1] + STEP_NS:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def with_grid_wear(windows: FatigueWindows, grid: SecondGrid | None) -> FatigueWindows:
    """Windows with the recording's non-wear (the 1-s grid's ``worn``) taken into account.

    Windows are computed from samples alone (all recorded samples worn), because wear is
    decided over hours (GGIR, ±60 min) and would change stored windows long after ingest.
    Here the recorded but non-worn seconds of each window (the grid's) are removed from
    ``worn_s``; ``analysable`` and ``duty`` follow their definitions (≥ 54 worn and ≥ 20 active
    s; active / worn). Windows without non-worn seconds are unchanged.
    """
    if grid is None or len(windows) == 0 or grid.worn.size == 0:
        return windows
    nonworn = (grid.n_samples > 0) & ~grid.worn
    c = np.concatenate(([0], np.cumsum(nonworn, dtype=np.int64)))
    i0 = np.clip((windows.start_ns - grid.t0_ns) // NS_PER_S, 0, nonworn.size)
    i1 = np.clip((windows.start_ns + WINDOW_NS - grid.t0_ns) // NS_PER_S, 0, nonworn.size)
    off = (c[i1] - c[i0]).astype(np.float64)
    if not off.any():
        return windows
    worn_s = np.maximum(windows.worn_s - off, 0.0)
    features = windows.features.copy()
    j = FEATURES.index("duty")
    hit = off > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        features[hit, j] = np.where(worn_s[hit] > 0, windows.active_s[hit] / worn_s[hit], np.nan)
    analysable = np.where(
        hit, (worn_s >= MIN_WORN_S) & (windows.active_s >= MIN_ACTIVE_S), windows.analysable
    )
    cols = {f.name: getattr(windows, f.name) for f in fields(windows)}
    cols.update(worn_s=worn_s, features=features, analysable=analysable.astype(bool))
    return FatigueWindows(**cols)


def session_rates_hz(
    block_spans: Sequence[tuple[int, int, float]], spans: Sequence[SessionSpan]
) -> list[float | None]:
    """The sampling rate of each session, for the rate gate of `session_fatigue`.

    The rate (`grid_rate_hz`, to 0.1 Hz, the rate windows are computed at) that covers most of
    the session's samples, a block's samples in the session counted as overlap × its rate; ties
    go to the higher rate; None (rate unknown, gate not checked) when no block overlaps it.
    ``block_spans`` are (t0_ns, end_ns, fs_hz), as `analysis.gaps.classify_gaps` takes them.
    """
    if not block_spans:
        return [None] * len(spans)
    t0 = np.array([b[0] for b in block_spans], dtype=np.int64)
    end = np.array([b[1] for b in block_spans], dtype=np.int64)
    fs = np.array([b[2] for b in block_spans], dtype=np.float64)
    uniq, inv = np.unique(fs, return_inverse=True)
    rates, which = np.unique(np.array([grid_rate_hz(f) for f in uniq])[inv], return_inverse=True)
    out: list[float | None] = []
    for s in spans:
        overlap_ns = np.minimum(end, s.end_ns) - np.maximum(t0, s.start_ns)
        hit = overlap_ns > 0
        if not hit.any():
            out.append(None)
            continue
        n = np.bincount(
            which[hit], weights=overlap_ns[hit] * fs[hit] / NS_PER_S, minlength=rates.size
        )
        out.append(float(rates[max(range(rates.size), key=lambda k: (n[k], rates[k]))]))
    return out


def sessions_fatigue(
    windows: FatigueWindows,
    spans: Sequence[SessionSpan],
    *,
    grid: SecondGrid | None,
    block_spans: Sequence[tuple[int, int, float]] = (),
    calibration_ok: bool = CALIBRATION_OK,
) -> list[dict[str, Any]]:
    """`session_fatigue` of every session (``spans`` of one patient or file, in time order).

    The baseline of an activity is built from the first `BASELINE_SESSIONS` sessions with that
    activity (detected sessions, activity None, form one group and are stratified by the task
    signature; labelled activities are their own stratum). Each session is given its rate
    (`session_rates_hz` of ``block_spans``; none given: unknown) for the rate gate.
    """
    rates = session_rates_hz(block_spans, spans)
    windows = with_grid_wear(windows, grid)
    per_session = [windows.select(s.start_ns, s.end_ns) for s in spans]
    order = sorted(range(len(spans)), key=lambda i: spans[i].start_ns)
    groups: dict[str | None, list[int]] = {}
    for i in order:
        groups.setdefault(spans[i].activity, []).append(i)
    out: list[dict[str, Any]] = [{} for _ in spans]
    for activity, members in groups.items():
        first = members[:BASELINE_SESSIONS]
        tags = None if activity is None else [activity] * len(first)
        baseline = build_baseline([per_session[i] for i in first], tags=tags)
        for i in members:
            out[i] = session_fatigue(
                per_session[i],
                baseline=baseline,
                calibration_ok=calibration_ok,
                task=activity,
                fs_hz=rates[i],
            )
    return out
