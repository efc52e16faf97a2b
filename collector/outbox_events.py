"""Events in the outbox: gaps with their cause and the patient's task marks (issue 4 contract).

`EventsMixin` gives `collector.outbox.Outbox` its event methods; it uses the outbox's
connection, write transaction and clock. The wire form of an event is
``{"id": <UUID4 hex>, "kind": ..., **fields}`` (architecture.md, "Events in the outbox and on the
wire"); the fields are stored as JSON with sorted keys, so a resend is byte-identical.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

EVENT_KINDS = ("gap", "task_start", "task_stop")
GAP_CAUSES = ("ble_disconnect", "device_drop", "collector_down")
MARK_SOURCES = ("cli", "button")
STREAM_RE = re.compile(r"[a-z0-9_]{1,32}")  # the ingest contract's stream id
# Limits of the ingest contract (architecture.md, issue 4): checked here so that a bad mark is
# refused when it is made, not hours later by the service.
MAX_LABEL_CHARS = 64
MAX_NOTE_CHARS = 500
BORG_MIN, BORG_MAX = 6, 20  # Borg RPE scale 6-20


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One pending event: its id, kind and fields (the wire form is ``wire()``)."""

    id: str
    kind: str
    fields: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        """The event as sent in ``POST /api/v1/ingest`` (same bytes on every resend)."""
        return {"id": self.id, "kind": self.kind, **self.fields}


