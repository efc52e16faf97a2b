"""Replay a capture through the unmodified `bleak.BleakClient` / `BleakScanner`.

`ReplayClient` and `ReplayScanner` are bleak backends (docs: ble-testing.md §1): the GATT
table comes from the profile's UUIDs and the characteristics the recording used; each host
write delivers the notifications recorded after the matching recorded write, and
notifications recorded before any write start once the host subscribes; a recorded
disconnect calls the disconnected callback.
`ReplayScript.clock()` returns the recorded host time of the event being delivered, so the
decoded UTC times equal the recording's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from collector import devices
from collector.assembly import Gap
from collector.ble import collect
from collector.capture import Capture, CaptureEvent, CaptureWriter, read_capture
from collector.devices.base import DeviceProfile
from collector.playback import PlaybackClient, PlaybackScanner, build_services
from collector.session import Session, Sink

log = logging.getLogger(__name__)

# Re-advertise this often: find_device_* registers its callback only after start() returns.
ADVERTISE_EVERY_S = 0.01
_DEFAULT_ADDRESS = "00:00:00:00:00:00"


class ReplayScript:
    """The recorded events of one capture and the replay position in them."""

    def __init__(self, capture: Capture, profile: DeviceProfile | None = None) -> None:
        self.capture = capture
        self.profile = profile or devices.get(capture.profile)
        self.events: list[CaptureEvent] = capture.events
        self._pos = 0
        self._t_ns = self.events[0].t_ns if self.events else 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.n_unmatched_writes = 0

    @property
    def address(self) -> str:
        """Recorded device address (or a placeholder)."""
        return str(self.capture.header.get("device", {}).get("address") or _DEFAULT_ADDRESS)

    @property
    def name(self) -> str | None:
        """Recorded device name."""
        name = self.capture.header.get("device", {}).get("name")
        return str(name) if name else None

    def clock(self) -> int:
        """Recorded host time (UTC ns) of the event being delivered or the next host write."""
        if self.idle.is_set() and self._pos < len(self.events):
            nxt = self.events[self._pos]
            if nxt.kind == "write":
                return nxt.t_ns
        return self._t_ns

    def skip_connect(self) -> None:
        """Consume the recorded connect events at the current position."""
        while self._pos < len(self.events) and self.events[self._pos].kind == "connect":
            self._t_ns = self.events[self._pos].t_ns
            self._pos += 1

    def match_write(self, char: str, data: bytes) -> list[CaptureEvent] | None:
        """Consume the recorded write matching (char, data); return the events that followed it."""
        hex_ = data.hex()
        for j in range(self._pos, len(self.events)):
            ev = self.events[j]
            if ev.kind == "write" and ev.char == char and ev.hex == hex_:
                end = j + 1
                while end < len(self.events) and self.events[end].kind != "write":
                    end += 1
                self._t_ns = ev.t_ns
                segment = self.events[j + 1 : end]
                self._pos = end
                return segment
        self.n_unmatched_writes += 1
        log.warning("replay: write %s to %s was not recorded", hex_, char)
        return None

    def take_unprompted(self, subscribed: set[str]) -> list[CaptureEvent]:
        """Consume the events up to the next write when they start with a notification the host
        subscribed to: devices such as InfiniTime stream as soon as they are subscribed."""
        if self._pos >= len(self.events):
            return []
        first = self.events[self._pos]
        if first.kind != "notify" or first.char not in subscribed:
            return []
        end = self._pos
        while end < len(self.events) and self.events[end].kind != "write":
            end += 1
        segment = self.events[self._pos : end]
        self._pos = end
        return segment

    def characteristics(self) -> list[str]:
        """Every characteristic the recording wrote to or heard from, in first-seen order."""
        seen: dict[str, None] = {}
        for event in self.events:
            if event.kind in ("write", "notify"):
                seen.setdefault(event.char, None)
        return list(seen)

    def deliver_at(self, event: CaptureEvent) -> None:
        """Make `event` the current one for `clock()`."""
        self._t_ns = event.t_ns

    @property
    def finished(self) -> bool:
        """True when no recorded event is left."""
        return self._pos >= len(self.events)


def _script_from(address_or_ble_device: BLEDevice | str, kwargs: dict[str, Any]) -> ReplayScript:
    script = kwargs.get("script")
    if script is None and isinstance(address_or_ble_device, BLEDevice):
        script = address_or_ble_device.details
    if not isinstance(script, ReplayScript):
        raise BleakError(
            "ReplayClient needs script=ReplayScript(...) or a device from ReplayScanner"
        )
    return script


class ReplayClient(PlaybackClient):
    """bleak client backend that plays back a capture."""

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        self.script = _script_from(address_or_ble_device, kwargs)

    @property
    def name(self) -> str:
        """Recorded device name (or the address)."""
        return self.script.name or self.address

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Build the GATT table and consume the recorded connect."""
        self.services = build_services(self.script.profile, self.script.characteristics())
        self.script.skip_connect()
        self._connected = True

    async def disconnect(self) -> None:
        """Host-initiated disconnect."""
        if self._task is not None and not self._task.done():
            await self._task
        self._connected = False

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """Match the recorded write and start delivering what the device sent after it."""
        if not self._connected:
            raise BleakError("Not connected")
        if self._task is not None and not self._task.done():
            await self._task  # keep recorded order: finish the previous segment first
        segment = self.script.match_write(characteristic.uuid, bytes(data))
        if segment:
            self.script.idle.clear()
            self._task = asyncio.get_running_loop().create_task(self._deliver(segment))

    async def _deliver(self, segment: list[CaptureEvent]) -> None:
        try:
            for event in segment:
                await asyncio.sleep(0)  # yield: let the host consume in order
                self.script.deliver_at(event)
                if event.kind == "notify":
                    callback = self._callbacks.get(event.char)
                    if callback is None:
                        log.warning("replay: notification on unsubscribed %s dropped", event.char)
                        continue
                    callback(bytearray(event.data))
                elif event.kind == "disconnect":
                    self._connected = False
                    if self._disconnected_callback is not None:
                        self._disconnected_callback()
                    break
        finally:
            self.script.idle.set()

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: Callable[[bytearray], None],
        **kwargs: Any,
    ) -> None:
        """Route recorded notifications of this characteristic to `callback`."""
        await super().start_notify(characteristic, callback, **kwargs)
        if self._task is None or self._task.done():
            segment = self.script.take_unprompted(set(self._callbacks))
            if segment:
                self.script.idle.clear()
                self._task = asyncio.get_running_loop().create_task(self._deliver(segment))


