"""Outbox events: durable commit, order, confirm, refusal, task marks, the collector_down gap."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from analysis.samples import SampleBlock
from collector.outbox import Outbox
from collector.outbox_sink import OutboxSink
from tests.collector.test_outbox_source import FS_HZ, T0_NS, source_block

PERIOD_NS = 20_000_000  # 50 Hz


def test_events_commit_in_order_survive_reopen_and_confirm(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        a = box.put_event("gap", stream="acc", start_ns=5, end_ns=9, cause="device_drop")
        b = box.put_event("task_start", at_ns=7, label="cooking", source="cli")
        c = box.put_event("task_stop", at_ns=8, borg=13, note="felt dizzy", source="cli")
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in (a, b, c)) and len({a, b, c}) == 3
    # another connection (a new process) sees them committed, in the order written
    rows = sqlite3.connect(path).execute("SELECT id FROM events ORDER BY rowid").fetchall()
    assert [r[0] for r in rows] == [a, b, c]
    with Outbox(path) as box:
        pending = box.pending_events(10)
        assert [e.wire() for e in pending] == [
            {
                "id": a,
                "kind": "gap",
                "cause": "device_drop",
                "end_ns": 9,
                "start_ns": 5,
                "stream": "acc",
            },
            {"id": b, "kind": "task_start", "at_ns": 7, "label": "cooking", "source": "cli"},
            {
                "id": c,
                "kind": "task_stop",
                "at_ns": 8,
                "borg": 13,
                "note": "felt dizzy",
                "source": "cli",
            },
        ]
        assert [e.id for e in box.pending_events(2)] == [a, b]
        assert box.backlog().n_events == 3
        assert box.confirm_events([b, "0" * 32]) == 1
        assert [e.id for e in box.pending_events(10)] == [a, c]
        box.refuse_event(c, 422, "HTTP 422: borg out of range")
        backlog = box.backlog()
        assert (backlog.n_events, backlog.n_refused_events) == (1, 1)
        assert box.refused_events() == [(c, "task_stop", 422, "HTTP 422: borg out of range")]
        assert "event " + c in box.status()["last_refusal"]


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("nap", {}, "event kind must be one of"),
        (
            "gap",
            {"stream": "acc", "start_ns": 9, "end_ns": 9, "cause": "ble_disconnect"},
            "end_ns must be after start_ns",
        ),
        ("gap", {"stream": "acc", "start_ns": 1, "end_ns": 9, "cause": "rain"}, "cause must be"),
        (
            "gap",
            {"stream": "ACC", "start_ns": 1, "end_ns": 9, "cause": "device_drop"},
            "stream must match",
        ),
        ("task_start", {"at_ns": 1, "label": " ", "source": "cli"}, "label must be 1-64"),
        ("task_start", {"at_ns": 1, "label": "x" * 65, "source": "cli"}, "label must be 1-64"),
        ("task_start", {"at_ns": 1.5, "label": "x", "source": "cli"}, "at_ns must be an int"),
        ("task_start", {"at_ns": 1, "label": "x", "source": "app"}, "source must be"),
        (
            "task_stop",
            {"at_ns": 1, "borg": 21, "note": None, "source": "cli"},
            "borg must be an integer 6-20, got 21",
        ),
        (
            "task_stop",
            {"at_ns": 1, "borg": None, "note": "n" * 501, "source": "cli"},
            "note must be text of at most 500",
        ),
        ("task_stop", {"at_ns": 1, "source": "cli"}, "task_stop event needs fields"),
    ],
)
def test_bad_events_are_refused_when_made(
    tmp_path: Path, kind: str, fields: dict[str, object], message: str
) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        with pytest.raises(ValueError, match=re.escape(message)):
            box.put_event(kind, **fields)
        assert box.backlog().n_events == 0


def test_task_marks_second_start_stops_the_open_task(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        (s1,) = box.start_task("cooking", source="cli", at_ns=100)
        assert box.open_task() == {"id": s1, "label": "cooking", "at_ns": 100, "source": "cli"}
        stop1, s2 = box.start_task("laundry", source="cli", at_ns=200)
        stop2 = box.stop_task(source="cli", borg=12, note="ok", at_ns=300)
        assert box.open_task() is None
        orphan = box.stop_task(source="cli", at_ns=400)  # stored, ignored for sessions
        assert box.toggle_task("task", source="button", at_ns=500)[0] == "task_start"
        assert box.toggle_task("task", source="button", at_ns=600)[0] == "task_stop"
        events = [(e.id, e.kind, e.fields.get("at_ns")) for e in box.pending_events(20)]
    assert events[:5] == [
        (s1, "task_start", 100),
        (stop1, "task_stop", 200),
        (s2, "task_start", 200),
        (stop2, "task_stop", 300),
        (orphan, "task_stop", 400),
    ]
    assert [k for _, k, _ in events[5:]] == ["task_start", "task_stop"]


def test_last_end_is_kept_per_stream_and_never_moves_back(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        assert box.last_end_ns() is None
        box.put(source_block(3))
        box.put(source_block(1))  # an older block does not move the end back
        assert box.last_end_ns() == source_block(3).end_ns == T0_NS + 4 * 300 * PERIOD_NS
        box.confirm([(b.stream, b.seq) for b in box.pending(10)])
        assert box.last_end_ns() == source_block(3).end_ns  # kept after upload


def _block(t0_ns: int, n: int = 100) -> SampleBlock:
    accel = np.random.default_rng(t0_ns % 1000).normal(size=(n, 3)).astype(np.float32)
    return SampleBlock(t0_ns, FS_HZ, accel)


def test_restart_writes_collector_down_gap_with_the_first_block(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        sink = OutboxSink(box)
        asyncio.run(sink(_block(T0_NS)))
        asyncio.run(sink(_block(T0_NS + 100 * PERIOD_NS)))
        assert box.pending_events(10) == []  # a first run has nothing to report
    end = T0_NS + 200 * PERIOD_NS
    # restart: the first sample 1.5 periods after the end is not a gap, later than that is
    with Outbox(path) as box:
        asyncio.run(OutboxSink(box)(_block(end + 3 * PERIOD_NS // 2)))
        assert box.pending_events(10) == []
    end2 = end + 3 * PERIOD_NS // 2 + 100 * PERIOD_NS
    resumed = end2 + 37 * 10**9 + 1
    with Outbox(path) as box:
        sink = OutboxSink(box)
        asyncio.run(sink(_block(resumed)))
        asyncio.run(sink(_block(resumed + 10**10)))  # only the run's first block reports
        (event,) = box.pending_events(10)
        assert event.fields == {
            "stream": "acc",
            "start_ns": end2,
            "end_ns": resumed,
            "cause": "collector_down",
        }
        # committed with the block: same transaction, so neither exists without the other
        assert box.backlog().n_blocks == 5
    assert sink.gap_events == [(end2, resumed, "collector_down")]


def test_full_outbox_still_records_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        asyncio.run(OutboxSink(box)(_block(T0_NS)))
    with Outbox(path, limit_bytes=100 * 12 + 10) as box:
        asyncio.run(OutboxSink(box)(_block(T0_NS + 10**12)))
        assert box.status()["refused_samples"] == 100
        (event,) = box.pending_events(10)
        assert event.fields["cause"] == "collector_down"
        assert json.loads(json.dumps(event.wire()))["end_ns"] == T0_NS + 10**12


def test_a_run_killed_after_only_a_draft_keeps_its_collector_down_gap(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        asyncio.run(OutboxSink(box)(_block(T0_NS)))
    end = T0_NS + 100 * PERIOD_NS
    resumed = end + 60 * 10**9
    # second run: only a draft of its first block is committed, then it is SIGKILLed
    with Outbox(path) as box:
        asyncio.run(OutboxSink(box).draft(_block(resumed, n=40)))
    # third run: promotes the draft (the stream's end moves past the downtime) and resumes
    later = resumed + 40 * PERIOD_NS + 90 * 10**9
    with Outbox(path) as box:
        sink = OutboxSink(box)
        asyncio.run(sink(_block(later)))
        spans = sorted((e.fields["start_ns"], e.fields["end_ns"]) for e in box.pending_events(10))
    assert spans == [(end, resumed), (resumed + 40 * PERIOD_NS, later)]


def test_link_gap_is_reported_before_the_first_draft_after_a_drop() -> None:
    from collector.reconnect import _LinkGapSink

    calls: list[tuple[str, int, int]] = []

    class Events:
        async def gap(self, start_ns: int, end_ns: int, cause: str) -> None:
            calls.append((cause, start_ns, end_ns))

        async def draft(self, block: SampleBlock) -> None:
            calls.append(("draft", block.t0_ns, block.end_ns))

        async def press(self, at_ns: int) -> None:
            raise AssertionError("no press")

    async def sink(block: SampleBlock) -> None:
        calls.append(("block", block.t0_ns, block.end_ns))

    deliver = _LinkGapSink(sink, Events())
    first, after_drop = _block(T0_NS), _block(T0_NS + 10**11, n=40)
    asyncio.run(deliver(first))
    deliver.new_connection = True
    asyncio.run(deliver.draft(after_drop))
    asyncio.run(deliver(_block(T0_NS + 10**11)))  # the full block: the drop is not reported twice
    assert [c[0] for c in calls] == ["block", "ble_disconnect", "draft", "block"]
    assert calls[1] == ("ble_disconnect", first.end_ns, after_drop.t0_ns)
