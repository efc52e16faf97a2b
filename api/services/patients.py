"""Patients, always scoped to the therapist who owns them; every read is audited."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import Conflict, NotFound
from api.models import AuditEntry, Patient, User


def audit(db: Session, *, user: User, patient_ids: Sequence[int], action: str) -> None:
    """Record that ``user`` read data of each patient in ``patient_ids``."""
    db.add_all(AuditEntry(user_id=user.id, patient_id=pid, action=action) for pid in patient_ids)


def create(db: Session, *, therapist: User, code: str, timezone: str = "UTC") -> Patient:
    """Create a patient owned by ``therapist`` (flushed).

    Raises:
        Conflict: the therapist already has a patient with this code.
    """
    exists = select(Patient.id).where(Patient.therapist_id == therapist.id, Patient.code == code)
    if db.scalars(exists).first() is not None:
        raise Conflict(f"a patient with code {code!r} already exists")
    patient = Patient(therapist_id=therapist.id, code=code, timezone=timezone)
    db.add(patient)
    db.flush()
    return patient


def get(db: Session, *, patient_id: int, therapist: User) -> Patient:
    """The therapist's patient ``patient_id``.

    Raises:
        NotFound: no such patient, or it belongs to another therapist.
    """
    stmt = select(Patient).where(Patient.id == patient_id, Patient.therapist_id == therapist.id)
    patient = db.scalars(stmt).one_or_none()
    if patient is None:
        raise NotFound("patient", patient_id)
    return patient


def list_(db: Session, *, therapist: User) -> list[Patient]:
    """The therapist's patients, by id."""
    stmt = select(Patient).where(Patient.therapist_id == therapist.id).order_by(Patient.id)
    return list(db.scalars(stmt))
