"""Drain the durable outbox to `POST {server}/api/v1/ingest` (blocks, events, status).

Batches of blocks keyed (device, stream, seq) and events keyed by their id, exponential backoff
with jitter, 429 `Retry-After`, 413 split, permanent refusals (409/422) narrowed down to the one
block or event and kept and reported, and only what the service confirmed deleted. Every request
carries the collector's status (architecture.md, issue 4: link, battery, backlog, decoded until).
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
from typing import Any

import httpx

from collector.errors import UploadError
from collector.outbox import Outbox, StoredBlock, StoredEvent
from collector.outbox_status import heartbeat
from collector.upload import BACKOFF_S, BATCH_BLOCKS, INGEST_PATH, _reason

log = logging.getLogger("collector.upload")

# ≤ 4 MiB of base64 per request: a quarter of the service's default max_body_bytes (16 MiB).
BATCH_BYTES = 4 * 1024 * 1024
# Back-off after a failure doubles from 0.5 s up to 60 s (a restart or an outage of minutes
# costs at most a minute of extra delay); "equal jitter" keeps half the delay and randomises
# the other half so many collectors do not retry in lock-step.
MAX_BACKOFF_S = 60.0
# A Retry-After longer than an hour is treated as an hour (a misconfigured proxy must not
# stall the upload for days).
MAX_RETRY_AFTER_S = 3600.0
# Answers that refuse a block or event for good: the same key with another body / overlap
# (409), undecodable, out of order or a bad field (422). They are narrowed down to one block or
# event, sent alone, which is kept in `refused` / `refused_events`.
PERMANENT = (409, 422)
# Events are ~150 bytes of JSON: 200 per request stay far below any body limit.
BATCH_EVENTS = 200
# With nothing to upload the status alone is sent when it changed (link, battery, backlog) or
# at least every 60 s, so the service knows the collector is alive and what it still holds.
HEARTBEAT_S = 60.0
# After a status alone was not stored (service down), wait 5 s before the next one.
HEARTBEAT_RETRY_S = 5.0


# A status that differs from the last one stored in these is sent at once when idle.
_STATUS_CHANGES = ("link", "battery_pct", "backlog_blocks", "backlog_samples")


def ingest_body(
    blocks: Sequence[StoredBlock],
    events: Sequence[StoredEvent],
    status: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON of one `POST /api/v1/ingest` (architecture.md, issue 4); empty parts left out."""
    body: dict[str, Any] = {}
    if blocks:
        body["blocks"] = [stored_to_ingest(b) for b in blocks]
    if events:
        body["events"] = [e.wire() for e in events]
    if status is not None:
        body["status"] = status
    return body


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
    n_confirmed_events: int = 0
    n_refused_events: int = 0
    n_status_only: int = 0  # heartbeats sent with nothing else
    n_failures: int = 0  # 5xx, connection errors and 429s that were retried


