"""Uploader: ingest JSON, batching, retries, 4xx reasons (against an in-test ASGI app)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Header, HTTPException

from analysis.samples import SampleBlock
from collector.errors import UploadError
from collector.replay import replay_capture
from collector.session import decode_capture
from collector.upload import BATCH_BLOCKS, Uploader, to_ingest_block

TOKEN = "device-token"


def make_app(received: list[dict[str, Any]], requests: list[int]) -> FastAPI:
    """A tiny stand-in for the ingest route: checks the token and the block encoding.

    Events and status (issue 4) are acknowledged and otherwise ignored; `requests` counts the
    blocks of each request that carried blocks.
    """
    app = FastAPI()

    @app.post("/api/v1/ingest")
    async def ingest(body: dict[str, Any], authorization: str = Header("")) -> dict[str, Any]:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "unknown or revoked device token")
        blocks = body.get("blocks", [])
        if blocks:
            requests.append(len(blocks))
        out = []
        for b in blocks:
            data = np.frombuffer(base64.b64decode(b["data"]), dtype="<f4")
            if data.size != b["n_samples"] * 3:
                raise HTTPException(422, "shape mismatch")
            if received and b["seq"] <= received[-1]["seq"]:
                raise HTTPException(409, f"seq {b['seq']} already stored with another body")
            received.append({**b, "accel_g": data.reshape(-1, 3)})
            out.append({k: b[k] for k in ("stream", "seq", "n_samples", "t0_ns")})
        events = [{"id": e["id"]} for e in body.get("events", [])]
        return {"blocks": out, "samples": sum(b["n_samples"] for b in blocks), "events": events}

    return app


def blocks(n: int) -> list[SampleBlock]:
    rng = np.random.default_rng(1)
    return [
        SampleBlock(10**18 + i * 60 * 10**9, 50.0, rng.normal(size=(3000, 3)).astype(np.float32))
        for i in range(n)
    ]


def test_to_ingest_block_is_little_endian_float32_row_major() -> None:
    block = SampleBlock(123, 50.0, np.arange(6, dtype=np.float32).reshape(2, 3))
    got = to_ingest_block(block, 7)
    assert got == {
        "stream": "acc",
        "seq": 7,
        "t0_ns": 123,
        "fs_hz": 50.0,
        "n_samples": 2,
        "dtype": "float32",
        "data": base64.b64encode(np.arange(6, dtype="<f4").tobytes()).decode(),
    }


async def test_upload_numbers_and_batches_blocks() -> None:
    received: list[dict[str, Any]] = []
    requests: list[int] = []
    transport = httpx.ASGITransport(app=make_app(received, requests))
    src = blocks(45)
    async with Uploader("http://otmon.test/", TOKEN, transport=transport) as up:
        await up.upload(src)
    assert requests == [BATCH_BLOCKS, BATCH_BLOCKS, 5]
    assert [b["seq"] for b in received] == list(range(45))
    assert all(np.array_equal(r["accel_g"], b.accel_g) for r, b in zip(received, src, strict=True))
    assert up.n_uploaded_samples == 45 * 3000


async def test_4xx_raises_upload_error_with_reason() -> None:
    transport = httpx.ASGITransport(app=make_app([], []))
    up = Uploader("http://otmon.test", "wrong", transport=transport)
    with pytest.raises(UploadError, match="revoked device token") as info:
        await up.upload(blocks(1))
    assert info.value.status_code == 401
    await up.aclose()


async def test_retries_5xx_and_connection_errors_then_succeeds() -> None:
    answers: list[Any] = [httpx.ConnectError("refused"), 503, 502, 200]
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"blocks": [], "samples": 0})

    up = Uploader("http://x", TOKEN, transport=httpx.MockTransport(handler), backoff_s=0.0)
    await up.upload(blocks(1))
    assert len(calls) == 4
    await up.aclose()


async def test_retries_exhausted_raise_upload_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "database restarting"})

    up = Uploader("http://x", TOKEN, transport=httpx.MockTransport(handler), backoff_s=0.0)
    with pytest.raises(UploadError, match="database restarting"):
        await up.upload(blocks(1))
    await up.aclose()


async def test_replay_into_uploader_end_to_end(fixture_capture: Path) -> None:
    received: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=make_app(received, []))
    async with Uploader("http://otmon.test", TOKEN, transport=transport) as up:
        result = await replay_capture(fixture_capture, up.send)
    offline = decode_capture(fixture_capture)
    assert sum(b["n_samples"] for b in received) == result.n_samples == offline.n_samples
    assert [b["t0_ns"] for b in received] == [b.t0_ns for b in offline.blocks]
    assert all(
        np.array_equal(r["accel_g"], b.accel_g)
        for r, b in zip(received, offline.blocks, strict=True)
    )
