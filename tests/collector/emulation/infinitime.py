"""Emulated PineTime running InfiniTime's Motion Service, per ble-protocols.md §4.

The watch polls its accelerometer every 100 ms and notifies the motion characteristic only
when the reading differs from the previous poll, whether or not anyone was listening then.
There is no command: subscribing starts the stream.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from bumble.gatt import Characteristic, Service
from numpy.typing import NDArray

from collector.devices import infinitime as it
from tests.collector.emulation.wearable import EmulatedWearable, Recording, SentRange

log = logging.getLogger(__name__)


class EmulatedInfiniTime(EmulatedWearable):
    """A PineTime notifying raw motion values on change while subscribed."""

    # What InfiniTime advertises is not in ble-protocols.md §4; the profile scans for the
    # Motion Service UUID (or the name "InfiniTime"), so the emulator advertises both.
    service_uuids = (it.SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        name: str = "InfiniTime",
        address: str = "C7:1E:00:00:00:17",
        speedup: float = 25.0,
    ) -> None:
        super().__init__(
            name=name, address=address, recording=recording, frame_samples=1, speedup=speedup
        )
        self.counts = np.rint(recording.samples_g * it.LSB_PER_G).astype(np.int16)
        # Recording indices actually notified, per connection number.
        self.notified: dict[int, list[int]] = {}
        self.n_unchanged = 0

    def build_services(self) -> list[Service]:
        """Motion service: step count and raw motion values (read, notify)."""
        self.steps = Characteristic(
            it.STEP_COUNT_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            bytes(4),
        )
        self.data_characteristic = Characteristic(
            it.MOTION_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            bytes(6),
        )
        self.data_characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        return [Service(it.SERVICE_UUID, [self.steps, self.data_characteristic])]

    def _on_subscription(self, _bearer: Any, notify_enabled: bool, _indicate: bool) -> None:
        if notify_enabled:
            self.start_streaming()
        else:
            self.stop_streaming()

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """The Motion Service has no command characteristic."""
        log.warning("emulator: unexpected command %s on %s", data.hex(), char_uuid)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One motion value: x, y, z int16 LE in 1/1024 g."""
        return it.encode_motion(np.rint(samples_g[0] * it.LSB_PER_G).astype(np.int16))

    async def _send(self, lo: int, hi: int) -> None:
        """Notify poll `lo` only if it differs from the previous poll (the firmware's rule)."""
        if lo > 0 and np.array_equal(self.counts[lo], self.counts[lo - 1]):
            self.n_unchanged += 1
            # Nothing goes on air; the host learns the value from the silence, but only once it
            # has seen a notification on this connection.
            if self.notified.get(self.n_connections):
                self._extend_sent(lo, hi)
            return
        self.notified.setdefault(self.n_connections, []).append(lo)
        await super()._send(lo, hi)

    def _extend_sent(self, lo: int, hi: int) -> None:
        last = self.sent[-1]
        if last.connection == self.n_connections and last.stop == lo:
            self.sent[-1] = SentRange(last.connection, last.start, hi)
        else:
            self.sent.append(SentRange(self.n_connections, lo, hi))


__all__ = ["EmulatedInfiniTime"]
