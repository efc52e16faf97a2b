"""Idempotent storage of collector events (gaps, task marks) and of the latest device status."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import Conflict
from api.models import Device, DeviceEvent, DeviceStatusRow
from api.schemas import EventAck, EventIn, GapEventIn, StatusIn

# Columns of device_events; every other field of an event goes to its `fields` JSON.
_COLUMNS = ("id", "kind", "stream", "at_ns", "start_ns", "end_ns")


def body_sha256(event: EventIn) -> str:
    """Hex SHA-256 of the event's canonical JSON (defaults filled, keys sorted)."""
    canonical = json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _row(device: Device, event: EventIn, digest: str) -> DeviceEvent:
    data: dict[str, Any] = event.model_dump(mode="json")
    return DeviceEvent(
        device_id=device.id,
        event_id=event.id,
        kind=event.kind,
        stream=event.stream if isinstance(event, GapEventIn) else None,
        at_ns=data.get("at_ns"),
        start_ns=data.get("start_ns"),
        end_ns=data.get("end_ns"),
        fields={k: v for k, v in data.items() if k not in _COLUMNS},
        body_sha256=digest,
    )


def store_events(db: Session, *, device: Device, events: list[EventIn]) -> tuple[list[EventAck], bool]:
    """Store the events not stored yet (flushed); return the acks in request order and
    whether anything new was stored. The caller holds the device lock (see ingest.store).

    Raises:
        Conflict: an id given twice with different bodies, or already stored with another body.
    """
    by_id: dict[str, tuple[EventIn, str]] = {}
    for i, event in enumerate(events):
        digest = body_sha256(event)
        seen = by_id.get(event.id)
        if seen is not None and seen[1] != digest:
            raise Conflict(f"events[{i}]: id {event.id} appears twice with different content")
        by_id[event.id] = (event, digest)
    stored: dict[str, str] = {}
    ids = list(by_id)
    # Bounded IN lists (SQLite allows 32766 parameters; stay far below).
    for k in range(0, len(ids), 500):
        chunk = ids[k : k + 500]
        rows = db.execute(
            select(DeviceEvent.event_id, DeviceEvent.body_sha256).where(
                DeviceEvent.device_id == device.id, DeviceEvent.event_id.in_(chunk)
            )
        ).all()
        stored.update({event_id: digest for event_id, digest in rows})
    new = False
    for event_id, (event, digest) in by_id.items():
        known = stored.get(event_id)
        if known is None:
            db.add(_row(device, event, digest))
            new = True
        elif known != digest:
            raise Conflict(f"event id {event_id} is already stored with different content")
    if new:
        db.flush()
    return [EventAck(id=e.id) for e in events], new


def store_status(db: Session, *, device: Device, status: StatusIn) -> None:
    """Keep the device's status with the latest ``at_ns`` (an older report is ignored; flushed)."""
    row = db.get(DeviceStatusRow, device.id)
    values = status.model_dump()
    if row is None:
        db.add(DeviceStatusRow(device_id=device.id, **values))
    elif status.at_ns >= row.at_ns:
        for key, value in values.items():
            setattr(row, key, value)
    db.flush()


def latest_status(db: Session, *, device_id: int) -> DeviceStatusRow | None:
    """The device's latest reported status, or None when it never reported one."""
    return db.get(DeviceStatusRow, device_id)
