"""Fatigue windows stored per device stream (refreshed on ingest) and the fatigue of sessions.

On ingest, the windows a new block touches (those whose padded span ``[s − 15 s, s + 75 s)``
meets its samples) are recomputed from the stored blocks of that span, exactly as
`api.services.epochs.refresh` does for epochs, so every stored row equals the row of a whole
recording computation (`api.services.fatigue_windows`). Each row carries the
`FEATURES_VERSION` it was computed with; a read first recomputes the patient's rows of another
version (`ensure_current`), and otherwise never touches raw blocks: the fatigue of a session is
computed from the stored windows, the patient's stored 1-s grid (wear) and the blocks' rates
(the rate gate), with the patient's baseline per activity = their first `BASELINE_SESSIONS`
sessions of that activity (docs/fatigue-api.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, delete, func, or_, select
from sqlalchemy.orm import Session

from analysis.fatigue import trend
from analysis.fatigue_features import FatigueWindows
from analysis.fatigue_windows import FEATURES_VERSION
from analysis.seconds import SecondGrid
from analysis.sessions import SessionSpan
from api.models import Device, FatigueWindowRow, Patient
from api.services import epochs
from api.services import fatigue_windows as fw

#: Windows recomputed per step when stored rows are of another features version: 2 h, so one
#: step reads at most 2 h of blocks (the region size of `fw.MAX_REGION_SAMPLES` at 100 Hz).
RECOMPUTE_WINDOWS = 240


def refresh(
    db: Session, *, device_id: int, stream: str, spans: Sequence[tuple[int, int, float, int]]
) -> None:
    """Recompute and upsert the windows touched by new blocks given as (t0_ns, end_ns, fs_hz, n)."""
    for first, last in fw.merged_start_ranges((t0, end) for t0, end, _fs, _n in spans):
        refresh_starts(
            db, device_id=device_id, stream=stream, first_start_ns=first, last_start_ns=last
        )


def refresh_starts(
    db: Session, *, device_id: int, stream: str, first_start_ns: int, last_start_ns: int
) -> int:
    """Recompute the stream's windows starting in ``[first, last]`` from the stored blocks.

    Rows are upserted with the current `FEATURES_VERSION`, rows of windows that no longer hold
    samples deleted (flushed). Returns the number of rows written.
    """
    first, last = first_start_ns, last_start_ns
    lo_ns, hi_ns = fw.region(first, last)
    blocks = epochs.load_blocks(
        db, device_id=device_id, stream=stream, start_ns=lo_ns, end_ns=hi_ns
    )
    fresh = fw.windows_for_starts(blocks, first_start_ns=first, last_start_ns=last)
    rows = dict(
        zip(
            fresh.windows.start_ns.tolist(),
            zip(fresh.n_samples.tolist(), fw.encode(fresh.windows), strict=True),
            strict=True,
        )
    )
    in_span = (
        FatigueWindowRow.device_id == device_id,
        FatigueWindowRow.stream == stream,
        FatigueWindowRow.start_ns >= first,
        FatigueWindowRow.start_ns <= last,
    )
    existing = {r.start_ns: r for r in db.scalars(select(FatigueWindowRow).where(*in_span))}
    stale = [s for s in existing if s not in rows]
    if stale:
        db.execute(delete(FatigueWindowRow).where(*in_span, FatigueWindowRow.start_ns.in_(stale)))
    for start, (n, data) in rows.items():
        row = existing.get(start)
        if row is None:
            db.add(
                FatigueWindowRow(
                    device_id=device_id,
                    stream=stream,
                    start_ns=start,
                    n_samples=n,
                    data=data,
                    features_version=FEATURES_VERSION,
                )
            )
        else:
            row.n_samples, row.data, row.features_version = n, data, FEATURES_VERSION
    db.flush()
    return len(rows)


def _of_another_version(patient_id: int) -> tuple[ColumnElement[bool], ...]:
    """Conditions selecting the patient's stored windows whose features are not current."""
    v = FatigueWindowRow.features_version
    return (
        FatigueWindowRow.device_id.in_(select(Device.id).where(Device.patient_id == patient_id)),
        or_(v.is_(None), v < FEATURES_VERSION, v > FEATURES_VERSION),
    )


def stale_probe(patient_id: int) -> Select[int]:
    """A device of the patient with a stored window of another version (none: all current).

    One query, two seeks per device on ``ix_fatigue_windows_device_version`` (device_id,
    features_version): the first and the last row of the device in index order, each read as
    ``coalesce(features_version, -1)``. Where NULLs sort (last in PostgreSQL, first in SQLite),
    one of the two ends is a NULL row if there is any, and otherwise they are the lowest and
    the highest version: every row is current iff both ends equal `FEATURES_VERSION` (a device
    without rows gives no row, NULL, and is not stale). Conditions such as ``IS NULL OR <>``
    instead let PostgreSQL scan the table while old rows are common (measured).
    """
    v = FatigueWindowRow.features_version

    def end_of_index(order: ColumnElement[Any]) -> ScalarSelect[int]:
        return (
            select(func.coalesce(v, -1))
            .where(FatigueWindowRow.device_id == Device.id)
            .order_by(order)
            .limit(1)
            .scalar_subquery()
        )

    first, last = end_of_index(v.asc()), end_of_index(v.desc())
    return (
        select(Device.id)
        .where(Device.patient_id == patient_id)
        .where(or_(first != FEATURES_VERSION, last != FEATURES_VERSION))
        .limit(1)
    )


