"""`EmulatedWearable`: base class of the bumble GATT peripherals that emulate supported devices.

Time model: the wearable owns a sample clock that ticks `frame_samples` samples at a time,
`speedup` times faster than real time, from power-on. Sample k of the device happens at device
time `k / rate_hz` s after power-on and at host UTC `utc_base_ns + k · 1e9 / rate_hz`;
`host_clock()` (pass it as the session's `clock`) returns the UTC time of the last sample of
the last data frame the central received, so receive times carry no scheduling noise. While the
link is down or the stream is stopped, ticks still pass: those samples are lost, as on a real
device, and `sent` records exactly which recording samples went out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# 2026-01-05T08:00:00Z: an arbitrary morning; tests compare against it, never against now().
DEFAULT_UTC_BASE_NS = 1_767_600_000_000_000_000
# Speed-up so a few hundred frames take well under a second of wall time.
DEFAULT_SPEEDUP = 25.0
# How long force_disconnect() waits for frames already on the link to arrive.
DRAIN_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Recording:
    """Source samples a wearable streams: `samples_g` shape (n, 3) in g at `rate_hz`."""

    samples_g: NDArray[np.float64]
    rate_hz: float

    def __post_init__(self) -> None:
        if self.samples_g.ndim != 2 or self.samples_g.shape[1] != 3:
            raise ValueError(f"samples_g must have shape (n, 3), got {self.samples_g.shape}")
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")


@dataclass(frozen=True, slots=True)
class SentRange:
    """Recording samples [start, stop) sent on connection number `connection` (1-based)."""

    connection: int
    start: int
    stop: int


class EmulatedWearable:
    """Base of an emulated BLE wearable; subclasses define GATT, commands and frame encoding.

    Subclass contract:
      - `build_services()` returns the bumble `Service`s (use `command_value()` for writable
        command characteristics so writes reach `on_command`, in order);
      - `on_command(char_uuid, data)` answers commands (`notify` / `indicate`) and calls
        `start_streaming()` / `stop_streaming()`;
      - `encode_frame(first_k, samples_g)` returns the bytes of one data notification for the
        device samples starting at device sample index `first_k`;
      - set `data_characteristic` to the bumble Characteristic carrying the frames.
    """

    service_uuids: tuple[str, ...] = ()
    rssi: int = -55

    def __init__(
        self,
        *,
        name: str,
        address: str,
        recording: Recording,
        speedup: float = DEFAULT_SPEEDUP,
        frame_samples: int = 10,
        utc_base_ns: int = DEFAULT_UTC_BASE_NS,
    ) -> None:
        self.name = name
        self.address = address.upper()
        self.recording = recording
        self.rate_hz = recording.rate_hz
        self.speedup = speedup
        self.frame_samples = frame_samples
        self.utc_base_ns = utc_base_ns
        self.device: Device | None = None
        self.connection: Connection | None = None
        self.data_characteristic: Characteristic[Any] | None = None
        self.n_connections = 0
        self.streaming = False
        self.sent: list[SentRange] = []
        self.commands: list[tuple[str, bytes]] = []
        self.exhausted = asyncio.Event()  # the whole recording has been played
        # Recording samples [start, stop) lost inside a connection: frames wholly in it are
        # never notified (the device's radio dropped them) while its clock runs on.
        self.lose: tuple[int, int] | None = None
        self.button_characteristic: Characteristic[Any] | None = None  # set by devices with one
        self.button_notified: list[bytes] = []  # button notifications sent to the host
        self._now_k = 0  # device samples that have happened since power-on
        self._origin_k: int | None = None  # device sample of recording sample 0
        self._cursor = 0  # next recording sample
        self._host_k = 0  # device sample whose time host_clock() returns
        self._in_flight: deque[int] = deque()  # last device sample of each sent data frame
        self._commands: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._progress = asyncio.Condition()

    # --- identity -----------------------------------------------------------------------------
    @property
    def device_address(self) -> Address:
        """The bumble address the central connects to."""
        assert self.device is not None
        return self.device.random_address

    def advertising_data(self) -> bytes:
        """Flags, complete local name, 128-bit service UUIDs, manufacturer data."""
        items: list[tuple[int, bytes]] = [
            (AdvertisingData.Type.FLAGS, bytes([0x06])),
            (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.name.encode()),
        ]
        if self.service_uuids:
            items.append(
                (
                    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                    b"".join(bytes(UUID(u).to_bytes()) for u in self.service_uuids),
                )
            )
        for company, payload in self.manufacturer_data().items():
            items.append(
                (
                    AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA,
                    company.to_bytes(2, "little") + payload,
                )
            )
        return bytes(AdvertisingData(items))

    def manufacturer_data(self) -> dict[int, bytes]:
        """Manufacturer-specific advertisement data (company id -> bytes); none by default."""
        return {}

    # --- subclass hooks -----------------------------------------------------------------------
    def build_services(self) -> list[Service]:
        """The GATT services of this device."""
        raise NotImplementedError

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """Handle a write to a command characteristic."""
        raise NotImplementedError

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One data notification for device samples first_k.. (samples in g, shape (n, 3))."""
        raise NotImplementedError

    def on_link_down(self) -> None:
        """Called when the link drops; by default the stream stops (as Polar and most do)."""
        self.streaming = False

    # --- GATT helpers -------------------------------------------------------------------------
    def command_value(
        self, char_uuid: str, read: Callable[[Connection], bytes] | None = None
    ) -> CharacteristicValue[bytes]:
        """A characteristic value whose writes are queued to `on_command` in order."""

        def write(_connection: Connection, value: bytes) -> None:
            self._commands.put_nowait((char_uuid.lower(), bytes(value)))

        return CharacteristicValue(read=read, write=write)

    async def notify(self, characteristic: Characteristic[Any], payload: bytes) -> None:
        """Notify all subscribers (cut to MTU − 3 by bumble, as real stacks do)."""
        assert self.device is not None
        await self.device.notify_subscribers(characteristic, payload)

    def button_payload(self, state: int) -> bytes | None:
        """The button notification for `state` (0 released, 1 pressed, 2 held); None: none."""
        return None

    async def set_button(self, state: int) -> None:
        """Press (1), hold (2) or release (0) the button; notified when the host listens."""
        payload = self.button_payload(state)
        if payload is None or self.button_characteristic is None or self.connection is None:
            return
        self.button_notified.append(payload)
        if self.button_characteristic is self.data_characteristic:
            # on_frame_received pops one entry per notification of the data handle (MetaWear):
            # this one is received after the frames in flight, at the last one's time
            self._in_flight.append(self._in_flight[-1] if self._in_flight else self._now_k - 1)
        await self.notify(self.button_characteristic, payload)

    async def indicate(self, characteristic: Characteristic[Any], payload: bytes) -> None:
        """Indicate to all subscribers and wait for the confirmation."""
        assert self.device is not None
        await self.device.indicate_subscribers(characteristic, payload)

    # --- lifecycle ----------------------------------------------------------------------------
    def attach(self, device: Device) -> None:
        """Called by `EmulatedRadio.add`: start the sample clock and the command worker."""
        self.device = device
        device.on(device.EVENT_CONNECTION, self._on_connection)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._clock()), loop.create_task(self._command_worker())]

    async def close(self) -> None:
        """Stop the clock and the command worker."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.n_connections += 1
        self._in_flight.clear()
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._connected.set()

    def _on_disconnection(self, _reason: int) -> None:
        self.connection = None
        self._connected.clear()
        self._in_flight.clear()
        self.on_link_down()

    async def wait_connected(self, timeout_s: float = 5.0) -> None:
        """Wait until a central is connected."""
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def force_disconnect(self) -> None:
        """Drop the link from the peripheral side once the frames already sent have arrived."""
        self.streaming = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_S
        while self._in_flight and loop.time() < deadline:
            await asyncio.sleep(0.001)
        if self.connection is not None:
            await self.connection.disconnect()

    async def _command_worker(self) -> None:
        while True:
            char_uuid, data = await self._commands.get()
            self.commands.append((char_uuid, data))
            try:
                await self.on_command(char_uuid, data)
            except Exception:  # an emulator bug must show in the log, not kill the worker
                log.exception(
                    "emulator %s: command %s on %s failed", self.name, data.hex(), char_uuid
                )

    # --- time and streaming -------------------------------------------------------------------
    def device_time_ns(self, k: int) -> int:
        """Device time of device sample `k`, ns since power-on."""
        return round(k * 1e9 / self.rate_hz)

    def host_clock(self) -> int:
        """Host UTC ns: the time of the last sample of the last frame received (see module doc)."""
        return self.utc_base_ns + self.device_time_ns(self._host_k)

    def on_frame_received(self, handle: int) -> None:
        """Called by the harness client when a notification of `handle` reaches the central."""
        if (
            self.data_characteristic is not None
            and handle == self.data_characteristic.handle
            and self._in_flight
        ):
            self._host_k = self._in_flight.popleft()

    def start_streaming(self) -> None:
        """Start (or resume) streaming: the recording continues where time has brought it."""
        if self._origin_k is None:
            self._origin_k = self._now_k
        self.streaming = True

    def stop_streaming(self) -> None:
        """Stop streaming (samples keep being lost until the next start)."""
        self.streaming = False

    @property
    def n_sent(self) -> int:
        """Recording samples sent so far."""
        return sum(r.stop - r.start for r in self.sent)

    async def wait_sent(self, n_samples: int, timeout_s: float = 10.0) -> None:
        """Wait until at least `n_samples` recording samples have been sent."""
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(
                    lambda: self.n_sent >= n_samples or self.exhausted.is_set()
                ),
                timeout_s,
            )

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        step_s = self.frame_samples / self.rate_hz / self.speedup
        step = 0
        while True:
            step += 1
            await asyncio.sleep(max(0.0, start + step * step_s - loop.time()))
            self._now_k = step * self.frame_samples
            if not self._in_flight:
                self._host_k = self._now_k - 1
            await self._tick()

    async def _tick(self) -> None:
        if self._origin_k is None:
            return
        n = len(self.recording.samples_g)
        lo, hi = self._cursor, min(self._now_k - self._origin_k, n)
        self._cursor = hi
        lost = self.lose is not None and self.lose[0] <= lo and hi <= self.lose[1]
        if hi > lo and self.streaming and self.connection is not None and not lost:
            await self._send(lo, hi)
        if hi >= n:
            self.exhausted.set()
        async with self._progress:
            self._progress.notify_all()

    async def _send(self, lo: int, hi: int) -> None:
        assert self.data_characteristic is not None and self._origin_k is not None
        first_k = self._origin_k + lo
        payload = self.encode_frame(first_k, self.recording.samples_g[lo:hi])
        self._in_flight.append(first_k + (hi - lo) - 1)
        if (
            self.sent
            and self.sent[-1].connection == self.n_connections
            and self.sent[-1].stop == lo
        ):
            self.sent[-1] = SentRange(self.n_connections, self.sent[-1].start, hi)
        else:
            self.sent.append(SentRange(self.n_connections, lo, hi))
        await self.notify(self.data_characteristic, payload)


__all__ = ["DEFAULT_SPEEDUP", "DEFAULT_UTC_BASE_NS", "EmulatedWearable", "Recording", "SentRange"]
