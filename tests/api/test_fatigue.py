"""Fatigue through real HTTP: windows stored on ingest, per-session points, trend and alerts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.samples import NS_PER_S, SampleBlock
from api.models import Device, FatigueWindowRow
from api.services import fatigue as fatigue_service
from api.services import fatigue_windows
from collector.session import decode_capture
from tests.api.conftest import ApiClient
from tests.api.factories import audit_rows, block_json, make_device, make_patient, make_therapist
from tests.fatigue_signals import FS_HZ, arm_task

INGEST = "/api/v1/ingest"
CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
DAY_NS = 86_400 * NS_PER_S
# 2024-03-04 09:00:00 UTC, a Monday; one session every third day.
T0_NS = 1_709_542_800 * NS_PER_S
SESSION_S = 600
TASK = "stirring"


@lru_cache(maxsize=1)
def capture_blocks() -> tuple[SampleBlock, ...]:
    return tuple(decode_capture(CAPTURE).blocks)


def _blocks_of(accel: np.ndarray, t0_ns: int) -> list[SampleBlock]:
    """60-s upload blocks, as the collector's assembler cuts them."""
    n = round(60 * FS_HZ)
    return [
        SampleBlock(t0_ns + round(i * NS_PER_S / FS_HZ), FS_HZ, accel[i : i + n].astype(np.float32))
        for i in range(0, accel.shape[0], n)
    ]


def _history() -> list[tuple[int, np.ndarray]]:
    """Six 10-min sessions of one task: three fresh, then three weaker and slower ones."""
    fresh = [(0.7, 1.6), (0.85, 1.4), (0.8, 1.5)]
    tired = [(0.55, 1.2), (0.5, 1.15), (0.5, 1.1)]
    return [
        (T0_NS + 3 * i * DAY_NS, arm_task(SESSION_S, amp_g=a, freq_hz=f, seed=40 + i))
        for i, (a, f) in enumerate(fresh + tired)
    ]


def _setup(db: Session, app: FastAPI) -> tuple[Any, int, dict[str, str]]:
    t = make_therapist(db, app)
    patient = make_patient(db, t)
    _device, headers = make_device(db, patient)
    return t, patient.id, headers


def _ingest(
    client: ApiClient, headers: dict[str, str], blocks: list[SampleBlock], first_seq: int = 0
) -> None:
    payload = [
        block_json(b.accel_g, seq=first_seq + i, t0_ns=b.t0_ns, fs_hz=b.fs_hz)
        for i, b in enumerate(blocks)
    ]
    r = client.post(INGEST, headers=headers, json={"blocks": payload})
    assert r.status_code == 200, r.text


def _tired_patient(client: ApiClient, db: Session, app: FastAPI) -> tuple[Any, int]:
    t, pid, headers = _setup(db, app)
    seq = 0
    for t0_ns, accel in _history():
        blocks = _blocks_of(accel, t0_ns)
        _ingest(client, headers, blocks, seq)
        seq += len(blocks)
        label = {"start": _iso(t0_ns), "end": _iso(t0_ns + SESSION_S * NS_PER_S), "activity": TASK}
        r = client.post(f"/api/v1/patients/{pid}/sessions", headers=t.headers, json=label)
        assert r.status_code == 201, r.text
    return t, pid


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit="s") + "Z"


def test_stored_windows_equal_one_pass_in_any_upload_order(
    client: ApiClient, db: Session, app: FastAPI
) -> None:
    _t, _pid, headers = _setup(db, app)
    blocks = list(capture_blocks())
    payload = [
        block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz) for i, b in enumerate(blocks)
    ]
    order = np.random.default_rng(3).permutation(len(payload))
    for k in range(0, len(order), 7):
        r = client.post(
            INGEST, headers=headers, json={"blocks": [payload[j] for j in order[k : k + 7]]}
        )
        assert r.status_code == 200, r.text
    db.expire_all()
    device_ids = list(db.scalars(select(Device.id)))
    first, last = fatigue_windows.touched_starts(blocks[0].t0_ns, blocks[-1].end_ns)
    stored = fatigue_service.load(db, device_ids=device_ids, start_ns=first, end_ns=last + 1)
    ref = fatigue_windows.windows_for_starts(blocks, first_start_ns=first, last_start_ns=last)
    assert len(ref.windows) == 122 and len(stored) == len(
        ref.windows
    )  # 1 h: every 30 s, with samples
    assert np.array_equal(stored.start_ns, ref.windows.start_ns)
    assert fatigue_windows.encode(stored) == fatigue_windows.encode(ref.windows)  # bit for bit
    rows = db.scalars(select(FatigueWindowRow.n_samples).order_by(FatigueWindowRow.start_ns)).all()
    assert list(rows) == ref.n_samples.tolist() and max(rows) == 3000  # 60 s at 50 Hz


