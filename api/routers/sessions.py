"""Task sessions of a patient: detected and therapist-labelled (docs/analyze-json.md keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.deps import CurrentTherapist, DbSession, PatientId
from api.schemas import SessionLabelIn, SessionLabelRead
from api.services import patients, sessions

router = APIRouter(prefix="/patients", tags=["sessions"])


@router.get("/{patient_id}/sessions")
def read_sessions(
    patient_id: PatientId,
    db: DbSession,
    therapist: CurrentTherapist,
    from_: Annotated[datetime | None, Query(alias="from", description="ISO-8601 with offset")] = None,
    to: Annotated[datetime | None, Query(description="ISO-8601 with offset")] = None,
) -> list[dict[str, Any]]:
    """Sessions overlapping [from, to), as `otmon analyze --json` reports them."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    from_ns = None if from_ is None else sessions.time_ns(from_, "from")
    to_ns = None if to is None else sessions.time_ns(to, "to")
    result = sessions.list_sessions(db, patient=patient, from_ns=from_ns, to_ns=to_ns)
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="read_sessions")
    db.commit()
    return result


@router.post("/{patient_id}/sessions", response_model=SessionLabelRead, status_code=status.HTTP_201_CREATED)
def label_session(
    patient_id: PatientId, body: SessionLabelIn, db: DbSession, therapist: CurrentTherapist
) -> dict[str, Any]:
    """Label a task session (409 when it overlaps another label of the patient)."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    label = sessions.add_label(
        db, patient=patient, user=therapist, start=body.start, end=body.end, activity=body.activity.strip()
    )
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="label_session")
    db.commit()
    return label
