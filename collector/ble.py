"""Live path: scan, connect and run a session with the unmodified bleak API.

Reconnecting after drops: `collector.reconnect.run_collection`.

The backend classes are injectable (`backend=` / `scanner_backend=`; None = the platform's),
which is how replay and tests drive this same code without Bluetooth hardware.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from collector import devices
from collector.assembly import DEFAULT_MAX_SAMPLES
from collector.capture import CaptureWriter
from collector.devices.base import DeviceProfile
from collector.errors import (
    BluetoothUnavailableError,
    CollectorError,
    DeviceNotFoundError,
    ProtocolError,
)
from collector.session import Clock, EventSink, Session, SessionResult, Sink

log = logging.getLogger(__name__)

# Polar devices advertise about once a second; 15 s covers a slow wake-up from the strap.
SCAN_TIMEOUT_S = 15.0
# bleak's default connect timeout is 30 s; 20 s is enough for BlueZ service discovery.
CONNECT_TIMEOUT_S = 20.0

_UNAVAILABLE_HINTS = (
    "no bluetooth adapter",
    "not available",
    "bluez",
    "dbus",
    "org.bluez",
    "no such file",
    "adapter",
    "powered off",
)


def _translate(exc: BaseException, doing: str) -> CollectorError:
    """Map a bleak/OS error to a CollectorError subclass with a one-line message."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, FileNotFoundError | PermissionError | ConnectionRefusedError) or (
        type(exc).__module__.startswith("dbus_fast")
    ):
        # bleak on Linux talks to BlueZ over the D-Bus system bus; no socket = no BlueZ.
        return BluetoothUnavailableError(
            f"Bluetooth is not available ({doing}): no Bluetooth adapter or BlueZ service "
            f"reachable over D-Bus ({text})"
        )
    if isinstance(exc, BleakError) and any(h in text.lower() for h in _UNAVAILABLE_HINTS):
        return BluetoothUnavailableError(f"Bluetooth is not available ({doing}): {text}")
    return ProtocolError(f"BLE error while {doing}: {text}")


async def find_device(
    profile: DeviceProfile,
    *,
    name: str | None = None,
    address: str | None = None,
    timeout_s: float = SCAN_TIMEOUT_S,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **backend_kwargs: Any,
) -> BLEDevice:
    """Scan for a device of `profile` (by service UUID, optional name/address).

    Raises:
        DeviceNotFoundError: nothing matched within `timeout_s`.
        BluetoothUnavailableError: no adapter or BLE stack.
    """

    def wanted(device: BLEDevice, adv: AdvertisementData) -> bool:
        if address is not None and device.address.lower() != address.lower():
            return False
        if name is not None and (adv.local_name or device.name) != name:
            return False
        return profile.matches(adv)

    if scanner_backend is not None:
        backend_kwargs["backend"] = scanner_backend
    try:
        device = await BleakScanner.find_device_by_filter(
            wanted, timeout=timeout_s, service_uuids=list(profile.service_uuids), **backend_kwargs
        )
    except (BleakError, OSError) as exc:
        raise _translate(exc, "scanning") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("dbus_fast"):
            raise _translate(exc, "scanning") from exc
        raise
    if device is None:
        what = name or address or profile.name
        raise DeviceNotFoundError(f"no {what} device found within {timeout_s} s")
    return device


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """An advertising device that a registered profile recognises."""

    name: str | None
    address: str
    profile: str
    rssi: int | None
    device: BLEDevice


def profile_for(
    advertisement: AdvertisementData, profiles: list[DeviceProfile] | None = None
) -> DeviceProfile | None:
    """The first profile (registry order) whose `matches` accepts `advertisement`."""
    for profile in profiles if profiles is not None else list(devices.PROFILES.values()):
        if profile.matches(advertisement):
            return profile
    return None


async def scan_supported(
    timeout_s: float = SCAN_TIMEOUT_S,
    *,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **backend_kwargs: Any,
) -> list[FoundDevice]:
    """Scan for `timeout_s` and return the supported devices, strongest signal first.

    Raises:
        BluetoothUnavailableError: no adapter or BLE stack.
    """
    if scanner_backend is not None:
        backend_kwargs["backend"] = scanner_backend
    try:
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, **backend_kwargs)
    except Exception as exc:
        if isinstance(exc, BleakError | OSError) or type(exc).__module__.startswith("dbus_fast"):
            raise _translate(exc, "scanning") from exc
        raise
    found = []
    for device, adv in seen.values():
        profile = profile_for(adv)
        if profile is not None:
            name = adv.local_name or device.name
            found.append(FoundDevice(name, device.address, profile.name, adv.rssi, device))
    return sorted(found, key=lambda f: -(f.rssi if f.rssi is not None else -999))


