"""Incremental epoch recomputation on ingest, and the day summaries served from the epochs table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from analysis.pipeline import ROW_KEYS, epoch_table
from analysis.samples import SampleBlock
from api.models import SampleBlockRow
from api.services import epochs as epoch_service
from tests.api.conftest import ApiClient
from tests.api.factories import T0_NS, block_json, count, make_device, make_patient, make_therapist

URL = "/api/v1/ingest"


def _cut(
    rng: np.random.Generator, accel: NDArray[np.float32], *, t0_ns: int, fs_hz: float, max_n: int
) -> list[SampleBlock]:
    """Cut a gap-free stretch into consecutive blocks of random sizes."""
    blocks, i, t = [], 0, t0_ns
    while i < len(accel):
        n = int(rng.integers(1, max_n + 1))
        b = SampleBlock(t0_ns=t, fs_hz=fs_hz, accel_g=accel[i : i + n])
        blocks.append(b)
        i, t = i + n, b.end_ns
    return blocks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_epochs_from_random_chunks_equal_whole_recording(
    client: ApiClient, db: Session, app: FastAPI, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    fs_hz = 52.0  # period 19 230 769.23 ns: sample times are rounded, epochs split mid-block
    t0 = T0_NS + 1_234_567_891
    first = (rng.normal(0, 0.4, (52 * 300, 3)) + [0, 0, 1]).astype(np.float32)
    second = (rng.normal(0, 0.4, (52 * 200, 3)) + [0, 0, 1]).astype(np.float32)
    blocks = _cut(rng, first, t0_ns=t0, fs_hz=fs_hz, max_n=700)
    gap_t0 = blocks[-1].end_ns + 37_000_000_001  # a gap of ~37 s, then more data
    blocks += _cut(rng, second, t0_ns=gap_t0, fs_hz=fs_hz, max_n=2000)
    payload = [
        block_json(b.accel_g, seq=seq, t0_ns=b.t0_ns, fs_hz=fs_hz) for seq, b in enumerate(blocks)
    ]

    t = make_therapist(db, app)
    device, headers = make_device(db, make_patient(db, t))
    order = rng.permutation(len(payload))
    pos = 0
    while pos < len(order):
        size = int(rng.integers(1, 6))
        batch = [payload[k] for k in order[pos : pos + size]]
        r = client.post(URL, headers=headers, json={"blocks": batch})
        assert r.status_code == 200, r.text
        pos += size

    assert count(db, SampleBlockRow) == len(blocks)
    db.expire_all()
    stored = epoch_service.stored_rows(db, device_ids=[device.id])
    expected = epoch_table(blocks, epoch_s=5.0).to_rows()
    assert len(stored) == len(expected)
    assert stored == expected  # exact: every float bit-identical, same keys, same order
    assert all(list(row) == list(ROW_KEYS) for row in stored)


def _two_hours(t0_ns: int) -> list[dict[str, Any]]:
    """2 h at 10 Hz: 1 h lying still (0, 0, 1) g, then 1 h alternating two known vectors."""
    fs_hz, per_hour = 10.0, 36_000
    still = np.tile(np.array([[0.0, 0.0, 1.0]], dtype=np.float32), (per_hour, 1))
    moving = np.tile(np.array([[0.1, 0.1, 1.1], [-0.1, -0.1, 1.3]], dtype=np.float32), (per_hour // 2, 1))
    accel = np.concatenate([still, moving])
    n_block = 3000  # 5 min
    return [
        block_json(accel[i : i + n_block], seq=i // n_block, t0_ns=t0_ns + i * 100_000_000, fs_hz=fs_hz)
        for i in range(0, len(accel), n_block)
    ]


def _expected_enmo_mg() -> float:
    """Hand computation: mean of max(|a| - 1, 0) over the two float32 vectors, in mg."""
    a = np.array([[0.1, 0.1, 1.1], [-0.1, -0.1, 1.3]], dtype=np.float32).astype(np.float64)
    return float(np.mean([math.sqrt(float(v @ v)) - 1.0 for v in a]) * 1000.0)


def _ingest_two_hours(client: ApiClient, db: Session, app: FastAPI, tz: str, t0_ns: int) -> Any:
    t = make_therapist(db, app)
    p = make_patient(db, t, tz=tz)
    _, headers = make_device(db, p)
    r = client.post(URL, headers=headers, json={"blocks": _two_hours(t0_ns)})
    assert r.status_code == 200, r.text
    assert r.json()["samples"] == 72_000
    return client.get(f"/api/v1/patients/{p.id}/days", headers=t.headers)


def test_days_for_still_then_moving_recording(client: ApiClient, db: Session, app: FastAPI) -> None:
    # ENMO of the moving hour: (|(.1,.1,1.1)| - 1 + |(-.1,-.1,1.3)| - 1) / 2 ≈ 208.36 mg
    # → "moderate" (100.6 ≤ ENMO < 428.8 mg, Hildebrand 2014 wrist). The still hour has
    # zero range and SD on every axis over a full 60-min window → non-wear (GGIR 2023);
    # every window touching the moving hour has 200 mg range on all axes → wear.
    r = _ingest_two_hours(client, db, app, "UTC", T0_NS)  # 2024-03-01 10:00–12:00 UTC
    assert r.status_code == 200
    enmo = _expected_enmo_mg()
    assert 208.0 < enmo < 208.5
    assert r.json() == [
        {
            "date": "2024-03-01",
            "samples": 72_000,
            "recorded_min": 120.0,
            "wear_min": 60.0,
            "nonwear_min": 60.0,
            "sedentary_min": 0.0,
            "light_min": 0.0,
            "moderate_min": 60.0,
            "vigorous_min": 0.0,
            "mean_enmo_mg": round(enmo, 2),
            "cutpoints": "hildebrand2014_wrist_actigraph",
            # The still hour was recorded but not worn; nothing is missing.
            "gaps": [{"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z", "cause": "non_wear",
                      "duration_s": 3600.0}],
        }
    ]


def test_days_follow_the_patients_time_zone(client: ApiClient, db: Session, app: FastAPI) -> None:
    # 2024-03-02 04:00–06:00 UTC is 2024-03-01 23:00 – 2024-03-02 01:00 in New York (EST, UTC−5).
    t0 = T0_NS + 18 * 3600 * 1_000_000_000
    days = _ingest_two_hours(client, db, app, "America/New_York", t0).json()
    assert [d["date"] for d in days] == ["2024-03-01", "2024-03-02"]
    assert [d["samples"] for d in days] == [36_000, 36_000]
    assert [d["nonwear_min"] for d in days] == [60.0, 0.0]
    assert [d["moderate_min"] for d in days] == [0.0, 60.0]
    assert days[0]["mean_enmo_mg"] is None
    assert days[1]["mean_enmo_mg"] == round(_expected_enmo_mg(), 2)


def test_days_without_data_is_empty_list(client: ApiClient, db: Session, app: FastAPI) -> None:
    t = make_therapist(db, app)
    p = make_patient(db, t)
    r = client.get(f"/api/v1/patients/{p.id}/days", headers=t.headers)
    assert r.status_code == 200 and r.json() == []


def test_days_are_read_from_epochs_not_raw_blocks(client: ApiClient, db: Session, app: FastAPI) -> None:
    """Deleting the raw blocks leaves the days unchanged: the summary reads only the epochs."""
    t = make_therapist(db, app)
    p = make_patient(db, t)
    _, headers = make_device(db, p)
    assert client.post(URL, headers=headers, json={"blocks": _two_hours(T0_NS)}).status_code == 200
    url = f"/api/v1/patients/{p.id}/days"
    before = client.get(url, headers=t.headers).json()
    for row in db.query(SampleBlockRow).all():
        row.data_zlib = b"corrupt"
    db.commit()
    assert client.get(url, headers=t.headers).json() == before
