"""SIGKILL at random points of a collector-like process (decode → outbox → upload), restart, drain.

The child commits deterministic blocks to the outbox while its OutboxUploader posts them to a
real `otmon serve` process (SQLite) through 10 % injected 5xx and 5 % cut connections. It is
killed with SIGKILL at random points several times, then runs to the end.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.outbox import Outbox
from tests.collector.test_outbox_service import (
    SECRET,
    checksum,
    make_service,
    source_block,
    stored,
    stored_samples,
)
from tests.service_process import running_service

REPO = Path(__file__).resolve().parents[2]
N_BLOCKS = 400
N_KILLS = 8

CHILD = r"""
import asyncio, random, sys
from pathlib import Path
import httpx
from collector.outbox import Outbox
from tests.service_process import running_service
from collector.upload import OutboxUploader
from tests.collector.test_outbox_source import source_block

directory, url, token, n_total, seed = sys.argv[1:6]
n_total, rng = int(n_total), random.Random(int(seed))

class Faults(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request):
        x = rng.random()
        if x < 0.10:
            return httpx.Response(503, json={"detail": "injected outage"})
        if x < 0.125:
            raise httpx.ConnectError("injected: connection refused")
        response = await super().handle_async_request(request)
        if x < 0.15:
            await response.aread()
            raise httpx.ReadError("injected: connection cut after the server answered")
        return response

async def main() -> None:
    writer = Outbox(Path(directory) / "outbox.sqlite3", first_seq=0)
    box = Outbox(Path(directory) / "outbox.sqlite3")
    up = OutboxUploader(box, url, token, transport=Faults(), batch_blocks=5,
                        backoff_s=0.005, max_backoff_s=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(up.run(stop, idle_s=0.005))
    i = writer.next_seq() or 0  # the next block the device delivers
    ready = False
    while i < n_total:
        writer.put(source_block(i))  # decoded -> committed: now it counts as received
        i += 1
        if not ready:  # after the first commit: every kill finds work done (even under load)
            print("ready", flush=True)
            ready = True
        await asyncio.sleep(0.004)  # ~ a block per 4 ms: 400 blocks outlast the 8 kills
    if not ready:
        print("ready", flush=True)
    while box.backlog().n_blocks:
        await asyncio.sleep(0.005)
    stop.set()
    await task
    print("drained", flush=True)

asyncio.run(main())
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `otmon serve` on the service file of make_service; yields (URL, device token)."""
    app, token = make_service(tmp_path)
    app.state.engine.dispose()
    env = {**os.environ, "OTMON_SECRET_KEY": SECRET, "OTMON_DATA_DIR": str(tmp_path)}
    url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    args = ("--database-url", url)
    with running_service(env, tmp_path / "serve.log", args=args, cwd=REPO) as base:
        yield base, token


def start(directory: Path, url: str, token: str, seed: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), url, token, str(N_BLOCKS), str(seed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def n_stored(directory: Path) -> int:
    with sqlite3.connect(directory / "server.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM sample_blocks").fetchone()[0])


def test_sigkill_at_random_points_loses_and_doubles_nothing(
    tmp_path: Path, served: tuple[str, str]
) -> None:
    url, token = served
    rng = random.Random(20261129)
    progress: list[tuple[int, int]] = []  # (blocks committed, blocks on the server) at each kill
    for kill in range(N_KILLS):
        child = start(tmp_path, url, token, seed=kill)
        assert child.stdout is not None
        with child.stdout:
            assert child.stdout.readline().strip() == "ready"
            if kill % 2:  # every other kill once the server got something new (slow machines)
                on_server = max((s for _, s in progress), default=0)
                deadline = time.monotonic() + 5
                while n_stored(tmp_path) <= on_server and time.monotonic() < deadline:
                    time.sleep(0.01)
            time.sleep(rng.uniform(0.02, 0.15))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        with Outbox(tmp_path / "outbox.sqlite3") as box:
            progress.append((box.next_seq() or 0, n_stored(tmp_path)))
    child = start(tmp_path, url, token, seed=99)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0 and out.split() == ["ready", "drained"]

    app, _ = make_service(tmp_path)
    rows = stored(app)
    assert [r.seq for r in rows] == list(range(N_BLOCKS))  # every block once, none doubled
    assert sum(r.n_samples for r in rows) == N_BLOCKS * 300
    assert checksum(stored_samples(app)) == checksum(
        [source_block(i).accel_g for i in range(N_BLOCKS)]
    )
    app.state.engine.dispose()
    # The kills hit different points of the work, with uploads both done and pending.
    print("kills at (committed, on server):", progress)
    committed = [c for c, _ in progress]
    assert len(set(committed)) >= N_KILLS // 2, progress
    assert 0 < committed[0] and committed[-1] < N_BLOCKS, progress
    assert any(0 < s < c for c, s in progress), progress
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        assert box.backlog().n_blocks == 0 and box.refused() == []
