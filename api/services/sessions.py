"""Task sessions of a patient: detected and labelled, computed from the stored epochs and
seconds (never from raw blocks) and cached in the sessions table until new data or a new
label invalidates it.

Ingest re-grades only the changed regions of the patient's stored 1-s grid
(`api.services.grid`); sessions are then detected and summarised over that grid. The cache
of session objects is per patient, not per day: `personal_peak_mg` (P95 of 1-min ENMO over
the whole history, docs/analyze-json.md) enters every session, and the objects must equal
`otmon analyze --json` exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analysis.effort import iso_utc
from analysis.intensity import DEFAULT_CUTPOINTS, get_cutpoints
from analysis.samples import NS_PER_S
from analysis.seconds import SecondGrid, grid_personal_peak_mg
from analysis.sessions import SessionSpan, detect_sessions, patient_sessions, summarise_sessions
from api.errors import Conflict, Invalid
from api.models import Device, LabelledSessionRow, Patient, SessionCacheState, SessionRow, User
from api.schemas import INT64_MAX
from api.services import events, fatigue, grid


def time_ns(value: datetime, name: str) -> int:
    """UTC ns of an aware datetime.

    Raises:
        Invalid: naive, or outside the int64 ns range (years 1678-2261).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise Invalid(f"{name} must have a time zone offset, got {value.isoformat()!r}")
    whole = value.replace(microsecond=0)
    try:
        ns = int(whole.timestamp()) * NS_PER_S + value.microsecond * 1000
    except (OverflowError, OSError, ValueError) as exc:
        raise Invalid(f"{name} is out of range: {value.isoformat()!r}") from exc
    if not -INT64_MAX <= ns <= INT64_MAX:
        raise Invalid(f"{name} is out of range: {value.isoformat()!r}")
    return ns


def invalidate(db: Session, *, patient_id: int) -> None:
    """Drop the patient's cached sessions (called by ingest and when a label is added)."""
    # The patient row lock orders this against a concurrent `list_sessions` filling the cache
    # from an older snapshot (see there).
    db.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
    db.execute(delete(SessionCacheState).where(SessionCacheState.patient_id == patient_id))
    db.execute(delete(SessionRow).where(SessionRow.patient_id == patient_id))


def _empty_grid(t0_ns: int) -> SecondGrid:
    """A grid with no seconds, for labelled sessions of a patient without data."""
    z = np.empty(0)
    cp = get_cutpoints(DEFAULT_CUTPOINTS)
    return SecondGrid(t0_ns, z, np.empty(0, np.int64), z, np.empty(0, bool), np.empty(0, np.int8), np.empty(0, bool), 0.0, cp)


def _overlaps(a: SessionSpan, others: list[SessionSpan]) -> bool:
    return any(a.start_ns < b.end_ns and b.start_ns < a.end_ns for b in others)


def labels(db: Session, *, patient: Patient, device_ids: list[int]) -> list[SessionSpan]:
    """Labelled sessions: the therapist's, and the patient's task marks that overlap none of
    them (a therapist label wins), in time order."""
    therapist = [
        SessionSpan(r.start_ns, r.end_ns, r.activity, "therapist")
        for r in db.scalars(
            select(LabelledSessionRow).where(LabelledSessionRow.patient_id == patient.id).order_by(LabelledSessionRow.start_ns)
        )
    ]
    marks = [
        {"kind": e.kind, "at_ns": e.at_ns, **e.fields} for e in events.task_marks(db, device_ids=device_ids)
    ]
    patient_marked = [s for s in patient_sessions(marks) if not _overlaps(s, therapist)]
    return sorted(therapist + patient_marked, key=lambda s: s.start_ns)


