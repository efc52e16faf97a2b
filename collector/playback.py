"""What the recorded and the live playback backends of bleak share: the GATT table built from a
device profile, and a client base with a fixed MTU, no reads, no pairing, and notifications
routed by characteristic to the subscribed callback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.uuids import normalize_uuid_str

from collector.devices.base import DeviceProfile

# The MTU a Polar device negotiates with the SDK (ConnectionHandler POLAR_PREFERRED_MTU).
REPLAY_MTU = 512
CCCD_UUID = normalize_uuid_str("2902")


def build_services(
    profile: DeviceProfile, recorded_chars: list[str] | None = None
) -> BleakGATTServiceCollection:
    """GATT table from the profile (control points read/write/indicate, data notify) plus every
    other characteristic the recording used (write-only command characteristics, for example)."""
    coll = BleakGATTServiceCollection()
    handle = 1
    service = BleakGATTService(None, handle, normalize_uuid_str(profile.service_uuids[0]))
    coll.add_service(service)
    chars: list[tuple[str, list[Any]]] = [
        (normalize_uuid_str(u), ["read", "write", "indicate"]) for u in profile.control_uuids
    ]
    chars.append((normalize_uuid_str(profile.data_uuid), ["notify"]))
    known = {uuid for uuid, _ in chars}
    for uuid in recorded_chars or []:
        uuid = normalize_uuid_str(uuid)
        if uuid not in known:
            known.add(uuid)
            chars.append((uuid, ["read", "write", "write-without-response", "notify"]))
    for uuid, props in chars:
        handle += 1
        ch = BleakGATTCharacteristic(
            None, handle, normalize_uuid_str(uuid), props, lambda: REPLAY_MTU - 3, service
        )
        coll.add_characteristic(ch)
        handle += 1
        coll.add_descriptor(BleakGATTDescriptor(None, handle, CCCD_UUID, ch))
    return coll


class PlaybackClient(BaseBleakClient):
    """What the recorded and the live playback backends share: a fixed MTU, no reads, no
    pairing, notifications routed by characteristic to the subscribed callback."""

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.get("disconnected_callback"),
            timeout=kwargs.get("timeout", 10.0),
        )
        self._connected = False
        self._callbacks: dict[str, Callable[[bytearray], None]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def mtu_size(self) -> int:
        """Negotiated MTU (Polar's preferred one)."""
        return REPLAY_MTU

    @property
    def is_connected(self) -> bool:
        """True between connect() and a disconnect (either side)."""
        return self._connected

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to pair."""

    async def unpair(self) -> None:
        """Nothing to unpair."""

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Reads are not recorded; return empty bytes."""
        return bytearray()

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Reads are not recorded; return empty bytes."""
        return bytearray()

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """Descriptor writes are accepted and ignored."""

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: Callable[[bytearray], None],
        **kwargs: Any,
    ) -> None:
        """Route notifications of this characteristic to `callback`."""
        self._callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Stop routing notifications of this characteristic."""
        self._callbacks.pop(characteristic.uuid, None)


class PlaybackScanner(BaseBleakScanner):
    """Scanner side: advertisements come from a task (`_advertise`), because bleak's
    find_device_* registers its callback only after start() returns."""

    _task: asyncio.Task[None] | None = None

    async def _advertise(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Start advertising from a task."""
        self.seen_devices = {}
        self._task = asyncio.get_running_loop().create_task(self._advertise())

    async def stop(self) -> None:
        """Stop advertising."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
