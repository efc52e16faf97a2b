"""Live path: scan, connect and run sessions with the unmodified bleak API; reconnect after drops.

The backend classes are injectable (`backend=` / `scanner_backend=`; None = the platform's),
which is how replay and tests drive this same code without Bluetooth hardware.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from collector.assembly import DEFAULT_MAX_SAMPLES, Gap
from collector.capture import CaptureWriter
from collector.devices.base import DeviceProfile
from collector.errors import (
    BluetoothUnavailableError,
    CollectorError,
    DeviceNotFoundError,
    ProtocolError,
)
from collector.reconnect import Backoff, LinkLog, LinkState
from collector.session import Clock, Session, SessionResult, Sink

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
        return BluetoothUnavailableError(f"Bluetooth is not available ({doing}): {text}")
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


class CollectionControl:
    """Handle on a running `run_collection`: `request_stop()` ends it from anywhere."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self._stop = asyncio.Event()

    @property
    def stop_requested(self) -> bool:
        """True once `request_stop()` was called."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop the current session (stop command, flush) and do not reconnect."""
        self._stop.set()
        if self.session is not None:
            self.session.request_stop()

    async def sleep(self, delay_s: float) -> None:
        """Sleep `delay_s`, or less if a stop is requested meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), delay_s)
        except TimeoutError:
            pass


@dataclass(slots=True)
class CollectionResult:
    """What a collection with reconnects did: one SessionResult per connection."""

    sessions: list[SessionResult] = field(default_factory=list)
    link_gaps: list[Gap] = field(default_factory=list)  # last sample before a drop -> first after
    stopped_by: str = ""  # "request" | "device" | "gave up"

    @property
    def n_samples(self) -> int:
        """Samples delivered over all connections."""
        return sum(s.n_samples for s in self.sessions)

    @property
    def n_blocks(self) -> int:
        """Blocks delivered over all connections."""
        return sum(s.n_blocks for s in self.sessions)

    @property
    def n_decode_errors(self) -> int:
        """Undecodable notifications over all connections."""
        return sum(s.n_decode_errors for s in self.sessions)

    @property
    def n_notifications(self) -> int:
        """Data notifications over all connections."""
        return sum(s.n_notifications for s in self.sessions)


def _link_gaps(sessions: list[SessionResult]) -> list[Gap]:
    """Gap (predicted next sample time, missing time) across each drop with samples on both sides."""
    gaps: list[Gap] = []
    last: SessionResult | None = None
    for s in sessions:
        if s.first_sample_ns is None or s.end_ns is None:
            continue
        if last is not None and last.end_ns is not None:
            gaps.append(Gap(last.end_ns, s.first_sample_ns - last.end_ns))
        last = s
    return gaps


async def run_collection(
    device: BLEDevice | str,
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    sink: Sink,
    *,
    backoff: Backoff | None = None,
    control: CollectionControl | None = None,
    clock: Clock = time.time_ns,
    capture: CaptureWriter | None = None,
    backend: type[BaseBleakClient] | None = None,
    on_session: Callable[[Session, BleakClient], None] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    rng: random.Random | None = None,
    link_log: LinkLog | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    **backend_kwargs: Any,
) -> CollectionResult:
    """Stream from `device` until stopped; after an unsolicited drop reconnect with backoff.

    Each connection subscribes, negotiates and starts again, with a fresh decoder (new clock
    anchor) and its own blocks; the time lost between connections is in `link_gaps`.

    Raises:
        BluetoothUnavailableError: no adapter or BLE stack (never retried).
        ProtocolError: the device refused a command, or no connection ever succeeded and
            the backoff gave up.
    """
    backoff = backoff or Backoff()
    control = control or CollectionControl()
    rng = rng or random.Random()
    address = device.address if isinstance(device, BLEDevice) else device
    link = link_log or LinkLog(name=address)
    result = CollectionResult()
    attempt = 0  # failed attempts since the last connection that streamed
    while not control.stop_requested:
        link.set(LinkState.CONNECTING, f"attempt {attempt + 1}" if attempt else "")
        current: list[Session] = []
        watchers: list[asyncio.Task[None]] = []

        def connected(
            session: Session,
            client: BleakClient,
            current: list[Session] = current,
            watchers: list[asyncio.Task[None]] = watchers,
        ) -> None:
            current.append(session)
            control.session = session
            link.set(LinkState.CONNECTED, f"MTU {client.mtu_size}")
            watchers.append(asyncio.get_running_loop().create_task(_log_streaming(session, link)))
            if control.stop_requested:
                session.request_stop()
            if on_session is not None:
                on_session(session, client)

        failure: ProtocolError | None = None
        try:
            session_result = await run_session(
                device,
                profile,
                requested,
                sink,
                clock=clock,
                capture=capture,
                backend=backend,
                on_session=connected,
                max_samples=max_samples,
                connect_timeout_s=connect_timeout_s,
                **backend_kwargs,
            )
        except BluetoothUnavailableError as exc:
            link.set(LinkState.GAVE_UP, str(exc))
            raise
        except ProtocolError as exc:
            if current and not current[0].link_lost:  # connected, and the device said no
                link.set(LinkState.GAVE_UP, str(exc))
                raise
            failure = exc
            link.set(LinkState.LINK_LOST, str(exc))
        else:
            result.sessions.append(session_result)
            if session_result.stopped_by != "disconnect":
                result.stopped_by = session_result.stopped_by
                break
            attempt = 0 if session_result.n_notifications else attempt
            link.set(LinkState.LINK_LOST, f"after {session_result.n_samples} samples")
        finally:
            control.session = None
            for task in watchers:
                task.cancel()
        attempt += 1
        if backoff.gives_up(attempt):
            link.set(LinkState.GAVE_UP, f"after {attempt - 1} reconnect attempts")
            if failure is not None and not result.sessions:
                raise failure
            result.stopped_by = "gave up"
            break
        delay_s = backoff.delay_s(attempt, rng)
        link.set(LinkState.RETRYING, f"retrying in {delay_s:.1f} s")
        await control.sleep(delay_s)
    if not result.stopped_by:
        result.stopped_by = "request"
    if result.stopped_by != "gave up":
        link.set(LinkState.STOPPED, result.stopped_by)
    result.link_gaps = _link_gaps(result.sessions)
    return result


async def _log_streaming(session: Session, link: LinkLog) -> None:
    await session.started.wait()
    rate = session.settings.get("sample_rate_hz") if session.settings else None
    link.set(LinkState.STREAMING, f"{rate} Hz" if rate else "")