def check_event(kind: str, fields: dict[str, Any]) -> None:
    """Raise ValueError naming the field when `fields` break the contract for `kind`."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    need = {
        "gap": {"stream", "start_ns", "end_ns", "cause"},
        "task_start": {"at_ns", "label", "source"},
        "task_stop": {"at_ns", "borg", "note", "source"},
    }[kind]
    if set(fields) != need:
        raise ValueError(f"{kind} event needs fields {sorted(need)}, got {sorted(fields)}")
    for key in ("start_ns", "end_ns", "at_ns"):
        if key in fields and (type(fields[key]) is not int or fields[key] < 0):
            raise ValueError(f"{key} must be an int >= 0 (UTC ns), got {fields[key]!r}")
    if kind == "gap":
        if not isinstance(fields["stream"], str) or not STREAM_RE.fullmatch(fields["stream"]):
            raise ValueError(f"stream must match [a-z0-9_]{{1,32}}, got {fields['stream']!r}")
        if fields["end_ns"] <= fields["start_ns"]:
            raise ValueError(
                f"end_ns must be after start_ns, got {fields['start_ns']}..{fields['end_ns']}"
            )
        if fields["cause"] not in GAP_CAUSES:
            raise ValueError(
                f"cause must be one of {', '.join(GAP_CAUSES)}, got {fields['cause']!r}"
            )
    if "source" in fields and fields["source"] not in MARK_SOURCES:
        raise ValueError(f"source must be 'cli' or 'button', got {fields['source']!r}")
    label = fields.get("label", "x")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"label must be 1-{MAX_LABEL_CHARS} characters, got {label!r}")
    borg = fields.get("borg")
    if borg is not None and (type(borg) is not int or not BORG_MIN <= borg <= BORG_MAX):
        raise ValueError(f"borg must be an integer {BORG_MIN}-{BORG_MAX}, got {borg!r}")
    note = fields.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
        raise ValueError(f"note must be text of at most {MAX_NOTE_CHARS} characters")


class EventsMixin:
    """Event and task-mark methods of the outbox (see collector/outbox.py for the file)."""

    _db: sqlite3.Connection
    _clock_ns: Callable[[], int]
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    set_status: Callable[..., None]

    # --- events -----------------------------------------------------------------------------
    def _insert_event(
        self, db: sqlite3.Connection, kind: str, fields: dict[str, Any], now_ns: int
    ) -> str:
        check_event(kind, fields)
        event_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            (event_id, kind, json.dumps(fields, sort_keys=True), now_ns),
        )
        return event_id

    def put_event(self, kind: str, **fields: Any) -> str:
        """Commit one event durably and return its id (UUID4 hex).

        Raises:
            ValueError: a field breaks the ingest contract (named in the message).
        """
        with self._tx() as db:
            return self._insert_event(db, kind, fields, self._clock_ns())

    def pending_events(self, limit: int) -> list[StoredEvent]:
        """Up to `limit` oldest pending events, in the order they were committed."""
        rows = self._db.execute(
            "SELECT id, kind, body FROM events ORDER BY rowid LIMIT ?", (limit,)
        ).fetchall()
        return [StoredEvent(r[0], r[1], json.loads(r[2])) for r in rows]

    def confirm_events(self, ids: Sequence[str]) -> int:
        """Delete the events the service confirmed; return how many were deleted."""
        with self._tx() as db:
            return sum(db.execute("DELETE FROM events WHERE id = ?", (i,)).rowcount for i in ids)

    def refuse_event(self, event_id: str, status_code: int | None, reason: str) -> None:
        """Move an event the service refused for good to `refused_events` (kept, reported)."""
        now = self._clock_ns()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO refused_events SELECT id, kind, body, created_ns, ?, ?, ?"
                " FROM events WHERE id = ?",
                (status_code, reason, now, event_id),
            )
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
        self.set_status(last_refusal=f"event {event_id}: {reason}")

    def refused_events(self) -> list[tuple[str, str, int | None, str]]:
        """(id, kind, HTTP status, reason) of every event the service refused."""
        rows = self._db.execute(
            "SELECT id, kind, status_code, reason FROM refused_events ORDER BY refused_ns"
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # --- task marks ---------------------------------------------------------------------------
    def open_task(self) -> dict[str, Any] | None:
        """The task started and not yet stopped (`id`, `label`, `at_ns`, `source`), if any."""
        row = self._db.execute("SELECT value FROM status WHERE key = 'open_task'").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _stop_open(self, db: sqlite3.Connection, fields: dict[str, Any], now: int) -> str:
        event_id = self._insert_event(db, "task_stop", fields, now)
        db.execute("DELETE FROM status WHERE key = 'open_task'")
        return event_id

    def _start(self, db: sqlite3.Connection, label: str, source: str, at: int, now: int) -> str:
        start = {"at_ns": at, "label": label, "source": source}
        event_id = self._insert_event(db, "task_start", start, now)
        mark = json.dumps({"id": event_id, **start})
        db.execute("INSERT OR REPLACE INTO status VALUES ('open_task', ?)", (mark,))
        return event_id

    @staticmethod
    def _is_open(db: sqlite3.Connection) -> bool:
        return db.execute("SELECT 1 FROM status WHERE key = 'open_task'").fetchone() is not None

    def start_task(self, label: str, *, source: str, at_ns: int | None = None) -> list[str]:
        """Start task `label`, stopping the open one first; the ids written, in order."""
        now = self._clock_ns()
        at = now if at_ns is None else at_ns
        with self._tx() as db:  # one transaction: `otmon task` and a button may race
            ids = []
            if self._is_open(db):
                stop = {"at_ns": at, "borg": None, "note": None, "source": source}
                ids.append(self._stop_open(db, stop, now))
            ids.append(self._start(db, label, source, at, now))
        return ids

    def stop_task(
        self,
        *,
        source: str,
        borg: int | None = None,
        note: str | None = None,
        at_ns: int | None = None,
    ) -> str:
        """Stop the open task (stored even when none is open, as the contract says); its id."""
        now = self._clock_ns()
        at = now if at_ns is None else at_ns
        fields = {"at_ns": at, "borg": borg, "note": note, "source": source}
        with self._tx() as db:
            return self._stop_open(db, fields, now)

    def toggle_task(self, label: str, *, source: str, at_ns: int | None = None) -> tuple[str, str]:
        """Stop the open task, or start `label` when none is open; (kind, id) written."""
        now = self._clock_ns()
        at = now if at_ns is None else at_ns
        with self._tx() as db:
            if self._is_open(db):
                stop = {"at_ns": at, "borg": None, "note": None, "source": source}
                return "task_stop", self._stop_open(db, stop, now)
            return "task_start", self._start(db, label, source, at, now)