class ReplayScanner(PlaybackScanner):
    """bleak scanner backend that advertises the recorded device from a background task."""

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        script = kwargs.get("script")
        if not isinstance(script, ReplayScript):
            raise BleakError("ReplayScanner needs script=ReplayScript(...)")
        self.script = script
        self._task: asyncio.Task[None] | None = None

    async def _advertise(self) -> None:
        uuids = [normalize_uuid_str(u) for u in self.script.profile.service_uuids]
        adv = AdvertisementData(
            local_name=self.script.name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=-60,
            platform_data=(),
        )
        while True:
            if self.is_allowed_uuid(uuids):
                device = self.create_or_update_device(
                    self.script.address, self.script.address, self.script.name, self.script, adv
                )
                self.call_detection_callbacks(device, adv)
            await asyncio.sleep(ADVERTISE_EVERY_S)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay delivered to its sink."""

    n_samples: int
    n_blocks: int
    n_decode_errors: int
    gaps: list[Gap] = field(default_factory=list)
    n_notifications: int = 0
    backend_id: str = ""


async def replay_capture(
    path: str | Path, sink: Sink, *, capture_writer: CaptureWriter | None = None
) -> ReplayResult:
    """Replay a capture: scan → connect → session → stop, all through bleak's front-end."""
    capture = read_capture(path)
    script = ReplayScript(capture)
    backend_ids: list[str] = []
    watcher: list[asyncio.Task[None]] = []

    async def stop_when_drained(session: Session) -> None:
        await session.started.wait()
        while True:
            await script.idle.wait()
            await asyncio.sleep(0)
            if script.idle.is_set():
                break
        session.request_stop()

    def on_session(session: Session, client: Any) -> None:
        backend_ids.append(str(client.backend_id))
        watcher.append(asyncio.get_running_loop().create_task(stop_when_drained(session)))

    try:
        result = await collect(
            script.profile,
            capture.settings,
            sink,
            address=script.address,
            capture=capture_writer,
            backend=ReplayClient,
            scanner_backend=ReplayScanner,
            on_session=on_session,
            clock=script.clock,
            script=script,
        )
    finally:
        for task in watcher:
            task.cancel()
    return ReplayResult(
        n_samples=result.n_samples,
        n_blocks=result.n_blocks,
        n_decode_errors=result.n_decode_errors,
        gaps=result.gaps,
        n_notifications=result.n_notifications,
        backend_id=backend_ids[0] if backend_ids else "",
    )


__all__ = ["ReplayClient", "ReplayResult", "ReplayScanner", "ReplayScript", "replay_capture"]
