"""Emulated Nordic Thingy:52 Motion Service, per ble-protocols.md §5.

The config characteristic (read/write, 9 bytes) rejects out-of-range values with an ATT error,
as the firmware does; the raw-data characteristic notifies one 18-byte sample per motion
period while a central is subscribed (there is no start or stop command).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from bumble.att import ATT_Error, ErrorCode
from bumble.gatt import Characteristic, CharacteristicValue, Service
from numpy.typing import NDArray

from collector.devices import thingy52 as th
from tests.collector.emulation.wearable import EmulatedWearable, Recording

log = logging.getLogger(__name__)

# Firmware default motion processing frequency (§5) before the host writes a config.
DEFAULT_MOTION_FREQ_HZ = 10


class EmulatedThingy52(EmulatedWearable):
    """A Thingy:52 streaming raw motion data while subscribed."""

    service_uuids = (th.CONFIG_SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        name: str = "Thingy",
        address: str = "E2:52:00:00:00:52",
        speedup: float = 25.0,
    ) -> None:
        super().__init__(
            name=name, address=address, recording=recording, frame_samples=1, speedup=speedup
        )
        self.config = th.MotionConfig(1000, 1000, 500, DEFAULT_MOTION_FREQ_HZ, 1)
        self.config_writes: list[bytes] = []  # accepted and rejected, in order
        self.n_rejected = 0

    def build_services(self) -> list[Service]:
        """Motion service: config (read, write) and raw data (notify)."""
        self.config_characteristic: Characteristic[bytes] = Characteristic(
            th.CONFIG_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=self._read_config, write=self._write_config),
        )
        self.data_characteristic = Characteristic(
            th.RAW_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.data_characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        return [Service(th.SERVICE_UUID, [self.config_characteristic, self.data_characteristic])]

    def _read_config(self, _connection: Any) -> bytes:
        return bytes(self.config)

    def _write_config(self, _connection: Any, value: bytes) -> None:
        self.config_writes.append(bytes(value))
        try:
            config = th.MotionConfig.from_bytes(bytes(value))
        except ValueError as exc:
            self.n_rejected += 1
            raise ATT_Error(ErrorCode.VALUE_NOT_ALLOWED, message=str(exc)) from None
        self.config = config
        if config.motion_freq_hz != self.rate_hz:
            log.error(
                "emulator: recording at %s Hz, config says %d Hz",
                self.rate_hz,
                config.motion_freq_hz,
            )

    def _on_subscription(self, _bearer: Any, notify_enabled: bool, _indicate: bool) -> None:
        if notify_enabled:
            self.start_streaming()
        else:
            self.stop_streaming()

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """The config characteristic is handled by its value callbacks."""
        log.warning("emulator: unexpected command %s on %s", data.hex(), char_uuid)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One raw-data notification: accel 6Q10, gyro and compass zero."""
        counts = np.rint(samples_g[:1] * th.ACCEL_LSB_PER_G).astype(np.int16)
        return th.encode_raw(counts)[0]


__all__ = ["EmulatedThingy52"]
