"""Patients and devices: ownership (404 for others), validation, token handling, audit log."""

from __future__ import annotations

import hashlib

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Device, Patient
from tests.api.conftest import ApiClient
from tests.api.factories import audit_rows, count, make_device, make_patient, make_therapist

V1 = "/api/v1"


def test_create_and_read_patient(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    r = client.post(f"{V1}/patients", headers=t.headers, json={"code": "P-7", "timezone": "Europe/London"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"id", "code", "timezone"}
    assert created["code"] == "P-7" and created["timezone"] == "Europe/London"
    assert client.get(f"{V1}/patients/{created['id']}", headers=t.headers).json() == created
    assert client.get(f"{V1}/patients", headers=t.headers).json() == [created]


def test_timezone_defaults_to_utc(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    r = client.post(f"{V1}/patients", headers=t.headers, json={"code": "P1"})
    assert r.status_code == 201 and r.json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    "body",
    [
        {"code": "P1", "timezone": "Mars/Olympus"},
        {"code": "P1", "timezone": "../../etc/passwd"},
        {"code": ""},
        {"code": "P1", "therapist_id": 5},
        {"timezone": "UTC"},
    ],
)
def test_invalid_patient_is_422(client: ApiClient, db: Session, app: FastAPI, body: dict[str, object]) -> None:
    t = make_therapist(db, app)
    r = client.post(f"{V1}/patients", headers=t.headers, json=body)
    assert r.status_code == 422
    assert count(db, Patient) == 0


def test_duplicate_code_is_409_per_therapist(client: ApiClient, db: Session, app: FastAPI) -> None:
    a = make_therapist(db, app, "a@example.org")
    b = make_therapist(db, app, "b@example.org")
    assert client.post(f"{V1}/patients", headers=a.headers, json={"code": "P1"}).status_code == 201
    assert client.post(f"{V1}/patients", headers=a.headers, json={"code": "P1"}).status_code == 409
    assert client.post(f"{V1}/patients", headers=b.headers, json={"code": "P1"}).status_code == 201
    assert count(db, Patient) == 2


def test_other_therapists_patient_is_404_everywhere(client: ApiClient, db: Session, app: FastAPI) -> None:
    owner = make_therapist(db, app, "owner@example.org")
    other = make_therapist(db, app, "other@example.org")
    p = make_patient(db, owner)
    make_device(db, p)
    devices_before = count(db, Device)
    for method, path in [
        ("GET", f"{V1}/patients/{p.id}"),
        ("GET", f"{V1}/patients/{p.id}/devices"),
        ("GET", f"{V1}/patients/{p.id}/days"),
        ("POST", f"{V1}/patients/{p.id}/devices"),
    ]:
        r = client.request(method, path, headers=other.headers, json={"profile": "metawear", "name": "x"})
        assert r.status_code == 404, (method, path)
        assert r.json() == {"detail": f"patient {p.id} not found"}
    # An id that does not exist at all answers the same.
    assert client.get(f"{V1}/patients/999999", headers=other.headers).json() == {
        "detail": "patient 999999 not found"
    }
    assert client.get(f"{V1}/patients", headers=other.headers).json() == []
    assert count(db, Device) == devices_before
    assert audit_rows(db, p.id) == []


def test_device_token_returned_once_and_stored_hashed(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    r = client.post(f"{V1}/patients/{p.id}/devices", headers=t.headers,
                    json={"profile": "polar_pmd", "name": "Polar H10"})
    assert r.status_code == 201
    created = r.json()
    token = created["token"]
    assert set(created) == {"id", "patient_id", "profile", "name", "token"}
    assert len(token) >= 40
    row = db.scalars(select(Device).where(Device.id == created["id"])).one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr([getattr(row, c.key) for c in Device.__table__.columns])
    listed = client.get(f"{V1}/patients/{p.id}/devices", headers=t.headers)
    assert listed.status_code == 200
    assert token not in listed.text and row.token_sha256 not in listed.text
    never_reported = dict.fromkeys(
        ("last_seen", "link", "battery_pct", "backlog_blocks", "backlog_samples", "backlog_oldest", "decoded_until")
    )
    assert listed.json() == [{**{k: v for k, v in created.items() if k != "token"}, **never_reported}]


@pytest.mark.parametrize(
    "body", [{"profile": "fitbit", "name": "x"}, {"profile": "polar_pmd"}, {"profile": "polar_pmd", "name": ""},
             {"profile": "polar_pmd", "name": "x", "token": "mine"}]
)
def test_invalid_device_is_422(client: ApiClient, db: Session, app: FastAPI, body: dict[str, str]) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    r = client.post(f"{V1}/patients/{p.id}/devices", headers=t.headers, json=body)
    assert r.status_code == 422
    assert count(db, Device) == 0


def test_reads_of_patient_data_are_audited(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    assert audit_rows(db, p.id) == []
    for path in ("/patients", f"/patients/{p.id}", f"/patients/{p.id}/devices", f"/patients/{p.id}/days"):
        assert client.get(V1 + path, headers=t.headers).status_code == 200
    assert audit_rows(db, p.id) == [
        (t.user.id, "list_patients"),
        (t.user.id, "read_patient"),
        (t.user.id, "list_devices"),
        (t.user.id, "read_days"),
    ]


def test_health_and_openapi(client: ApiClient) -> None:
    assert client.get(f"{V1}/health").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert f"{V1}/ingest" in spec["paths"]
    assert "requestBody" in spec["paths"][f"{V1}/ingest"]["post"]


def test_unknown_route_and_bad_path_param_are_not_500(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    assert client.get(f"{V1}/patients/abc", headers=t.headers).status_code == 422
    assert client.get(f"{V1}/patients/99999999999999999999999", headers=t.headers).status_code in (404, 422)
    assert client.get(f"{V1}/nope").status_code == 404


def test_dashboard_page_and_security_headers(client: ApiClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get(f"{V1}/health")
    assert api.headers["cache-control"] == "no-store"
