"""OutboxUploader with events and status against the real service (httpx.ASGITransport)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import DeviceEvent, DeviceStatusRow
from collector.outbox import Outbox
from collector.outbox_upload import OutboxUploader, ingest_body
from tests.collector.test_outbox_service import (
    FaultyTransport,
    checksum,
    make_service,
    source_block,
    stored,
    stored_samples,
)
from tests.collector.test_outbox_source import T0_NS
from tests.collector.test_upload_outbox import Sleeps


def _uploader(box: Outbox, transport: httpx.AsyncBaseTransport, token: str) -> OutboxUploader:
    return OutboxUploader(
        box, "http://otmon.test", token, transport=transport, rng=random.Random(1), sleep=Sleeps()
    )


def _events(app: object) -> list[DeviceEvent]:
    with Session(app.state.engine) as db:  # type: ignore[attr-defined]
        return list(db.scalars(select(DeviceEvent).order_by(DeviceEvent.id)))


def test_body_is_the_contract_wire_form(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", first_seq=7) as box:
        box.put(source_block(0))
        box.put(source_block(1))
        gap = box.put_event("gap", stream="acc", start_ns=1, end_ns=2, cause="ble_disconnect")
        stop = box.stop_task(source="cli", borg=13, note="felt dizzy", at_ns=5)
        box.set_status(device_state="streaming", battery_pct=80)
        from collector.outbox_status import heartbeat

        status = heartbeat(box, [("acc", 7)], now_ns=3)
        body = ingest_body(box.pending(1), box.pending_events(10), status)
    assert list(body) == ["blocks", "events", "status"]
    assert [b["seq"] for b in body["blocks"]] == [7]
    assert body["events"] == [
        {
            "id": gap,
            "kind": "gap",
            "cause": "ble_disconnect",
            "end_ns": 2,
            "start_ns": 1,
            "stream": "acc",
        },
        {
            "id": stop,
            "kind": "task_stop",
            "at_ns": 5,
            "borg": 13,
            "note": "felt dizzy",
            "source": "cli",
        },
    ]
    # the backlog left once this request is stored: block 1 only
    assert status == {
        "at_ns": 3,
        "link": "connected",
        "battery_pct": 80,
        "backlog_blocks": 1,
        "backlog_samples": 300,
        "backlog_oldest_t0_ns": source_block(1).t0_ns,
        "decoded_until_ns": source_block(1).end_ns,
    }
    assert ingest_body([], [], None) == {}
    json.dumps(body)  # JSON-able as is


async def test_events_exactly_once_with_faults_and_status_stored(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    # the app stores the first request and its answer is lost: the resend is answered alike
    transport = FaultyTransport(app, script=["503", "cut_after", "cut", "cut_after"])
    with Outbox(tmp_path / "o.sqlite3") as box:
        for i in range(6):
            box.put(source_block(i))
        ids = [
            box.put_event(
                "gap",
                stream="acc",
                start_ns=T0_NS - 10**9 * (k + 2),
                end_ns=T0_NS - 10**9 * (k + 1),
                cause="collector_down",
            )
            for k in range(3)
        ]
        ids += box.start_task("cooking", source="cli", at_ns=T0_NS + 10**9)
        ids.append(
            box.stop_task(source="button", borg=15, note="felt dizzy", at_ns=T0_NS + 2 * 10**9)
        )
        box.set_status(device_state="retrying", battery_pct=55)
        up = _uploader(box, transport, token)
        stats = await up.drain()
        # the last batch's status already told the backlog it left (none): nothing to add
        assert await up.send_heartbeat() is False
        box.set_status(battery_pct=54)
        assert await up.send_heartbeat() is True  # changed: sent at once
        await up.aclose()
        left = box.backlog()
    assert (left.n_blocks, left.n_events) == (0, 0)
    assert transport.seen == ["503", "cut_after", "cut", "cut_after", None, None]
    assert stats.n_confirmed_events == 5 and stats.n_status_only == 1
    rows = _events(app)
    assert sorted(r.event_id for r in rows) == sorted(ids)  # each once, none twice
    stop = next(r for r in rows if r.kind == "task_stop")
    assert (stop.at_ns, stop.fields["borg"], stop.fields["note"]) == (
        T0_NS + 2 * 10**9,
        15,
        "felt dizzy",
    )
    assert checksum(stored_samples(app)) == checksum([source_block(i).accel_g for i in range(6)])
    with Session(app.state.engine) as db:
        status = db.scalars(select(DeviceStatusRow)).one()
    assert (status.link, status.battery_pct, status.backlog_blocks, status.backlog_samples) == (
        "connecting",
        54,
        0,
        0,
    )
    assert status.decoded_until_ns == source_block(5).end_ns


async def test_refused_event_is_narrowed_down_and_kept(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    transport = httpx.ASGITransport(app=app)
    with Outbox(tmp_path / "o.sqlite3") as box:
        up = _uploader(box, transport, token)
        first = box.put_event("task_start", at_ns=T0_NS, label="cooking", source="cli")
        await up.drain()
        await up.aclose()
    # the same id with another body: the service keeps the first and answers 409
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        for i in range(3):
            box.put(source_block(i))
        good = box.put_event("task_stop", at_ns=T0_NS + 5, borg=None, note=None, source="cli")
        box.put_event("task_start", at_ns=T0_NS + 9, label="laundry", source="cli")
        box._db.execute("UPDATE events SET id = ? WHERE id NOT IN (?)", (first, good))
        after = box.put_event("gap", stream="acc", start_ns=1, end_ns=2, cause="device_drop")
        up = _uploader(box, transport, token)
        stats = await up.drain()
        await up.aclose()
        refused = box.refused_events()
        left = box.backlog()
    assert [(r[0], r[1], r[2]) for r in refused] == [(first, "task_start", 409)]
    assert (left.n_events, left.n_refused_events, left.n_blocks) == (0, 1, 0)
    assert stats.n_refused_events == 1 and stats.n_confirmed_blocks == 3
    assert sorted(r.event_id for r in _events(app)) == sorted([first, good, after])
    assert [r.seq for r in stored(app)] == sorted(r.seq for r in stored(app))
    assert "laundry" not in json.dumps([r.fields for r in _events(app)])


async def test_a_failed_status_is_not_retried_at_once(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    transport = FaultyTransport(app, script=["cut"])
    with Outbox(tmp_path / "o.sqlite3") as box:
        box.set_status(device_state="streaming")
        up = _uploader(box, transport, token)
        assert await up.send_heartbeat() is False  # the service cannot be reached
        assert await up.send_heartbeat() is False  # not again within HEARTBEAT_RETRY_S
        assert up.stats.n_requests == 1
        assert await up.send_heartbeat(force=True) is True
        await up.aclose()
    with Session(app.state.engine) as db:
        assert db.scalars(select(DeviceStatusRow)).one().link == "connected"
