"""Outbox: durable commit, seq across restarts, disk limit warning and refusal, status record."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from collector.outbox import Outbox, OutboxFull
from tests.collector.test_outbox_service import source_block

BLOCK_BYTES = 300 * 3 * 4  # one source_block: 300 samples x 3 axes x float32


def test_file_is_wal_with_full_sync_and_blocks_round_trip(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", first_seq=0) as box:
        seqs = [box.put(source_block(i)) for i in range(3)]
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        pending = box.pending(10)
    assert seqs == [0, 1, 2]
    mode = sqlite3.connect(tmp_path / "o.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    for i, b in enumerate(pending):
        src = source_block(i)
        assert (b.seq, b.t0_ns, b.fs_hz, b.n_samples) == (i, src.t0_ns, 50.0, 300)
        assert np.array_equal(b.accel_g(), src.accel_g)


def test_seq_continues_after_restart_and_confirm(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, clock_ns=lambda: 1_700_000_000_123_456_789) as box:
        first = [box.put(source_block(i)) for i in range(4)]
        box.confirm([("acc", s) for s in first])  # everything uploaded: the table is empty
    with Outbox(path) as box:  # a restart
        second = [box.put(source_block(i)) for i in range(4, 6)]
        assert box.backlog().n_blocks == 2
    # A new file starts at the UTC time in microseconds: above any earlier outbox's numbers.
    assert first == [1_700_000_000_123_456 + k for k in range(4)]
    assert second == [first[-1] + 1, first[-1] + 2]


def test_confirm_deletes_only_the_confirmed_keys(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", first_seq=10) as box:
        for i in range(5):
            box.put(source_block(i))
        assert box.confirm([("acc", 11), ("acc", 13), ("acc", 99)]) == 2
        assert [b.seq for b in box.pending(10)] == [10, 12, 14]
        backlog = box.backlog()
    assert (backlog.n_blocks, backlog.n_samples, backlog.used_bytes) == (3, 900, 3 * BLOCK_BYTES)


def test_warning_near_the_limit_and_refusal_at_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.outbox")
    with Outbox(tmp_path / "o.sqlite3", limit_bytes=10 * BLOCK_BYTES, warn_fraction=0.8) as box:
        for i in range(7):
            box.put(source_block(i))
        assert "warning" not in box.status()
        box.put(source_block(7))  # 80 %
        assert "80% full" in box.status()["warning"]
        assert any("80% full" in r.message for r in caplog.records)
        box.put(source_block(8))
        box.put(source_block(9))
        with pytest.raises(OutboxFull, match="is full .*refused"):
            box.put(source_block(10))
        assert box.backlog().n_blocks == 10  # nothing stored, nothing dropped
        box.record_refused(source_block(10), "outbox full")
        assert box.status()["refused_samples"] == 300
        assert any(r.levelno == logging.ERROR for r in caplog.records)
    # A restart (another process) drains half, then accepts again and clears warning and FULL.
    with Outbox(tmp_path / "o.sqlite3", limit_bytes=10 * BLOCK_BYTES, warn_fraction=0.8) as box:
        assert "refused_since_ns" in box.status() and "warning" in box.status()
        box.confirm([(b.stream, b.seq) for b in box.pending(5)])  # the uploader freed space
        assert "warning" not in box.status()
        box.put(source_block(11))
        assert "refused_since_ns" not in box.status()
        assert box.status()["refused_samples"] == 300  # the count of refused samples stays


def test_status_record_is_shared_between_connections(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as writer, Outbox(path) as reader:
        writer.set_status(device_state="streaming", battery_pct=87)
        assert reader.status() == {"device_state": "streaming", "battery_pct": 87}
        writer.set_status(battery_pct=None)
        assert reader.status() == {"device_state": "streaming"}


def test_bad_limits_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit_bytes"):
        Outbox(tmp_path / "o.sqlite3", limit_bytes=0)
    with pytest.raises(ValueError, match="warn_fraction"):
        Outbox(tmp_path / "o.sqlite3", warn_fraction=1.5)
