"""Small builders for API tests: users, tokens, patients, devices and upload blocks."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from fastapi import FastAPI
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import (
    AuditEntry,
    Device,
    DeviceEvent,
    DeviceStatusRow,
    EpochRow,
    Patient,
    SampleBlockRow,
    User,
)
from api.security import create_access_token, hash_password
from api.services import devices, patients

PASSWORD = "correct horse battery staple"
T0_NS = 1_709_287_200_000_000_000  # 2024-03-01 10:00:00 UTC


@dataclass
class Therapist:
    user: User
    headers: dict[str, str]


@lru_cache(maxsize=1)
def password_hash() -> str:
    """Argon2id hash of PASSWORD, computed once (hashing costs ~0.2 s by design)."""
    return hash_password(PASSWORD)


def make_therapist(db: Session, app: FastAPI, email: str = "ot@example.org") -> Therapist:
    """A therapist with password PASSWORD and a valid access token (as users.create stores it)."""
    user = User(email=email.lower(), password_hash=password_hash(), role="therapist", is_active=True)
    db.add(user)
    db.commit()
    token = create_access_token(user_id=user.id, secret_key=app.state.secret_key, ttl_s=600)
    return Therapist(user=user, headers={"Authorization": f"Bearer {token}"})


def make_patient(db: Session, therapist: Therapist, code: str = "P001", tz: str = "UTC") -> Patient:
    patient = patients.create(db, therapist=therapist.user, code=code, timezone=tz)
    db.commit()
    return patient


def make_device(db: Session, patient: Patient) -> tuple[Device, dict[str, str]]:
    device, token = devices.create(db, patient=patient, profile="polar_pmd", name="H10")
    db.commit()
    return device, {"Authorization": f"Bearer {token}"}


def encode(accel_g: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(accel_g, dtype="<f4").tobytes()).decode("ascii")


def block_json(
    accel_g: NDArray[Any], *, seq: int, t0_ns: int, fs_hz: float = 50.0, stream: str = "acc"
) -> dict[str, Any]:
    return {
        "stream": stream,
        "seq": seq,
        "t0_ns": t0_ns,
        "fs_hz": fs_hz,
        "n_samples": int(accel_g.shape[0]),
        "dtype": "float32",
        "data": encode(accel_g),
    }


def random_accel(rng: np.random.Generator, n: int) -> NDArray[np.float32]:
    return (rng.normal(0.0, 0.3, size=(n, 3)) + [0.0, 0.0, 1.0]).astype(np.float32)


def snapshot(db: Session) -> dict[str, Any]:
    """Everything ingest can write, as comparable values (row counts and content digests)."""
    db.expire_all()
    blocks = db.execute(
        select(
            SampleBlockRow.id, SampleBlockRow.device_id, SampleBlockRow.stream, SampleBlockRow.seq,
            SampleBlockRow.t0_ns, SampleBlockRow.end_ns, SampleBlockRow.n_samples,
            SampleBlockRow.data_sha256,
        ).order_by(SampleBlockRow.id)
    ).all()
    epochs = db.scalars(select(EpochRow).order_by(EpochRow.id)).all()
    digest = hashlib.sha256(
        repr([(e.id, e.device_id, e.stream, e.start_ns, e.n_samples, e.enmo_mg, e.sum_x_g)
              for e in epochs]).encode()
    ).hexdigest()
    events = db.execute(
        select(DeviceEvent.id, DeviceEvent.device_id, DeviceEvent.event_id, DeviceEvent.kind,
               DeviceEvent.body_sha256).order_by(DeviceEvent.id)
    ).all()
    status = db.execute(
        select(DeviceStatusRow.device_id, DeviceStatusRow.at_ns, DeviceStatusRow.link,
               DeviceStatusRow.battery_pct, DeviceStatusRow.backlog_samples)
        .order_by(DeviceStatusRow.device_id)
    ).all()
    return {"blocks": [tuple(r) for r in blocks], "n_epochs": len(epochs), "epochs": digest,
            "events": [tuple(r) for r in events], "status": [tuple(r) for r in status]}


def count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def audit_rows(db: Session, patient_id: int) -> list[tuple[int, str]]:
    db.expire_all()
    rows = db.execute(
        select(AuditEntry.user_id, AuditEntry.action)
        .where(AuditEntry.patient_id == patient_id)
        .order_by(AuditEntry.id)
    ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]