def test_points_trend_and_alert_of_a_tiring_task(
    client: ApiClient, db: Session, app: FastAPI
) -> None:
    t, pid = _tired_patient(client, db, app)
    sessions = client.get(f"/api/v1/patients/{pid}/sessions", headers=t.headers).json()
    assert [s["activity"] for s in sessions] == [TASK] * 6
    r = client.get(f"/api/v1/patients/{pid}/fatigue", headers=t.headers, params={"activity": TASK})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["activity"] == TASK and len(body["points"]) == 6
    for p, s in zip(body["points"], sessions, strict=True):  # the sessions' own fatigue objects
        f = s["fatigue"]
        assert (p["start"], p["index"], p["index_between"], p["delta"], p["quality"]) == (
            s["start"], f["index"], f["index_between"], f["delta"], f["quality"],
        )  # fmt: skip
    assert [p["quality"] for p in body["points"]] == ["ok"] * 6
    between = [p["index_between"] for p in body["points"]]
    assert min(between[3:]) > 0.5 > max(between[:3])  # the tired sessions are above the baseline
    trend = body["trend"]
    # Theil–Sen over 15 days of a step up of ~0.7: ~0.36 per week, Kendall τ 0.6 (n = 6).
    assert trend["n"] == 6 and trend["slope_per_week"] > 0.2 and trend["tau"] >= 0.6
    # Another activity has no sessions; all sessions when no activity is given.
    other = client.get(
        f"/api/v1/patients/{pid}/fatigue", headers=t.headers, params={"activity": "dressing"}
    ).json()
    assert (
        other["points"] == []
        and other["trend"]["n"] == 0
        and other["trend"]["slope_per_week"] is None
    )
    assert (
        client.get(f"/api/v1/patients/{pid}/fatigue", headers=t.headers).json()["points"]
        == body["points"]
    )

    r = client.get(f"/api/v1/patients/{pid}/alerts", headers=t.headers)
    assert r.status_code == 200, r.text
    (a,) = r.json()
    # Sessions 4-6 are above baseline: 3 of the last 5 first holds at session 6.
    assert a["activity"] == TASK and a["active"] is True and a["raised_at"] == sessions[5]["start"]
    assert [s["start"] for s in a["sessions"]] == [s["start"] for s in sessions[3:]]
    assert (a["k"], a["n"], a["above"], a["considered"]) == (3, 5, 3, 5)
    assert "3 of the last 5" in a["reason"] and TASK in a["reason"]
    # A looser rule is raised earlier, at session 5.
    (early,) = client.get(
        f"/api/v1/patients/{pid}/alerts", headers=t.headers, params={"k": 2, "n": 3}
    ).json()
    assert early["raised_at"] == sessions[4]["start"] and len(early["sessions"]) == 2
    actions = [action for _, action in audit_rows(db, pid)]
    assert actions.count("read_fatigue") == 3 and actions.count("read_alerts") == 2


def test_access_and_bad_queries(client: ApiClient, db: Session, app: FastAPI) -> None:
    t, pid, _headers = _setup(db, app)
    other = make_therapist(db, app, email="other@example.org")
    for path in ("fatigue", "alerts"):
        url = f"/api/v1/patients/{pid}/{path}"
        empty = client.get(url, headers=t.headers)
        assert empty.status_code == 200, empty.text
        assert client.get(url).status_code == 401
        assert client.get(url, headers=other.headers).status_code == 404
        assert (
            client.get(f"/api/v1/patients/{pid + 1000}/{path}", headers=t.headers).status_code
            == 404
        )
        assert client.get(f"/api/v1/patients/0/{path}", headers=t.headers).status_code == 422
    assert client.get(f"/api/v1/patients/{pid}/fatigue", headers=t.headers).json() == {
        "activity": None,
        "points": [],
        "trend": {
            "slope_per_week": None,
            "slope_ci95": None,
            "intercept": None,
            "tau": None,
            "p": None,
            "n": 0,
        },
    }
    assert client.get(f"/api/v1/patients/{pid}/alerts", headers=t.headers).json() == []
    bad = [
        ("fatigue", {"activity": ""}),
        ("fatigue", {"activity": "x" * 65}),
        ("alerts", {"k": 0}),
        ("alerts", {"k": "three"}),
        ("alerts", {"n": 51}),
        ("alerts", {"k": 4, "n": 3}),
    ]
    for path, params in bad:
        r = client.get(f"/api/v1/patients/{pid}/{path}", headers=t.headers, params=params)
        assert r.status_code == 422, (path, params, r.text)
    assert (
        "k=4, n=3"
        in client.get(
            f"/api/v1/patients/{pid}/alerts", headers=t.headers, params={"k": 4, "n": 3}
        ).text
    )


@pytest.mark.parametrize("fs_hz", [10.0])
def test_a_rate_too_slow_for_fatigue_stores_no_windows(
    client: ApiClient, db: Session, app: FastAPI, fs_hz: float
) -> None:
    _t, _pid, headers = _setup(db, app)
    accel = np.tile([0.0, 0.0, 1.0], (600, 1)).astype(np.float32)
    r = client.post(
        INGEST,
        headers=headers,
        json={"blocks": [block_json(accel, seq=0, t0_ns=T0_NS, fs_hz=fs_hz)]},
    )
    assert r.status_code == 200, r.text
    assert db.scalars(select(FatigueWindowRow)).all() == []
