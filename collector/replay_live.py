"""A wearable that streams on a wall-clock timeline, reached through the unmodified bleak API.

`collector.replay` plays a capture as fast as the host consumes it. Here the wearable does
not wait for anyone: its notifications are laid on a virtual timeline that starts at an
anchor (a wall-clock instant) and runs `speed` times faster than real time. A host that
connects joins the stream at the current position; whatever the wearable sends while no
host is connected is lost, as over the air. The collector's clock is the virtual time (the
recorded receive time of the notification being delivered), so decoded UTC times match the
recording. Used by the chaos test: the collector process is killed and restarted while the
wearable keeps streaming.

The timeline may take the wearable out of range (`absent_ns` spans): the link drops at the
start of a span and the wearable neither advertises nor accepts a connection until its end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from numpy.typing import NDArray

from collector import devices
from collector.playback import PlaybackClient, PlaybackScanner, build_services
from collector.replay import ADVERTISE_EVERY_S

# The delivery task sleeps at least this long (wall clock): at 120x and 30 Hz that is ~18
# notifications per wake-up, like the bursts of a BLE connection event (timestamps are not
# affected: each notification carries its own receive time) ...
MIN_SLEEP_S = 0.005
# ... and at most this long, so a scheduled link drop is noticed on time.
MAX_SLEEP_S = 0.05


@dataclass(frozen=True, slots=True)
class Timeline:
    """What a wearable sends: payloads of one data characteristic at virtual host times."""

    profile: str
    settings: dict[str, Any]
    address: str
    name: str
    t_ns: NDArray[np.int64]  # shape (n,): virtual host receive time of each notification
    payload: NDArray[np.uint8]  # shape (n, width): fixed-size payloads
    absent_ns: NDArray[np.int64]  # shape (k, 2): [start, end) out of range
    chars: tuple[str, ...] = ()  # every characteristic the host may use (writes included)

    def save(self, path: Path) -> None:
        """Write as .npz (loads in milliseconds, for a collector restarted many times)."""
        meta = np.array(
            [self.profile, json.dumps(self.settings), self.address, self.name, *self.chars]
        )
        np.savez(path, t_ns=self.t_ns, payload=self.payload, absent_ns=self.absent_ns, meta=meta)

    @classmethod
    def load(cls, path: Path) -> Timeline:
        """Read a timeline written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            profile, settings, address, name, *chars = (str(m) for m in z["meta"])
            return cls(profile, json.loads(settings), address, name,
                       z["t_ns"], z["payload"], z["absent_ns"], tuple(chars))  # fmt: skip

    def absent_at(self, t_ns: int) -> tuple[int, int] | None:
        """The out-of-range span holding `t_ns`, if any."""
        for start, end in self.absent_ns.tolist():
            if start <= t_ns < end:
                return int(start), int(end)
        return None

    def next_absence(self, t_ns: int) -> int | None:
        """Start of the first out-of-range span after `t_ns`."""
        starts = [int(s) for s, _ in self.absent_ns.tolist() if s > t_ns]
        return min(starts) if starts else None


@dataclass(frozen=True, slots=True)
class WarpedClock:
    """Virtual time = `origin_ns` + (wall − `anchor_wall_ns`) · `speed`."""

    origin_ns: int
    anchor_wall_ns: int
    speed: float

    def now(self) -> int:
        """Current virtual time (UTC ns)."""
        return self.origin_ns + int((time.time_ns() - self.anchor_wall_ns) * self.speed)

    def wall_s_until(self, t_ns: int) -> float:
        """Wall-clock seconds until virtual time `t_ns` (negative when past)."""
        return (t_ns - self.now()) / self.speed / 1e9


