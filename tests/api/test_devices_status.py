"""GET /patients/{id}/devices: each device with its collector's latest status (issue 4)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session

from analysis.pipeline import iso_utc
from tests.api.conftest import ApiClient
from tests.api.factories import T0_NS, make_device, make_patient, make_therapist

S = 1_000_000_000


def test_devices_show_the_latest_status(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    first, headers = make_device(db, p)
    second, _ = make_device(db, p)
    url = f"/api/v1/patients/{p.id}/devices"
    status = {"at_ns": T0_NS + 90 * S, "link": "disconnected", "battery_pct": 17, "backlog_blocks": 4,
              "backlog_samples": 12_000, "backlog_oldest_t0_ns": T0_NS, "decoded_until_ns": T0_NS + 60 * S}
    assert client.post("/api/v1/ingest", headers=headers, json={"status": status}).status_code == 200
    older = dict(status, at_ns=T0_NS, link="connected", battery_pct=90)
    assert client.post("/api/v1/ingest", headers=headers, json={"status": older}).status_code == 200
    r = client.get(url, headers=t.headers)
    assert r.status_code == 200, r.text
    a, b = r.json()
    assert (a["id"], b["id"]) == (first.id, second.id)
    assert {k: a[k] for k in list(a)[4:]} == {
        "last_seen": iso_utc(T0_NS + 90 * S), "link": "disconnected", "battery_pct": 17, "backlog_blocks": 4,
        "backlog_samples": 12_000, "backlog_oldest": iso_utc(T0_NS), "decoded_until": iso_utc(T0_NS + 60 * S),
    }
    assert a["last_seen"] == "2024-03-01T10:01:30Z"
    assert {k: b[k] for k in list(b)[4:]} == dict.fromkeys(
        ("last_seen", "link", "battery_pct", "backlog_blocks", "backlog_samples", "backlog_oldest", "decoded_until")
    )
    # A battery-less device (no battery_pct) and an empty backlog.
    plain = {"at_ns": T0_NS + 100 * S, "link": "connected", "backlog_blocks": 0, "backlog_samples": 0}
    assert client.post("/api/v1/ingest", headers=headers, json={"status": plain}).status_code == 200
    a = client.get(url, headers=t.headers).json()[0]
    assert (a["link"], a["battery_pct"], a["backlog_blocks"], a["backlog_oldest"]) == ("connected", None, 0, None)


def test_another_therapist_sees_no_devices(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    make_device(db, p)
    other = make_therapist(db, app, email="else@example.org")
    r = client.get(f"/api/v1/patients/{p.id}/devices", headers=other.headers)
    assert r.status_code == 404
    assert client.get("/api/v1/patients/abc/devices", headers=t.headers).status_code == 422
