"""One streaming session over a connected BleakClient, shared by live collection and replay.

Also `decode_capture()`: the offline path through the same decoder and assembler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError

from analysis.samples import SampleBlock
from collector import devices
from collector.assembly import DEFAULT_MAX_SAMPLES, BlockAssembler, Gap
from collector.capture import CaptureWriter, make_header, read_capture
from collector.devices.base import DeviceProfile, FrameDecoder
from collector.errors import CollectorError, DecodeError, ProtocolError

log = logging.getLogger(__name__)

Clock = Callable[[], int]
Sink = Callable[[SampleBlock], Awaitable[None]]


class EventSink(Protocol):
    """Where a collection reports what is not samples (collector.outbox_sink.OutboxSink)."""

    async def gap(self, start_ns: int, end_ns: int, cause: str) -> None:
        """Samples of `[start_ns, end_ns)` are missing; `cause` as in the ingest contract."""

    async def press(self, at_ns: int) -> None:
        """The wearable's button was pressed (press edge) at `at_ns`."""

    async def draft(self, block: SampleBlock) -> None:
        """The upload block still being filled, so far (replaces the previous draft)."""


_END = object()  # queue sentinel: stop consuming
# Bounded loss on SIGKILL (docs/collector.md, "What a crash can lose"): samples still in the
# open upload block are committed as a draft once the oldest of them not yet in a draft was
# decoded 10 s ago (by the notifications' host time, or by the clock while the stream is
# silent), so a crash loses at most ~10 s of decoded samples. Drafts leave the block
# boundaries alone (the service and `otmon analyze` still see identical blocks) and cost one
# small SQLite commit per 10 s.
DRAFT_AFTER_NS = 10_000_000_000
# While no notification comes, check every second whether a draft is due.
DRAFT_POLL_S = 1.0


@dataclass(slots=True)
class SessionResult:
    """What one session did."""

    settings: dict[str, Any]
    n_notifications: int = 0
    n_decode_errors: int = 0
    n_duplicates: int = 0  # notifications delivered twice, dropped by the decoder
    n_samples: int = 0
    n_blocks: int = 0
    gaps: list[Gap] = field(default_factory=list)
    stopped_by: str = ""  # "request" | "disconnect" | "device"
    first_sample_ns: int | None = None  # UTC of the first sample delivered
    end_ns: int | None = None  # predicted UTC of the sample after the last one delivered


@dataclass(frozen=True, slots=True)
class DecodedCapture:
    """Offline decode of a capture: the upload blocks the live path produced."""

    header: dict[str, Any]
    blocks: list[SampleBlock]
    n_notifications: int
    n_decode_errors: int
    gaps: list[Gap]
    n_duplicates: int = 0

    @property
    def n_samples(self) -> int:
        """Total samples in all blocks."""
        return sum(b.n_samples for b in self.blocks)


