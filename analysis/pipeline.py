"""Recording → epoch table → day summaries (contract, docs/architecture.md).

`EpochTable` and `epoch_table` live in `analysis.epochs` and are re-exported here;
`summarise_days` composes non-wear detection (`analysis.nonwear`), intensity
classes (`analysis.intensity`) and gap accounting (`analysis.gaps`) per calendar day in
the patient's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from analysis.epochs import ROW_KEYS, EpochTable, epoch_table
from analysis.gaps import Gap, classify_gaps, clip_gaps, flag_spans
from analysis.intensity import DEFAULT_CUTPOINTS, classify, get_cutpoints
from analysis.nonwear import detect_nonwear
from analysis.samples import NS_PER_S

__all__ = [
    "DAY_KEYS",
    "ROW_KEYS",
    "EpochTable",
    "epoch_table",
    "epoch_block_spans",
    "gap_dicts",
    "iso_utc",
    "summarise_days",
]

#: Keys of every `summarise_days` dict, in output order (contract).
DAY_KEYS: tuple[str, ...] = (
    "date",
    "samples",
    "recorded_min",
    "wear_min",
    "nonwear_min",
    "sedentary_min",
    "light_min",
    "moderate_min",
    "vigorous_min",
    "mean_enmo_mg",
    "cutpoints",
    "gaps",
)
_DECIMALS = 2  # floats are rounded so JSON output is stable
# Gap durations to the ms: a gap clipped at midnight may be a fraction of a sample period.
_GAP_DECIMALS = 3
_UNIX_EPOCH = datetime(1970, 1, 1).date()


def _zone(tz: str) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise ValueError(f"tz must be an IANA time zone name, got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"tz must be an IANA time zone name, got {tz!r}") from None


def _local_midnight_ns(day: date, zone: ZoneInfo) -> int:
    # fold=0: a midnight that does not exist maps to the first instant of the day and an
    # ambiguous one to its first occurrence, so both are the start of the local day.
    local = datetime(day.year, day.month, day.day, tzinfo=zone)
    utc = local.utcoffset()
    assert utc is not None
    days = (day - _UNIX_EPOCH).days
    return (days * 86_400 - int(utc.total_seconds())) * NS_PER_S


def iso_utc(t_ns: int) -> str:
    """ISO-8601 UTC time with a ``Z`` suffix, to the microsecond when not whole seconds.

    Examples
    --------
    >>> iso_utc(1_700_000_000_000_000_000)
    '2023-11-14T22:13:20Z'
    """
    s, ns = divmod(int(t_ns), NS_PER_S)
    text = datetime.fromtimestamp(s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ns // 1000:06d}Z" if ns else "Z")


def gap_dicts(gaps: Iterable[Gap], start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """The gaps clipped to ``[start_ns, end_ns)`` as JSON objects ``start``, ``end``, ``cause``,
    ``duration_s`` (docs/analyze-json.md), in time order."""
    return [
        {"start": iso_utc(g.start_ns), "end": iso_utc(g.end_ns), "cause": g.cause,
         "duration_s": round(g.duration_s, _GAP_DECIMALS)}
        for g in clip_gaps(gaps, start_ns, end_ns)
    ]


def epoch_block_spans(epochs: EpochTable) -> list[tuple[int, int, float]]:
    """Stand-in block spans when only epochs are known: each epoch with samples, whole.

    Gaps found from them are exact to the epoch (a block ending inside an epoch counts the
    whole epoch as recorded); pass the real block spans where they are known.
    """
    step_ns = round(epochs.epoch_s * NS_PER_S)
    has = epochs.n_samples > 0
    fs = epochs.n_samples[has] / np.maximum(epochs.covered_s[has], 1e-9)
    return [(int(a), int(a) + step_ns, float(f)) for a, f in zip(epochs.start_ns[has].tolist(), fs.tolist(), strict=True)]


def _local_day_index(start_ns: NDArray[np.int64], zone: ZoneInfo) -> tuple[NDArray[np.int64], list[date]]:
    """Index of each epoch's local calendar day into the returned list of dates."""
    first = datetime.fromtimestamp(int(start_ns[0]) // NS_PER_S, tz=zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(int(start_ns[-1]) // NS_PER_S, tz=zone).date() + timedelta(days=1)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    bounds = np.array([_local_midnight_ns(d, zone) for d in days], dtype=np.int64)
    idx = np.searchsorted(bounds, start_ns, side="right") - 1
    return idx.astype(np.int64), days


def summarise_days(
    epochs: EpochTable,
    *,
    tz: str,
    cutpoints: str = DEFAULT_CUTPOINTS,
    block_spans: Sequence[tuple[int, int, float]] | None = None,
    gap_events: Sequence[Gap] = (),
    backlog: Sequence[tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """Per-day totals of recorded, wear, non-wear and intensity time.

    Parameters
    ----------
    epochs : EpochTable
        Epoch aggregates, e.g. from `epoch_table`. Non-wear is derived from them
        (`analysis.nonwear.detect_nonwear`, GGIR 2023 rule, methods.md §1.8).
    tz : str
        IANA time zone of the patient (e.g. ``"Europe/Berlin"``); an epoch belongs to the
        local calendar day of its start (DST-safe: days may last 23 or 25 h).
    cutpoints : str, optional
        Name in `analysis.intensity.CUTPOINTS`. Default ``"hildebrand2014_wrist_actigraph"``.
    block_spans : sequence of (start_ns, end_ns, fs_hz), optional
        The sample blocks behind `epochs`, for the day's ``gaps``; default
        `epoch_block_spans` (gaps to the epoch).
    gap_events : sequence of Gap, optional
        Gaps the collector reported (`analysis.gaps.classify_gaps` ``events``).
    backlog : sequence of (start_ns, end_ns), optional
        Time decoded by a collector but not uploaded yet (``not_uploaded``).

    Returns
    -------
    list of dict
        One dict per local day that has epochs, in date order, with keys `DAY_KEYS`:
        ``date`` (ISO yyyy-mm-dd), ``samples`` (int, Σ n_samples), ``recorded_min``
        (Σ covered_s / 60), ``wear_min`` and ``nonwear_min`` (their sum is
        ``recorded_min``), ``sedentary_min``, ``light_min``, ``moderate_min``,
        ``vigorous_min`` (wear epochs only; their sum is ``wear_min``), ``mean_enmo_mg``
        (mean ENMO over wear epochs weighted by samples, None without wear), and
        ``cutpoints`` (the name). Minutes count each epoch's ``covered_s`` / 60, so a
        partial epoch counts partially. Floats are rounded to 2 decimals, so sums of
        rounded parts can differ from the rounded total by a few 0.01. ``gaps``:
        `analysis.gaps.classify_gaps` over the whole timeline (non-wear from the same
        epochs), clipped to the local day, as `gap_dicts`.

    Raises
    ------
    ValueError
        If `tz` is not a known IANA zone or `cutpoints` is not a registered name.
    """
    zone = _zone(tz)
    cp = get_cutpoints(cutpoints)
    if len(epochs) == 0:
        return []
    day, days = _local_day_index(epochs.start_ns, zone)
    nd = len(days)
    minutes = epochs.covered_s / 60.0
    nonwear = detect_nonwear(epochs)
    wear = ~nonwear
    step_ns = round(epochs.epoch_s * NS_PER_S)
    gaps = classify_gaps(
        epoch_block_spans(epochs) if block_spans is None else block_spans,
        events=gap_events,
        nonwear=flag_spans(epochs.start_ns, step_ns, nonwear),
        backlog=backlog,
    )
    classes = classify(epochs.enmo_mg, cp)
    n = epochs.n_samples.astype(np.float64)

    def per_day(weights: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(day, weights=weights, minlength=nd)

    samples = np.bincount(day, weights=n, minlength=nd)
    has = np.bincount(day, minlength=nd) > 0
    recorded = per_day(minutes)
    wear_min = per_day(np.where(wear, minutes, 0.0))
    nonwear_min = per_day(np.where(nonwear, minutes, 0.0))
    class_min = [per_day(np.where(wear & (classes == c), minutes, 0.0)) for c in range(4)]
    wear_n = per_day(np.where(wear, n, 0.0))
    wear_enmo_n = per_day(np.where(wear, epochs.enmo_mg * n, 0.0))

    out: list[dict[str, Any]] = []
    for i in np.flatnonzero(has):
        mean_enmo = None if wear_n[i] <= 0 else round(float(wear_enmo_n[i] / wear_n[i]), _DECIMALS)
        out.append(
            {
                "date": days[i].isoformat(),
                "samples": int(round(samples[i])),
                "recorded_min": round(float(recorded[i]), _DECIMALS),
                "wear_min": round(float(wear_min[i]), _DECIMALS),
                "nonwear_min": round(float(nonwear_min[i]), _DECIMALS),
                "sedentary_min": round(float(class_min[0][i]), _DECIMALS),
                "light_min": round(float(class_min[1][i]), _DECIMALS),
                "moderate_min": round(float(class_min[2][i]), _DECIMALS),
                "vigorous_min": round(float(class_min[3][i]), _DECIMALS),
                "mean_enmo_mg": mean_enmo,
                "cutpoints": cp.name,
                "gaps": gap_dicts(gaps, _local_midnight_ns(days[i], zone), _local_midnight_ns(days[i] + timedelta(days=1), zone)),
            }
        )
    return out
