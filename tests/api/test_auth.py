"""Login, access tokens and device tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.errors import Conflict
from api.security import JWT_AUDIENCE, create_access_token
from api.services import users
from tests.api.conftest import ApiClient
from tests.api.factories import PASSWORD, make_device, make_patient, make_therapist


def test_login_success_returns_bearer_token(client: ApiClient, db: Session, app: FastAPI) -> None:
    make_therapist(db, app, email="Ann@Example.org")
    r = client.post("/api/v1/auth/token", data={"username": "ann@example.org", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "bearer"
    assert PASSWORD not in r.text
    me = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("ot@example.org", "wrong password"), ("nobody@example.org", PASSWORD), ("", "")],
)
def test_login_failure_is_401(
    client: ApiClient, db: Session, app: FastAPI, username: str, password: str
) -> None:
    make_therapist(db, app)
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code in (401, 422)
    if username:
        assert r.status_code == 401
        assert r.json() == {"detail": "incorrect email or password"}
        assert r.headers["www-authenticate"] == "Bearer"


def test_password_stored_as_argon2id_and_never_returned(
    client: ApiClient, db: Session, app: FastAPI
) -> None:
    t = make_therapist(db, app)
    assert t.user.password_hash.startswith("$argon2id$")
    params = dict(p.split("=") for p in t.user.password_hash.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2  # OWASP floor
    r = client.post("/api/v1/auth/token", data={"username": "ot@example.org", "password": PASSWORD})
    assert PASSWORD not in r.text and "$argon2" not in r.text
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("PatientRead", "DeviceStatusRead", "DeviceCreated", "Token"):
        assert not any("password" in field for field in schemas[name]["properties"]), name


def test_create_user_duplicate_email_conflicts(db: Session) -> None:
    users.create(db, email="dup@example.org", password="x" * 10)
    with pytest.raises(Conflict):
        users.create(db, email="DUP@example.org", password="y" * 10)


@pytest.mark.parametrize("kind", ["missing", "garbage", "expired", "wrong_key", "alg_none", "no_aud"])
def test_bad_access_tokens_are_401(client: ApiClient, db: Session, app: FastAPI, kind: str) -> None:
    t = make_therapist(db, app)
    now = datetime.now(UTC)
    claims = {"sub": str(t.user.id), "aud": JWT_AUDIENCE, "iat": now, "exp": now + timedelta(minutes=5),
              "typ": "access"}
    key = app.state.secret_key
    token = {
        "missing": None,
        "garbage": "not.a.jwt",
        "expired": jwt.encode({**claims, "exp": now - timedelta(seconds=1)}, key, algorithm="HS256"),
        "wrong_key": jwt.encode(claims, "another-secret-another-secret-xx", algorithm="HS256"),
        "alg_none": jwt.encode(claims, None, algorithm="none"),
        "no_aud": jwt.encode({k: v for k, v in claims.items() if k != "aud"}, key, algorithm="HS256"),
    }[kind]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    r = client.get("/api/v1/patients", headers=headers)
    assert r.status_code == 401


def test_device_token_rejected_on_therapist_endpoints(
    client: ApiClient, db: Session, app: FastAPI
) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    _, device_headers = make_device(db, p)
    for method, path in [
        ("GET", "/api/v1/patients"),
        ("GET", f"/api/v1/patients/{p.id}"),
        ("GET", f"/api/v1/patients/{p.id}/devices"),
        ("GET", f"/api/v1/patients/{p.id}/days"),
        ("POST", f"/api/v1/patients/{p.id}/devices"),
    ]:
        r = client.request(method, path, headers=device_headers, json={"profile": "metawear", "name": "x"})
        assert r.status_code == 401, (method, path)


def test_therapist_token_rejected_on_ingest(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    r = client.post("/api/v1/ingest", headers=t.headers, json={"blocks": []})
    assert r.status_code == 401


def test_token_of_deleted_user_is_401(client: ApiClient, db: Session, app: FastAPI) -> None:
    token = create_access_token(user_id=999_999, secret_key=app.state.secret_key, ttl_s=60)
    r = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
