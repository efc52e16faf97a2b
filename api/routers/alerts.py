"""Fatigue alerts raised for a patient (issue 6, docs/fatigue-api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CurrentTherapist, DbSession, PatientId
from api.services import alerts, patients

router = APIRouter(prefix="/patients", tags=["alerts"])


@router.get("/{patient_id}/alerts")
def read_alerts(
    patient_id: PatientId,
    db: DbSession,
    therapist: CurrentTherapist,
    k: Annotated[int, Query(ge=1, le=50, description="Sessions above baseline needed")] = alerts.K,
    n: Annotated[
        int, Query(ge=1, le=50, description="Among the last n sessions of a task")
    ] = alerts.N,
) -> list[dict[str, Any]]:
    """Alerts: sessions of one task above the patient's baseline in k of the last n."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    result = alerts.patient_alerts(db, patient=patient, k=k, n=n)
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="read_alerts")
    db.commit()
    return result
