"""Task sessions served from the stored epochs and seconds equal `otmon analyze --json`'s."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from analysis.effort import summarise_session
from analysis.pipeline import epoch_table
from analysis.samples import SampleBlock
from analysis.seconds import enmo_by_second, grid_personal_peak_mg, second_grid
from api.models import SampleBlockRow, SecondChunkRow
from api.services import seconds as second_service
from collector.session import decode_capture
from otmon.fatigue_report import add_fatigue
from tests.api.conftest import ApiClient
from tests.api.factories import (
    audit_rows,
    block_json,
    count,
    make_device,
    make_patient,
    make_therapist,
)

REPO = Path(__file__).resolve().parents[2]
CAPTURE = REPO / "fixtures" / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
TZ = "America/Chicago"
INGEST = "/api/v1/ingest"


@lru_cache(maxsize=1)
def fixture_blocks() -> tuple[SampleBlock, ...]:
    return tuple(decode_capture(CAPTURE).blocks)


@lru_cache(maxsize=1)
def cli_sessions() -> list[dict[str, Any]]:
    """`sessions` of the real `otmon analyze FILE --json --tz TZ` process."""
    out = subprocess.run(
        [sys.executable, "-m", "otmon", "analyze", str(CAPTURE), "--json", "--tz", TZ],
        capture_output=True, text=True, timeout=120, check=True, cwd=REPO,
    )
    return json.loads(out.stdout)["sessions"]  # type: ignore[no-any-return]


def _payload() -> list[dict[str, Any]]:
    return [
        block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz) for i, b in enumerate(fixture_blocks())
    ]


def _setup(client: ApiClient, db: Session, app: FastAPI) -> tuple[Any, int, dict[str, str]]:
    t = make_therapist(db, app)
    patient = make_patient(db, t, tz=TZ)
    _device, headers = make_device(db, patient)
    return t, patient.id, headers


def _sessions(client: ApiClient, t: Any, pid: int, **params: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/patients/{pid}/sessions", headers=t.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_sessions_equal_otmon_analyze(client: ApiClient, db: Session, app: FastAPI) -> None:
    t, pid, headers = _setup(client, db, app)
    assert _sessions(client, t, pid) == []
    r = client.post(INGEST, headers=headers, json={"blocks": _payload()})
    assert r.status_code == 200, r.text
    expected = cli_sessions()
    assert len(expected) == 1 and expected[0]["active_s"] > 1000  # a real 41-min session
    got = _sessions(client, t, pid)
    assert got == expected  # every key and value, exactly
    assert [list(s) for s in got] == [list(s) for s in expected]  # same key order
    assert _sessions(client, t, pid) == expected  # served from the cache
    # from/to select sessions overlapping [from, to)
    assert _sessions(client, t, pid, **{"from": expected[0]["end"]}) == []
    assert _sessions(client, t, pid, to=expected[0]["start"]) == []
    assert _sessions(client, t, pid, **{"from": "2023-04-24T17:30:00-05:00", "to": "2023-04-24T17:31:00-05:00"}) == expected
    assert audit_rows(db, pid).count((t.user.id, "read_sessions")) == 6


def test_random_chunks_and_order_give_the_same_sessions(client: ApiClient, db: Session, app: FastAPI) -> None:
    """Ingest in random batches and order, reading in between (cache invalidated each time)."""
    rng = np.random.default_rng(5)
    t, pid, headers = _setup(client, db, app)
    payload = _payload()
    order = rng.permutation(len(payload))
    pos = 0
    while pos < len(order):
        size = int(rng.integers(1, 25))
        r = client.post(INGEST, headers=headers, json={"blocks": [payload[k] for k in order[pos : pos + size]]})
        assert r.status_code == 200, r.text
        pos += size
        _sessions(client, t, pid)
    assert _sessions(client, t, pid) == cli_sessions()
    # A repeated (idempotent) upload stores nothing and leaves the sessions alone.
    assert client.post(INGEST, headers=headers, json={"blocks": payload[:3]}).status_code == 200
    assert _sessions(client, t, pid) == cli_sessions()


def test_stored_seconds_equal_enmo_by_second(client: ApiClient, db: Session, app: FastAPI) -> None:
    _t, _pid, headers = _setup(client, db, app)
    payload = _payload()
    for k in range(0, len(payload), 7):
        assert client.post(INGEST, headers=headers, json={"blocks": payload[k : k + 7]}).status_code == 200
    db.expire_all()
    device_id = db.query(SampleBlockRow.device_id).first()[0]  # type: ignore[index]
    stored = second_service.load(db, device_id=device_id, stream="acc")
    ref = enmo_by_second(list(fixture_blocks()))
    assert np.array_equal(stored.start_ns, ref.start_ns)
    assert np.array_equal(stored.n_samples, ref.n_samples)
    assert np.array_equal(stored.covered_s, ref.covered_s)  # bit-identical
    assert np.array_equal(stored.enmo_mg, ref.enmo_mg)
    assert count(db, SecondChunkRow) == 2  # 1 h of data across two UTC hours


def _label_reference(start: str, end: str, activity: str) -> dict[str, Any]:
    blocks = list(fixture_blocks())
    table = epoch_table(blocks)
    grid = second_grid(enmo_by_second(blocks), class_epochs=table)
    from analysis.sessions import labelled_sessions

    (span,) = labelled_sessions([{"start": start, "end": end, "activity": activity}])
    summary = summarise_session(
        grid, start_ns=span.start_ns, end_ns=span.end_ns, activity=activity, personal_peak_mg=grid_personal_peak_mg(grid),
        source=span.source,
    )
    add_fatigue(blocks, grid, [span], [summary])  # issue 6: the session's `fatigue`, as otmon analyze
    return summary


def test_labelled_session_replaces_the_detected_one(client: ApiClient, db: Session, app: FastAPI) -> None:
    t, pid, headers = _setup(client, db, app)
    assert client.post(INGEST, headers=headers, json={"blocks": _payload()}).status_code == 200
    assert _sessions(client, t, pid) == cli_sessions()
    url = f"/api/v1/patients/{pid}/sessions"
    body = {"start": "2023-04-24T17:25:00-05:00", "end": "2023-04-24T17:45:30-05:00", "activity": "cooking"}
    r = client.post(url, headers=t.headers, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["start"] == "2023-04-24T22:25:00Z" and r.json()["activity"] == "cooking"
    got = _sessions(client, t, pid)
    expected = _label_reference(body["start"], body["end"], "cooking")
    assert got == [expected]
    assert got[0]["met"] == 2.0 and got[0]["duration_s"] == 1230.0 and got[0]["active_s"] > 0
    # A second label elsewhere (no data there) is listed too, in time order.
    late = {"start": "2023-04-25T08:00:00Z", "end": "2023-04-25T08:10:00Z", "activity": "gardening"}
    assert client.post(url, headers=t.headers, json=late).status_code == 201
    got2 = _sessions(client, t, pid)
    assert got2[0] == expected
    assert got2[1]["activity"] == "gardening" and got2[1]["completeness"]["gap_fraction"] == 1.0
    assert ("label_session" in [a for _, a in audit_rows(db, pid)])


def test_labels_without_data(client: ApiClient, db: Session, app: FastAPI) -> None:
    t, pid, _headers = _setup(client, db, app)
    url = f"/api/v1/patients/{pid}/sessions"
    body = {"start": "2024-03-01T09:00:00+01:00", "end": "2024-03-01T09:30:00+01:00", "activity": "dressing"}
    assert client.post(url, headers=t.headers, json=body).status_code == 201
    (s,) = _sessions(client, t, pid)
    assert (s["start"], s["end"], s["activity"], s["active_s"], s["mean_enmo_mg"]) == (
        "2024-03-01T08:00:00Z", "2024-03-01T08:30:00Z", "dressing", 0.0, None
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"start": "2024-03-01T09:00:00", "end": "2024-03-01T09:30:00Z", "activity": "cooking"}, 422),  # naive
        ({"start": "2024-03-01T09:30:00Z", "end": "2024-03-01T09:30:00Z", "activity": "cooking"}, 422),  # empty
        ({"start": "2024-03-01T09:30:00Z", "end": "2024-03-01T09:00:00Z", "activity": "cooking"}, 422),  # reversed
        ({"start": "2024-03-01T09:00:00Z", "end": "9999-12-31T23:59:59Z", "activity": "cooking"}, 422),  # beyond int64 ns
        ({"start": "not a time", "end": "2024-03-01T09:30:00Z", "activity": "cooking"}, 422),
        ({"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z"}, 422),  # no activity
        ({"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z", "activity": "  "}, 422),
        ({"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z", "activity": "x" * 65}, 422),
        ({"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z", "activity": "a", "x": 1}, 422),
        ({"start": "2024-03-01T10:29:59+01:00", "end": "2024-03-01T11:00:00+01:00", "activity": "a"}, 409),  # overlaps
        ({"start": "2024-03-01T08:59:00Z", "end": "2024-03-01T10:00:00Z", "activity": "a"}, 409),  # covers
        ({"start": "2024-03-01T09:30:00Z", "end": "2024-03-01T10:00:00Z", "activity": "a"}, 201),  # adjacent
        ({"start": "2024-03-01T08:30:00Z", "end": "2024-03-01T09:00:00Z", "activity": "a"}, 201),  # adjacent
    ],
)
def test_label_validation(client: ApiClient, db: Session, app: FastAPI, body: dict[str, Any], status: int) -> None:
    t, pid, _headers = _setup(client, db, app)
    url = f"/api/v1/patients/{pid}/sessions"
    first = {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z", "activity": "cooking"}
    assert client.post(url, headers=t.headers, json=first).status_code == 201
    r = client.post(url, headers=t.headers, json=body)
    assert r.status_code == status, r.text
    assert len(_sessions(client, t, pid)) == (2 if status == 201 else 1)


@pytest.mark.parametrize(
    "params",
    [{"from": "yesterday"}, {"to": "2024-03-01T09:00:00"}, {"from": "9999-12-31T00:00:00Z"}, {"to": "2024-13-01T00:00:00Z"}],
)
def test_bad_query_is_422(client: ApiClient, db: Session, app: FastAPI, params: dict[str, str]) -> None:
    t, pid, _headers = _setup(client, db, app)
    r = client.get(f"/api/v1/patients/{pid}/sessions", headers=t.headers, params=params)
    assert r.status_code == 422, r.text


def test_other_therapists_patient_is_404(client: ApiClient, db: Session, app: FastAPI) -> None:
    owner, pid, _headers = _setup(client, db, app)
    other = make_therapist(db, app, email="other@example.org")
    url = f"/api/v1/patients/{pid}/sessions"
    body = {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z", "activity": "cooking"}
    assert client.get(url, headers=other.headers).status_code == 404
    assert client.post(url, headers=other.headers, json=body).status_code == 404
    assert client.get("/api/v1/patients/999999/sessions", headers=owner.headers).status_code == 404
    assert client.get(url).status_code == 401
    assert client.post(url, json=body).status_code == 401
    assert audit_rows(db, pid) == []
    assert _sessions(client, owner, pid) == []


def _six_hours(rng: np.random.Generator) -> list[SampleBlock]:
    """6 h at 10 Hz in 2-min blocks: task bouts and rests, 80 min off-wrist, a 20-min gap."""
    fs_hz, t0 = 10.0, 1_709_287_200_000_000_000 + 123_456_789  # 2024-03-01 10:00 UTC + 0.12 s
    parts = []
    for minutes, sd_g in [(25, 0.3), (3, 0.02), (12, 0.25), (8, 0.02), (80, 0.0005), (30, 0.3), (7, 0.02),
                          (40, 0.2), (20, 0.02), (35, 0.35), (10, 0.02), (20, 0.25), (30, 0.02)]:
        n = int(minutes * 60 * fs_hz)
        tilt = [0.0, 0.0, 1.0] if sd_g > 0.001 else [0.3, 0.1, 0.95]  # off-wrist: lying still, tilted
        parts.append(rng.normal(0.0, sd_g, (n, 3)) + tilt)
    accel = np.concatenate(parts).astype(np.float32)
    n_block = int(120 * fs_hz)
    blocks = [SampleBlock(t0_ns=t0 + int(i * 1e8), fs_hz=fs_hz, accel_g=accel[i : i + n_block]) for i in range(0, len(accel), n_block)]
    return [b for k, b in enumerate(blocks) if not 100 <= k < 110]  # a 20-min gap (collector off)


@pytest.mark.parametrize("order_kind", ["random", "in_time"])
def test_regional_regrading_equals_whole_history(client: ApiClient, db: Session, app: FastAPI, order_kind: str) -> None:
    """Grid regions re-graded on ingest (reads in between) equal one global pass.

    In time order, the start of the off-wrist hour is first graded worn (too little data for
    a 60-min window) and must be re-graded by the later uploads' margins.
    """
    from analysis.sessions import detect_sessions, summarise_sessions
    from api.services import grid as grid_service

    rng = np.random.default_rng(11)
    blocks = _six_hours(rng)
    t, pid, headers = _setup(client, db, app)
    payload = [block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz) for i, b in enumerate(blocks)]
    order = rng.permutation(len(payload)) if order_kind == "random" else np.arange(len(payload))
    pos = 0
    while pos < len(order):
        size = int(rng.integers(10, 40)) if order_kind == "random" else 8
        r = client.post(INGEST, headers=headers, json={"blocks": [payload[k] for k in order[pos : pos + size]]})
        assert r.status_code == 200, r.text
        pos += size
        _sessions(client, t, pid)
    got = _sessions(client, t, pid)

    table = epoch_table(blocks)
    ref = second_grid(enmo_by_second(blocks), class_epochs=table)
    assert (~ref.worn[ref.n_samples > 0]).sum() >= 3600  # an off-wrist hour is non-wear
    db.expire_all()
    stored = grid_service.load(db, patient_id=pid)
    assert stored is not None and stored.t0_ns == ref.t0_ns
    for name in ("n_samples", "covered_s", "worn", "klass", "active"):
        assert np.array_equal(getattr(stored, name), getattr(ref, name)), name
    assert np.array_equal(stored.enmo_mg, ref.enmo_mg, equal_nan=True)
    spans = detect_sessions(ref)
    expected = summarise_sessions(ref, spans, personal_peak_mg=grid_personal_peak_mg(ref))
    add_fatigue(blocks, ref, spans, expected)  # issue 6: fatigue windows stored on ingest, as one pass
    assert len(expected) >= 2
    assert got == expected
