"""Day summaries of a patient, computed from the epochs table (never from raw blocks)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.pipeline import EpochTable, summarise_days
from api.models import Device, Patient
from api.services import epochs, events


def _plain(value: Any) -> Any:
    """NumPy scalars to Python numbers, for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def days(db: Session, *, patient: Patient) -> list[dict[str, Any]]:
    """One summary dict per calendar day in the patient's time zone, in date order, with
    its gaps (stored block spans, the collectors' gap events and reported backlogs)."""
    device_ids = list(db.scalars(select(Device.id).where(Device.patient_id == patient.id)))
    rows = epochs.stored_rows(db, device_ids=device_ids)
    if not rows:
        return []
    table = EpochTable.from_rows(rows, epoch_s=epochs.EPOCH_S)
    found = summarise_days(
        table,
        tz=patient.timezone,
        block_spans=events.block_spans(db, device_ids=device_ids),
        gap_events=events.gap_events(db, device_ids=device_ids),
        backlog=events.backlog_spans(db, device_ids=device_ids),
    )
    return [{key: _plain(value) for key, value in day.items()} for day in found]
