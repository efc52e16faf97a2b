"""OutboxUploader against the real service (httpx.ASGITransport) with injected faults."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import httpx
import numpy as np
import pytest

from analysis.samples import SampleBlock
from collector.errors import UploadError
from collector.outbox import Outbox
from collector.upload import OutboxUploader, retry_after_s
from tests.collector.test_outbox_service import (
    FaultyTransport,
    checksum,
    make_service,
    source_block,
    stored,
    stored_samples,
)

N_BLOCKS = 30


class Sleeps:
    """Records waits instead of sleeping (tests run in milliseconds)."""

    def __init__(self) -> None:
        self.waits_s: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.waits_s.append(delay_s)


def fill(box: Outbox, n: int = N_BLOCKS, start: int = 0) -> list[np.ndarray]:
    blocks = [source_block(i) for i in range(start, start + n)]
    for b in blocks:
        box.put(b)
    return [b.accel_g for b in blocks]


def uploader(
    box: Outbox, transport: httpx.AsyncBaseTransport, token: str, **kw: object
) -> OutboxUploader:
    return OutboxUploader(
        box,
        "http://otmon.test",
        token,
        transport=transport,
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


async def test_exactly_once_with_5xx_and_connection_cuts(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    transport = FaultyTransport(app, p_5xx=0.3, p_cut=0.3, seed=3)
    sleeps = Sleeps()
    with Outbox(tmp_path / "outbox.sqlite3", first_seq=0) as box:
        source = fill(box)
        up = uploader(box, transport, token, batch_blocks=4, sleep=sleeps)
        stats = await up.drain()
        await up.aclose()
        assert box.backlog().n_blocks == 0
    assert {"503", "cut", "cut_after"} <= set(transport.seen)  # every fault kind happened
    rows = stored(app)
    assert [r.seq for r in rows] == list(range(N_BLOCKS))  # once each
    assert checksum(stored_samples(app)) == checksum(source)
    assert stats.n_confirmed_blocks == N_BLOCKS and stats.n_failures == len(sleeps.waits_s) > 0
    # Back-off doubles from 0.5 s with equal jitter: the n-th consecutive wait is in [d/2, d].
    assert all(0.25 <= w <= 60.0 for w in sleeps.waits_s)


def test_backoff_doubles_with_jitter_and_is_capped(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        up = OutboxUploader(
            box, "http://x", "t", rng=random.Random(0), backoff_s=0.5, max_backoff_s=8
        )
        delays = [up.backoff_delay_s(n) for n in range(1, 9)]
    for n, d in enumerate(delays, start=1):
        full = min(8.0, 0.5 * 2 ** (n - 1))
        assert full / 2 <= d <= full
    assert len(set(delays)) == len(delays)  # jittered


async def test_429_waits_retry_after(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    transport = FaultyTransport(app, script=["429", "429", None])
    sleeps = Sleeps()
    with Outbox(tmp_path / "outbox.sqlite3", first_seq=0) as box:
        fill(box, 3)
        up = uploader(box, transport, token, sleep=sleeps)
        await up.drain()
        await up.aclose()
    assert sleeps.waits_s == [2.0, 2.0]
    assert len(stored(app)) == 3


def test_retry_after_http_date() -> None:
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_s(response, now_s=1445412470.0) == 10.0
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "junk"})) is None


async def test_413_from_the_real_body_limit_splits_batches(tmp_path: Path) -> None:
    # 300 samples = 4800 base64 characters per block; 20 blocks do not fit in 60 kB, 10 do.
    app, token = make_service(tmp_path, max_body_bytes=60_000)
    requests: list[int] = []
    transport = FaultyTransport(app)
    with Outbox(tmp_path / "outbox.sqlite3", first_seq=0) as box:
        source = fill(box, 45)
        up = uploader(box, transport, token, batch_blocks=20, sleep=Sleeps())
        while await up.send_one_batch():
            requests.append(up.stats.n_confirmed_blocks)
        await up.aclose()
    assert checksum(stored_samples(app)) == checksum(source)
    assert [r.seq for r in stored(app)] == list(range(45))
    # 20 blocks → 413; then 10, 10, 10, 10, 5 confirmed; nothing refused.
    assert requests == [0, 10, 20, 30, 40, 45]
    assert up.stats.n_refused_blocks == 0 and up.stats.n_requests == 6


async def test_409_same_key_other_body_is_kept_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, token = make_service(tmp_path)
    transport = FaultyTransport(app)
    # An earlier installation already uploaded seq 5 with other samples over the same time.
    with Outbox(tmp_path / "old.sqlite3", first_seq=5) as old:
        five = source_block(5)
        old.put(SampleBlock(five.t0_ns, five.fs_hz, five.accel_g + np.float32(0.25)))
        up = uploader(old, transport, token)
        await up.drain()
        await up.aclose()
    with Outbox(tmp_path / "outbox.sqlite3", first_seq=0) as box:
        source = fill(box, 10)
        up = uploader(box, transport, token, batch_blocks=10, sleep=Sleeps())
        stats = await up.drain()
        await up.aclose()
        refused = box.refused()
        status = box.status()
        assert box.backlog().n_refused_blocks == 1 and box.backlog().n_blocks == 0
    assert stats.n_refused_blocks == 1
    assert refused == [("acc", 5, 409, refused[0][3])]
    assert "already stored with different content" in refused[0][3]
    assert "seq 5" in status["last_refusal"]
    assert any(r.levelno == logging.ERROR and "seq 5" in r.message for r in caplog.records)
    rows = stored(app)
    assert [r.seq for r in rows] == list(range(10))
    kept = stored_samples(app)
    assert checksum(kept[:5] + kept[6:]) == checksum(source[:5] + source[6:])


async def test_restart_with_a_non_empty_outbox(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, first_seq=0) as box:
        source = fill(box, 10)
        up = uploader(box, FaultyTransport(app), token, batch_blocks=4)
        await up.send_one_batch()  # 4 uploaded, then the process ends
        await up.aclose()
    with Outbox(path) as box:  # restart: 6 still pending, 5 more decoded
        assert box.backlog().n_blocks == 6
        source += fill(box, 5, start=10)
        up = uploader(box, FaultyTransport(app), token, batch_blocks=4)
        await up.drain()
        await up.aclose()
    assert [r.seq for r in stored(app)] == list(range(15))
    assert checksum(stored_samples(app)) == checksum(source)


async def test_bad_token_raises_and_keeps_everything(tmp_path: Path) -> None:
    app, _ = make_service(tmp_path)
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        fill(box, 2)
        up = uploader(box, FaultyTransport(app), "not-a-token")
        with pytest.raises(UploadError, match="HTTP 401") as info:
            await up.drain()
        await up.aclose()
        assert info.value.status_code == 401
        assert box.backlog().n_blocks == 2
        assert "HTTP 401" in box.status()["last_error"]


async def test_a_single_block_over_the_body_limit_is_kept_as_refused(tmp_path: Path) -> None:
    # 300 samples ≈ 4.9 kB of JSON fit in 10 kB; a 1000-sample block (≈ 16 kB) never does.
    app, token = make_service(tmp_path, max_body_bytes=10_000)
    with Outbox(tmp_path / "outbox.sqlite3", first_seq=0) as box:
        source = fill(box, 3)
        big = source_block(50, n=1000)
        box.put(big)
        source += fill(box, 2, start=210)  # t0 = 1260 s, after `big` (1000-1020 s)
        up = uploader(box, FaultyTransport(app), token, sleep=Sleeps())
        stats = await up.drain()
        await up.aclose()
        refused = box.refused()
    assert [(s, q, code) for s, q, code, _ in refused] == [("acc", 3, 413)]
    assert "exceeds the limit of 10000 bytes" in refused[0][3]
    assert stats.n_refused_blocks == 1 and stats.n_confirmed_blocks == 5
    assert [r.seq for r in stored(app)] == [0, 1, 2, 4, 5]
    assert checksum(stored_samples(app)) == checksum(source)