class OutboxUploader:
    """Drain an `Outbox` to `POST /api/v1/ingest`, deleting only confirmed blocks and events."""

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
        batch_events: int = BATCH_EVENTS,
        with_status: bool = True,
        backoff_s: float = BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.outbox = outbox
        self.url = server_url.rstrip("/") + INGEST_PATH
        self.batch_blocks = batch_blocks
        self.batch_bytes = batch_bytes
        self.batch_events = batch_events
        self.with_status = with_status
        self.last_status: dict[str, Any] | None = None  # the last status the service stored
        self._last_status_s = float("-inf")
        self._status_failed_s = float("-inf")
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = DrainStats()
        self.sleeps_s: list[float] = []  # every wait, for logs and tests
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._failures = 0
        self._limit = batch_blocks  # lowered after 413
        self._isolate_left = 0  # items (blocks, then events) still to send one at a time
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

    def _batch(self) -> tuple[list[StoredBlock], list[StoredEvent]]:
        if self._isolate_left:  # narrowing down a refusal: one item per request
            blocks = self.outbox.pending(1)
            return (blocks, []) if blocks else ([], self.outbox.pending_events(1))
        out: list[StoredBlock] = []
        size = 0
        for b in self.outbox.pending(self._limit):
            size += len(b.data) * 4 // 3 + 200
            if out and size > self.batch_bytes:
                break
            out.append(b)
        return out, self.outbox.pending_events(self.batch_events)

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
        blocks, events = self._batch()
        if not blocks and not events:
            return False
        # No status while narrowing down: a refusal must be the one item's, nothing else's.
        with_status = self.with_status and not self._isolate_left
        status = (
            heartbeat(self.outbox, [(b.stream, b.seq) for b in blocks]) if with_status else None
        )
        self.stats.n_requests += 1
        try:
            response = await self._client.post(self.url, json=ingest_body(blocks, events, status))
        except httpx.TransportError as exc:
            await self._failed(f"{type(exc).__name__}: {exc}")
            return True
        code = response.status_code
        n_items = len(blocks) + len(events)
        if code == 200:
            self._confirmed(blocks, events, response.json())
            self._status_stored(status)
            return True
        reason = _reason(response)
        if code == 429:
            await self._failed(f"HTTP 429: {reason}", retry_after_s(response))
        elif code >= 500:
            await self._failed(f"HTTP {code}: {reason}", retry_after_s(response))
        elif code == 413 and len(blocks) > 1:
            self._limit = max(1, len(blocks) // 2)
            log.info("HTTP 413 for %d blocks; sending at most %d", len(blocks), self._limit)
        elif code in PERMANENT and n_items > 1:
            self._isolate_left = n_items  # one item at a time finds the refused one
        elif (code in PERMANENT or code == 413) and blocks:
            self._refuse(blocks[0], code, reason)
        elif code in PERMANENT:
            self._refuse_event(events[0], code, reason)
        else:
            message = f"{self.url} rejected the upload (HTTP {code}): {reason}"
            self.outbox.set_status(last_error=message, last_error_ns=time.time_ns())
            raise UploadError(message, status_code=code)
        return True

    def _status_stored(self, status: dict[str, Any] | None) -> None:
        if status is not None:
            self.last_status = status
            self._last_status_s = time.monotonic()

    def _confirmed(
        self, blocks: list[StoredBlock], events: list[StoredEvent], result: dict[str, Any]
    ) -> None:
        acked = {(a["stream"], a["seq"]) for a in result.get("blocks", [])}
        sent = [b for b in blocks if (b.stream, b.seq) in acked]
        self.outbox.confirm([(b.stream, b.seq) for b in sent])
        acked_ids = {a["id"] for a in result.get("events", [])}
        sent_ids = [e.id for e in events if e.id in acked_ids]
        if sent_ids:
            self.outbox.confirm_events(sent_ids)
        self._failures = 0
        self._isolate_left = max(0, self._isolate_left - len(blocks) - len(events))
        self.stats.n_confirmed_blocks += len(sent)
        self.stats.n_confirmed_samples += sum(b.n_samples for b in sent)
        self.stats.n_confirmed_events += len(sent_ids)
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

    def _refuse_event(self, event: StoredEvent, status: int, reason: str) -> None:
        log.error(
            "the service refused %s event %s for good (HTTP %d): %s; kept in the outbox's "
            "refused_events table",
            event.kind,
            event.id,
            status,
            reason,
        )
        self.outbox.refuse_event(event.id, status, f"HTTP {status}: {reason}")
        self._isolate_left = max(0, self._isolate_left - 1)
        self.stats.n_refused_events += 1

    async def send_heartbeat(self, *, force: bool = False) -> bool:
        """Send the status alone when it changed or `HEARTBEAT_S` passed; True if it was stored.

        A failure is logged and left to the next call (a status is not worth a back-off).
        """
        backlog = self.outbox.backlog()
        if not force and (backlog.n_blocks or backlog.n_events):
            return False  # the next upload carries the status
        status = heartbeat(self.outbox)
        changed = self.last_status is None or any(
            status[k] != self.last_status[k] for k in _STATUS_CHANGES
        )
        now_s = time.monotonic()
        due = now_s - self._last_status_s >= HEARTBEAT_S
        retry = now_s - self._status_failed_s >= HEARTBEAT_RETRY_S
        if not (self.with_status and (force or ((changed or due) and retry))):
            return False
        self.stats.n_requests += 1
        try:
            response = await self._client.post(self.url, json=ingest_body([], [], status))
        except httpx.TransportError as exc:
            self._status_failed_s = now_s
            log.info("status not sent: %s: %s", type(exc).__name__, exc)
            return False
        if response.status_code != 200:
            self._status_failed_s = now_s
            log.info("status not stored (HTTP %d): %s", response.status_code, _reason(response))
            return False
        self.stats.n_status_only += 1
        self._status_stored(status)
        return True

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
                await self.send_heartbeat()
                await _wait_or_stop(stop, idle_s)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


async def _wait_or_stop(stop: asyncio.Event, delay_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), delay_s)
    except TimeoutError:
        pass
