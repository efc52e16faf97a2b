"""bleak backends over an in-process bumble central on a `LocalLink` (ble-testing.md §2–3).

`EmulatedRadio` owns the link, one bumble central and the emulated wearables. Its
`client_backend` / `scanner_backend` are `BaseBleakClient` / `BaseBleakScanner` subclasses bound
to it, passed as `backend=` so the unmodified `bleak.BleakClient` / `BleakScanner` drive them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Self

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from tests.collector.emulation.wearable import EmulatedWearable

log = logging.getLogger(__name__)

# What BlueZ/CoreBluetooth negotiate with a Polar device (ble-testing.md §2: bumble starts at 23).
DEFAULT_MTU = 247
# The ATT default: no MTU exchange, notifications are cut to 20 bytes.
ATT_DEFAULT_MTU = 23
CENTRAL_ADDRESS = "C0:11:EC:70:12:00"
# The fastest legal advertising interval (Core spec: 20 ms), so scans and reconnects are quick.
ADVERTISING_INTERVAL_MS = 20.0
# Enough for the few HCI round trips of a disconnect on the in-process link.
SETTLE_S = 0.05
# A typical RSSI at arm's length; the LocalLink reports none.
EMULATED_RSSI = -55

_PROPS = [
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
]
_UUID_TYPES = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def _make_device(name: str, address: str, link: LocalLink) -> Device:
    controller = Controller(name, link=link, public_address=address)
    return Device(
        name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller))
    )


def bleak_uuid(uuid: UUID) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


class EmulatedRadio:
    """A LocalLink with one bumble central (the collector's adapter) and emulated wearables."""

    def __init__(self, *, mtu: int = DEFAULT_MTU) -> None:
        self.mtu = mtu  # requested by the client backend after connecting (23: no exchange)
        self.link: LocalLink | None = None
        self.central: Device | None = None
        self.wearables: dict[str, EmulatedWearable] = {}
        self.n_connects = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Create the link and power on the central."""
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.central = _make_device("otmon-collector", CENTRAL_ADDRESS, self.link)
        await self.central.power_on()

    async def add(self, wearable: EmulatedWearable) -> EmulatedWearable:
        """Put `wearable` on the link: GATT table, power on, advertise (restarts after a drop)."""
        assert self.link is not None, "start() the radio first"
        device = _make_device(wearable.name, wearable.address, self.link)
        device.add_services(wearable.build_services())
        await device.power_on()
        wearable.attach(device)
        await device.start_advertising(
            advertising_data=wearable.advertising_data(),
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        self.wearables[wearable.address.upper()] = wearable
        return wearable

    async def close(self) -> None:
        """Stop every wearable's tasks and drop any link still up."""
        for wearable in self.wearables.values():
            await wearable.close()
            if wearable.device is not None:
                await wearable.device.stop_advertising()  # no auto-restart after the drop below
            if wearable.connection is not None:
                await wearable.connection.disconnect()
        # No power_off(): in bumble 0.0.236 it races pending HCI responses on the LocalLink.
        # Let the HCI exchanges of the drops settle, or their futures die with the loop.
        await asyncio.sleep(SETTLE_S)

    @property
    def client_backend(self) -> type[BaseBleakClient]:
        """A `BumbleBleakClient` subclass bound to this radio (for `BleakClient(backend=...)`)."""
        return type("BumbleBleakClient", (BumbleBleakClient,), {"radio": self})

    @property
    def scanner_backend(self) -> type[BaseBleakScanner]:
        """A `BumbleBleakScanner` subclass bound to this radio (for `BleakScanner(backend=...)`)."""
        return type("BumbleBleakScanner", (BumbleBleakScanner,), {"radio": self})


def _bleak_properties(props: int) -> list[Any]:
    return [name for flag, name in _PROPS if props & flag]


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend: connect/discover/read/write/subscribe through the bumble central."""

    radio: EmulatedRadio  # set by EmulatedRadio.client_backend

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.get("disconnected_callback"),
            timeout=kwargs.get("timeout", 10.0),
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._name: str | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}
        self._wearable: EmulatedWearable | None = None

    @property
    def name(self) -> str:
        """The emulated wearable's name."""
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        """ATT MTU of the current connection."""
        return self._connection.att_mtu if self._connection is not None else ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        """True while the bumble connection is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU, discover everything and build bleak's service collection."""
        wearable = self.radio.wearables.get(self.address.upper())
        if wearable is None or self.radio.central is None:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found"
            )
        try:
            connection = await asyncio.wait_for(
                self.radio.central.connect(wearable.device_address), self._timeout
            )
        except TimeoutError:
            raise BleakError(f"connecting to {self.address} timed out") from None
        self._connection = connection
        self._wearable = wearable
        self._name = wearable.name
        self.radio.n_connects += 1
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        if self.radio.mtu > ATT_DEFAULT_MTU:
            await peer.request_mtu(self.radio.mtu)
        await peer.discover_all()  # type: ignore[no-untyped-call]
        self.services = self._collection(peer)

    def _collection(self, peer: Peer) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        for sp in peer.services:
            service = BleakGATTService(sp, sp.handle, bleak_uuid(sp.uuid))
            coll.add_service(service)
            for cp in sp.characteristics:
                ch = BleakGATTCharacteristic(
                    cp,
                    cp.handle,
                    bleak_uuid(cp.uuid),
                    _bleak_properties(int(cp.properties)),
                    lambda: self.mtu_size - 3,
                    service,
                )
                coll.add_characteristic(ch)
                for dp in cp.descriptors:
                    coll.add_descriptor(BleakGATTDescriptor(dp, dp.handle, bleak_uuid(dp.type), ch))
        return coll

    def _on_disconnection(self, reason: int) -> None:
        log.debug("central: link to %s down (reason %s)", self.address, reason)
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    def _require(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def disconnect(self) -> None:
        """Host-initiated disconnect (bleak then calls the disconnected callback, as BlueZ does)."""
        if self._connection is not None:
            await self._connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Emulated wearables need no pairing."""

    async def unpair(self) -> None:
        """Emulated wearables need no pairing."""

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT read of a characteristic value."""
        return bytearray(await self._require().read_value(characteristic.obj))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """ATT read of a descriptor value."""
        return bytearray(await self._require().read_value(descriptor.obj))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """ATT write (request or command)."""
        await self._require().write_value(characteristic.obj, bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """ATT write of a descriptor."""
        await self._require().write_value(descriptor.obj, bytes(data), with_response=True)

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: Callable[[bytearray], None],
        **kwargs: Any,
    ) -> None:
        """Write the CCCD (notify if offered, else indicate) and route values to `callback`."""

        wearable, handle = self._wearable, characteristic.handle

        def deliver(value: bytes) -> None:
            if wearable is not None:
                wearable.on_frame_received(handle)
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = deliver
        await self._require().subscribe(characteristic.obj, deliver, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Clear the CCCD."""
        deliver = self._subscriptions.pop(characteristic.handle, None)
        await self._require().unsubscribe(characteristic.obj, deliver)


class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend: bumble scanning on the LocalLink (advertisements repeat by themselves)."""

    radio: EmulatedRadio  # set by EmulatedRadio.scanner_backend

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._scanning = False

    async def start(self) -> None:
        """Start scanning; advertisements arrive from the link after start() returns."""
        central = self.radio.central
        assert central is not None, "start() the radio first"
        self.seen_devices = {}
        central.on(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        await central.start_scanning(filter_duplicates=False)
        self._scanning = True

    async def stop(self) -> None:
        """Stop scanning."""
        central = self.radio.central
        if central is None or not self._scanning:
            return
        central.remove_listener(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        await central.stop_scanning()
        self._scanning = False

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        uuids: list[str] = []
        for kind in _UUID_TYPES:
            for group in data.get_all(kind):
                uuids += [bleak_uuid(u) for u in group]  # type: ignore[union-attr,arg-type]
        name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.Type.SHORTENED_LOCAL_NAME
        )
        manufacturer: dict[int, bytes] = {}
        for company, payload in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA):
            manufacturer[int(company)] = bytes(payload)
        if not self.is_allowed_uuid(uuids):
            return
        address = str(advertisement.address).split("/")[0].upper()
        wearable = self.radio.wearables.get(address)
        adv = AdvertisementData(
            local_name=str(name) if name else None,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=wearable.rssi if wearable is not None else EMULATED_RSSI,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, adv.local_name, advertisement, adv)
        self.call_detection_callbacks(device, adv)


__all__ = [
    "ATT_DEFAULT_MTU",
    "DEFAULT_MTU",
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "EmulatedRadio",
    "bleak_uuid",
]
