"""Idempotent storage of collector events (gaps, task marks) and of the latest device status."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.gaps import Gap
from api.errors import Conflict
from api.models import Device, DeviceEvent, DeviceStatusRow, SampleBlockRow
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


def _backlog_span(row: DeviceStatusRow | None) -> tuple[int, int] | None:
    """Decoded but not uploaded: from the oldest unsent block to the last decoded sample (or
    the report's time when the collector did not say), while it reports a backlog."""
    if row is None or row.backlog_oldest_t0_ns is None:
        return None
    if not (row.backlog_blocks or row.backlog_samples):
        return None
    end = row.decoded_until_ns if row.decoded_until_ns is not None else row.at_ns
    return (row.backlog_oldest_t0_ns, end) if end > row.backlog_oldest_t0_ns else None


def store_status(db: Session, *, device: Device, status: StatusIn) -> bool:
    """Keep the device's status with the latest ``at_ns`` (an older report is ignored; flushed).

    Returns whether its backlog span changed (the ``not_uploaded`` gaps of sessions with it).
    """
    row = db.get(DeviceStatusRow, device.id)
    before = _backlog_span(row)
    values = status.model_dump()
    if row is None:
        row = DeviceStatusRow(device_id=device.id, **values)
        db.add(row)
    elif status.at_ns >= row.at_ns:
        for key, value in values.items():
            setattr(row, key, value)
    db.flush()
    return _backlog_span(row) != before


def latest_status(db: Session, *, device_id: int) -> DeviceStatusRow | None:
    """The device's latest reported status, or None when it never reported one."""
    return db.get(DeviceStatusRow, device_id)


def block_spans(db: Session, *, device_ids: list[int]) -> list[tuple[int, int, float]]:
    """(t0_ns, end_ns, fs_hz) of every stored block of the devices (no sample data read)."""
    if not device_ids:
        return []
    rows = db.execute(
        select(SampleBlockRow.t0_ns, SampleBlockRow.end_ns, SampleBlockRow.fs_hz).where(
            SampleBlockRow.device_id.in_(device_ids)
        )
    ).all()
    return [(int(a), int(b), float(f)) for a, b, f in rows]


def gap_events(db: Session, *, device_ids: list[int]) -> list[Gap]:
    """The gap events the devices' collectors reported, in time order."""
    if not device_ids:
        return []
    rows = db.execute(
        select(DeviceEvent.start_ns, DeviceEvent.end_ns, DeviceEvent.fields)
        .where(DeviceEvent.device_id.in_(device_ids), DeviceEvent.kind == "gap")
        .order_by(DeviceEvent.start_ns, DeviceEvent.id)
    ).all()
    return [Gap(int(a), int(b), str(f["cause"])) for a, b, f in rows]


def backlog_spans(db: Session, *, device_ids: list[int]) -> list[tuple[int, int]]:
    """Per device, the span its latest status reports as decoded but not uploaded."""
    spans = [_backlog_span(db.get(DeviceStatusRow, d)) for d in device_ids]
    return [s for s in spans if s is not None]


def task_marks(db: Session, *, device_ids: list[int]) -> list[DeviceEvent]:
    """The task_start/task_stop events of the devices, in time order (ties by arrival)."""
    if not device_ids:
        return []
    return list(
        db.scalars(
            select(DeviceEvent)
            .where(DeviceEvent.device_id.in_(device_ids), DeviceEvent.kind.in_(("task_start", "task_stop")))
            .order_by(DeviceEvent.at_ns, DeviceEvent.id)
        )
    )
