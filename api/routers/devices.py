"""Devices of a patient; the device token is shown once, at creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import CurrentTherapist, DbSession, PatientId
from api.schemas import DeviceCreate, DeviceCreated, DeviceStatusRead
from api.services import devices, patients

router = APIRouter(prefix="/patients/{patient_id}/devices", tags=["devices"])


@router.post("", response_model=DeviceCreated, status_code=status.HTTP_201_CREATED)
def create_device(
    patient_id: PatientId, body: DeviceCreate, db: DbSession, therapist: CurrentTherapist
) -> DeviceCreated:
    """Register a device for one of the caller's patients; the response holds its token."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    device, token = devices.create(db, patient=patient, profile=body.profile, name=body.name)
    db.commit()
    return DeviceCreated(
        id=device.id, patient_id=device.patient_id, profile=device.profile, name=device.name,
        token=token,
    )


@router.get("", response_model=list[DeviceStatusRead])
def list_devices(patient_id: PatientId, db: DbSession, therapist: CurrentTherapist) -> list[dict[str, Any]]:
    """The devices of one of the caller's patients (without tokens), with their collector's
    latest status: last seen, link, battery, backlog (null when never reported)."""
    patient = patients.get(db, patient_id=patient_id, therapist=therapist)
    found = devices.with_status(db, devices=devices.list_(db, patient=patient))
    patients.audit(db, user=therapist, patient_ids=[patient.id], action="list_devices")
    db.commit()
    return found
