"""Devices of a patient; a device token is returned once and stored only as its SHA-256."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Device, Patient
from api.security import hash_device_token, new_device_token


def create(db: Session, *, patient: Patient, profile: str, name: str) -> tuple[Device, str]:
    """Register a device for ``patient``; return it with its plaintext token (flushed)."""
    token = new_device_token()
    device = Device(
        patient_id=patient.id, profile=profile, name=name, token_sha256=hash_device_token(token)
    )
    db.add(device)
    db.flush()
    return device, token


def list_(db: Session, *, patient: Patient) -> list[Device]:
    """The patient's devices, by id."""
    stmt = select(Device).where(Device.patient_id == patient.id).order_by(Device.id)
    return list(db.scalars(stmt))
