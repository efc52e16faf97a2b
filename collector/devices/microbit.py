"""BBC micro:bit Accelerometer Service (Lancaster runtime, v1 and v2): one sample per notification.

Wire format: ../shared/docs/ble-protocols.md §3 (lancaster-university/microbit-dal,
codal-microbit-v2 `MicroBitAccelerometerService.cpp`). Data: x, y, z as int16 LE milli-g (signed,
although the source declares `uint16_t[3]`). Period: uint16 LE ms; the device picks the nearest
supported period and writes the actual value back. No device timestamp: samples are timed by
`collector.timing.SampleClock` at 1000 / period Hz.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.errors import DecodeError, ProtocolError
from collector.timing import SampleClock

log = logging.getLogger(__name__)

# The optional Button Service (docs/collector.md, "Buttons"; lancaster-university/microbit-dal
# source/bluetooth/MicroBitButtonService.cpp): Button A state, one byte, read/notify; 0 released
# (MICROBIT_BUTTON_EVT_UP), 1 pressed (EVT_DOWN), 2 long press (EVT_HOLD, after a 1).
BUTTON_SERVICE_UUID = "e95d9882-251d-470a-a062-fa1922dfa9a8"
BUTTON_A_UUID = "e95dda90-251d-470a-a062-fa1922dfa9a8"

SERVICE_UUID = "e95d0753-251d-470a-a062-fa1922dfa9a8"
DATA_UUID = "e95dca4b-251d-470a-a062-fa1922dfa9a8"
PERIOD_UUID = "e95dfb24-251d-470a-a062-fa1922dfa9a8"

# Periods the profile lists as valid (ms, §3); the device snaps a write to the nearest.
VALID_PERIODS_MS = (1, 2, 5, 10, 20, 80, 160, 640)
DEFAULT_PERIOD_MS = 20  # the runtime's default: 50 Hz
PAYLOAD_BYTES = 6
MG_PER_G = 1000.0


def nearest_period_ms(period_ms: float) -> int:
    """The supported period nearest `period_ms` (ties: the longer), as the device picks it."""
    return min(VALID_PERIODS_MS, key=lambda p: (abs(p - period_ms), -p))


def period_command(period_ms: int) -> bytes:
    """Value written to the period characteristic: uint16 LE ms."""
    if not 0 < period_ms < 65536:
        raise ValueError(f"period_ms must be 1..65535, got {period_ms!r}")
    return int(period_ms).to_bytes(2, "little")


def parse_period(value: bytes) -> int:
    """Parse the period characteristic value (uint16 LE ms); ProtocolError if malformed."""
    if len(value) != 2 or not int.from_bytes(value, "little"):
        raise ProtocolError(f"micro:bit accelerometer period must be 2 bytes > 0: {value.hex()}")
    return int.from_bytes(value, "little")


def encode_sample(mg: NDArray[np.integer[Any]] | tuple[int, int, int]) -> bytes:
    """Encode one sample of int16 milli-g (x, y, z) as a data notification."""
    values = np.asarray(mg)
    if values.shape != (3,):
        raise ValueError(f"one sample of 3 values expected, got shape {values.shape}")
    return values.astype("<i2").tobytes()


def g_to_mg(accel_g: NDArray[np.floating[Any]]) -> NDArray[np.int16]:
    """Round g to the int16 milli-g the runtime sends (clipped to int16)."""
    mg = np.rint(np.asarray(accel_g, dtype=np.float64) * MG_PER_G)
    return np.clip(mg, -32768, 32767).astype(np.int16)


class MicrobitDecoder:
    """Decoder of one connection: 6-byte notifications, timed at 1000 / `period_ms` Hz."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        period_ms = settings.get("period_ms")
        if not period_ms and settings.get("sample_rate_hz"):
            period_ms = 1000.0 / float(settings["sample_rate_hz"])
        self.period_ms = float(period_ms or DEFAULT_PERIOD_MS)
        if not self.period_ms > 0:
            raise ValueError(f"period_ms must be positive, got {self.period_ms!r}")
        self.clock = SampleClock(1000.0 / self.period_ms)

    @staticmethod
    def parse(payload: bytes) -> NDArray[np.float32]:
        """One notification -> accel in g, shape (1, 3); DecodeError unless exactly 6 bytes."""
        if len(payload) != PAYLOAD_BYTES:
            raise DecodeError(f"micro:bit accelerometer data must be 6 bytes, got {len(payload)}")
        mg = np.frombuffer(payload, "<i2", 3).reshape(1, 3)
        return (mg / MG_PER_G).astype(np.float32)

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one notification received at host UTC `received_ns`."""
        payload = bytes(payload)
        accel_g = self.parse(payload)
        timing = self.clock.push(1, received_ns, payload)
        if timing is None:
            return []
        return [SampleBlock(timing.t0_ns, timing.fs_hz, accel_g)]


class MicrobitProfile:
    """BBC micro:bit running a program that starts the Accelerometer Service."""

    name: str = "microbit"
    service_uuids: tuple[str, ...] = (SERVICE_UUID,)
    control_uuids: tuple[str, ...] = ()
    data_uuid: str = DATA_UUID
    button_uuid: str = BUTTON_A_UUID

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for the accelerometer service UUID or a "BBC micro:bit" name."""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        name = advertisement.local_name or ""
        return SERVICE_UUID in uuids or name.startswith("BBC micro:bit")

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Write the period (`period_ms`, or 1000 / `sample_rate_hz`; default 20 ms), read it back.

        Subscribing to the data characteristic (done by the session) starts the stream. The
        actual period is read back when the link can read (`read(char_uuid)`); otherwise the
        device's rule (nearest listed period) is applied here.
        """
        requested = settings.get("period_ms")
        if not requested and settings.get("sample_rate_hz"):
            requested = 1000.0 / float(settings["sample_rate_hz"])
        period_ms = nearest_period_ms(float(requested or DEFAULT_PERIOD_MS))
        await client.write(PERIOD_UUID, period_command(period_ms))
        read = getattr(client, "read", None)
        if read is not None:
            actual = parse_period(bytes(await read(PERIOD_UUID)))
            if actual != period_ms:
                log.info("micro:bit chose a %d ms period (asked %d ms)", actual, period_ms)
            period_ms = actual
        return {"period_ms": period_ms, "sample_rate_hz": 1000.0 / period_ms}

    async def stop(self, client: ControlLink) -> None:
        """Nothing to write: the service streams while subscribed; unsubscribing ends it."""

    async def start_button(self, client: ControlLink) -> None:
        """Nothing to write: Button A notifies once subscribed (when the program has the service)."""

    def button_state(self, payload: bytes) -> int | None:
        """0 released, 1 pressed, 2 long press; None for a malformed value."""
        return payload[0] if len(payload) == 1 and payload[0] <= 2 else None

    def decoder(self, settings: Mapping[str, Any]) -> MicrobitDecoder:
        """Return a fresh decoder for one connection."""
        return MicrobitDecoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """The service has no control notifications."""
        return False


PROFILE = MicrobitProfile()

__all__ = [
    "BUTTON_A_UUID",
    "BUTTON_SERVICE_UUID",
    "DATA_UUID",
    "PERIOD_UUID",
    "PROFILE",
    "SERVICE_UUID",
    "VALID_PERIODS_MS",
    "MicrobitDecoder",
    "MicrobitProfile",
    "encode_sample",
    "g_to_mg",
    "nearest_period_ms",
    "parse_period",
    "period_command",
]
