"""Concurrent ingests on a real (non-rolled-back) database: exactly-once storage, exact epochs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from analysis.pipeline import epoch_table
from analysis.samples import SampleBlock
from api.app import create_app
from api.db import session_factory
from api.models import SampleBlockRow
from api.services import devices, epochs, patients, users
from api.settings import Settings
from tests.api.conftest import TEST_SECRET, ApiClient, fresh_database
from tests.api.factories import T0_NS, block_json, count

THREADS = 6


@pytest.fixture
def live(backend: str, tmp_path: Path) -> Iterator[tuple[FastAPI, dict[str, str], int]]:
    """An app on its own fresh database (no savepoint wrapper) with one registered device."""
    with fresh_database(backend, tmp_path) as url:
        app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path))
        with session_factory(app.state.engine)() as db:
            user = users.create(db, email="c@example.org", password="x" * 12)
            patient = patients.create(db, therapist=user, code="C1")
            device, token = devices.create(db, patient=patient, profile="metawear", name="MMS")
            db.commit()
        try:
            yield app, {"Authorization": f"Bearer {token}"}, device.id
        finally:
            app.state.engine.dispose()


def _blocks(n_blocks: int, n: int = 333) -> list[SampleBlock]:
    rng = np.random.default_rng(11)
    out, t = [], T0_NS + 777_000_000  # block edges fall inside epochs
    for _ in range(n_blocks):
        b = SampleBlock(t0_ns=t, fs_hz=50.0, accel_g=rng.normal(0, 0.5, (n, 3)).astype(np.float32))
        out.append(b)
        t = b.end_ns
    return out


def _post_all(app: FastAPI, headers: dict[str, str], bodies: list[dict[str, Any]]) -> list[Any]:
    client = ApiClient(app)
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda body: client.post("/api/v1/ingest", headers=headers, json=body), bodies))


def _stored(app: FastAPI, device_id: int) -> tuple[int, list[dict[str, Any]]]:
    with session_factory(app.state.engine)() as db:
        return count(db, SampleBlockRow), epochs.stored_rows(db, device_ids=[device_id])


def test_same_upload_racing_is_stored_once(live: tuple[FastAPI, dict[str, str], int]) -> None:
    app, headers, device_id = live
    blocks = _blocks(3)
    body = {"blocks": [block_json(b.accel_g, seq=i, t0_ns=b.t0_ns) for i, b in enumerate(blocks)]}
    responses = _post_all(app, headers, [body] * THREADS)
    assert [r.status_code for r in responses] == [200] * THREADS
    assert len({r.content for r in responses}) == 1
    n_rows, rows = _stored(app, device_id)
    assert n_rows == 3
    assert rows == epoch_table(blocks).to_rows()


def test_adjacent_uploads_racing_give_exact_epochs(live: tuple[FastAPI, dict[str, str], int]) -> None:
    app, headers, device_id = live
    blocks = _blocks(THREADS * 2, n=97)
    bodies = [
        {"blocks": [block_json(b.accel_g, seq=i, t0_ns=b.t0_ns)]} for i, b in enumerate(blocks)
    ]
    responses = _post_all(app, headers, bodies)
    assert [r.status_code for r in responses] == [200] * len(bodies)
    n_rows, rows = _stored(app, device_id)
    assert n_rows == len(blocks)
    assert rows == epoch_table(blocks).to_rows()
