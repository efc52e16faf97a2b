"""POST /api/v1/ingest with `events` and `status` (issue 4 contract): idempotent events, latest
status per device, 409/422 with a reason, rejected requests change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import DeviceEvent, DeviceStatusRow
from tests.api.conftest import ApiClient
from tests.api.factories import (
    T0_NS,
    block_json,
    make_device,
    make_patient,
    make_therapist,
    random_accel,
    snapshot,
)

URL = "/api/v1/ingest"
S = 1_000_000_000


def eid() -> str:
    return uuid.uuid4().hex


def gap(start_ns: int, end_ns: int, cause: str = "ble_disconnect", **kw: Any) -> dict[str, Any]:
    return {"id": eid(), "kind": "gap", "stream": "acc", "start_ns": start_ns, "end_ns": end_ns,
            "cause": cause, **kw}


def start(at_ns: int, label: str = "cooking", **kw: Any) -> dict[str, Any]:
    return {"id": eid(), "kind": "task_start", "at_ns": at_ns, "label": label, "source": "cli", **kw}


def stop(at_ns: int, borg: int | None = 13, note: str | None = "felt dizzy", **kw: Any) -> dict[str, Any]:
    return {"id": eid(), "kind": "task_stop", "at_ns": at_ns, "borg": borg, "note": note,
            "source": "button", **kw}


def status(at_ns: int, **kw: Any) -> dict[str, Any]:
    return {"at_ns": at_ns, "link": "connected", "battery_pct": 80, "backlog_blocks": 2,
            "backlog_samples": 6000, "backlog_oldest_t0_ns": T0_NS, "decoded_until_ns": at_ns, **kw}


@pytest.fixture
def setup(client: ApiClient, db: Session, app: FastAPI) -> dict[str, Any]:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    device, headers = make_device(db, p)
    first = [gap(T0_NS, T0_NS + 5 * S), start(T0_NS + 10 * S)]
    r = client.post(URL, headers=headers, json={"events": first})
    assert r.status_code == 200, r.text
    return {"headers": headers, "device": device, "patient": p, "therapist": t, "events": first}


def _rejected(client: ApiClient, db: Session, setup: dict[str, Any], status_code: int, body: Any) -> str:
    before = snapshot(db)
    r = client.post(URL, headers=setup["headers"], json=body)
    assert r.status_code == status_code, r.text
    assert snapshot(db) == before
    return str(r.json()["detail"])


def test_events_are_stored_with_their_fields(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    s = stop(T0_NS + 70 * S)
    r = client.post(URL, headers=setup["headers"], json={"events": [s]})
    assert r.status_code == 200, r.text
    assert r.json() == {"blocks": [], "samples": 0, "events": [{"id": s["id"]}]}
    rows = db.scalars(select(DeviceEvent).order_by(DeviceEvent.id)).all()
    assert [(e.kind, e.event_id) for e in rows] == [
        ("gap", setup["events"][0]["id"]), ("task_start", setup["events"][1]["id"]), ("task_stop", s["id"])
    ]
    g, st, sp = rows
    assert (g.stream, g.start_ns, g.end_ns, g.at_ns) == ("acc", T0_NS, T0_NS + 5 * S, None)
    assert g.fields == {"cause": "ble_disconnect"}
    assert (st.at_ns, st.fields) == (T0_NS + 10 * S, {"label": "cooking", "source": "cli"})
    assert sp.fields == {"borg": 13, "note": "felt dizzy", "source": "button"}
    assert all(e.device_id == setup["device"].id and len(e.body_sha256) == 64 for e in rows)


def test_blocks_and_events_in_one_request(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    block = block_json(random_accel(rng, 100), seq=0, t0_ns=T0_NS + 100 * S)
    evs = [gap(T0_NS + 98 * S, T0_NS + 100 * S, "collector_down"), stop(T0_NS + 102 * S, borg=None, note=None)]
    r = client.post(URL, headers=setup["headers"], json={"blocks": [block], "events": evs, "status": status(T0_NS + 103 * S)})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "blocks": [{"stream": "acc", "seq": 0, "n_samples": 100, "t0_ns": T0_NS + 100 * S}],
        "samples": 100,
        "events": [{"id": evs[0]["id"]}, {"id": evs[1]["id"]}],
    }
    snap = snapshot(db)
    assert len(snap["blocks"]) == 1 and len(snap["events"]) == 4 and len(snap["status"]) == 1


def test_same_events_again_stored_once_answered_alike(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    evs = [stop(T0_NS + 70 * S), setup["events"][0], start(T0_NS + 80 * S)]
    body = {"events": evs + [evs[0]]}  # a duplicate inside the request too
    first = client.post(URL, headers=setup["headers"], json=body)
    after = snapshot(db)
    second = client.post(URL, headers=setup["headers"], json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert [e["id"] for e in first.json()["events"]] == [e["id"] for e in body["events"]]
    assert snapshot(db) == after
    assert len(after["events"]) == 4


def test_omitted_optional_fields_equal_explicit_nulls(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    explicit = stop(T0_NS + 70 * S, borg=None, note=None)
    omitted = {k: v for k, v in explicit.items() if k not in ("borg", "note")}
    assert client.post(URL, headers=setup["headers"], json={"events": [explicit]}).status_code == 200
    r = client.post(URL, headers=setup["headers"], json={"events": [omitted]})
    assert r.status_code == 200 and len(snapshot(db)["events"]) == 3


@pytest.mark.parametrize(
    "change",
    [{"cause": "device_drop"}, {"end_ns": T0_NS + 6 * S}, {"stream": "acc2"}, {"kind": "task_start"}],
)
def test_known_id_with_other_body_is_409(
    client: ApiClient, db: Session, setup: dict[str, Any], change: dict[str, Any]
) -> None:
    changed = dict(setup["events"][0], **change)
    if change.get("kind") == "task_start":
        changed = start(T0_NS, id=setup["events"][0]["id"])
    detail = _rejected(client, db, setup, 409, {"events": [changed]})
    assert setup["events"][0]["id"] in detail and "different content" in detail


def test_conflict_inside_one_request_is_409(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    a = start(T0_NS + 80 * S)
    b = dict(a, label="ironing")
    assert "twice" in _rejected(client, db, setup, 409, {"events": [a, b]})


def test_one_bad_event_rejects_the_whole_request(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    rng = np.random.default_rng(4)
    good_block = block_json(random_accel(rng, 50), seq=0, t0_ns=T0_NS + 200 * S)
    good = start(T0_NS + 300 * S)
    conflicting = dict(setup["events"][1], label="ironing")
    _rejected(client, db, setup, 409, {"blocks": [good_block], "events": [good, conflicting],
                                        "status": status(T0_NS)})
    _rejected(client, db, setup, 422, {"blocks": [good_block], "events": [good, stop(T0_NS, borg=21)]})


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (gap(T0_NS, T0_NS + S, id="X" * 32), "id"),
        (gap(T0_NS, T0_NS + S, id="ab"), "id"),
        ({"id": eid(), "kind": "gap", "stream": "acc", "start_ns": T0_NS, "cause": "ble_disconnect"}, "end_ns"),
        (gap(T0_NS, T0_NS), "end_ns"),
        (gap(T0_NS + S, T0_NS), "end_ns"),
        (gap(-1, T0_NS), "start_ns"),
        (gap(T0_NS, 2**63), "end_ns"),
        (gap(T0_NS, T0_NS + S, cause="alien"), "cause"),
        (gap(T0_NS, T0_NS + S, stream="ACC"), "stream"),
        (gap(T0_NS, T0_NS + S, extra=1), "extra"),
        ({"id": eid(), "kind": "nap", "at_ns": T0_NS}, "kind"),
        ({"id": eid(), "at_ns": T0_NS}, "kind"),
        (start(T0_NS, label=""), "label"),
        (start(T0_NS, label="   "), "label"),
        (start(T0_NS, label="x" * 65), "label"),
        (start(T0_NS, source="phone"), "source"),
        (start(1.5), "at_ns"),
        (start("1"), "at_ns"),
        (stop(T0_NS, borg=5), "borg"),
        (stop(T0_NS, borg=21), "borg"),
        (stop(T0_NS, borg=13.0), "borg"),
        (stop(T0_NS, borg="13"), "borg"),
        (stop(T0_NS, note="x" * 501), "note"),
        (stop(T0_NS, note=5), "note"),
    ],
)
def test_bad_event_field_is_422_naming_it(
    client: ApiClient, db: Session, setup: dict[str, Any], event: dict[str, Any], field: str
) -> None:
    detail = _rejected(client, db, setup, 422, {"events": [event]})
    assert field in detail


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"link": "up"}, "link"), ({"battery_pct": 101}, "battery_pct"), ({"battery_pct": -1}, "battery_pct"),
        ({"backlog_blocks": -1}, "backlog_blocks"), ({"backlog_samples": 1.5}, "backlog_samples"),
        ({"at_ns": None}, "at_ns"), ({"decoded_until_ns": -3}, "decoded_until_ns"), ({"extra": 0}, "extra"),
    ],
)
def test_bad_status_field_is_422_naming_it(
    client: ApiClient, db: Session, setup: dict[str, Any], override: dict[str, Any], field: str
) -> None:
    assert field in _rejected(client, db, setup, 422, {"status": {**status(T0_NS), **override}})


def test_events_must_be_a_list(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    for body in ({"events": 3}, {"events": [3]}, {"events": None}, {"status": 3}, {"status": None}):
        _rejected(client, db, setup, 422, body)


def test_latest_status_wins(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    def post(body: dict[str, Any]) -> None:
        r = client.post(URL, headers=setup["headers"], json={"status": body})
        assert r.status_code == 200, r.text
        assert r.json() == {"blocks": [], "samples": 0, "events": []}

    post(status(T0_NS + 10 * S, battery_pct=70))
    post(status(T0_NS + 5 * S, battery_pct=90, link="disconnected"))  # older: ignored
    db.expire_all()
    row = db.get(DeviceStatusRow, setup["device"].id)
    assert row is not None and (row.at_ns, row.battery_pct, row.link) == (T0_NS + 10 * S, 70, "connected")
    post({"at_ns": T0_NS + 20 * S, "link": "connecting"})  # the rest unknown: null, not kept
    db.expire_all()
    row = db.get(DeviceStatusRow, setup["device"].id)
    assert row is not None
    assert (row.at_ns, row.link, row.battery_pct, row.backlog_samples, row.decoded_until_ns) == (
        T0_NS + 20 * S, "connecting", None, None, None)


def test_events_belong_to_their_device(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    other_patient = make_patient(db, setup["therapist"], code="P002")
    other, other_headers = make_device(db, other_patient)
    same_id_other_body = dict(setup["events"][0], cause="device_drop")  # another device: another key
    r = client.post(URL, headers=other_headers, json={"events": [same_id_other_body], "status": status(T0_NS)})
    assert r.status_code == 200, r.text
    owners = sorted(db.execute(select(DeviceEvent.device_id, DeviceEvent.event_id)).all())
    assert owners == sorted([(setup["device"].id, setup["events"][0]["id"]), (setup["device"].id, setup["events"][1]["id"]),
                             (other.id, setup["events"][0]["id"])])
    assert db.get(DeviceStatusRow, setup["device"].id) is None


def test_events_need_a_device_token(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    before = snapshot(db)
    r = client.post(URL, headers=setup["therapist"].headers, json={"events": [start(T0_NS)]})
    assert r.status_code == 401 and snapshot(db) == before


def test_large_event_batch(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    evs = [gap(T0_NS + i * 10 * S, T0_NS + i * 10 * S + S) for i in range(1200)]  # > one IN chunk
    r = client.post(URL, headers=setup["headers"], json={"events": evs})
    assert r.status_code == 200 and len(r.json()["events"]) == 1200
    r2 = client.post(URL, headers=setup["headers"], json={"events": evs[::-1]})
    assert r2.status_code == 200 and len(snapshot(db)["events"]) == 1202


_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2**64), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_keys = st.sampled_from(["id", "kind", "stream", "start_ns", "end_ns", "cause", "at_ns", "label", "borg", "note",
                         "source", "link", "battery_pct", "backlog_blocks", "extra"])


@st.composite
def _event_like(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from([gap(T0_NS, T0_NS + S), start(T0_NS), stop(T0_NS + S)]))
    base = dict(base, id=eid())
    for key in draw(st.lists(_keys, max_size=3)):
        if draw(st.booleans()):
            base.pop(key, None)
        else:
            base[key] = draw(_values)
    return base


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.fixed_dictionaries({"events": st.lists(_event_like(), min_size=1, max_size=3)}),
    st.fixed_dictionaries({"status": st.dictionaries(_keys, _values, max_size=6)}),
    st.dictionaries(st.sampled_from(["blocks", "events", "status"]), _values, min_size=1, max_size=3),
))
def test_any_body_is_answered_without_a_server_error(
    client: ApiClient, db: Session, setup: dict[str, Any], body: dict[str, Any]
) -> None:
    before = snapshot(db)
    r = client.post(URL, headers=setup["headers"], json=body)
    assert r.status_code in (200, 409, 422), r.text
    if r.status_code != 200:
        assert r.json()["detail"] and snapshot(db) == before
