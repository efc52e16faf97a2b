"""Fatigue index per session of a patient and its trend over weeks (issue 6, docs/fatigue-api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CurrentTherapist, DbSession, PatientId
from api.services import fatigue, patients

router = APIRouter(prefix="/patients", tags=["fatigue"])

Activity = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="Only sessions of this activity (task label)"),
]


@router.get("/{patient_id}/fatigue")
def read_fatigue(
    patient_id: PatientId, db: DbSession, therapist: CurrentTherapist, activity: Activity = None
) -> dict[str, Any]:
    """Per-session fatigue points and their weekly Theil–Sen trend, from the stored windows."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    result = fatigue.patient_fatigue(db, patient=patient, activity=activity)
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="read_fatigue")
    db.commit()
    return result
