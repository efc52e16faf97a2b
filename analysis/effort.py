"""Per-session, per-day and per-recording effort summaries over the 1-s grid.

The unit of analysis is the dense 1-s grid of `analysis.seconds` (`SecondGrid`, re-exported
here with `second_grid`, `active_threshold_mg`, `grid_personal_peak_mg`). Session and day
dicts are JSON-ready; their keys are documented in ``docs/analyze-json.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.bouts import (
    PAUSE_S,
    REST_BREAK_S,
    detect_bouts,
    longest_active_s,
    rest_periods,
    work_to_rest,
)
from analysis.gaps import Gap, classify_gaps, flag_spans
from analysis.intensity import MODERATE, percent_of_peak
from analysis.met import compendium_met
from analysis.pipeline import _local_day_index, _zone, gap_dicts, iso_utc
from analysis.samples import NS_PER_S, SampleBlock
from analysis.seconds import SecondGrid, active_threshold_mg, grid_personal_peak_mg, second_grid

__all__ = [
    "SecondGrid",
    "active_threshold_mg",
    "grid_gaps",
    "grid_personal_peak_mg",
    "iso_utc",
    "recording_summary",
    "second_grid",
    "summarise_effort_days",
    "summarise_session",
]

_DECIMALS = 2  # as summarise_days: stable JSON
#: MVPA bout durations in s, GGIR ``boutdur.mvpa = c(1, 5, 10)`` min at criterion 0.8
#: (methods.md §1.1).
MVPA_BOUTS_S = (60.0, 300.0, 600.0)
MVPA_CRITERION = 0.8
_PEAK_WINDOW_S = 60  # "peak 1-min ENMO" (methods.md §4.2)
_PEAK_MIN_COVERED_S = 30.0  # a 1-min window needs ≥ 30 s of data, as personal_peak_mg


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), _DECIMALS)



def _peak_minute_mg(enmo: NDArray[np.float64], n: NDArray[np.int64], cov: NDArray[np.float64], worn: NDArray[np.bool_]) -> float | None:
    """Highest 60-s moving mean of ENMO (sample-weighted, worn seconds)."""
    w = np.where(worn, n, 0).astype(np.float64)
    s = np.where(worn, np.nan_to_num(enmo) * n, 0.0)
    c = np.where(worn, cov, 0.0)
    k = min(_PEAK_WINDOW_S, enmo.size)
    cs = [np.concatenate(([0.0], np.cumsum(a))) for a in (w, s, c)]
    ww, ss, cc = (x[k:] - x[:-k] for x in cs)
    ok = (ww > 0) & (cc >= min(_PEAK_MIN_COVERED_S, k / 2))
    return float((ss[ok] / ww[ok]).max()) if ok.any() else None


#: Who set a session's span: detected from the data, a therapist's label, a patient's marks.
SESSION_SOURCES = ("detected", "therapist", "patient")


def grid_gaps(
    grid: SecondGrid,
    *,
    block_spans: Sequence[tuple[int, int, float]] | None = None,
    gap_events: Sequence[Gap] = (),
    backlog: Sequence[tuple[int, int]] | None = None,
    from_ns: int | None = None,
    until_ns: int | None = None,
) -> list[Gap]:
    """`analysis.gaps.classify_gaps` of a recording, non-wear from the grid's worn seconds.

    Parameters
    ----------
    grid : SecondGrid
        The recording's 1-s grid (``worn`` comes from the epochs `summarise_days` uses).
    block_spans : sequence of (start_ns, end_ns, fs_hz), optional
        The stored sample blocks; default the recorded seconds of the grid (gaps to the s).
    gap_events, backlog, from_ns, until_ns
        As `analysis.gaps.classify_gaps` (``events``, ``backlog``, ``from_ns``, ``until_ns``).
    """
    starts = grid.t0_ns + np.arange(len(grid), dtype=np.int64) * NS_PER_S
    recorded = grid.n_samples > 0
    if block_spans is None:
        block_spans = [(a, b, 1.0) for a, b in flag_spans(starts, NS_PER_S, recorded)]
    return classify_gaps(
        block_spans,
        events=gap_events,
        nonwear=flag_spans(starts, NS_PER_S, recorded & ~grid.worn),
        backlog=backlog,
        from_ns=from_ns,
        until_ns=until_ns,
    )


def summarise_session(
    grid: SecondGrid,
    *,
    start_ns: int,
    end_ns: int,
    activity: str | None = None,
    personal_peak_mg: float | None = None,
    source: str = "detected",
    borg: int | None = None,
    note: str | None = None,
    gaps: Sequence[Gap] | None = None,
) -> dict[str, Any]:
    """Effort summary of one session (methods.md §4.2 per-session fields).

    Parameters
    ----------
    grid : SecondGrid
        The recording's 1-s grid.
    start_ns, end_ns : int
        Session span, UTC ns, ``start_ns < end_ns``; seconds overlapping it are used.
    activity : str, optional
        Task label (e.g. ``"cooking"``); sets ``met`` from the Compendium when known.
    personal_peak_mg : float, optional
        The patient's P95 of 1-min ENMO (`analysis.intensity.personal_peak_mg`).
    source : str, optional
        One of `SESSION_SOURCES` (default ``"detected"``).
    borg : int, optional
        The patient's Borg 6-20 rating of the session (patient marks only).
    note : str, optional
        The patient's note on the session (patient marks only).
    gaps : sequence of Gap, optional
        The timeline's gaps (e.g. `grid_gaps` with the stored blocks and the collector's
        events); default `grid_gaps` of the grid alone. Clipped to the session.

    Returns
    -------
    dict
        Keys ``start``, ``end`` (ISO-8601 UTC), ``activity``, ``source``, ``borg``,
        ``note``, ``duration_s``,
        ``active_s``, ``rest_breaks`` (``count``, ``total_s``, ``longest_s``), ``pauses``
        (``count``, ``total_s``), ``work_to_rest``, ``longest_active_s``,
        ``time_to_first_break_s``, ``mean_enmo_mg``, ``peak_enmo_mg``,
        ``personal_peak_mg``, ``pct_personal_peak``, ``minutes_by_class``,
        ``cutpoints``, ``mvpa_bouts``, ``met``, ``completeness`` (``wear_fraction``,
        ``nonwear_fraction``, ``gap_fraction``), ``gaps`` (`analysis.pipeline.gap_dicts`
        clipped to the session); see docs/analyze-json.md.

    Raises
    ------
    ValueError
        If ``end_ns <= start_ns``, or `source`, `borg` or `note` is invalid.
    """
    if int(end_ns) <= int(start_ns):
        raise ValueError(f"end_ns must be after start_ns, got start_ns={start_ns!r}, end_ns={end_ns!r}")
    check_session_marks(source, borg, note)
    if gaps is None:
        gaps = grid_gaps(grid, from_ns=start_ns, until_ns=end_ns)
    i0, i1 = grid.index(start_ns), grid.index(int(end_ns) - 1) + 1
    i1 = min(i1, len(grid)) if int(end_ns) > grid.t0_ns else i0
    sl = slice(i0, i1)
    act, worn, cov, n = grid.active[sl], grid.worn[sl], grid.covered_s[sl], grid.n_samples[sl]
    enmo, klass = grid.enmo_mg[sl], grid.klass[sl]
    duration_s = (int(end_ns) - int(start_ns)) / NS_PER_S
    active_s = float(cov[act].sum())
    breaks = rest_periods(act, min_s=REST_BREAK_S, valid=worn)
    pauses = rest_periods(act, min_s=PAUSE_S, max_s=REST_BREAK_S, valid=worn)
    first_break = float(cov[: breaks.start[0]][act[: breaks.start[0]]].sum()) if len(breaks) else None
    w_act = n[act].astype(np.float64)
    mean_enmo = float((enmo[act] * w_act).sum() / w_act.sum()) if w_act.sum() > 0 else None
    peak = _peak_minute_mg(enmo, n, cov, worn) if worn.any() else None
    pct = percent_of_peak(mean_enmo, personal_peak_mg) if mean_enmo is not None and personal_peak_mg else None
    names = grid.cutpoints.class_names
    minutes = {name: _r(float(cov[klass == code].sum()) / 60.0) for code, name in names.items()}
    mvpa = worn & (klass >= MODERATE)
    bouts = {f"{int(b // 60)}_min": len(detect_bouts(mvpa, epoch_s=1.0, min_duration_s=b, criterion=MVPA_CRITERION)) for b in MVPA_BOUTS_S}
    entry = compendium_met(activity)
    recorded = float(cov.sum())
    worn_s = float(cov[worn].sum())
    return {
        "start": iso_utc(start_ns),
        "end": iso_utc(end_ns),
        "activity": activity,
        "source": source,
        "borg": borg,
        "note": note,
        "duration_s": _r(duration_s),
        "active_s": _r(active_s),
        "rest_breaks": {"count": len(breaks), "total_s": _r(breaks.total_s), "longest_s": _r(breaks.longest_s)},
        "pauses": {"count": len(pauses), "total_s": _r(pauses.total_s)},
        "work_to_rest": _r(work_to_rest(active_s, breaks.total_s)),
        "longest_active_s": _r(longest_active_s(act)),
        "time_to_first_break_s": _r(first_break),
        "mean_enmo_mg": _r(mean_enmo),
        "peak_enmo_mg": _r(peak),
        "personal_peak_mg": _r(personal_peak_mg),
        "pct_personal_peak": _r(pct),
        "minutes_by_class": minutes,
        "cutpoints": grid.cutpoints.name,
        "mvpa_bouts": bouts,
        "met": None if entry is None else entry.met,
        "completeness": {
            "wear_fraction": _r(min(worn_s / duration_s, 1.0)),
            "nonwear_fraction": _r(min((recorded - worn_s) / duration_s, 1.0)),
            "gap_fraction": _r(min(max(1.0 - recorded / duration_s, 0.0), 1.0)),
        },
        "gaps": gap_dicts(gaps, start_ns, end_ns),
    }


def check_session_marks(source: str, borg: int | None, note: str | None) -> None:
    """Raise ValueError naming the parameter when a session's source, Borg rating or note is invalid."""
    if source not in SESSION_SOURCES:
        raise ValueError(f"source must be one of {', '.join(SESSION_SOURCES)}, got {source!r}")
    # Borg's RPE scale runs from 6 to 20 (architecture.md, issue 4 contract).
    if borg is not None and (isinstance(borg, bool) or not isinstance(borg, int | np.integer) or not 6 <= borg <= 20):
        raise ValueError(f"borg must be an integer from 6 to 20 or None, got {borg!r}")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"note must be a string or None, got {note!r}")


