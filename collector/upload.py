"""Upload blocks to the service: `POST {server}/api/v1/ingest` with a device bearer token.

`Uploader` posts blocks straight from memory (tests, `otmon replay`); `OutboxUploader`
(collector/outbox_upload.py, also importable from here) drains the durable outbox.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np

from analysis.samples import SampleBlock
from collector.errors import UploadError

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/ingest"
# ≤ 20 blocks of 3000 samples ≈ 1.4 MB of base64 per request, far below max_body_bytes (16 MiB).
BATCH_BLOCKS = 20
# 4 attempts with 0.5/1/2 s back-off ride out a service restart without stalling collection long.
MAX_ATTEMPTS = 4
BACKOFF_S = 0.5


def to_ingest_block(block: SampleBlock, seq: int, stream: str = "acc") -> dict[str, Any]:
    """Return the ingest JSON of one block (base64 of little-endian float32, row-major)."""
    data = np.ascontiguousarray(block.accel_g, dtype="<f4").tobytes()
    return {
        "stream": stream,
        "seq": seq,
        "t0_ns": block.t0_ns,
        "fs_hz": block.fs_hz,
        "n_samples": block.n_samples,
        "dtype": "float32",
        "data": base64.b64encode(data).decode("ascii"),
    }


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


class Uploader:
    """Send upload blocks of one stream, numbering them `seq` = 0, 1, 2, … in order."""

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        stream: str = "acc",
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        first_seq: int = 0,
        backoff_s: float = BACKOFF_S,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.url = server_url.rstrip("/") + INGEST_PATH
        self.stream = stream
        self.next_seq = first_seq
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self.n_uploaded_blocks = 0
        self.n_uploaded_samples = 0
        self._pending: list[dict[str, Any]] = []
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def post_batch(self, blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """POST one batch of ingest blocks, retrying 5xx and connection errors.

        Raises:
            UploadError: a 4xx answer (with the server's reason) or retries exhausted.
        """
        last = ""
        for attempt in range(self.max_attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._client.post(self.url, json={"blocks": list(blocks)})
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("upload attempt %d failed: %s", attempt + 1, last)
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_reason(response)}"
                log.info("upload attempt %d failed: %s", attempt + 1, last)
                continue
            if response.status_code >= 400:
                status = response.status_code
                raise UploadError(
                    f"{self.url} rejected the upload (HTTP {status}): {_reason(response)}",
                    status_code=response.status_code,
                )
            result: dict[str, Any] = response.json()
            return result
        raise UploadError(f"upload to {self.url} failed after {self.max_attempts} attempts: {last}")

    async def submit(self, block: SampleBlock) -> None:
        """Queue one block (a session sink); posts when a batch is full."""
        self._pending.append(to_ingest_block(block, self.next_seq, self.stream))
        self.next_seq += 1
        if len(self._pending) >= BATCH_BLOCKS:
            await self.flush()

    __call__ = submit
    send = submit  # the name otmon/cli.py uses for the session sink

    async def flush(self) -> None:
        """Post everything queued."""
        while self._pending:
            batch = self._pending[:BATCH_BLOCKS]
            await self.post_batch(batch)
            del self._pending[: len(batch)]
            self.n_uploaded_blocks += len(batch)
            self.n_uploaded_samples += sum(b["n_samples"] for b in batch)

    async def upload(self, blocks: Sequence[SampleBlock]) -> None:
        """Number, batch and post `blocks`."""
        for block in blocks:
            await self.submit(block)
        await self.flush()

    async def aclose(self) -> None:
        """Close the HTTP client (queued blocks are not posted)."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.flush()
        await self.aclose()


_MOVED = ("DrainStats", "OutboxUploader", "retry_after_s", "stored_to_ingest", "PERMANENT")


def __getattr__(name: str) -> Any:
    """The outbox uploader lives in collector/outbox_upload.py; its old import path still works."""
    if name in _MOVED:
        from collector import outbox_upload

        return getattr(outbox_upload, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
