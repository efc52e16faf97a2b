"""Bouts with tolerance, rest breaks, pauses and work-to-rest ratio over epoch arrays.

Pure functions over dense, regularly spaced epoch arrays (typically the 1-s grid of
`analysis.effort.second_grid`, built from ``epoch_table(blocks, epoch_s=1)``). Index
ranges are half-open ``[start, stop)``; durations are ``(stop - start) * epoch_s``.

Definitions (methods.md §2.3 "Active epoch", §4.2, §1.1):

* An epoch is *active* when its ENMO ≥ the active threshold; active runs shorter than
  `MIN_ACTIVE_S` (2 s) are dropped (hysteresis, §2.3).
* A *rest period* is a run of valid (worn and recorded), inactive epochs that has an
  active epoch directly before and after it, i.e. it lies within activity. A *rest
  break* is one of ≥ `REST_BREAK_S` (30 s); a *pause* (micro-pause) one of
  `PAUSE_S` (5 s) up to 30 s. A gap or non-wear epoch ends a run without making it a
  rest: missing data is never counted as rest.
* *Work-to-rest* is active time divided by rest-break time (§4.2).
* *Bouts* follow GGIR's ``bout.metric = 6`` idea (``g.getbout``): a window of the bout
  duration qualifies if ≥ `criterion` of its epochs meet the threshold, it starts and
  ends with such an epoch and contains no run of non-meeting epochs longer than
  `max_break_s` (GGIR: 1 min); a bout is a maximal union of overlapping qualifying
  windows, and only its meeting epochs count as bout time (as GGIR). This is a
  re-implementation from the description, not a port: GGIR's iterative edge trimming
  differs in corner cases (windows near the recording's ends are allowed here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MIN_ACTIVE_S",
    "PAUSE_S",
    "REST_BREAK_S",
    "Bouts",
    "Runs",
    "active_mask",
    "detect_bouts",
    "find_runs",
    "longest_active_s",
    "rest_periods",
    "work_to_rest",
]

#: Active runs shorter than this are noise (methods.md §2.3 hysteresis, ot_fi appendix A).
MIN_ACTIVE_S = 2.0
#: Shortest inactive run that is a pause (methods.md §2.3 ``pause_s = 5``).
PAUSE_S = 5.0
#: Shortest inactive run that is a rest break (methods.md §2.3, §4.2 ``break_s = 30``).
REST_BREAK_S = 30.0
#: Longest non-meeting run allowed inside a bout (GGIR ``g.getbout`` metric 6: 1 min).
BOUT_MAX_BREAK_S = 60.0


@dataclass(frozen=True, slots=True)
class Runs:
    """Half-open index ranges ``[start[i], stop[i])`` of epochs, in order.

    Attributes
    ----------
    start, stop : ndarray of int64, shape (n_runs,)
        First index and one past the last index of each run.
    epoch_s : float
        Epoch length in s.
    """

    start: NDArray[np.int64]
    stop: NDArray[np.int64]
    epoch_s: float

    def __len__(self) -> int:
        return int(self.start.size)

    @property
    def duration_s(self) -> NDArray[np.float64]:
        """Length of each run in s, shape (n_runs,)."""
        return (self.stop - self.start).astype(np.float64) * self.epoch_s

    @property
    def total_s(self) -> float:
        """Σ of the run lengths in s."""
        return float(self.duration_s.sum())

    @property
    def longest_s(self) -> float:
        """Longest run in s (0 when there is none)."""
        return float(self.duration_s.max()) if len(self) else 0.0


@dataclass(frozen=True, slots=True)
class Bouts:
    """Bouts found by `detect_bouts`.

    Attributes
    ----------
    runs : Runs
        Extent of each bout (first to last meeting epoch).
    meeting_s : ndarray of float64, shape (n_bouts,)
        Seconds of each bout whose epochs meet the threshold (GGIR's bout time).
    """

    runs: Runs
    meeting_s: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.runs)


def _check_epoch_s(epoch_s: float) -> None:
    if not isinstance(epoch_s, int | float) or not np.isfinite(epoch_s) or epoch_s <= 0:
        raise ValueError(f"epoch_s must be a positive number of seconds, got {epoch_s!r}")


def _as_mask(mask: Any, name: str) -> NDArray[np.bool_]:
    arr = np.asarray(mask)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def find_runs(mask: NDArray[np.bool_], *, epoch_s: float = 1.0) -> Runs:
    """Maximal runs of True in a 1-D mask.

    Examples
    --------
    >>> r = find_runs(np.array([0, 1, 1, 0, 1], bool))
    >>> r.start.tolist(), r.stop.tolist()
    ([1, 4], [3, 5])
    """
    _check_epoch_s(epoch_s)
    m = _as_mask(mask, "mask")
    edges = np.diff(np.concatenate(([0], m.view(np.int8), [0])).astype(np.int8))
    return Runs(np.flatnonzero(edges == 1).astype(np.int64), np.flatnonzero(edges == -1).astype(np.int64), float(epoch_s))


def active_mask(
    enmo_mg: NDArray[np.floating[Any]],
    *,
    threshold_mg: float,
    epoch_s: float = 1.0,
    min_active_s: float = MIN_ACTIVE_S,
) -> NDArray[np.bool_]:
    """Active epochs: ENMO ≥ threshold, without active runs shorter than `min_active_s`.

    Parameters
    ----------
    enmo_mg : ndarray of float, shape (n_epochs,)
        Epoch ENMO in mg on a dense grid; NaN (no data) is never active.
    threshold_mg : float
        Active threshold θ_act in mg (methods.md §2.3).
    epoch_s : float, optional
        Epoch length in s (default 1).
    min_active_s : float, optional
        Shortest active run kept, in s (default 2, methods.md §2.3).

    Returns
    -------
    ndarray of bool, shape (n_epochs,)

    Raises
    ------
    ValueError
        If `threshold_mg` is not finite or `enmo_mg` is not 1-D.
    """
    _check_epoch_s(epoch_s)
    if not isinstance(threshold_mg, int | float) or not np.isfinite(threshold_mg):
        raise ValueError(f"threshold_mg must be a finite number of mg, got {threshold_mg!r}")
    enmo = np.asarray(enmo_mg, dtype=np.float64)
    if enmo.ndim != 1:
        raise ValueError(f"enmo_mg must be 1-D, got shape {enmo.shape}")
    with np.errstate(invalid="ignore"):
        active = enmo >= threshold_mg
    runs = find_runs(active, epoch_s=epoch_s)
    for a, b in zip(runs.start[runs.duration_s < min_active_s], runs.stop[runs.duration_s < min_active_s], strict=True):
        active[a:b] = False
    return active


def rest_periods(
    active: NDArray[np.bool_],
    *,
    epoch_s: float = 1.0,
    min_s: float = REST_BREAK_S,
    max_s: float | None = None,
    valid: NDArray[np.bool_] | None = None,
) -> Runs:
    """Inactive runs within activity, of length in ``[min_s, max_s)``.

    Parameters
    ----------
    active : ndarray of bool, shape (n_epochs,)
        Active epochs (e.g. from `active_mask`).
    epoch_s : float, optional
        Epoch length in s (default 1).
    min_s : float, optional
        Shortest run in s (default 30: rest breaks; use `PAUSE_S` for pauses).
    max_s : float, optional
        Runs of this length or longer are excluded (e.g. 30 for micro-pauses).
    valid : ndarray of bool, shape (n_epochs,), optional
        Worn and recorded epochs; default all. Invalid epochs end a run and a run next
        to them is not a rest (it is not bounded by activity).

    Returns
    -------
    Runs
        Inactive, valid runs with an active epoch directly before and after.
    """
    act = _as_mask(active, "active")
    ok = np.ones(act.shape, bool) if valid is None else _as_mask(valid, "valid")
    if ok.shape != act.shape:
        raise ValueError(f"valid must have shape {act.shape}, got {ok.shape}")
    runs = find_runs(ok & ~act, epoch_s=epoch_s)
    n = act.size
    before = np.zeros(len(runs), bool)
    after = np.zeros(len(runs), bool)
    has_before = runs.start > 0
    before[has_before] = act[runs.start[has_before] - 1]
    has_after = runs.stop < n
    after[has_after] = act[runs.stop[has_after]]
    dur = runs.duration_s
    keep = before & after & (dur >= min_s - 1e-9)
    if max_s is not None:
        keep &= dur < max_s - 1e-9
    return Runs(runs.start[keep], runs.stop[keep], float(epoch_s))


def work_to_rest(active_s: float, rest_s: float) -> float | None:
    """Active time / rest-break time (methods.md §4.2); None when there was no rest.

    Examples
    --------
    >>> work_to_rest(510.0, 90.0)
    5.666666666666667
    """
    if active_s < 0 or rest_s < 0:
        raise ValueError(f"active_s and rest_s must be ≥ 0, got {active_s!r} and {rest_s!r}")
    return None if rest_s == 0 else float(active_s) / float(rest_s)


def longest_active_s(
    active: NDArray[np.bool_], *, epoch_s: float = 1.0, bridge_s: float = PAUSE_S
) -> float:
    """Activity tolerance: the longest active run, bridging inactive runs < `bridge_s`.

    Methods.md §4.2 ("longest continuous active bout, gaps < 5 s bridged"). Bridged
    pauses count in the length; the run starts and ends with active epochs.
    """
    act = _as_mask(active, "active").copy()
    gaps = rest_periods(act, epoch_s=epoch_s, min_s=0.0, max_s=bridge_s)
    for a, b in zip(gaps.start, gaps.stop, strict=True):
        act[a:b] = True
    return find_runs(act, epoch_s=epoch_s).longest_s


def detect_bouts(
    meets: NDArray[np.bool_],
    *,
    epoch_s: float,
    min_duration_s: float,
    criterion: float = 0.8,
    max_break_s: float = BOUT_MAX_BREAK_S,
) -> Bouts:
    """Bouts of at least `min_duration_s` where ≥ `criterion` of epochs meet a threshold.

    Parameters
    ----------
    meets : ndarray of bool, shape (n_epochs,)
        Epochs meeting the intensity criterion (e.g. class ≥ moderate for MVPA) on a
        dense grid; missing epochs should be False.
    epoch_s : float
        Epoch length in s.
    min_duration_s : float
        Bout duration in s, e.g. 60, 300, 600 (GGIR ``boutdur.mvpa = c(1, 5, 10)`` min).
    criterion : float, optional
        Fraction of a window's epochs that must meet the criterion, in (0, 1]
        (GGIR ``boutcriter.mvpa = 0.8``; 0.9 for inactivity bouts, methods.md §1.1).
    max_break_s : float, optional
        Longest run of non-meeting epochs allowed inside a bout, in s (default 60).

    Returns
    -------
    Bouts

    Raises
    ------
    ValueError
        If `criterion` is outside (0, 1] or `min_duration_s` is shorter than one epoch.

    Examples
    --------
    >>> x = np.array([1] * 8 + [0, 0] + [1] * 5 + [0] * 5, bool)
    >>> b = detect_bouts(x, epoch_s=30, min_duration_s=300)
    >>> b.runs.start.tolist(), b.runs.stop.tolist(), b.meeting_s.tolist()
    ([1], [15], [360.0])
    """
    _check_epoch_s(epoch_s)
    if not 0.0 < criterion <= 1.0:
        raise ValueError(f"criterion must be in (0, 1], got {criterion!r}")
    m = _as_mask(meets, "meets")
    length = round(min_duration_s / epoch_s)
    if length < 1:
        raise ValueError(f"min_duration_s must be at least one epoch ({epoch_s} s), got {min_duration_s!r}")
    n = m.size
    if n < length:
        return Bouts(Runs(np.empty(0, np.int64), np.empty(0, np.int64), float(epoch_s)), np.empty(0))
    # Epochs inside a too-long non-meeting run disqualify every window containing them.
    off = find_runs(~m, epoch_s=epoch_s)
    long_off = np.zeros(n, bool)
    for a, b in zip(off.start[off.duration_s > max_break_s], off.stop[off.duration_s > max_break_s], strict=True):
        long_off[a:b] = True
    c_meet = np.concatenate(([0], np.cumsum(m, dtype=np.int64)))
    c_long = np.concatenate(([0], np.cumsum(long_off, dtype=np.int64)))
    i = np.arange(n - length + 1)
    window_meet = c_meet[i + length] - c_meet[i]
    # Integer comparison (meeting ≥ criterion·length) with a tolerance for 0.8·L rounding.
    ok = (window_meet >= criterion * length - 1e-9) & (c_long[i + length] == c_long[i])
    ok &= m[i] & m[i + length - 1]
    # Union of qualifying windows: +1 at each start, −1 at each end.
    cover = np.zeros(n + 1, np.int64)
    np.add.at(cover, i[ok], 1)
    np.add.at(cover, i[ok] + length, -1)
    runs = find_runs(np.cumsum(cover[:-1]) > 0, epoch_s=epoch_s)
    meeting = (c_meet[runs.stop] - c_meet[runs.start]).astype(np.float64) * epoch_s
    return Bouts(runs, meeting)
