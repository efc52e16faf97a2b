"""Patients of the logged-in therapist, and their day summaries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import CurrentTherapist, DbSession, PatientId
from api.models import Patient
from api.schemas import DayRead, PatientCreate, PatientRead
from api.services import patients, summaries

router = APIRouter(prefix="/patients", tags=["patients"])


@router.post("", response_model=PatientRead, status_code=status.HTTP_201_CREATED)
def create_patient(body: PatientCreate, db: DbSession, therapist: CurrentTherapist) -> Patient:
    """Create a patient owned by the caller."""
    patient = patients.create(db, therapist=therapist, code=body.code, timezone=body.timezone)
    db.commit()
    return patient


@router.get("", response_model=list[PatientRead])
def list_patients(db: DbSession, therapist: CurrentTherapist) -> list[Patient]:
    """The caller's patients."""
    found = patients.list_(db, therapist=therapist)
    patients.audit(db, user=therapist, patient_ids=[p.id for p in found], action="list_patients")
    db.commit()
    return found


@router.get("/{patient_id}", response_model=PatientRead)
def read_patient(patient_id: PatientId, db: DbSession, therapist: CurrentTherapist) -> Patient:
    """One of the caller's patients (404 for anyone else's)."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="read_patient")
    db.commit()
    return patient


@router.get("/{patient_id}/days", response_model=list[DayRead])
def read_days(patient_id: PatientId, db: DbSession, therapist: CurrentTherapist) -> list[dict[str, Any]]:
    """Day summaries in the patient's time zone, from the stored epochs."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    result = summaries.days(db, patient=patient)
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="read_days")
    db.commit()
    return result
