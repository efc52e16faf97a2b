"""Durable outbox: every decoded block is committed to a local SQLite file before it counts.

The file (WAL, ``synchronous=FULL``) holds the blocks not yet confirmed by the service, the
blocks the service refused for good (kept, never dropped), the next ``seq`` of each stream and
a small status record that ``otmon status`` reads.

Sequence numbers: the stream id stays the stable ``"acc"`` (the service and the analysis key
days and epochs by stream) and ``seq`` continues from the outbox: it is assigned in the same
transaction that stores the block, so a restart — even after SIGKILL — continues where the last
*committed* block left off and never reuses a number. A new outbox file (first run, or the
file was lost) starts at the current UTC time in microseconds rather than 0, so its numbers are
still above those of any earlier outbox of the same device (far fewer blocks than microseconds
pass) and a re-installed collector never collides with what the service already stores
(which it would refuse with 409, "same key, different body").

Disk use: ``limit_bytes`` bounds the sample payload kept (pending + refused blocks; freed
pages are reused by SQLite, so the file stays about that size). At ``warn_fraction`` of it a
warning is logged and recorded in the status; at the limit ``put`` raises ``OutboxFull`` —
the caller refuses the block loudly and counts it (``record_refused``), nothing silently.

Events (architecture.md, "Interfaces fixed for issue 4"): gaps with their cause and the
patient's task marks live in the same file (``events``: a UUID4-hex id, the kind and its fields
as JSON), committed before they count and deleted only when the service confirmed them, like
blocks; refused ones are kept in ``refused_events``. They are a few hundred bytes each and are
never refused for disk space (a patient's task mark must not be lost to a full sample backlog).
The end of the last committed block of each stream (``stream_end``) is kept so that a
restarted collector can report the time it was down (``collector_down`` gap).

Drafts bound what a crash loses: the collector commits the block it is still filling as the
stream's ``draft`` (replaced each time, deleted when a block is stored); a restarted collector
stores a left-over draft as an ordinary block first (``promote_draft``), so SIGKILL loses only
the samples decoded since the last draft (docs/collector.md, "What a crash can lose").
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from analysis.samples import SampleBlock
from collector.errors import CollectorError
from collector.outbox_drafts import DraftsMixin
from collector.outbox_events import EventsMixin, StoredEvent

log = logging.getLogger(__name__)

DEFAULT_STREAM = "acc"
# 512 MiB ≈ 5 days of 50 Hz float32 tri-axial samples (1.8 kB/s): a long Wi-Fi outage fits.
DEFAULT_LIMIT_BYTES = 512 * 1024 * 1024
# Warn at 80 %: at 50 Hz that still leaves about a day to fix the network before data stops.
DEFAULT_WARN_FRACTION = 0.8
# Writers wait up to 10 s for a lock (status readers and the uploader share the file).
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    stream TEXT NOT NULL, seq INTEGER NOT NULL, t0_ns INTEGER NOT NULL, fs_hz REAL NOT NULL,
    n_samples INTEGER NOT NULL, data BLOB NOT NULL, stored_ns INTEGER NOT NULL,
    PRIMARY KEY (stream, seq));
CREATE TABLE IF NOT EXISTS refused (
    stream TEXT NOT NULL, seq INTEGER NOT NULL, t0_ns INTEGER NOT NULL, fs_hz REAL NOT NULL,
    n_samples INTEGER NOT NULL, data BLOB NOT NULL, stored_ns INTEGER NOT NULL,
    status_code INTEGER, reason TEXT NOT NULL, refused_ns INTEGER NOT NULL,
    PRIMARY KEY (stream, seq));
CREATE TABLE IF NOT EXISTS next_seq (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refused_events (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, created_ns INTEGER NOT NULL,
    status_code INTEGER, reason TEXT NOT NULL, refused_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stream_end (stream TEXT PRIMARY KEY, end_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS draft (
    stream TEXT PRIMARY KEY, t0_ns INTEGER NOT NULL, fs_hz REAL NOT NULL,
    n_samples INTEGER NOT NULL, data BLOB NOT NULL, stored_ns INTEGER NOT NULL);
"""


class OutboxFull(CollectorError):
    """The outbox reached its disk limit; the block was not stored."""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One pending block as stored: the ingest fields plus the raw little-endian float32 data."""

    stream: str
    seq: int
    t0_ns: int
    fs_hz: float
    n_samples: int
    data: bytes

    def accel_g(self) -> np.ndarray:
        """The samples, shape (n_samples, 3), in g."""
        return np.frombuffer(self.data, dtype="<f4").reshape(self.n_samples, 3)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in the outbox."""

    n_blocks: int
    n_samples: int
    oldest_stored_ns: int | None
    n_refused_blocks: int
    used_bytes: int
    limit_bytes: int
    n_events: int = 0
    n_refused_events: int = 0
    oldest_t0_ns: int | None = None  # first sample time of the oldest pending block

    @property
    def used_fraction(self) -> float:
        """Payload kept over the limit (0..1+)."""
        return self.used_bytes / self.limit_bytes


