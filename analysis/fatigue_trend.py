"""Across sessions: the weekly trend of the fatigue index and the therapist alert (§2.5 step 8).

Re-exported by `analysis.fatigue` (contract: architecture.md, issue 6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from analysis.fatigue_params import DEFAULT_PARAMS
from analysis.fatigue_stats import theil_sen

__all__ = ["alert", "trend"]


def _seconds(t: Any) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


def trend(points: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """Theil–Sen trend of a per-session index over weeks, with Kendall's τ test.

    Parameters
    ----------
    points : iterable of (time, value)
        time as UTC seconds (float) or an aware `datetime`; value a number or None (skipped).

    Returns
    -------
    dict
        ``slope_per_week`` (index units per week), ``slope_ci95`` ([lo, hi]), ``intercept``
        (value at the first point's time), ``tau``, ``p``, ``n``; numbers None with < 3 points.
    """
    pts = [(_seconds(t), float(v)) for t, v in points if v is not None and math.isfinite(float(v))]
    n = len(pts)
    out: dict[str, Any] = {
        "slope_per_week": None,
        "slope_ci95": None,
        "intercept": None,
        "tau": None,
        "p": None,
        "n": n,
    }
    if n < 3:
        return out
    t0 = min(p[0] for p in pts)
    weeks = np.array([(p[0] - t0) / (7 * 86400.0) for p in pts])
    res = theil_sen(weeks, np.array([p[1] for p in pts]))
    if res["slope"] is None:
        return out
    out.update(
        slope_per_week=res["slope"],
        slope_ci95=[res["slope_lo"], res["slope_hi"]],
        intercept=res["intercept"],
        tau=res["tau"],
        p=res["p"],
    )
    return out


def alert(
    history: Sequence[Any], *, k: int = 3, n: int = 5, level: float = DEFAULT_PARAMS.alert_level
) -> dict[str, Any]:
    """Alert when the index is above baseline in ≥ k of the last n scored sessions of a task.

    Parameters
    ----------
    history : sequence of dict or float
        Sessions of one patient and task in time order: `session_fatigue` results (the value used
        is ``index_between`` when present, else ``index``; sessions with quality ≠ "ok" are
        skipped) or plain numbers (None skipped).
    k, n : int
        The rule "k of the last n" (defaults 3 of 5).
    level : float
        "Above baseline" threshold, z units (0.5, docs/fatigue-preregistration.md).

    Returns
    -------
    dict
        ``alert`` (bool), ``above`` (count in the last n), ``considered`` (sessions counted),
        ``k``, ``n``, ``level``.
    """
    if k < 1 or n < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k!r}, n={n!r}")
    vals: list[float] = []
    for h in history:
        v = _value(h)
        if v is not None:
            vals.append(v)
    last = vals[-n:]
    above = sum(1 for v in last if v > level)
    return {
        "alert": above >= k,
        "above": above,
        "considered": len(last),
        "k": k,
        "n": n,
        "level": level,
    }


def _value(h: Any) -> float | None:
    if isinstance(h, Mapping):
        if h.get("quality", "ok") != "ok":
            return None
        v = h.get("index_between")
        if v is None:
            v = h.get("index")
    else:
        v = h
    if v is None or not math.isfinite(float(v)):
        return None
    return float(v)