def _start_ranges(starts: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted window starts as ``(first, last)`` ranges of at most `RECOMPUTE_WINDOWS` windows,
    split where consecutive starts are more than one step apart."""
    max_ns = RECOMPUTE_WINDOWS * fw.STEP_NS
    out: list[tuple[int, int]] = []
    for s in starts:
        if out and s <= out[-1][1] + fw.STEP_NS and s - out[-1][0] < max_ns:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def ensure_current(db: Session, *, patient_id: int) -> int:
    """Recompute the patient's stored windows of another `FEATURES_VERSION` (NULL included).

    When every row is current this is one indexed query and nothing else. Otherwise the
    patient's devices are locked as ingest locks them (device rows, then the patient in
    `api.services.sessions.invalidate`), so no upload changes their blocks meanwhile, and the
    stale windows are recomputed from the stored sample blocks (`refresh_starts`, the ingest
    code) in the caller's transaction; samples are never touched. Returns the number of stale
    rows found (0: nothing recomputed); the caller then drops the sessions cache.
    """
    if db.scalars(stale_probe(patient_id)).first() is None:
        return 0
    db.execute(
        select(Device.id)
        .where(Device.patient_id == patient_id)
        .order_by(Device.id)
        .with_for_update()
    )
    stale = db.execute(
        select(FatigueWindowRow.device_id, FatigueWindowRow.stream, FatigueWindowRow.start_ns)
        .where(*_of_another_version(patient_id))
        .order_by(FatigueWindowRow.device_id, FatigueWindowRow.stream, FatigueWindowRow.start_ns)
    ).all()
    for (device_id, stream), group in groupby(stale, key=lambda r: (r[0], r[1])):
        for first, last in _start_ranges([int(r[2]) for r in group]):
            refresh_starts(
                db, device_id=device_id, stream=stream, first_start_ns=first, last_start_ns=last
            )
    return len(stale)


def load(db: Session, *, device_ids: Sequence[int], start_ns: int, end_ns: int) -> FatigueWindows:
    """Stored windows starting in ``[start_ns, end_ns)``, one per start.

    Where several streams cover a window, the one with the most samples in it is kept (ties:
    lowest device id, then stream name), as `api.services.epochs.stored_rows` does for epochs.
    """
    if not device_ids:
        return FatigueWindows.empty()
    stmt = (
        select(FatigueWindowRow.start_ns, FatigueWindowRow.data)
        .where(FatigueWindowRow.device_id.in_(device_ids))
        .where(FatigueWindowRow.start_ns >= start_ns, FatigueWindowRow.start_ns < end_ns)
        .order_by(
            FatigueWindowRow.start_ns,
            FatigueWindowRow.n_samples.desc(),
            FatigueWindowRow.device_id,
            FatigueWindowRow.stream,
        )
    )
    starts: list[int] = []
    datas: list[bytes] = []
    for start, data in db.execute(stmt):
        if starts and starts[-1] == start:
            continue
        starts.append(int(start))
        datas.append(data)
    return fw.decode(starts, datas)


def add_to_sessions(
    db: Session,
    *,
    patient_id: int,
    grid: SecondGrid,
    sessions: Sequence[tuple[SessionSpan, dict[str, Any]]],
    block_spans: Sequence[tuple[int, int, float]] = (),
) -> None:
    """Set ``summary["fatigue"]`` of every session of a patient (all of them, in time order);
    ``block_spans``: (t0_ns, end_ns, fs_hz) of the patient's stored blocks, for the rate gate."""
    device_ids = list(db.scalars(select(Device.id).where(Device.patient_id == patient_id)))
    spans = [span for span, _ in sessions]
    windows = [
        load(db, device_ids=device_ids, start_ns=lo, end_ns=hi + 1)
        for lo, hi in fw.session_start_ranges(spans)
    ]
    all_windows = FatigueWindows.concat(windows) if windows else FatigueWindows.empty()
    objects = fw.sessions_fatigue(all_windows, spans, grid=grid, block_spans=block_spans)
    for (_span, summary), obj in zip(sessions, objects, strict=True):
        summary["fatigue"] = obj


def patient_sessions(db: Session, *, patient: Patient) -> list[dict[str, Any]]:
    """Every session object of the patient (from the sessions cache, which carries ``fatigue``)."""
    from api.services import sessions  # sessions imports this module (add_to_sessions)

    return sessions.list_sessions(db, patient=patient, from_ns=None, to_ns=None)


def points(sessions: Sequence[dict[str, Any]], activity: str | None) -> list[dict[str, Any]]:
    """Per-session fatigue points (docs/fatigue-api.md), of ``activity``'s sessions if given."""
    out = []
    for s in sessions:
        if activity is not None and s.get("activity") != activity:
            continue
        f = s.get("fatigue") or {}
        out.append(
            {
                "start": s["start"],
                "end": s["end"],
                "activity": s.get("activity"),
                "index": f.get("index"),
                "index_between": f.get("index_between"),
                "delta": f.get("delta"),
                "quality": f.get("quality"),
            }
        )
    return out


def patient_fatigue(db: Session, *, patient: Patient, activity: str | None) -> dict[str, Any]:
    """``{"activity", "points", "trend"}``: the trend is of ``index_between`` over weeks."""
    pts = points(patient_sessions(db, patient=patient), activity)
    series = [(datetime.fromisoformat(p["start"]), p["index_between"]) for p in pts]
    return {"activity": activity, "points": pts, "trend": trend(series)}
