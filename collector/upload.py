"""Upload blocks to the service: `POST {server}/api/v1/ingest` with a device bearer token.

`Uploader` posts blocks straight from memory (tests, `otmon replay`); `OutboxUploader` drains
the durable outbox (collector/outbox.py): batches keyed (device, stream, seq), exponential
backoff with jitter, 429 `Retry-After`, 413 split, permanent refusals (409/422) kept and
reported, and only what the service confirmed deleted.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np

from analysis.samples import SampleBlock
from collector.errors import UploadError
from collector.outbox import Outbox, StoredBlock

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


# ≤ 4 MiB of base64 per request: a quarter of the service's default max_body_bytes (16 MiB).
BATCH_BYTES = 4 * 1024 * 1024
# Back-off after a failure doubles from 0.5 s up to 60 s (a restart or an outage of minutes
# costs at most a minute of extra delay); "equal jitter" keeps half the delay and randomises
# the other half so many collectors do not retry in lock-step.
MAX_BACKOFF_S = 60.0
# A Retry-After longer than an hour is treated as an hour (a misconfigured proxy must not
# stall the upload for days).
MAX_RETRY_AFTER_S = 3600.0
# Answers that refuse a block for good: the same key with another body / overlap (409),
# undecodable or out of order (422). They are isolated to one block and kept in `refused`.
PERMANENT = (409, 422)


def stored_to_ingest(block: StoredBlock) -> dict[str, Any]:
    """The ingest JSON of a stored block (byte-identical on every resend)."""
    return {
        "stream": block.stream,
        "seq": block.seq,
        "t0_ns": block.t0_ns,
        "fs_hz": block.fs_hz,
        "n_samples": block.n_samples,
        "dtype": "float32",
        "data": base64.b64encode(block.data).decode("ascii"),
    }


def retry_after_s(response: httpx.Response, now_s: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        delay = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        delay = when.timestamp() - (time.time() if now_s is None else now_s)
    return min(max(delay, 0.0), MAX_RETRY_AFTER_S)


@dataclass(slots=True)
class DrainStats:
    """What an `OutboxUploader` did so far."""

    n_requests: int = 0
    n_confirmed_blocks: int = 0
    n_confirmed_samples: int = 0
    n_refused_blocks: int = 0
    n_failures: int = 0  # 5xx, connection errors and 429s that were retried


class OutboxUploader:
    """Drain an `Outbox` to `POST /api/v1/ingest`, deleting only confirmed blocks."""

    def __init__(
        self,
        outbox: Outbox,
        server_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
        batch_blocks: int = BATCH_BLOCKS,
        batch_bytes: int = BATCH_BYTES,
        backoff_s: float = BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.outbox = outbox
        self.url = server_url.rstrip("/") + INGEST_PATH
        self.batch_blocks = batch_blocks
        self.batch_bytes = batch_bytes
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = DrainStats()
        self.sleeps_s: list[float] = []  # every wait, for logs and tests
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._failures = 0
        self._limit = batch_blocks  # lowered after 413, 1 while isolating a refused block
        self._isolate_left = 0
        self._client = httpx.AsyncClient(
            timeout=timeout_s, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )

    def backoff_delay_s(self, failures: int) -> float:
        """Delay after the `failures`-th consecutive failure: doubling, capped, equal jitter."""
        full = min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1))
        return full / 2 + self._rng.random() * full / 2

    async def _wait(self, delay_s: float) -> None:
        self.sleeps_s.append(delay_s)
        await self._sleep(delay_s)

    def _batch(self) -> list[StoredBlock]:
        limit = 1 if self._isolate_left else self._limit
        blocks = self.outbox.pending(limit)
        out: list[StoredBlock] = []
        size = 0
        for b in blocks:
            size += len(b.data) * 4 // 3 + 200
            if out and size > self.batch_bytes:
                break
            out.append(b)
        return out

    async def _failed(self, what: str, delay_s: float | None = None) -> None:
        """A retryable failure: record it, then wait `delay_s` or the back-off."""
        self._failures += 1
        self.stats.n_failures += 1
        wait = self.backoff_delay_s(self._failures) if delay_s is None else delay_s
        log.info("upload failed (%s); retrying in %.1f s", what, wait)
        self.outbox.set_status(last_error=what, last_error_ns=time.time_ns())
        await self._wait(wait)

    async def send_one_batch(self) -> bool:
        """Send the oldest pending batch once and act on the answer; False when nothing waits.

        Raises:
            UploadError: the service refused the token or the request (401/403/other 4xx):
                nothing is deleted; the caller decides when to try again.
        """
        batch = self._batch()
        if not batch:
            return False
        self.stats.n_requests += 1
        body = {"blocks": [stored_to_ingest(b) for b in batch]}
        try:
            response = await self._client.post(self.url, json=body)
        except httpx.TransportError as exc:
            await self._failed(f"{type(exc).__name__}: {exc}")
            return True
        status = response.status_code
        if status == 200:
            self._confirmed(batch, response.json())
            return True
        reason = _reason(response)
        if status == 429:
            await self._failed(f"HTTP 429: {reason}", retry_after_s(response))
        elif status >= 500:
            await self._failed(f"HTTP {status}: {reason}", retry_after_s(response))
        elif status == 413 and len(batch) > 1:
            self._limit = max(1, len(batch) // 2)
            log.info("HTTP 413 for %d blocks; sending at most %d", len(batch), self._limit)
        elif status in PERMANENT and len(batch) > 1:
            self._isolate_left = len(batch)  # one block at a time finds the refused one
        elif status in PERMANENT or status == 413:
            self._refuse(batch[0], status, reason)
        else:
            message = f"{self.url} rejected the upload (HTTP {status}): {reason}"
            self.outbox.set_status(last_error=message, last_error_ns=time.time_ns())
            raise UploadError(message, status_code=status)
        return True

    def _confirmed(self, batch: list[StoredBlock], result: dict[str, Any]) -> None:
        acked = {(a["stream"], a["seq"]) for a in result.get("blocks", [])}
        sent = [(b.stream, b.seq) for b in batch if (b.stream, b.seq) in acked]
        self.outbox.confirm(sent)
        self._failures = 0
        self._isolate_left = max(0, self._isolate_left - len(batch))
        self.stats.n_confirmed_blocks += len(sent)
        self.stats.n_confirmed_samples += sum(
            b.n_samples for b in batch if (b.stream, b.seq) in acked
        )
        self.outbox.set_status(last_upload_ns=time.time_ns(), last_error=None, last_error_ns=None)

    def _refuse(self, block: StoredBlock, status: int, reason: str) -> None:
        log.error(
            "the service refused stream %r seq %d for good (HTTP %d): %s; kept in the outbox's "
            "refused table",
            block.stream,
            block.seq,
            status,
            reason,
        )
        self.outbox.refuse((block.stream, block.seq), status, f"HTTP {status}: {reason}")
        self._isolate_left = max(0, self._isolate_left - 1)
        self.stats.n_refused_blocks += 1

    async def drain(self) -> DrainStats:
        """Send until the outbox is empty (retrying failures); return the stats."""
        while await self.send_one_batch():
            pass
        return self.stats

    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Drain in the background until `stop` is set; a refused token is retried at the cap."""
        if self._sleep is asyncio.sleep:  # back-off waits end early on stop

            async def sleep(delay_s: float) -> None:
                await _wait_or_stop(stop, delay_s)

            self._sleep = sleep
        while not stop.is_set():
            try:
                busy = await self.send_one_batch()
            except UploadError as exc:
                log.error("%s; retrying in %.0f s", exc, self.max_backoff_s)
                busy = False
                await _wait_or_stop(stop, self.max_backoff_s)
                continue
            if not busy:
                await _wait_or_stop(stop, idle_s)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


async def _wait_or_stop(stop: asyncio.Event, delay_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), delay_s)
    except TimeoutError:
        pass
