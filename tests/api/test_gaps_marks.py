"""Gaps in days and sessions, patient task marks as sessions (issue 4), through real HTTP:
a device token ingests blocks, events and status, the therapist reads days and sessions."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from analysis.pipeline import iso_utc
from collector.session import decode_capture
from otmon.cli import main
from tests.api.conftest import ApiClient
from tests.api.factories import T0_NS, block_json, make_device, make_patient, make_therapist, random_accel
from tests.api.gapped_capture import RECONNECT, write_gapped_capture

INGEST = "/api/v1/ingest"
TZ = "America/Chicago"
S = 1_000_000_000
MIN = 60 * S
FS_HZ = 25.0


def eid() -> str:
    return uuid.uuid4().hex


def _get(client: ApiClient, t: Any, url: str) -> Any:
    r = client.get(url, headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()


def _post(client: ApiClient, headers: dict[str, str], body: dict[str, Any]) -> None:
    r = client.post(INGEST, headers=headers, json=body)
    assert r.status_code == 200, r.text


def _minutes(rng: np.random.Generator, seq: int, start_min: int, n_min: int) -> dict[str, Any]:
    n = int(n_min * 60 * FS_HZ)
    return block_json(random_accel(rng, n), seq=seq, t0_ns=T0_NS + start_min * MIN, fs_hz=FS_HZ)


def _gap(start_min: float, end_min: float, cause: str) -> dict[str, Any]:
    return {"id": eid(), "kind": "gap", "stream": "acc", "start_ns": T0_NS + int(start_min * MIN),
            "end_ns": T0_NS + int(end_min * MIN), "cause": cause}


def _at(minute: float) -> str:
    return iso_utc(T0_NS + int(minute * MIN))


def _g(a: float, b: float, cause: str) -> dict[str, Any]:
    return {"start": _at(a), "end": _at(b), "cause": cause, "duration_s": round((b - a) * 60, 3)}


@pytest.fixture
def world(client: ApiClient, db: Session, app: FastAPI) -> dict[str, Any]:
    t = make_therapist(db, app)
    p = make_patient(db, t)  # UTC: T0 is 10:00, the whole test fits in one day
    _device, headers = make_device(db, p)
    return {"t": t, "pid": p.id, "headers": headers, "rng": np.random.default_rng(11)}


def test_day_and_session_gaps_by_cause(client: ApiClient, world: dict[str, Any]) -> None:
    t, pid, headers, rng = world["t"], world["pid"], world["headers"], world["rng"]
    _post(client, headers, {"blocks": [_minutes(rng, 0, 0, 10), _minutes(rng, 1, 20, 10)]})
    (day,) = _get(client, t, f"/api/v1/patients/{pid}/days")
    assert day["samples"] == 2 * 10 * 60 * 25
    assert day["gaps"] == [_g(10, 20, "unknown")]  # nothing explains it yet

    # The collector reports what it knows: a BLE drop for part of it, and a backlog.
    status = {"at_ns": T0_NS + 41 * MIN, "link": "connected", "battery_pct": 55, "backlog_blocks": 2,
              "backlog_samples": 15000, "backlog_oldest_t0_ns": T0_NS + 30 * MIN, "decoded_until_ns": T0_NS + 40 * MIN}
    _post(client, headers, {"events": [_gap(12, 20, "ble_disconnect")], "status": status})
    (day,) = _get(client, t, f"/api/v1/patients/{pid}/days")
    assert day["gaps"] == [_g(10, 12, "unknown"), _g(12, 20, "ble_disconnect"), _g(30, 40, "not_uploaded")]

    # A therapist's session across it: its gaps are the day's, clipped to the session.
    r = client.post(f"/api/v1/patients/{pid}/sessions", headers=t.headers,
                    json={"start": _at(5), "end": _at(35), "activity": "cooking"})
    assert r.status_code == 201, r.text
    (s,) = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert (s["source"], s["borg"], s["note"]) == ("therapist", None, None)
    assert s["gaps"] == [_g(10, 12, "unknown"), _g(12, 20, "ble_disconnect"), _g(30, 35, "not_uploaded")]
    assert s["completeness"]["gap_fraction"] == pytest.approx(15 / 30, abs=0.01)

    # The backlog arrives: the block is stored, the backlog empties, not_uploaded is gone.
    drained = dict(status, at_ns=T0_NS + 50 * MIN, backlog_blocks=0, backlog_samples=0, backlog_oldest_t0_ns=None)
    _post(client, headers, {"blocks": [_minutes(rng, 2, 30, 10)], "status": drained})
    (day,) = _get(client, t, f"/api/v1/patients/{pid}/days")
    assert day["gaps"] == [_g(10, 12, "unknown"), _g(12, 20, "ble_disconnect")]
    (s,) = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert s["gaps"] == [_g(10, 12, "unknown"), _g(12, 20, "ble_disconnect")]


def test_backlog_change_alone_refreshes_cached_sessions(client: ApiClient, world: dict[str, Any]) -> None:
    t, pid, headers, rng = world["t"], world["pid"], world["headers"], world["rng"]
    _post(client, headers, {"blocks": [_minutes(rng, 0, 0, 10)]})
    assert client.post(f"/api/v1/patients/{pid}/sessions", headers=t.headers,
                       json={"start": _at(0), "end": _at(20), "activity": "ironing"}).status_code == 201
    (s,) = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert s["gaps"] == [_g(10, 20, "unknown")]
    status = {"at_ns": T0_NS + 30 * MIN, "link": "disconnected", "backlog_blocks": 1, "backlog_samples": 100,
              "backlog_oldest_t0_ns": T0_NS + 10 * MIN, "decoded_until_ns": T0_NS + 15 * MIN}
    _post(client, headers, {"status": status})
    (s,) = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert s["gaps"] == [_g(10, 15, "not_uploaded"), _g(15, 20, "unknown")]
    _post(client, headers, {"status": dict(status, at_ns=T0_NS + 31 * MIN)})  # same backlog: cache kept
    assert _get(client, t, f"/api/v1/patients/{pid}/sessions") == [s]


def test_unworn_recording_is_non_wear(client: ApiClient, world: dict[str, Any]) -> None:
    t, pid, headers = world["t"], world["pid"], world["headers"]
    n = int(120 * 60 * FS_HZ)  # 2 h on a table: flat and still (GGIR non-wear: 60-min windows)
    still = np.tile(np.array([0.0, 0.0, 1.0], np.float32), (n, 1))
    _post(client, headers, {"blocks": [block_json(still, seq=0, t0_ns=T0_NS, fs_hz=FS_HZ)]})
    (day,) = _get(client, t, f"/api/v1/patients/{pid}/days")
    assert day["nonwear_min"] == 120.0
    assert day["gaps"] == [_g(0, 120, "non_wear")]


def _mark_events() -> list[dict[str, Any]]:
    return [
        {"id": eid(), "kind": "task_stop", "at_ns": T0_NS + 1 * MIN, "source": "cli"},  # nothing open: ignored
        {"id": eid(), "kind": "task_start", "at_ns": T0_NS + 2 * MIN, "label": "cooking", "source": "cli"},
        {"id": eid(), "kind": "task_stop", "at_ns": T0_NS + 8 * MIN, "borg": 13, "note": "felt dizzy", "source": "cli"},
        {"id": eid(), "kind": "task_start", "at_ns": T0_NS + 10 * MIN, "label": "task", "source": "button"},
        {"id": eid(), "kind": "task_start", "at_ns": T0_NS + 12 * MIN, "label": "dressing", "source": "cli"},
        {"id": eid(), "kind": "task_stop", "at_ns": T0_NS + 14 * MIN, "borg": None, "note": None, "source": "button"},
        {"id": eid(), "kind": "task_start", "at_ns": T0_NS + 16 * MIN, "label": "ironing", "source": "cli"},  # open
    ]


def test_task_marks_become_patient_sessions(client: ApiClient, world: dict[str, Any]) -> None:
    t, pid, headers, rng = world["t"], world["pid"], world["headers"], world["rng"]
    _post(client, headers, {"blocks": [_minutes(rng, 0, 0, 20)]})
    detected = _get(client, t, f"/api/v1/patients/{pid}/sessions")  # fills the cache
    assert [s["source"] for s in detected] == ["detected"] * len(detected)
    _post(client, headers, {"events": _mark_events()})  # events alone invalidate the cache
    got = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert [(s["start"], s["end"], s["activity"], s["source"], s["borg"], s["note"]) for s in got] == [
        (_at(2), _at(8), "cooking", "patient", 13, "felt dizzy"),
        (_at(10), _at(12), "task", "patient", None, None),  # a second start ends the open task
        (_at(12), _at(14), "dressing", "patient", None, None),
    ]
    cooking = got[0]  # Compendium 2024 "cooking or food preparation": 2.0 MET (analysis.met)
    assert cooking["met"] == 2.0 and cooking["duration_s"] == 360.0 and cooking["gaps"] == []
    assert list(cooking)[:7] == ["start", "end", "activity", "source", "borg", "note", "duration_s"]

    # A therapist label wins over the patient's overlapping marks; the others stay.
    r = client.post(f"/api/v1/patients/{pid}/sessions", headers=t.headers,
                    json={"start": _at(7), "end": _at(11), "activity": "vacuuming"})
    assert r.status_code == 201, r.text
    got = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert [(s["start"], s["activity"], s["source"]) for s in got] == [
        (_at(7), "vacuuming", "therapist"), (_at(12), "dressing", "patient"),
    ]


def test_marks_without_data_are_sessions_of_gaps(client: ApiClient, world: dict[str, Any]) -> None:
    t, pid, headers = world["t"], world["pid"], world["headers"]
    _post(client, headers, {"events": _mark_events()[1:3]})
    (s,) = _get(client, t, f"/api/v1/patients/{pid}/sessions")
    assert (s["activity"], s["source"], s["borg"], s["active_s"]) == ("cooking", "patient", 13, 0.0)
    assert s["gaps"] == [_g(2, 8, "unknown")]
    assert _get(client, t, f"/api/v1/patients/{pid}/days") == []


def test_another_therapists_patient_stays_404(client: ApiClient, db: Session, app: FastAPI, world: dict[str, Any]) -> None:
    _post(client, world["headers"], {"events": _mark_events()[1:3]})
    other = make_therapist(db, app, email="other@example.org")
    for path in ("days", "sessions", "devices"):
        r = client.get(f"/api/v1/patients/{world['pid']}/{path}", headers=other.headers)
        assert r.status_code == 404, r.text


def test_gaps_equal_otmon_analyze_for_a_capture_with_drops(
    client: ApiClient, db: Session, app: FastAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture with a reconnect and lost frames: `otmon analyze --json` (gaps from the
    capture's connect events and the decoder's drops) equals the service fed the blocks and
    the gap events a live collector reports (assembler gaps, link gap across the reconnect)."""
    capture = write_gapped_capture(tmp_path / "gapped.capture.jsonl.gz")
    assert main(["analyze", str(capture), "--json", "--tz", TZ]) == 0
    report = json.loads(capsys.readouterr().out)

    decoded = decode_capture(capture)
    blocks = sorted(decoded.blocks, key=lambda b: b.t0_ns)
    (drop,) = [g for g in decoded.gaps if g.length_ns > 0]  # the collector's device_drop
    k = next(i for i in range(1, len(blocks)) if blocks[i].t0_ns - blocks[i - 1].end_ns > 60 * S)
    events = [
        {"id": eid(), "kind": "gap", "stream": "acc", "start_ns": drop.start_ns,
         "end_ns": drop.start_ns + drop.length_ns, "cause": "device_drop"},
        {"id": eid(), "kind": "gap", "stream": "acc", "start_ns": blocks[k - 1].end_ns,
         "end_ns": blocks[k].t0_ns, "cause": "ble_disconnect"},
    ]
    t = make_therapist(db, app)
    p = make_patient(db, t, tz=TZ)
    _device, headers = make_device(db, p)
    payload = [block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz) for i, b in enumerate(blocks)]
    _post(client, headers, {"blocks": payload[:30], "events": events[:1]})
    _post(client, headers, {"blocks": payload[30:], "events": events[1:]})

    (day,) = report["days"]
    causes = [(g["cause"], g["duration_s"]) for g in day["gaps"]]
    link_s = (RECONNECT[1] - RECONNECT[0]) * 0.72  # ≈ 0.72 s of samples per notification
    assert [c for c, _ in causes] == ["ble_disconnect", "device_drop"]
    assert causes[0][1] == pytest.approx(link_s, abs=1.0) and causes[1][1] == 7.2
    assert day["samples"] == sum(b.n_samples for b in blocks)
    assert _get(client, t, f"/api/v1/patients/{p.id}/days") == report["days"]
    assert _get(client, t, f"/api/v1/patients/{p.id}/sessions") == report["sessions"]
    assert [g["cause"] for s in report["sessions"] for g in s["gaps"]] == ["device_drop"]
