"""SIGKILL a real `otmon serve` right after it acknowledged an ingest, restart, repeat.

Four clients upload new blocks without pause; the moment one of them receives a 200 the
service process is killed (the other requests die in flight, mid-transaction). After every
restart each acknowledged block must be there, byte-identical (SHA-256 of its samples), none
doubled; a request that died unanswered is either stored whole or not at all, and sending it
again stores it once. SQLite file and, when OTMON_TEST_DATABASE_URL is set, PostgreSQL.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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

N_KILLS = 10
N_CLIENTS = 4
N_SAMPLES = 270  # 9 s at 30 Hz per block, then a 1 s link gap reported as an event
BLOCK_NS = 10_000_000_000


@dataclass
class Ledger:
    """What the clients sent and what the service acknowledged."""

    next_seq: itertools.count[int] = field(default_factory=itertools.count)
    acked: dict[int, bytes] = field(default_factory=dict)  # seq -> response body
    unanswered: set[int] = field(default_factory=set)  # sent, no answer (killed in flight)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _gap(seq: int) -> dict[str, object]:
    """The gap event sent with block `seq`: the second after it, a BLE disconnect."""
    t0 = T0_NS + seq * BLOCK_NS
    return {"id": f"{seq:032x}", "kind": "gap", "stream": "acc",
            "start_ns": t0 + 9 * 10**9, "end_ns": t0 + BLOCK_NS, "cause": "ble_disconnect"}  # fmt: skip


def _block(seq: int) -> tuple[bytes, str]:
    """The request body of block `seq` (with its gap event) and the SHA-256 of its samples."""
    accel = np.random.default_rng(seq).normal(0, 0.5, (N_SAMPLES, 3)).astype(np.float32)
    body = {
        "blocks": [block_json(accel, seq=seq, t0_ns=T0_NS + seq * BLOCK_NS, fs_hz=30.0)],
        "events": [_gap(seq)],
    }
    return json.dumps(body).encode(), hashlib.sha256(accel.astype("<f4").tobytes()).hexdigest()


def _post(http: httpx.Client, seq: int) -> httpx.Response:
    return http.post(
        "/api/v1/ingest", content=_block(seq)[0], headers={"Content-Type": "application/json"}
    )


def _upload_until_killed(
    base_url: str, token: str, ledger: Ledger, acked: threading.Event, target: int
) -> None:
    """Upload new blocks until the service dies; set `acked` at the `target`-th acknowledgement."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            with ledger.lock:
                seq = next(ledger.next_seq)
            try:
                response = _post(http, seq)
            except httpx.TransportError:
                with ledger.lock:
                    ledger.unanswered.add(seq)
                return
            assert response.status_code == 200, response.text
            with ledger.lock:
                ledger.acked[seq] = response.content
                if len(ledger.acked) >= target:
                    acked.set()


def _check_store(url: str, ledger: Ledger) -> dict[int, str]:
    stored = stored_blocks(url)
    by_seq = {b.seq: b.sha256 for b in stored}
    assert len(by_seq) == len(stored)  # none doubled
    events = {int(str(e["id"]), 16): e for e in stored_events(url)}
    assert len(events) == len(stored_events(url))
    assert sorted(events) == sorted(by_seq)  # a block and its event: one transaction
    assert all(e == _gap(seq) for seq, e in events.items())
    for seq in ledger.acked:
        assert by_seq.get(seq) == _block(seq)[1], f"acknowledged block {seq} lost or changed"
    for seq, sha in by_seq.items():
        assert sha == _block(seq)[1]  # stored whole or not at all
    return by_seq


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_right_after_acknowledging_keeps_every_acknowledged_block(
    backend: str, tmp_path: Path
) -> None:
    ledger = Ledger()
    rounds: list[tuple[int, int]] = []  # (acknowledged so far, killed in flight) per kill
    starts: list[float] = []  # seconds from go to the first answer, per restart
    checks: list[float] = []
    with seeded_database(backend, tmp_path) as seeded:
        service = Service(seeded.url, tmp_path)
        try:
            service.start()
            for kill in range(N_KILLS):
                acked = threading.Event()
                target = len(ledger.acked) + 1 + kill % 3  # kill after the 1st to 3rd new 200
                with ThreadPoolExecutor(N_CLIENTS) as pool:
                    futures = [
                        pool.submit(
                            _upload_until_killed,
                            service.base_url,
                            seeded.device_token,
                            ledger,
                            acked,
                            target,
                        )
                        for _ in range(N_CLIENTS)
                    ]
                    assert acked.wait(30)
                    service.kill()  # the client holds the 200; the process dies at once
                    for f in futures:
                        f.result()
                starts.append(service.start())
                began = time.monotonic()
                _check_store(seeded.url, ledger)
                checks.append(time.monotonic() - began)
                rounds.append((len(ledger.acked), len(ledger.unanswered)))
            # After the last restart: every acknowledged block answers byte-identically
            # again, and every request that died in flight is stored exactly once when re-sent.
            with httpx.Client(
                base_url=service.base_url,
                headers={"Authorization": f"Bearer {seeded.device_token}"},
            ) as http:
                for seq, content in ledger.acked.items():
                    assert _post(http, seq).content == content
                stored_before = set(_check_store(seeded.url, ledger))
                for seq in sorted(ledger.unanswered):
                    assert _post(http, seq).status_code == 200
            by_seq = _check_store(seeded.url, ledger)
        finally:
            service.stop()
    assert set(by_seq) == set(ledger.acked) | ledger.unanswered
    print(
        f"{backend}: {N_KILLS} kills; acknowledged {len(ledger.acked)}, killed in flight "
        f"{len(ledger.unanswered)} (stored anyway {len(ledger.unanswered & stored_before)}); "
        f"restart to first answer median {sorted(starts)[len(starts) // 2]:.2f} s; "
        f"store check {max(checks):.2f} s max"
    )
    # Each kill hit requests in flight, and acknowledgements grew between kills.
    assert len(ledger.unanswered) >= N_KILLS
    assert len({a for a, _ in rounds}) == N_KILLS
