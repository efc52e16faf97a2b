"""Devices of a patient; a device token is returned once and stored only as its SHA-256."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.pipeline import iso_utc
from api.models import Device, DeviceStatusRow, Patient
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


def _iso(t_ns: int | None) -> str | None:
    return None if t_ns is None else iso_utc(t_ns)


def with_status(db: Session, *, devices: list[Device]) -> list[dict[str, Any]]:
    """The devices with their latest reported status (`api.schemas.DeviceStatusRead` keys)."""
    out = []
    for d in devices:
        st = db.get(DeviceStatusRow, d.id)
        out.append(
            {
                "id": d.id,
                "patient_id": d.patient_id,
                "profile": d.profile,
                "name": d.name,
                "last_seen": None if st is None else _iso(st.at_ns),
                "link": None if st is None else st.link,
                "battery_pct": None if st is None else st.battery_pct,
                "backlog_blocks": None if st is None else st.backlog_blocks,
                "backlog_samples": None if st is None else st.backlog_samples,
                "backlog_oldest": None if st is None else _iso(st.backlog_oldest_t0_ns),
                "decoded_until": None if st is None else _iso(st.decoded_until_ns),
            }
        )
    return out
