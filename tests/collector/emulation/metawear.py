"""Emulated MetaWear board (MetaMotion S, BMI270, by default): commands and data per ble-protocols.md §2.

Commands arrive on 326a9001 as `[module, register, payload…]`; replies and data leave on
326a9006. The accelerometer module answers discovery (`03 80` -> `03 80 impl rev`), takes the
data configuration (`03 03 conf range`, which sets the scale of the counts it sends), plain or
packed subscriptions, enable/disable sampling, and start/stop (`03 01 01` / `03 01 00`).
"""

from __future__ import annotations

import logging

import numpy as np
from bumble.gatt import Characteristic, Service
from numpy.typing import NDArray

from collector.devices import metawear as mw
from tests.collector.emulation.wearable import EmulatedWearable, Recording

log = logging.getLogger(__name__)

IMPLEMENTATION = {chip: impl for impl, chip in mw.CHIP_BY_IMPLEMENTATION.items()}
ODR_CODE_BITS = 0x0F
RANGE_G_OF_CODE = {
    chip: {code: g for g, code in table.items()} for chip, table in mw.RANGE_CODE.items()
}


class EmulatedMetaWear(EmulatedWearable):
    """A MetaWear board streaming its accelerometer; the recording's rate must be the set ODR."""

    service_uuids = (mw.SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        chip: str = "BMI270",
        revision: int = 0,
        name: str = "MetaWear",
        address: str = "E4:5F:01:2A:3B:4C",
        packed: bool = True,
        speedup: float = 25.0,
    ) -> None:
        # The sample clock ticks once per notification: 3 samples packed, 1 plain (§2.5).
        super().__init__(
            name=name,
            address=address,
            recording=recording,
            frame_samples=mw.PACKED_SAMPLES if packed else 1,
            speedup=speedup,
        )
        self.packed = packed
        self.chip = mw.normalise_chip(chip)
        self.revision = revision
        self.lsb_per_g = mw.bosch_lsb_per_g(mw.SDK_DEFAULT_RANGE_G[self.chip])
        self.register: int | None = None  # data register subscribed to
        self.sampling = False
        self.configured: list[tuple[float, int]] = []  # (rate_hz, range_g) of each config
        self.switch_subscribed = False  # the switch module's notifications are on

    def build_services(self) -> list[Service]:
        """MetaWear service: command (write, write without response) and notify."""
        self.command: Characteristic[bytes] = Characteristic(
            mw.COMMAND_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            self.command_value(mw.COMMAND_UUID),
        )
        self.data_characteristic = Characteristic(
            mw.NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.button_characteristic = self.data_characteristic  # the switch module notifies here
        return [Service(mw.SERVICE_UUID, [self.command, self.data_characteristic])]

    def button_payload(self, state: int) -> bytes | None:
        """Switch module: `[0x01, 0x01, 1|0]` while subscribed (a hold is just "pushed")."""
        if not self.switch_subscribed:
            return None
        return bytes([mw.MODULE_SWITCH, mw.REG_SWITCH_STATE, 1 if state else 0])

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """Accelerometer module commands (§2.2–2.4); anything else is logged and ignored."""
        assert self.data_characteristic is not None
        if len(data) == 3 and data[:2] == bytes([mw.MODULE_SWITCH, mw.REG_SWITCH_STATE]):
            self.switch_subscribed = data[2] == 1
        elif len(data) < 2 or data[0] != mw.MODULE_ACC:
            log.warning("emulator: ignoring command %s", data.hex())
        elif data == mw.DISCOVERY:
            reply = bytes([mw.MODULE_ACC, mw.REG_INFO, IMPLEMENTATION[self.chip], self.revision])
            await self.notify(self.data_characteristic, reply)
        elif data[1] == mw.REG_DATA_CONFIG and len(data) == 4:
            self._configure(data[2], data[3])
        elif data[1] in (mw.REG_DATA, mw.PACKED_REGISTER[self.chip]) and len(data) == 3:
            if data[2]:
                if (data[1] != mw.REG_DATA) != self.packed:
                    log.error(
                        "emulator: built for packed=%s, subscribed %s", self.packed, data.hex()
                    )
                self.register = data[1]
            elif self.register == data[1]:
                self.register = None
        elif data[1] == mw.REG_INTERRUPT_ENABLE and len(data) == 4:
            self.sampling = data[2] == 1
        elif data[1] == mw.REG_POWER and len(data) == 3:
            if data[2] and self.sampling and self.register is not None:
                self.start_streaming()
            else:
                self.stop_streaming()
        else:
            log.warning("emulator: unsupported accelerometer command %s", data.hex())

    def _configure(self, conf: int, range_code: int) -> None:
        code = conf & ODR_CODE_BITS
        table = mw.BMA255_ODR_HZ if self.chip == "BMA255" else mw.BOSCH_ODR_HZ
        rate_hz, range_g = table.get(code), RANGE_G_OF_CODE[self.chip].get(range_code)
        if rate_hz is None or range_g is None:
            log.error("emulator: bad data config %02x %02x", conf, range_code)
            return
        if rate_hz != self.rate_hz:
            log.error("emulator: recording is at %s Hz, configured %s Hz", self.rate_hz, rate_hz)
        self.lsb_per_g = mw.bosch_lsb_per_g(range_g)
        self.configured.append((rate_hz, range_g))

    def on_link_down(self) -> None:
        """The board stops streaming and forgets subscriptions when the host goes away."""
        super().on_link_down()
        self.register, self.sampling, self.switch_subscribed = None, False, False

    def counts(self, samples_g: NDArray[np.float64]) -> NDArray[np.int16]:
        """The int16 counts the chip sends at the configured range."""
        return mw.g_to_counts(samples_g, self.lsb_per_g)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One data notification: plain (1 sample) or packed (3 samples)."""
        assert self.register is not None
        return mw.encode_samples(self.register, self.counts(samples_g))


__all__ = ["EmulatedMetaWear"]
