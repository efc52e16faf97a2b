"""Device profile and frame decoder protocols (contract, see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from bleak.backends.scanner import AdvertisementData

from analysis.samples import SampleBlock


@runtime_checkable
class FrameDecoder(Protocol):
    """Turns one data notification into sample blocks; pure (no I/O), may keep per-stream state."""

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one notification received at host UTC `received_ns`; raise DecodeError if bad."""
        ...


class ControlLink(Protocol):
    """What a profile needs from a connection to run its command exchange.

    The session implements it on top of a connected `bleak.BleakClient`, recording every
    write and every control notification into the capture.
    """

    async def write(self, char_uuid: str, data: bytes) -> None:
        """Write `data` (with response) to characteristic `char_uuid`."""
        ...

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        """Return the next notification/indication of control characteristic `char_uuid`."""
        ...


@runtime_checkable
class DeviceProfile(Protocol):
    """One wearable family: GATT UUIDs, command exchange and decoder factory."""

    name: str
    service_uuids: tuple[str, ...]
    control_uuids: tuple[str, ...]  # characteristics the session subscribes for responses
    data_uuid: str  # characteristic carrying the sample notifications

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True when an advertisement belongs to this kind of device."""
        ...

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Start streaming with the requested settings; return the negotiated settings."""
        ...

    async def stop(self, client: ControlLink) -> None:
        """Stop streaming."""
        ...

    def decoder(self, settings: Mapping[str, Any]) -> FrameDecoder:
        """Return a fresh decoder for one connection with negotiated `settings`."""
        ...

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """Return True when a control notification says the device stopped streaming."""
        ...
