"""Drafts in the outbox: the upload block still being filled, so a crash loses <= ~10 s.

`DraftsMixin` gives `collector.outbox.Outbox` its draft methods (one draft per stream, in the
``draft`` table); `Outbox.put` deletes the stream's draft in the transaction that stores a
block. See docs/collector.md, "What a crash can lose".
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np

from analysis.samples import SampleBlock

log = logging.getLogger("collector.outbox")

DEFAULT_STREAM = "acc"


class DraftsMixin:
    """Draft methods of the outbox (see collector/outbox.py for the file)."""

    _db: sqlite3.Connection
    _clock_ns: Callable[[], int]
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    put: Callable[..., int]

    def put_draft(self, block: SampleBlock, stream: str = DEFAULT_STREAM) -> None:
        """Commit the block still being filled, replacing the stream's previous draft."""
        data = np.ascontiguousarray(block.accel_g, dtype="<f4").tobytes()
        row = (stream, block.t0_ns, block.fs_hz, block.n_samples, data, self._clock_ns())
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO draft VALUES (?, ?, ?, ?, ?, ?)", row)

    def drop_draft(self, stream: str = DEFAULT_STREAM) -> None:
        """Forget the stream's draft (its block was refused: the outbox is full)."""
        with self._tx() as db:
            db.execute("DELETE FROM draft WHERE stream = ?", (stream,))

    def draft(self, stream: str = DEFAULT_STREAM) -> SampleBlock | None:
        """The stream's draft (the block a running or killed collector was filling), if any."""
        row = self._db.execute(
            "SELECT t0_ns, fs_hz, n_samples, data FROM draft WHERE stream = ?", (stream,)
        ).fetchone()
        if row is None:
            return None
        accel = np.frombuffer(row[3], dtype="<f4").reshape(row[2], 3)
        return SampleBlock(t0_ns=row[0], fs_hz=row[1], accel_g=accel)

    def promote_draft(self, stream: str = DEFAULT_STREAM) -> int | None:
        """Store a draft left by a killed run as a block (at start-up); its seq, if any.

        Raises:
            OutboxFull: no room for it (the draft is kept).
        """
        block = self.draft(stream)
        if block is None:
            return None
        seq = self.put(block, stream)  # deletes the draft in the same transaction
        log.info(
            "stored the %d samples a stopped run left as a draft: seq %d", block.n_samples, seq
        )
        return seq