class Outbox(EventsMixin, DraftsMixin):
    """A SQLite outbox file; one connection per instance (open one per thread/process)."""

    def __init__(
        self,
        path: str | Path,
        *,
        limit_bytes: int = DEFAULT_LIMIT_BYTES,
        warn_fraction: float = DEFAULT_WARN_FRACTION,
        clock_ns: Any = time.time_ns,
        first_seq: int | None = None,
    ) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be > 0, got {limit_bytes}")
        if not 0 < warn_fraction <= 1:
            raise ValueError(f"warn_fraction must be in (0, 1], got {warn_fraction}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.limit_bytes = limit_bytes
        self.warn_fraction = warn_fraction
        self._clock_ns = clock_ns
        self._first_seq = first_seq
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)  # idempotent; executescript runs in its own transaction
        self._used_bytes = self._count_used_bytes()
        status = self.status()  # a restart picks up (and later clears) the last warning
        self._warned = "warning" in status
        self._refusing = "refused_since_ns" in status

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), committed durably or rolled back."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _count_used_bytes(self) -> int:
        row = self._db.execute(
            "SELECT (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM blocks)"
            " + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM refused)"
        ).fetchone()
        return int(row[0])

    def put(
        self,
        block: SampleBlock,
        stream: str = DEFAULT_STREAM,
        *,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> int:
        """Commit `block` durably (with `events`, (kind, fields), in the same transaction).

        Returns the block's seq.

        Raises:
            OutboxFull: storing it would exceed ``limit_bytes`` (nothing was stored).
        """
        data = np.ascontiguousarray(block.accel_g, dtype="<f4").tobytes()
        if self._used_bytes + len(data) > self.limit_bytes:
            self._used_bytes = self._count_used_bytes()  # the uploader may have freed space
            if self._used_bytes + len(data) > self.limit_bytes:
                raise OutboxFull(
                    f"outbox {self.path} is full ({self._used_bytes} of {self.limit_bytes} "
                    f"bytes): new samples are refused until the backlog is uploaded"
                )
        now = self._clock_ns()
        with self._tx() as db:
            row = db.execute("SELECT seq FROM next_seq WHERE stream = ?", (stream,)).fetchone()
            seq = int(row[0]) if row else self._first_seq_for(now)
            db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stream, seq, block.t0_ns, block.fs_hz, block.n_samples, data, now),
            )
            db.execute("INSERT OR REPLACE INTO next_seq VALUES (?, ?)", (stream, seq + 1))
            db.execute(
                "INSERT INTO stream_end VALUES (?, ?) ON CONFLICT (stream)"
                " DO UPDATE SET end_ns = MAX(end_ns, excluded.end_ns)",
                (stream, block.end_ns),
            )
            for kind, fields in events:
                self._insert_event(db, kind, fields, now)
            db.execute("DELETE FROM draft WHERE stream = ?", (stream,))  # it is in `block`
        self._used_bytes += len(data)
        self._check_warning()
        if self._refusing:
            self._refusing = False
            self.set_status(refused_since_ns=None)
            log.warning("outbox %s accepts samples again", self.path)
        return seq

    def _first_seq_for(self, now_ns: int) -> int:
        """First seq of a stream new to this file: UTC µs, so it is above earlier outboxes'."""
        return now_ns // 1000 if self._first_seq is None else self._first_seq

    def last_end_ns(self, stream: str = DEFAULT_STREAM) -> int | None:
        """End (UTC ns, exclusive) of the last block of `stream` ever committed to this file."""
        row = self._db.execute(
            "SELECT end_ns FROM stream_end WHERE stream = ?", (stream,)
        ).fetchone()
        return None if row is None else int(row[0])

    def next_seq(self, stream: str = DEFAULT_STREAM) -> int | None:
        """The seq the next block of `stream` will get (None before its first block)."""
        row = self._db.execute("SELECT seq FROM next_seq WHERE stream = ?", (stream,)).fetchone()
        return None if row is None else int(row[0])

    def _check_warning(self) -> None:
        fraction = self._used_bytes / self.limit_bytes
        if fraction >= self.warn_fraction and not self._warned:
            self._warned = True
            message = (
                f"outbox {self.path} is {fraction:.0%} full ({self._used_bytes} of "
                f"{self.limit_bytes} bytes); at 100 % new samples are refused"
            )
            log.warning("%s", message)
            self.set_status(warning=message)
        elif fraction < self.warn_fraction and self._warned:
            self._warned = False
            self.set_status(warning=None)

    def pending(self, limit: int) -> list[StoredBlock]:
        """Up to `limit` oldest pending blocks, in (stream, seq) order."""
        rows = self._db.execute(
            "SELECT stream, seq, t0_ns, fs_hz, n_samples, data FROM blocks"
            " ORDER BY stream, seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [StoredBlock(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def confirm(self, keys: Sequence[tuple[str, int]]) -> int:
        """Delete the blocks the service confirmed; return how many were deleted."""
        with self._tx() as db:
            n = sum(
                db.execute("DELETE FROM blocks WHERE stream = ? AND seq = ?", k).rowcount
                for k in keys
            )
        self._used_bytes = self._count_used_bytes()
        self._check_warning()
        return n

    def refuse(self, key: tuple[str, int], status_code: int | None, reason: str) -> None:
        """Move a block the service refused for good to `refused` (kept and reported)."""
        now = self._clock_ns()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO refused SELECT stream, seq, t0_ns, fs_hz, n_samples,"
                " data, stored_ns, ?, ?, ? FROM blocks WHERE stream = ? AND seq = ?",
                (status_code, reason, now, *key),
            )
            db.execute("DELETE FROM blocks WHERE stream = ? AND seq = ?", key)
        self.set_status(last_refusal=f"stream {key[0]!r} seq {key[1]}: {reason}")

    def refused(self) -> list[tuple[str, int, int | None, str]]:
        """(stream, seq, HTTP status, reason) of every block the service refused."""
        rows = self._db.execute(
            "SELECT stream, seq, status_code, reason FROM refused ORDER BY stream, seq"
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def backlog(self) -> Backlog:
        """Counts of what waits (one consistent snapshot)."""
        self._db.execute("BEGIN")
        try:
            n, samples, oldest, oldest_t0 = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_samples), 0), MIN(stored_ns), MIN(t0_ns)"
                " FROM blocks"
            ).fetchone()
            (n_refused,) = self._db.execute("SELECT COUNT(*) FROM refused").fetchone()
            (n_events,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
            (n_refused_events,) = self._db.execute("SELECT COUNT(*) FROM refused_events").fetchone()
            used = self._count_used_bytes()
        finally:
            self._db.execute("COMMIT")
        return Backlog(
            int(n),
            int(samples),
            oldest,
            int(n_refused),
            used,
            self.limit_bytes,
            int(n_events),
            int(n_refused_events),
            oldest_t0,
        )

    def backlog_excluding(self, keys: Sequence[tuple[str, int]]) -> tuple[int, int, int | None]:
        """(blocks, samples, oldest first-sample time) pending once the blocks `keys` are gone."""
        gone = set(keys)
        self._db.execute("BEGIN")
        try:
            n, samples = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_samples), 0) FROM blocks"
            ).fetchone()
            for key in gone:
                row = self._db.execute(
                    "SELECT n_samples FROM blocks WHERE stream = ? AND seq = ?", key
                ).fetchone()
                if row is not None:
                    n, samples = n - 1, samples - row[0]
            oldest = self._db.execute(
                "SELECT stream, seq, t0_ns FROM blocks ORDER BY t0_ns LIMIT ?", (len(gone) + 1,)
            ).fetchall()
        finally:
            self._db.execute("COMMIT")
        first = next((int(t0) for st, sq, t0 in oldest if (st, sq) not in gone), None)
        return int(n), int(samples), first

    def set_status(self, **values: Any) -> None:
        """Merge `values` (JSON-able; None deletes a key) into the status record."""
        with self._tx() as db:
            for key, value in values.items():
                if value is None:
                    db.execute("DELETE FROM status WHERE key = ?", (key,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO status VALUES (?, ?)", (key, json.dumps(value))
                    )

    def add_status_count(self, key: str, n: int) -> int:
        """Add `n` to an integer status counter and return the new total."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM status WHERE key = ?", (key,)).fetchone()
            total = (json.loads(row[0]) if row else 0) + n
            db.execute("INSERT OR REPLACE INTO status VALUES (?, ?)", (key, json.dumps(total)))
        return int(total)

    def status(self) -> dict[str, Any]:
        """The status record as a dict."""
        rows = self._db.execute("SELECT key, value FROM status").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def record_refused(self, block: SampleBlock, reason: str) -> None:
        """Count a block the collector could not store (outbox full) and log it as an ERROR."""
        total = self.add_status_count("refused_samples", block.n_samples)
        if not self._refusing:
            self._refusing = True
            self.set_status(refused_since_ns=self._clock_ns())
        log.error("%s (%d samples refused so far)", reason, total)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


from collector.outbox_status import status_report  # re-exported: it reads an Outbox

__all__ = ["Backlog", "Outbox", "OutboxFull", "StoredBlock", "StoredEvent", "status_report"]
