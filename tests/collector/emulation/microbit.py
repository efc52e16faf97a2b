"""Emulated BBC micro:bit running the Accelerometer Service, per ble-protocols.md §3.

The period characteristic is read/write: a write is snapped to the nearest supported period and
the actual value is what a read returns. Data (6 bytes, int16 milli-g) is notified once per
sample while a central has notifications enabled; there is no start or stop command.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from bumble.gatt import Characteristic, CharacteristicValue, Service
from numpy.typing import NDArray

from collector.devices import microbit as mb
from tests.collector.emulation.wearable import EmulatedWearable, Recording

log = logging.getLogger(__name__)


class EmulatedMicrobit(EmulatedWearable):
    """A micro:bit streaming its accelerometer while subscribed; the recording sets the period."""

    service_uuids = (mb.SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        name: str = "BBC micro:bit [tovip]",
        address: str = "D2:8A:1C:2D:3E:4F",
        speedup: float = 25.0,
        button_service: bool = True,
    ) -> None:
        super().__init__(
            name=name, address=address, recording=recording, frame_samples=1, speedup=speedup
        )
        self.period_ms = mb.DEFAULT_PERIOD_MS
        self.period_writes: list[int] = []  # requested periods, in order
        self.button_service = button_service  # the program started the Button Service

    def build_services(self) -> list[Service]:
        """Accelerometer service: data (read, notify) and period (read, write)."""
        self.period: Characteristic[bytes] = Characteristic(
            mb.PERIOD_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=self._read_period, write=self._write_period),
        )
        self.data_characteristic = Characteristic(
            mb.DATA_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            b"\x00" * mb.PAYLOAD_BYTES,
        )
        self.data_characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        services = [Service(mb.SERVICE_UUID, [self.data_characteristic, self.period])]
        if self.button_service:  # Button A only: the collector uses A (docs/collector.md)
            self.button_characteristic = Characteristic(
                mb.BUTTON_A_UUID,
                Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
                Characteristic.READABLE,
                b"\x00",
            )
            services.append(Service(mb.BUTTON_SERVICE_UUID, [self.button_characteristic]))
        return services

    def button_payload(self, state: int) -> bytes | None:
        """Button A: one byte, 0 released, 1 pressed, 2 long press (MicroBitButtonService)."""
        return bytes([state])

    def _read_period(self, _connection: Any) -> bytes:
        return mb.period_command(self.period_ms)

    def _write_period(self, _connection: Any, value: bytes) -> None:
        requested = int.from_bytes(bytes(value), "little")
        self.period_writes.append(requested)
        self.period_ms = mb.nearest_period_ms(requested)
        if 1000 / self.period_ms != self.rate_hz:
            log.error(
                "emulator: recording is at %s Hz, period set to %d ms", self.rate_hz, self.period_ms
            )

    def _on_subscription(self, _bearer: Any, notify_enabled: bool, _indicate: bool) -> None:
        """Notifications on: the runtime's accelerometer updates start reaching the host."""
        if notify_enabled:
            self.start_streaming()
        else:
            self.stop_streaming()

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """The micro:bit has no command characteristic."""
        log.warning("emulator: unexpected command %s on %s", data.hex(), char_uuid)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One sample as int16 LE milli-g."""
        return mb.encode_sample(mb.g_to_mg(samples_g[0]))


__all__ = ["EmulatedMicrobit"]
