"""Nordic Thingy:52 Motion Service (TMS): raw accelerometer notifications.

Wire format: ../shared/docs/ble-protocols.md §5 (Nordic-Thingy52-FW@6ada0a9a, ble_tms.h).
One 18-byte notification per sample (accel 6Q10, gyro 11Q5, compass 12Q4), no timestamp;
the rate is the "motion processing frequency" written to the config characteristic.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.errors import DecodeError
from collector.timing import SampleClock

_BASE = "-9b35-4933-9b10-52ffa9740042"  # Thingy base UUID ef68xxxx-… (§5)
CONFIG_SERVICE_UUID = "ef680100" + _BASE  # what a Thingy advertises
SERVICE_UUID = "ef680400" + _BASE
CONFIG_UUID = "ef680401" + _BASE
RAW_UUID = "ef680406" + _BASE

RAW_BYTES = 18
ACCEL_LSB_PER_G = 1024  # 6Q10 (§5; NOT Thingy.js' /64, which gives ~16 g at rest)
GYRO_LSB_PER_DPS = 32  # 11Q5
COMPASS_LSB_PER_UT = 16  # 12Q4
_RAW = struct.Struct("<9h")
_CONFIG = struct.Struct("<HHHHB")

# Valid ranges of the config fields; the firmware rejects a write outside them (§5).
STEP_INTERVAL_MS = (100, 5000)
TEMP_COMP_INTERVAL_MS = (100, 5000)
MAG_COMP_INTERVAL_MS = (100, 1000)
MOTION_FREQ_HZ = (5, 200)
# Requested values when the caller gives none. 30 Hz: the lowest rate at which ActiGraph-style
# counts and ENMO keep the 0.25–2.5 Hz activity band well clear of Nyquist (firmware default is
# 10 Hz). The other intervals only drive the step counter and sensor compensation, which otmon
# does not use: the slowest allowed values cost the least battery.
DEFAULT_CONFIG = {
    "sample_rate_hz": 30,
    "step_interval_ms": 5000,
    "temp_comp_interval_ms": 5000,
    "mag_comp_interval_ms": 1000,
    "wake_on_motion": 1,  # firmware default: wake the Thingy from sleep when it is moved
}


@dataclass(frozen=True, slots=True)
class MotionConfig:
    """The 9-byte TMS config characteristic, validated on construction."""

    step_interval_ms: int
    temp_comp_interval_ms: int
    mag_comp_interval_ms: int
    motion_freq_hz: int
    wake_on_motion: int

    def __post_init__(self) -> None:
        for name, (lo, hi) in (
            ("step_interval_ms", STEP_INTERVAL_MS),
            ("temp_comp_interval_ms", TEMP_COMP_INTERVAL_MS),
            ("mag_comp_interval_ms", MAG_COMP_INTERVAL_MS),
            ("motion_freq_hz", MOTION_FREQ_HZ),
            ("wake_on_motion", (0, 1)),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(
                    f"Thingy:52 {name} must be an integer in {lo}..{hi}, got {value!r}"
                )

    @classmethod
    def from_bytes(cls, data: bytes) -> MotionConfig:
        """Parse the config characteristic value.

        Raises:
            ValueError: wrong length or a field out of range.
        """
        if len(data) != _CONFIG.size:
            raise ValueError(f"Thingy:52 config must be {_CONFIG.size} bytes, got {len(data)}")
        return cls(*_CONFIG.unpack(data))

    def __bytes__(self) -> bytes:
        return _CONFIG.pack(
            self.step_interval_ms,
            self.temp_comp_interval_ms,
            self.mag_comp_interval_ms,
            self.motion_freq_hz,
            self.wake_on_motion,
        )


def config_from_settings(settings: Mapping[str, Any]) -> MotionConfig:
    """Build the config to write from requested settings (defaults for missing keys).

    Raises:
        ValueError: a value is not an integer or out of the firmware's range.
    """
    merged = {**DEFAULT_CONFIG, **{k: v for k, v in settings.items() if k in DEFAULT_CONFIG}}
    rate = merged["sample_rate_hz"]
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    return MotionConfig(
        step_interval_ms=merged["step_interval_ms"],
        temp_comp_interval_ms=merged["temp_comp_interval_ms"],
        mag_comp_interval_ms=merged["mag_comp_interval_ms"],
        motion_freq_hz=rate,
        wake_on_motion=merged["wake_on_motion"],
    )


@dataclass(frozen=True, slots=True)
class RawMotion:
    """One raw-data notification in integer counts (accel 1/1024 g, gyro 1/32 °/s, compass 1/16 µT)."""

    accel: tuple[int, int, int]
    gyro: tuple[int, int, int] = (0, 0, 0)
    compass: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_bytes(cls, payload: bytes) -> RawMotion:
        """Parse one notification.

        Raises:
            DecodeError: the payload is not 18 bytes.
        """
        if len(payload) != RAW_BYTES:
            raise DecodeError(f"Thingy:52 raw data must be {RAW_BYTES} bytes, got {len(payload)}")
        v = _RAW.unpack(payload)
        return cls((v[0], v[1], v[2]), (v[3], v[4], v[5]), (v[6], v[7], v[8]))

    def __bytes__(self) -> bytes:
        return _RAW.pack(*self.accel, *self.gyro, *self.compass)

    @property
    def accel_g(self) -> tuple[float, float, float]:
        """Acceleration in g."""
        x, y, z = self.accel
        return (x / ACCEL_LSB_PER_G, y / ACCEL_LSB_PER_G, z / ACCEL_LSB_PER_G)


def encode_raw(
    accel_counts: NDArray[np.integer[Any]],
    gyro_counts: NDArray[np.integer[Any]] | None = None,
    compass_counts: NDArray[np.integer[Any]] | None = None,
) -> list[bytes]:
    """Encode (n, 3) int16 counts as n raw-data notifications (gyro/compass zero if absent)."""
    zeros = np.zeros_like(accel_counts)
    gyro = zeros if gyro_counts is None else gyro_counts
    compass = zeros if compass_counts is None else compass_counts
    return [
        _RAW.pack(*(int(v) for v in a), *(int(v) for v in g), *(int(v) for v in c))
        for a, g, c in zip(accel_counts, gyro, compass, strict=True)
    ]


class Thingy52Decoder:
    """Decoder of one TMS raw stream: one sample per notification, timed by a `SampleClock`.

    The clock counts samples at the configured rate and re-fits it to the arrival times;
    a late arrival beyond its tolerance becomes a reported gap, and a repeated notification
    (same 18 bytes delivered again at once) is dropped and counted (`clock.n_duplicates`).
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        rate = settings.get("sample_rate_hz") or DEFAULT_CONFIG["sample_rate_hz"]
        self.sample_rate_hz = float(rate)
        self.clock = SampleClock(self.sample_rate_hz)

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one raw-data notification received at host UTC `received_ns`."""
        payload = bytes(payload)
        raw = RawMotion.from_bytes(payload)
        timing = self.clock.push(1, received_ns, payload=payload)
        if timing is None:
            return []
        accel = np.asarray([raw.accel], dtype=np.float64) / ACCEL_LSB_PER_G
        return [SampleBlock(timing.t0_ns, timing.fs_hz, accel.astype(np.float32))]


class Thingy52Profile:
    """Nordic Thingy:52 accelerometer over the Thingy Motion Service."""

    name: str = "thingy52"
    # The motion service holds the characteristics; a Thingy advertises its configuration
    # service, so scanning filters on both.
    service_uuids: tuple[str, ...] = (SERVICE_UUID, CONFIG_SERVICE_UUID)
    control_uuids: tuple[str, ...] = ()
    data_uuid: str = RAW_UUID

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for a Thingy's advertised service UUIDs or its default name."""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        return bool(uuids & {CONFIG_SERVICE_UUID, SERVICE_UUID}) or (
            advertisement.local_name or ""
        ).startswith("Thingy")

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Write the motion config (rate in Hz); raw data then flows to the subscribed host.

        Raises:
            ValueError: a requested value is outside the firmware's range (nothing is written).
        """
        config = config_from_settings(settings)
        await client.write(CONFIG_UUID, bytes(config))
        return {
            "sample_rate_hz": config.motion_freq_hz,
            "step_interval_ms": config.step_interval_ms,
            "temp_comp_interval_ms": config.temp_comp_interval_ms,
            "mag_comp_interval_ms": config.mag_comp_interval_ms,
            "wake_on_motion": config.wake_on_motion,
        }

    async def stop(self, client: ControlLink) -> None:
        """Nothing to send: TMS has no stop command; raw data ends with the subscription."""

    def decoder(self, settings: Mapping[str, Any]) -> Thingy52Decoder:
        """Return a fresh decoder for negotiated `settings`."""
        return Thingy52Decoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """TMS has no control notifications."""
        return False


PROFILE = Thingy52Profile()

__all__ = [
    "CONFIG_UUID",
    "PROFILE",
    "RAW_UUID",
    "SERVICE_UUID",
    "MotionConfig",
    "RawMotion",
    "Thingy52Decoder",
    "Thingy52Profile",
    "config_from_settings",
    "encode_raw",
]
