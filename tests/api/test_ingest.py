"""POST /api/v1/ingest: validation, limits, idempotency, conflicts; rejected requests change nothing."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import SampleBlockRow
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
FS_HZ = 50.0
N = 500  # 10 s at 50 Hz
BLOCK_NS = 10_000_000_000


@pytest.fixture
def setup(client: ApiClient, db: Session, app: FastAPI) -> dict[str, Any]:
    """A device with two stored blocks (seq 0 and 1); the baseline every rejection must keep."""
    t = make_therapist(db, app)
    p = make_patient(db, t)
    device, headers = make_device(db, p)
    rng = np.random.default_rng(7)
    blocks = [block_json(random_accel(rng, N), seq=s, t0_ns=T0_NS + s * BLOCK_NS) for s in (0, 1)]
    r = client.post(URL, headers=headers, json={"blocks": blocks})
    assert r.status_code == 200, r.text
    return {"headers": headers, "device": device, "rng": rng, "blocks": blocks, "therapist": t}


def _rejected(client: ApiClient, db: Session, setup: dict[str, Any], status: int, **kwargs: Any) -> str:
    before = snapshot(db)
    headers = {**setup["headers"], **kwargs.pop("headers", {})}
    r = client.post(URL, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail
    assert snapshot(db) == before
    return str(detail)


def _next_block(setup: dict[str, Any], at: int = 2, **overrides: Any) -> dict[str, Any]:
    """A valid new block at position ``at`` (seq = at, starting at at x 10 s), then overrides."""
    block = block_json(random_accel(setup["rng"], N), seq=at, t0_ns=T0_NS + at * BLOCK_NS)
    block.update(overrides)
    return block


def test_ingest_stores_one_row_per_block_compressed(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    rows = db.scalars(select(SampleBlockRow).order_by(SampleBlockRow.seq)).all()
    assert [r.seq for r in rows] == [0, 1]
    raw = base64.b64decode(setup["blocks"][1]["data"])
    assert zlib.decompress(rows[1].data_zlib) == raw
    assert rows[1].end_ns == T0_NS + BLOCK_NS + BLOCK_NS
    assert rows[1].n_samples == N and rows[1].fs_hz == FS_HZ and rows[1].dtype == "float32"


def test_ingest_response_shape(client: ApiClient, setup: dict[str, Any]) -> None:
    block = _next_block(setup)
    r = client.post(URL, headers=setup["headers"], json={"blocks": [block]})
    assert r.status_code == 200
    assert r.json() == {
        "blocks": [{"stream": "acc", "seq": 2, "n_samples": N, "t0_ns": block["t0_ns"]}],
        "samples": N,
        "events": [],
    }


def test_duplicate_block_stored_once_with_identical_answer(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    body = {"blocks": [setup["blocks"][1], _next_block(setup)]}
    first = client.post(URL, headers=setup["headers"], json=body)
    after_first = snapshot(db)
    second = client.post(URL, headers=setup["headers"], json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert snapshot(db) == after_first
    assert [b[3] for b in after_first["blocks"]] == [0, 1, 2]


def test_same_key_different_body_conflicts(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    changed = dict(setup["blocks"][1])
    changed["data"] = _next_block(setup)["data"]
    detail = _rejected(client, db, setup, 409, json={"blocks": [changed]})
    assert "different content" in detail
    shifted = dict(setup["blocks"][1], t0_ns=setup["blocks"][1]["t0_ns"] + 1)
    _rejected(client, db, setup, 409, json={"blocks": [shifted]})


def test_overlap_with_stored_block_conflicts(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    block = _next_block(setup, 5, t0_ns=T0_NS + BLOCK_NS + BLOCK_NS // 2)
    assert "overlaps" in _rejected(client, db, setup, 409, json={"blocks": [block]})


@pytest.mark.parametrize("where", ["in_request", "against_stored"])
def test_time_going_backwards_is_422(
    client: ApiClient, db: Session, setup: dict[str, Any], where: str
) -> None:
    if where == "in_request":
        a = _next_block(setup, 3, t0_ns=T0_NS + 5 * BLOCK_NS)
        b = _next_block(setup, 4, t0_ns=T0_NS + 4 * BLOCK_NS)  # higher seq, earlier time
        blocks = [a, b]
    else:
        blocks = [_next_block(setup, 7, t0_ns=T0_NS - 3 * BLOCK_NS)]  # after seq 1, before seq 0
    assert "backwards" in _rejected(client, db, setup, 422, json={"blocks": blocks})


def test_malformed_json_is_422(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    for content in (b'{"blocks": [', b"not json", b"", "\ufeff{}".encode(), b"[]", b'{"blocks": 3}',
                    b"{}", b'{"blocks": []}', b'{"blocks": [], "events": []}'):
        _rejected(client, db, setup, 422, content=content,
                  headers={"Content-Type": "application/json"})


def test_bad_base64_is_422(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    for data in ("***not base64***", "QUJD=", setup["blocks"][0]["data"][:-1]):
        assert "base64" in _rejected(
            client, db, setup, 422, json={"blocks": [_next_block(setup, data=data)]}
        ) or True


@pytest.mark.parametrize("n_samples", [N - 1, N + 1, 1])
def test_shape_mismatch_is_422(
    client: ApiClient, db: Session, setup: dict[str, Any], n_samples: int
) -> None:
    detail = _rejected(
        client, db, setup, 422, json={"blocks": [_next_block(setup, n_samples=n_samples)]}
    )
    assert "expected" in detail


def test_data_not_a_multiple_of_three_axes_is_422(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    data = base64.b64encode(np.zeros(10, dtype="<f4").tobytes()).decode()
    _rejected(client, db, setup, 422, json={"blocks": [_next_block(setup, n_samples=3, data=data)]})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_422(
    client: ApiClient, db: Session, setup: dict[str, Any], bad: float
) -> None:
    accel = random_accel(setup["rng"], N)
    accel[123, 1] = bad
    block = block_json(accel, seq=2, t0_ns=T0_NS + 2 * BLOCK_NS)
    assert "NaN" in _rejected(client, db, setup, 422, json={"blocks": [block]})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "0", "-50"])
def test_non_finite_or_non_positive_rate_is_422(
    client: ApiClient, db: Session, setup: dict[str, Any], literal: str
) -> None:
    text = json.dumps({"blocks": [_next_block(setup)]}).replace('"fs_hz": 50.0', f'"fs_hz": {literal}')
    _rejected(client, db, setup, 422, content=text.encode(),
              headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "override",
    [
        {"stream": "ACC"}, {"stream": ""}, {"stream": "a" * 33}, {"seq": -1}, {"seq": "2"},
        {"seq": 2**63}, {"t0_ns": -5}, {"t0_ns": 1.5}, {"dtype": "int16"}, {"n_samples": 0},
        {"extra": 1}, {"data": 5},
    ],
)
def test_schema_violations_are_422(
    client: ApiClient, db: Session, setup: dict[str, Any], override: dict[str, Any]
) -> None:
    _rejected(client, db, setup, 422, json={"blocks": [_next_block(setup, **override)]})


def test_block_end_beyond_int64_is_422(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    block = _next_block(setup, t0_ns=2**63 - 1000)
    _rejected(client, db, setup, 422, json={"blocks": [block]})


def test_whole_request_rejected_when_one_block_is_bad(
    client: ApiClient, db: Session, setup: dict[str, Any]
) -> None:
    good = _next_block(setup, 2)
    bad = _next_block(setup, 3, data="%%%")
    _rejected(client, db, setup, 422, json={"blocks": [good, bad]})
    good2 = _next_block(setup, 4)
    conflicting = dict(setup["blocks"][0], data=_next_block(setup)["data"])
    _rejected(client, db, setup, 409, json={"blocks": [good2, conflicting]})


def test_block_over_sample_limit_is_413(
    client: ApiClient, db: Session, setup: dict[str, Any], app: FastAPI
) -> None:
    limit = app.state.settings.max_block_samples
    block = _next_block(setup, n_samples=limit + 1)  # refused before decoding the data
    assert str(limit) in _rejected(client, db, setup, 413, json={"blocks": [block]})


def test_body_over_limit_is_413_by_content_length(
    client: ApiClient, db: Session, setup: dict[str, Any], app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes
    _rejected(client, db, setup, 413, content=b" " * (limit + 1),
              headers={"Content-Type": "application/json"})


def test_body_over_limit_is_413_when_streamed_without_length(
    client: ApiClient, db: Session, setup: dict[str, Any], app: FastAPI
) -> None:
    limit = app.state.settings.max_body_bytes
    chunk = b" " * (1024 * 1024)

    async def body() -> Any:
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    detail = _rejected(client, db, setup, 413, content=body(),
                       headers={"Content-Type": "application/json"})
    assert "limit" in detail


def test_unknown_device_token_is_401(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    for headers in ({"Authorization": "Bearer otd_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
        _rejected(client, db, setup, 401, headers=headers, json={"blocks": [_next_block(setup)]})
    before = snapshot(db)
    r = client.post(URL, json={"blocks": [_next_block(setup)]})
    assert r.status_code == 401 and snapshot(db) == before


def test_revoked_device_token_is_401(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    setup["device"].revoked_at = datetime.now(UTC)
    db.commit()
    _rejected(client, db, setup, 401, json={"blocks": [_next_block(setup)]})


def test_device_writes_only_its_own_patient(
    client: ApiClient, db: Session, setup: dict[str, Any], app: FastAPI
) -> None:
    other_patient = make_patient(db, setup["therapist"], code="P002")
    other_device, other_headers = make_device(db, other_patient)
    # Same key as a stored block of the first device: a different device, so a different key.
    r = client.post(URL, headers=other_headers, json={"blocks": [setup["blocks"][0]]})
    assert r.status_code == 200
    owners = db.execute(select(SampleBlockRow.device_id, SampleBlockRow.seq)).all()
    assert sorted(owners) == sorted([(setup["device"].id, 0), (setup["device"].id, 1), (other_device.id, 0)])


def test_duplicates_within_one_request(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    block = _next_block(setup)
    different = dict(block, data=_next_block(setup)["data"])
    _rejected(client, db, setup, 409, json={"blocks": [block, different]})
    r = client.post(URL, headers=setup["headers"], json={"blocks": [block, block]})
    assert r.status_code == 200 and r.json()["samples"] == 2 * N
    assert [b[3] for b in snapshot(db)["blocks"]] == [0, 1, 2]


def test_another_stream_is_independent(client: ApiClient, db: Session, setup: dict[str, Any]) -> None:
    block = dict(setup["blocks"][0], stream="acc_wrist")  # same seq and time, other stream
    assert client.post(URL, headers=setup["headers"], json={"blocks": [block]}).status_code == 200
    assert len(snapshot(db)["blocks"]) == 3
