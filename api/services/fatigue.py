"""Fatigue windows stored per device stream (refreshed on ingest) and the fatigue of sessions.

On ingest, the windows a new block touches (those whose padded span ``[s − 15 s, s + 75 s)``
meets its samples) are recomputed from the stored blocks of that span, exactly as
`api.services.epochs.refresh` does for epochs, so every stored row equals the row of a whole
recording computation (`api.services.fatigue_windows`). Reads never touch raw blocks: the
fatigue of a session is computed from the stored windows and the patient's stored 1-s grid
(wear), with the patient's baseline per activity = their first `BASELINE_SESSIONS` sessions of
that activity (docs/fatigue-api.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analysis.fatigue import trend
from analysis.fatigue_features import FatigueWindows
from analysis.seconds import SecondGrid
from analysis.sessions import SessionSpan
from api.models import Device, FatigueWindowRow, Patient
from api.services import epochs
from api.services import fatigue_windows as fw


def refresh(
    db: Session, *, device_id: int, stream: str, spans: Sequence[tuple[int, int, float, int]]
) -> None:
    """Recompute and upsert the windows touched by new blocks given as (t0_ns, end_ns, fs_hz, n)."""
    for first, last in fw.merged_start_ranges((t0, end) for t0, end, _fs, _n in spans):
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
            db.execute(
                delete(FatigueWindowRow).where(*in_span, FatigueWindowRow.start_ns.in_(stale))
            )
        for start, (n, data) in rows.items():
            row = existing.get(start)
            if row is None:
                db.add(
                    FatigueWindowRow(
                        device_id=device_id, stream=stream, start_ns=start, n_samples=n, data=data
                    )
                )
            else:
                row.n_samples, row.data = n, data
        db.flush()


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
) -> None:
    """Set ``summary["fatigue"]`` of every session of a patient (all of them, in time order)."""
    device_ids = list(db.scalars(select(Device.id).where(Device.patient_id == patient_id)))
    spans = [span for span, _ in sessions]
    windows = [
        load(db, device_ids=device_ids, start_ns=lo, end_ns=hi + 1)
        for lo, hi in fw.session_start_ranges(spans)
    ]
    all_windows = FatigueWindows.concat(windows) if windows else FatigueWindows.empty()
    objects = fw.sessions_fatigue(all_windows, spans, grid=grid)
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
