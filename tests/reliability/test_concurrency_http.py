"""One upload (a block, then an event) raced by 20 HTTP clients into a real `otmon serve` process: stored once, answered alike.

Real sockets, real uvicorn worker, the real database (SQLite file, and PostgreSQL when
OTMON_TEST_DATABASE_URL is set); nothing is rolled back between the requests.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.api.factories import T0_NS, block_json
from tests.reliability.service import (
    BACKENDS,
    Service,
    seeded_database,
    stored_blocks,
    stored_events,
)

N_CLIENTS = 20
N_REQUESTS = 100  # in all: 5 per client


def _race(
    base_url: str, headers: dict[str, str], body: bytes
) -> list[tuple[float, float, httpx.Response]]:
    """N_REQUESTS posts of `body` from N_CLIENTS clients (own connection each), released at once."""
    barrier = threading.Barrier(N_CLIENTS)

    def client(_: int) -> list[tuple[float, float, httpx.Response]]:
        out = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            barrier.wait()
            for _ in range(N_REQUESTS // N_CLIENTS):
                began = time.monotonic()
                response = http.post(
                    "/api/v1/ingest", content=body, headers={"Content-Type": "application/json"}
                )
                out.append((began, time.monotonic(), response))
        return out

    with ThreadPoolExecutor(N_CLIENTS) as pool:
        return [r for rs in pool.map(client, range(N_CLIENTS)) for r in rs]


def _max_in_flight(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_block_or_event_sent_100_times_by_20_clients_is_stored_once(
    backend: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    accel = (rng.normal(0, 0.4, (3000, 3)) + [0, 0, 1]).astype(np.float32)
    block = block_json(accel, seq=7, t0_ns=T0_NS, fs_hz=30.0)
    gap = {"id": "5f0c" * 8, "kind": "gap", "stream": "acc", "start_ns": T0_NS - 4_000_000_000,
           "end_ns": T0_NS, "cause": "ble_disconnect"}  # fmt: skip
    with seeded_database(backend, tmp_path) as seeded, Service(seeded.url, tmp_path) as service:
        headers = {"Authorization": f"Bearer {seeded.device_token}"}
        block_results = _race(service.base_url, headers, json.dumps({"blocks": [block]}).encode())
        event_results = _race(service.base_url, headers, json.dumps({"events": [gap]}).encode())
        stored = stored_blocks(seeded.url)
        events = stored_events(seeded.url)

    for what, results in (("block", block_results), ("event", event_results)):
        spans = [(s, e) for s, e, _ in results]
        print(
            f"\n{backend}: one {what} x {len(results)} from {N_CLIENTS} clients: "
            f"{_max_in_flight(spans)} in flight at once, "
            f"{max(e for _, e in spans) - min(s for s, _ in spans):.2f} s in all"
        )
        assert len(results) == N_REQUESTS
        assert [r.status_code for _, _, r in results] == [200] * N_REQUESTS
        assert len({r.content for _, _, r in results}) == 1  # every answer byte-identical
        # The requests really raced: many were in flight at the same moment.
        assert _max_in_flight([(s, e) for s, e, _ in results]) >= N_CLIENTS // 2
    answer = block_results[0][2].json()
    assert answer["blocks"] == [{"stream": "acc", "seq": 7, "n_samples": 3000, "t0_ns": T0_NS}]
    assert answer["samples"] == 3000
    assert [(b.stream, b.seq, b.n_samples, b.t0_ns) for b in stored] == [("acc", 7, 3000, T0_NS)]
    assert stored[0].sha256 == hashlib.sha256(accel.astype("<f4").tobytes()).hexdigest()
    assert event_results[0][2].json()["events"] == [{"id": gap["id"]}]
    assert events == [gap]