def summarise_effort_days(grid: SecondGrid, sessions: Sequence[tuple[int, int]], *, tz: str) -> list[dict[str, Any]]:
    """Per local day: wear time, active time, minutes per class and sessions.

    Parameters
    ----------
    grid : SecondGrid
        The recording's 1-s grid.
    sessions : sequence of (start_ns, end_ns)
        Session spans; a session belongs to the day of its start.
    tz : str
        IANA time zone of the patient.

    Returns
    -------
    list of dict
        One per local day with recorded seconds, in date order: ``date``, ``wear_min``,
        ``active_min``, ``minutes_by_class`` (wear only, as in `summarise_session`),
        ``sessions`` (count) and ``session_min`` (Σ durations).
    """
    zone = _zone(tz)
    rec = np.flatnonzero(grid.n_samples > 0)
    if rec.size == 0:
        return []
    start_ns = grid.t0_ns + rec.astype(np.int64) * NS_PER_S
    day, days = _local_day_index(start_ns, zone)
    nd = len(days)
    cov, worn, act, klass = grid.covered_s[rec], grid.worn[rec], grid.active[rec], grid.klass[rec]

    def per_day(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        return np.bincount(day, weights=np.where(mask, cov, 0.0), minlength=nd) / 60.0

    has = np.bincount(day, minlength=nd) > 0
    wear, active = per_day(worn), per_day(act)
    by_class = {name: per_day(klass == code) for code, name in grid.cutpoints.class_names.items()}
    count = np.zeros(nd, np.int64)
    sess_min = np.zeros(nd)
    if len(sessions):
        s0 = np.array([s for s, _ in sessions], dtype=np.int64)
        s1 = np.array([e for _, e in sessions], dtype=np.int64)
        sday, sdays = _local_day_index(s0, zone)
        index = {d: i for i, d in enumerate(days)}
        for d, a, b in zip(sday, s0, s1, strict=True):
            i = index.get(sdays[d])
            if i is not None:
                count[i] += 1
                sess_min[i] += (b - a) / NS_PER_S / 60.0
    return [
        {
            "date": days[i].isoformat(),
            "wear_min": _r(wear[i]),
            "active_min": _r(active[i]),
            "minutes_by_class": {name: _r(v[i]) for name, v in by_class.items()},
            "sessions": int(count[i]),
            "session_min": _r(sess_min[i]),
        }
        for i in np.flatnonzero(has)
    ]


def recording_summary(blocks: Sequence[SampleBlock]) -> dict[str, Any]:
    """Extent, size, rate and gaps of a recording's blocks.

    Returns
    -------
    dict
        ``start``, ``end`` (ISO-8601 UTC of the first sample and just after the last),
        ``n_samples``, ``fs_hz`` (rate of the most samples), ``blocks`` (count) and
        ``gaps``: a list of ``{"start", "end", "duration_s"}`` wherever a block starts
        more than half a sample period after the previous one ends (consecutive samples
        more than 1.5 periods apart).
    """
    bs = sorted((b for b in blocks if b.n_samples), key=lambda b: b.t0_ns)
    if not bs:
        raise ValueError("blocks must hold at least one sample, got none")
    ends = [b.end_ns for b in bs]
    gaps = []
    for prev, end, nxt in zip(bs, ends, bs[1:], strict=False):
        if nxt.t0_ns - end > 0.5 * prev.period_ns:
            gaps.append({"start": iso_utc(end), "end": iso_utc(nxt.t0_ns), "duration_s": _r((nxt.t0_ns - end) / NS_PER_S)})
    by_rate: dict[float, int] = {}
    for b in bs:
        by_rate[b.fs_hz] = by_rate.get(b.fs_hz, 0) + b.n_samples
    return {
        "start": iso_utc(bs[0].t0_ns),
        "end": iso_utc(max(ends)),
        "n_samples": int(sum(b.n_samples for b in bs)),
        "fs_hz": max(by_rate, key=lambda r: by_rate[r]),
        "blocks": len(bs),
        "gaps": gaps,
    }