class _StreamDecoder:
    """Decoder + assembler + counters: the one path from notifications to upload blocks."""

    def __init__(self, decoder: FrameDecoder, max_samples: int) -> None:
        self.decoder = decoder
        self.assembler = BlockAssembler(max_samples)
        self.n_notifications = 0
        self.n_decode_errors = 0

    @property
    def n_duplicates(self) -> int:
        """Duplicate notifications the decoder dropped (device-clock or sample-clock decoders)."""
        count = getattr(self.decoder, "n_duplicates", None)
        if count is None:
            count = getattr(getattr(self.decoder, "clock", None), "n_duplicates", 0)
        return int(count)

    def feed(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        self.n_notifications += 1
        try:
            frames = self.decoder.decode(payload, received_ns)
        except DecodeError as exc:
            self.n_decode_errors += 1
            # The first one is worth a warning (e.g. frames cut by a small MTU); the rest are counted.
            level = logging.WARNING if self.n_decode_errors == 1 else logging.DEBUG
            log.log(level, "skipping undecodable notification at %d: %s", received_ns, exc)
            return []
        out: list[SampleBlock] = []
        for frame in frames:
            out += self.assembler.push(frame)
        return out


def decode_capture(path: str | Path, *, max_samples: int = DEFAULT_MAX_SAMPLES) -> DecodedCapture:
    """Decode a capture offline through the same decoder and assembler as the live path."""
    capture = read_capture(path)
    profile = devices.get(capture.profile)
    stream = _StreamDecoder(profile.decoder(capture.settings), max_samples)
    blocks: list[SampleBlock] = []
    n_notifications = n_errors = n_duplicates = 0
    gaps: list[Gap] = []
    for event in capture.events:
        if event.kind == "connect" and stream.n_notifications:
            # A reconnect: the live path starts a fresh decoder (new clock anchor) and its own
            # blocks for every connection, so the offline decode does too.
            blocks += stream.assembler.flush()
            n_notifications += stream.n_notifications
            n_errors += stream.n_decode_errors
            n_duplicates += stream.n_duplicates
            gaps += stream.assembler.gaps
            stream = _StreamDecoder(profile.decoder(capture.settings), max_samples)
        if event.kind == "notify" and event.char == profile.data_uuid:
            blocks += stream.feed(event.data, event.t_ns)
    blocks += stream.assembler.flush()
    return DecodedCapture(
        capture.header,
        blocks,
        n_notifications + stream.n_notifications,
        n_errors + stream.n_decode_errors,
        gaps + list(stream.assembler.gaps),
        n_duplicates + stream.n_duplicates,
    )


class Session:
    """Subscribe, start, decode notifications into upload blocks for `sink`, stop, flush."""

    def __init__(
        self,
        client: BleakClient,
        profile: DeviceProfile,
        requested: Mapping[str, Any],
        *,
        sink: Sink,
        clock: Clock = time.time_ns,
        capture: CaptureWriter | None = None,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        events: EventSink | None = None,
    ) -> None:
        self.client = client
        self.events = events
        self.profile = profile
        self.requested = dict(requested)
        self.sink = sink
        self.clock = clock
        self.capture = capture
        self.max_samples = max_samples
        self.started = asyncio.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._control: dict[str, asyncio.Queue[bytes | None]] = {
            u: asyncio.Queue() for u in profile.control_uuids
        }
        self._disconnected = False
        self._finished = False
        self._stopped_by = ""
        self._stream: _StreamDecoder | None = None
        self._undrafted_since_ns: int | None = None  # oldest open sample not in a draft
        self._button_state: int | None = None  # last state of the wearable's button
        self._button = False  # button notifications are watched (set by _start_button)
        self.settings: dict[str, Any] = {}  # negotiated, once started

    # --- ControlLink, used by the profile -------------------------------------------------
    async def write(self, char_uuid: str, data: bytes) -> None:
        """Record and write a command (with response)."""
        self._record("write", char_uuid, data)
        await self.client.write_gatt_char(char_uuid, data, response=True)

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        """Return the next control notification of `char_uuid`."""
        try:
            payload = await asyncio.wait_for(self._control[char_uuid].get(), timeout_s)
        except TimeoutError:
            raise ProtocolError(f"no response on {char_uuid} within {timeout_s} s") from None
        if payload is None:
            raise ProtocolError("device disconnected while waiting for a response")
        return payload

    # --- callbacks --------------------------------------------------------------------------
    def _record(self, kind: Any, char: str, data: bytes = b"") -> int:
        t_ns = self.clock()
        if self.capture is not None:
            self.capture.write_event(t_ns, kind, char, data)
        return t_ns

    def _on_control(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        self._record("notify", char.uuid, payload)
        if self.started.is_set() and self.profile.measurement_stopped(payload):
            log.info("device stopped the measurement")
            self._end("device")
        self._control[char.uuid].put_nowait(payload)

    def _on_data(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        t_ns = self._record("notify", char.uuid, payload)
        self._queue.put_nowait((t_ns, payload, True))

    def _on_button(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        t_ns = self._record("notify", char.uuid, payload)
        self._queue.put_nowait((t_ns, payload, False))  # in order with the samples

    def _end(self, reason: str) -> None:
        if not self._stopped_by:
            self._stopped_by = reason
        self._queue.put_nowait(_END)

    def request_stop(self) -> None:
        """Ask the session to stop streaming and return."""
        self._end("request")

    @property
    def link_lost(self) -> bool:
        """True once the device disconnected during this session."""
        return self._disconnected

    def on_disconnected(self) -> None:
        """Tell the session that the device disconnected (bleak's disconnected callback)."""
        if self._disconnected or self._finished:
            return  # bleak also calls back after our own disconnect at the end
        self._disconnected = True
        self._record("disconnect", self.profile.service_uuids[0])
        for q in self._control.values():
            q.put_nowait(None)
        self._end("disconnect")

    # --- run --------------------------------------------------------------------------------
    async def _start_button(self) -> None:
        """Watch the wearable's button, if its profile has one and events are wanted."""
        uuid = getattr(self.profile, "button_uuid", None)
        if uuid is None or self.events is None:
            return
        try:
            if uuid != self.profile.data_uuid:
                if self.client.services.get_characteristic(uuid) is None:
                    log.info("no button characteristic %s on this device: no button marks", uuid)
                    return
                await self.client.start_notify(uuid, self._on_button)
            await self.profile.start_button(self)  # type: ignore[attr-defined]
        except (BleakError, CollectorError, TimeoutError) as exc:
            log.warning("the button could not be enabled (%s): no button marks", exc)
            return
        self._button = True

    async def _pressed(self, t_ns: int, payload: bytes) -> None:
        """A button notification: a press edge (released/unknown -> pressed) is a press."""
        state = self.profile.button_state(payload)  # type: ignore[attr-defined]
        if state is None or self.events is None:
            return
        if state == 1 and self._button_state != 1:
            await self.events.press(t_ns)
        self._button_state = state

    async def _process(self, item: tuple[int, bytes, bool], result: SessionResult) -> None:
        assert self._stream is not None
        if not item[2]:
            await self._pressed(item[0], item[1])
            return
        if self._button and self.profile.data_uuid == getattr(self.profile, "button_uuid", None):
            await self._pressed(item[0], item[1])  # shares the data characteristic (MetaWear)
        n_gaps = len(self._stream.assembler.gaps)
        for block in self._stream.feed(item[1], item[0]):
            await self._deliver(block, result)
        if self.events is not None:
            # A jump of the device's clock/counter (or the sample clock) inside this connection.
            for gap in self._stream.assembler.gaps[n_gaps:]:
                if gap.length_ns > 0:
                    end_ns = gap.start_ns + gap.length_ns
                    await self.events.gap(gap.start_ns, end_ns, "device_drop")
            await self._draft(item[0])

    async def _draft(self, now_ns: int) -> None:
        """Commit the open block as a draft once its oldest undrafted sample is due."""
        assert self._stream is not None and self.events is not None
        assembler = self._stream.assembler
        if not assembler.n_open:
            self._undrafted_since_ns = None
        elif self._undrafted_since_ns is None:
            self._undrafted_since_ns = now_ns
        elif now_ns - self._undrafted_since_ns >= DRAFT_AFTER_NS:  # (kept if older: drafts early)
            block = assembler.peek()
            assert block is not None
            await self.events.draft(block)
            self._undrafted_since_ns = None

    async def _next(self) -> Any:
        """The next queued item; while the stream is silent, draft what waits when due."""
        while True:
            try:
                return await asyncio.wait_for(self._queue.get(), DRAFT_POLL_S)
            except TimeoutError:
                if self.events is not None and self._undrafted_since_ns is not None:
                    await self._draft(self.clock())

    async def _deliver(self, block: SampleBlock, result: SessionResult) -> None:
        result.n_blocks += 1
        result.n_samples += block.n_samples
        if result.first_sample_ns is None:
            result.first_sample_ns = block.t0_ns
        result.end_ns = block.end_ns
        await self.sink(block)

    async def run(self) -> SessionResult:
        """Run until stopped, the device stops, or it disconnects; return the counts."""
        try:
            return await self._run()
        finally:
            self._finished = True  # later disconnect callbacks are our own disconnect

    async def _run(self) -> SessionResult:
        t_connect = self._record("connect", self.profile.service_uuids[0])
        for uuid in self.profile.control_uuids:
            await self.client.start_notify(uuid, self._on_control)
        await self.client.start_notify(self.profile.data_uuid, self._on_data)
        settings = await self.profile.start(self, self.requested)
        self.settings = settings
        result = SessionResult(settings=settings)
        if self.capture is not None and self.capture.header is None:
            device = {"address": self.client.address, "name": _client_name(self.client)}
            started = datetime.fromtimestamp(t_connect / 1e9, UTC)
            self.capture.write_header(make_header(self.profile.name, settings, device, started))
        self._stream = _StreamDecoder(self.profile.decoder(settings), self.max_samples)
        await self._start_button()
        self.started.set()
        try:
            while (item := await self._next()) is not _END:
                await self._process(item, result)
        finally:
            if not self._disconnected and self._stopped_by != "device":
                try:
                    await self.profile.stop(self)
                except (CollectorError, BleakError, TimeoutError) as exc:
                    log.warning("stopping the stream failed: %s", exc)
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not _END:
                    await self._process(item, result)
            for block in self._stream.assembler.flush():
                await self._deliver(block, result)
        result.n_notifications = self._stream.n_notifications
        result.n_decode_errors = self._stream.n_decode_errors
        result.n_duplicates = self._stream.n_duplicates
        result.gaps = list(self._stream.assembler.gaps)
        result.stopped_by = self._stopped_by
        return result


def _client_name(client: BleakClient) -> str | None:
    try:
        return client.name
    except (NotImplementedError, BleakError):
        return None