class LiveWearable:
    """The wearable on its timeline; `client_backend`/`scanner_backend` are bleak backends."""

    def __init__(self, timeline: Timeline, clock: WarpedClock) -> None:
        self.timeline = timeline
        self.warp = clock
        self.profile = devices.get(timeline.profile)
        self.data_uuid = normalize_uuid_str(self.profile.data_uuid)
        self._delivering: int | None = None
        self.on_join: Callable[[int], None] | None = None  # called with the virtual join time
        bound: dict[str, Any] = {"wearable": self}
        self.client_backend = type("BoundLiveClient", (LiveClient,), bound)
        self.scanner_backend = type("BoundLiveScanner", (LiveScanner,), bound)

    def clock(self) -> int:
        """The session clock: receive time of the notification being delivered, else now."""
        return self._delivering if self._delivering is not None else self.warp.now()

    def in_range(self) -> bool:
        """False while the timeline has the wearable out of range."""
        return self.timeline.absent_at(self.warp.now()) is None

    async def stream(self, client: LiveClient, callback: Callable[[bytearray], None]) -> None:
        """Deliver from the current position on, paced by the wall clock, until the link ends."""
        tl = self.timeline
        pos = int(np.searchsorted(tl.t_ns, self.warp.now()))
        if self.on_join is not None:
            self.on_join(self.warp.now())
        drop = tl.next_absence(self.warp.now())
        while client.is_connected and pos < len(tl.t_ns):
            now = self.warp.now()
            if drop is not None and now >= drop:
                end = int(np.searchsorted(tl.t_ns, drop))
            else:
                end = int(np.searchsorted(tl.t_ns, now, side="right"))
            for i in range(pos, end):
                self._delivering = int(tl.t_ns[i])
                try:
                    callback(bytearray(tl.payload[i].tobytes()))
                finally:
                    self._delivering = None
            pos = end
            if drop is not None and now >= drop:
                client.lose_link()
                return
            if pos < len(tl.t_ns):
                wait_s = self.warp.wall_s_until(int(tl.t_ns[pos]))
                await asyncio.sleep(min(MAX_SLEEP_S, max(MIN_SLEEP_S, wait_s)))


class LiveClient(PlaybackClient):
    """bleak client backend connected to a `LiveWearable` (bound as a class attribute)."""

    wearable: ClassVar[LiveWearable]

    @property
    def name(self) -> str:
        """The wearable's name."""
        return self.wearable.timeline.name

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect when the wearable is in range."""
        if not self.wearable.in_range():
            raise BleakError(f"Device with address {self.address} was not found")
        chars = [self.wearable.data_uuid, *self.wearable.timeline.chars]
        self.services = build_services(self.wearable.profile, chars)
        self._connected = True

    def lose_link(self) -> None:
        """The wearable went out of range: the link drops."""
        self._connected = False
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Host-initiated disconnect."""
        self._connected = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """A command (the profile's start): the stream flows to the subscribed data char."""
        if not self._connected:
            raise BleakError("Not connected")
        callback = self._callbacks.get(self.wearable.data_uuid)
        if callback is not None and self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self.wearable.stream(self, callback))


class LiveScanner(PlaybackScanner):
    """bleak scanner backend: the wearable advertises while it is in range."""

    wearable: ClassVar[LiveWearable]

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._task: asyncio.Task[None] | None = None

    async def _advertise(self) -> None:
        w = self.wearable
        uuids = [normalize_uuid_str(u) for u in w.profile.service_uuids]
        adv = AdvertisementData(
            local_name=w.timeline.name, manufacturer_data={}, service_data={},
            service_uuids=uuids, tx_power=None, rssi=-60, platform_data=(),
        )  # fmt: skip
        while True:
            if w.in_range() and self.is_allowed_uuid(uuids):
                address = w.timeline.address
                device = self.create_or_update_device(address, address, w.timeline.name, {}, adv)
                self.call_detection_callbacks(device, adv)
            await asyncio.sleep(ADVERTISE_EVERY_S)


__all__ = ["LiveClient", "LiveScanner", "LiveWearable", "Timeline", "WarpedClock"]