async def find_supported_device(
    address: str | None = None,
    profile_name: str | None = None,
    *,
    timeout_s: float = SCAN_TIMEOUT_S,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **backend_kwargs: Any,
) -> tuple[BLEDevice, DeviceProfile]:
    """Find `address` (or, if None, the first supported device) and the profile that fits it.

    Raises:
        UnknownProfileError: `profile_name` is not registered.
        DeviceNotFoundError: nothing matched within `timeout_s`.
        BluetoothUnavailableError: no adapter or BLE stack.
    """
    profiles = [devices.get(profile_name)] if profile_name else list(devices.PROFILES.values())
    matched: dict[str, DeviceProfile] = {}

    def wanted(device: BLEDevice, adv: AdvertisementData) -> bool:
        if address is not None and device.address.lower() != address.lower():
            return False
        profile = profile_for(adv, profiles)
        if profile is not None:
            matched[device.address] = profile
        return profile is not None

    if scanner_backend is not None:
        backend_kwargs["backend"] = scanner_backend
    try:
        device = await BleakScanner.find_device_by_filter(
            wanted, timeout=timeout_s, **backend_kwargs
        )
    except Exception as exc:
        if isinstance(exc, BleakError | OSError) or type(exc).__module__.startswith("dbus_fast"):
            raise _translate(exc, "scanning") from exc
        raise
    if device is None:
        kinds = profile_name or "supported"
        what = f"device {address}" if address else f"{kinds} device"
        raise DeviceNotFoundError(f"no {what} found within {timeout_s} s")
    return device, matched[device.address]


async def run_session(
    device: BLEDevice | str,
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    sink: Sink,
    *,
    clock: Clock = time.time_ns,
    capture: CaptureWriter | None = None,
    backend: type[BaseBleakClient] | None = None,
    on_session: Callable[[Session, BleakClient], None] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    events: EventSink | None = None,
    **backend_kwargs: Any,
) -> SessionResult:
    """Connect to `device`, run one session until stopped or disconnected, disconnect.

    `on_session(session, client)` is called once connected, e.g. to keep a handle for
    `session.request_stop()`.

    Raises:
        BluetoothUnavailableError, ProtocolError: translated bleak errors.
    """
    holder: list[Session] = []

    def disconnected(_client: BleakClient) -> None:
        if holder:
            holder[0].on_disconnected()

    client = BleakClient(
        device,
        disconnected_callback=disconnected,
        timeout=connect_timeout_s,
        backend=backend,
        **backend_kwargs,
    )
    try:
        async with client:
            session = Session(
                client,
                profile,
                requested,
                sink=sink,
                clock=clock,
                capture=capture,
                max_samples=max_samples,
                events=events,
            )
            holder.append(session)
            if on_session is not None:
                on_session(session, client)
            return await session.run()
    except CollectorError:
        raise
    except (BleakError, OSError, TimeoutError) as exc:
        raise _translate(exc, "talking to the device") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("dbus_fast"):
            raise _translate(exc, "talking to the device") from exc
        raise


async def collect(
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    sink: Sink,
    *,
    name: str | None = None,
    address: str | None = None,
    capture: CaptureWriter | None = None,
    backend: type[BaseBleakClient] | None = None,
    scanner_backend: type[BaseBleakScanner] | None = None,
    on_session: Callable[[Session, BleakClient], None] | None = None,
    clock: Clock = time.time_ns,
    **backend_kwargs: Any,
) -> SessionResult:
    """Scan for a device of `profile`, connect and stream into `sink` until stopped."""
    device = await find_device(
        profile, name=name, address=address, scanner_backend=scanner_backend, **backend_kwargs
    )
    log.info("connecting to %s (%s)", device.name, device.address)
    return await run_session(
        device,
        profile,
        requested,
        sink,
        clock=clock,
        capture=capture,
        backend=backend,
        on_session=on_session,
        **backend_kwargs,
    )