def compute(db: Session, *, patient: Patient) -> list[tuple[SessionSpan, bool, dict[str, Any]]]:
    """Every session of the patient (labelled ones replace the detected ones they overlap)."""
    device_ids = list(db.scalars(select(Device.id).where(Device.patient_id == patient.id)))
    labelled = labels(db, patient=patient, device_ids=device_ids)
    grid.rebuild_dirty(db, patient_id=patient.id)
    stored = grid.load(db, patient_id=patient.id)
    peak: float | None = None
    detected: list[SessionSpan] = []
    if stored is not None:
        peak = grid_personal_peak_mg(stored)
        detected = [d for d in detect_sessions(stored) if not _overlaps(d, labelled)]
    elif labelled:
        stored = _empty_grid(labelled[0].start_ns)
    else:
        return []
    spans = sorted([(s, False) for s in detected] + [(s, True) for s in labelled], key=lambda p: p[0].start_ns)
    block_spans = events.block_spans(db, device_ids=device_ids)
    summaries = summarise_sessions(
        stored,
        [s for s, _ in spans],
        personal_peak_mg=peak,
        block_spans=block_spans,
        gap_events=events.gap_events(db, device_ids=device_ids),
        backlog=events.backlog_spans(db, device_ids=device_ids),
    )
    # Fatigue from the stored windows (issue 6, api.services.fatigue), as `otmon analyze`.
    fatigue.add_to_sessions(
        db,
        patient_id=patient.id,
        grid=stored,
        sessions=list(zip([s for s, _ in spans], summaries, strict=True)),
        block_spans=block_spans,
    )
    return [(s, is_label, summary) for (s, is_label), summary in zip(spans, summaries, strict=True)]


def list_sessions(db: Session, *, patient: Patient, from_ns: int | None, to_ns: int | None) -> list[dict[str, Any]]:
    """Session objects overlapping ``[from_ns, to_ns)``, from the cache (filled when invalid)."""
    # Stored fatigue windows of another features version are recomputed first (locking the
    # devices before the patient, as ingest does); the cached objects scored them: drop them.
    if fatigue.ensure_current(db, patient_id=patient.id):
        invalidate(db, patient_id=patient.id)
    # Lock the patient row so an ingest committing meanwhile cannot leave a stale cache marked
    # valid: it invalidates under the same lock, after this transaction has committed.
    db.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    state = db.get(SessionCacheState, patient.id)
    if state is None:
        db.execute(delete(SessionRow).where(SessionRow.patient_id == patient.id))
        for span, labelled, summary in compute(db, patient=patient):
            db.add(SessionRow(patient_id=patient.id, start_ns=span.start_ns, end_ns=span.end_ns, labelled=labelled, summary=summary))
        db.add(SessionCacheState(patient_id=patient.id))
        db.flush()
    stmt = select(SessionRow.summary).where(SessionRow.patient_id == patient.id)
    if from_ns is not None:
        stmt = stmt.where(SessionRow.end_ns > from_ns)
    if to_ns is not None:
        stmt = stmt.where(SessionRow.start_ns < to_ns)
    return [dict(s) for s in db.scalars(stmt.order_by(SessionRow.start_ns, SessionRow.id))]


def add_label(
    db: Session, *, patient: Patient, user: User, start: datetime, end: datetime, activity: str
) -> dict[str, Any]:
    """Store a therapist's labelled session (flushed) and invalidate the cache.

    Raises:
        Invalid: naive or out-of-range times, ``end <= start``.
        Conflict: it overlaps another labelled session of the patient.
    """
    start_ns, end_ns = time_ns(start, "start"), time_ns(end, "end")
    if end_ns <= start_ns:
        raise Invalid(f"end must be after start, got start={start.isoformat()!r}, end={end.isoformat()!r}")
    invalidate(db, patient_id=patient.id)  # also locks the patient: overlap checks serialise
    clash = db.scalars(
        select(LabelledSessionRow)
        .where(LabelledSessionRow.patient_id == patient.id)
        .where(LabelledSessionRow.start_ns < end_ns, LabelledSessionRow.end_ns > start_ns)
        .limit(1)
    ).first()
    if clash is not None:
        raise Conflict(
            f"the session overlaps labelled session {clash.id} ({clash.activity!r}, "
            f"{iso_utc(clash.start_ns)} to {iso_utc(clash.end_ns)})"
        )
    row = LabelledSessionRow(patient_id=patient.id, start_ns=start_ns, end_ns=end_ns, activity=activity, created_by=user.id)
    db.add(row)
    db.flush()
    return {"id": row.id, "start": iso_utc(start_ns), "end": iso_utc(end_ns), "activity": activity}
