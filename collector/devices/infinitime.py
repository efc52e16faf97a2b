"""PineTime / InfiniTime (≥ 1.7) Motion Service: raw accelerometer notifications.

Wire format: ../shared/docs/ble-protocols.md §4 (InfiniTime@825056574f47, MotionService.cpp).
Each notification is one sample, x, y, z int16 LE in 1/1024 g (X and Y already swapped by the
firmware). The firmware polls the BMA421/425 every 100 ms and notifies **only when the value
changed**; nothing is sent while the watch is perfectly still, and there is no timestamp.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.errors import DecodeError
from collector.timing import NS_PER_S, SampleClock

SERVICE_UUID = "00030000-78fc-48fe-8e23-433b3a1942d0"
STEP_COUNT_UUID = "00030001-78fc-48fe-8e23-433b3a1942d0"
MOTION_UUID = "00030002-78fc-48fe-8e23-433b3a1942d0"

MOTION_BYTES = 6
LSB_PER_G = 1024  # "binary milli-g" (§4; explicit since 1.15.0, already so with the fixed ±2 g)
RANGE_COUNTS = 2048  # the firmware configures ±2 g, so |value| ≤ 2048
# MotionController polls every 100 ms (§4): the grid the samples live on.
NOMINAL_RATE_HZ = 10.0
# A notification for poll k arrives in [t_k, t_k + connection interval + host jitter]. Until
# the clock's envelope has settled on the earliest arrivals (5 s) it may still be high, so a
# 1/4-period margin absorbs that; afterwards 1/10 period, leaving 9/10 for the spread.
GRID_MARGIN = 0.25
SETTLED_MARGIN = 0.1
SETTLE_SAMPLES = 50
SETTLED_EARLY = 0.02
_MOTION = struct.Struct("<3h")


def parse_motion(payload: bytes) -> tuple[int, int, int]:
    """Return x, y, z counts (1/1024 g) of one motion notification.

    Raises:
        DecodeError: the payload is not 6 bytes.
    """
    if len(payload) != MOTION_BYTES:
        raise DecodeError(
            f"InfiniTime motion value must be {MOTION_BYTES} bytes, got {len(payload)}"
        )
    x, y, z = _MOTION.unpack(payload)
    return x, y, z


def encode_motion(counts: tuple[int, int, int] | NDArray[np.integer[Any]]) -> bytes:
    """Encode one x, y, z sample in counts (1/1024 g)."""
    x, y, z = (int(v) for v in counts)
    return _MOTION.pack(x, y, z)


class InfiniTimeDecoder:
    """Decoder of one connection's motion notifications on the 10 Hz polling grid.

    What "notify only on change" means for timing: a silence is not a loss. BLE delivers
    notifications reliably while connected, so no notification for a poll means the value
    was unchanged, and the decoder repeats the last value for it (sample-and-hold). The
    poll index of each notification comes from its arrival time on the `SampleClock`
    estimate of the device grid (lower envelope of arrivals, rate re-fitted for drift):
    index = floor((arrival − time of poll 0) / period + margin), margin 1/4 for the first
    5 s and 1/10 after. Consequences, stated honestly:

    - exact (every poll in its slot) while connection interval + host jitter stays under
      9/10 of a period (90 ms; 3/4 in the first 5 s);
    - a longer host stall delays a burst of notifications; the first is read as following
      held polls, the rest go on the slots after it, so samples sit up to the stall length
      late (stalls in quick succession add up) until the next unchanged poll absorbs the
      shift. The burst is timed on its slots, so it never drags the clock: the rate
      estimate stays right;
    - a notification lost inside the link (not expected from BLE) is indistinguishable from
      an unchanged value and is held over;
    - the first sample is the first change after subscribing: the stream starts there, and
      a disconnect ends it (the next connection gets a fresh decoder and a new block).

    Since the firmware never sends the same value twice in a row, a repeated payload is a
    duplicate delivery (bleak's double callback): dropped and counted in `n_duplicates`.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.sample_rate_hz = float(settings.get("sample_rate_hz") or NOMINAL_RATE_HZ)
        self.clock = SampleClock(self.sample_rate_hz)
        self.n_duplicates = 0
        self.n_held_samples = 0
        self._last: bytes | None = None
        self._held = np.zeros(3, dtype=np.float64)  # counts of the last value received
        self._next_index = 0

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one motion notification received at host UTC `received_ns`."""
        payload = bytes(payload)
        xyz = parse_motion(payload)
        if payload == self._last:
            self.n_duplicates += 1
            return []
        n_held = 0
        arrival_ns = int(received_ns)
        if self._last is not None:
            poll0_ns = self.clock.sample_time_ns(0)
            period_ns = NS_PER_S / self.clock.fs_hz
            settled = self.clock.n_samples >= SETTLE_SAMPLES
            margin = SETTLED_MARGIN if settled else GRID_MARGIN
            index = math.floor((arrival_ns - poll0_ns) / period_ns + margin)
            n_held = max(0, index - self._next_index)
            # A burst released after a host stall lands on slots after the one its arrival
            # points to: time it as if it had arrived that many periods later, so the clock
            # keeps learning drift from it and its earliness never drags the envelope down.
            slot = self._next_index + n_held
            arrival_ns += round((slot - index) * period_ns)
            if settled:
                # Once settled, only drift may move the envelope, and 100 ppm between the
                # clock's 10-s refits is 1 ms: an arrival earlier than that is a late one
                # rounded into the next slot, not news about the grid.
                floor_ns = self.clock.sample_time_ns(slot) - round(SETTLED_EARLY * period_ns)
                arrival_ns = max(arrival_ns, floor_ns)
        timing = self.clock.push(n_held + 1, arrival_ns)
        if timing is None:  # pragma: no cover - no payload/seq given, so never a duplicate
            return []
        counts = np.empty((n_held + 1, 3), dtype=np.float64)
        counts[:] = self._held
        counts[-1] = xyz
        self._last, self._held = payload, np.asarray(xyz, dtype=np.float64)
        self._next_index = timing.first_index + n_held + 1
        self.n_held_samples += n_held
        accel_g = (counts / LSB_PER_G).astype(np.float32)
        return [SampleBlock(timing.t0_ns, timing.fs_hz, accel_g)]


class InfiniTimeProfile:
    """PineTime running InfiniTime ≥ 1.7: the Motion Service's raw accelerometer values."""

    name: str = "infinitime"
    service_uuids: tuple[str, ...] = (SERVICE_UUID,)
    control_uuids: tuple[str, ...] = ()
    data_uuid: str = MOTION_UUID

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for InfiniTime's advertised name or the Motion Service UUID."""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        return SERVICE_UUID in uuids or (advertisement.local_name or "") == "InfiniTime"

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing to write: subscribing to the motion characteristic starts the stream.

        The session subscribes `data_uuid` before calling this; the rate is fixed by the
        firmware's 100 ms poll, so a requested `sample_rate_hz` is ignored.
        """
        return {
            "firmware": str(settings.get("firmware", ">=1.7")),
            "sample_rate_hz": NOMINAL_RATE_HZ,
        }

    async def stop(self, client: ControlLink) -> None:
        """Nothing to write: the Motion Service has no stop command; disconnecting ends it."""

    def decoder(self, settings: Mapping[str, Any]) -> InfiniTimeDecoder:
        """Return a fresh decoder for one connection."""
        return InfiniTimeDecoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """The Motion Service has no control notifications."""
        return False


PROFILE = InfiniTimeProfile()

__all__ = [
    "MOTION_UUID",
    "PROFILE",
    "SERVICE_UUID",
    "STEP_COUNT_UUID",
    "InfiniTimeDecoder",
    "InfiniTimeProfile",
    "encode_motion",
    "parse_motion",
]
