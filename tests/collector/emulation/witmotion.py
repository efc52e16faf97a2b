"""Emulated WitMotion WT901BLECL (BLE 5.0 module), per ble-protocols.md §6.

Commands `FF AA reg valL valH` arrive on ffe9: register writes take effect only after the
unlock command, and save keeps them (and locks again). The module streams 0x61 frames on ffe4
while a central is subscribed. Like the real UART bridge it does not respect frame boundaries:
each tick's bytes go out as two notifications cut at a varying offset, so frames arrive split
and joined.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from bumble.gatt import Characteristic, Service
from numpy.typing import NDArray

from collector.devices import witmotion as wm
from tests.collector.emulation.wearable import EmulatedWearable, Recording, SentRange

log = logging.getLogger(__name__)

# Cut offsets (bytes) of successive ticks: inside a frame, on a boundary, right after a header.
CUTS = (27, 20, 1, 41, 59, 2, 33)


class EmulatedWitMotion(EmulatedWearable):
    """A WT901BLECL streaming 0x61 frames as a byte stream while subscribed."""

    # What the module advertises is not in ble-protocols.md §6; the profile scans for ffe5
    # and a "WT…" name, so the emulator advertises both.
    service_uuids = (wm.SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        name: str = "WT901BLE68",
        address: str = "D4:61:00:00:09:01",
        speedup: float = 25.0,
    ) -> None:
        super().__init__(
            name=name, address=address, recording=recording, frame_samples=3, speedup=speedup
        )
        self.unlocked = False
        self.rate_code = wm.RATE_CODES[10]  # factory default 10 Hz
        self.saved_rate_code = self.rate_code
        self.n_saves = 0
        self.n_data_notifications = 0
        self._n_ticks = 0

    def build_services(self) -> list[Service]:
        """ffe5 service: notify ffe4 (data), write ffe9 (commands)."""
        self.write_characteristic: Characteristic[bytes] = Characteristic(
            wm.WRITE_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            self.command_value(wm.WRITE_UUID),
        )
        self.data_characteristic = Characteristic(
            wm.NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.data_characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        return [Service(wm.SERVICE_UUID, [self.data_characteristic, self.write_characteristic])]

    def _on_subscription(self, _bearer: Any, notify_enabled: bool, _indicate: bool) -> None:
        if notify_enabled:
            self.start_streaming()
        else:
            self.stop_streaming()

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """Apply unlock / register write / save."""
        if len(data) != 5 or data[:2] != b"\xff\xaa":
            log.error("emulator: malformed command %s", data.hex())
            return
        if data == wm.UNLOCK:
            self.unlocked = True
        elif data == wm.SAVE:
            self.saved_rate_code = self.rate_code
            self.n_saves += 1
            self.unlocked = False
        elif not self.unlocked:
            log.error("emulator: register write %s while locked is ignored", data.hex())
        elif data[2] == wm.REG_RATE:
            self.rate_code = data[3]
            rate = {code: hz for hz, code in wm.RATE_CODES.items()}.get(self.rate_code)
            if rate != self.rate_hz:
                log.error("emulator: recording at %s Hz, rate set to %s", self.rate_hz, rate)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """0x61 frames for the samples (acc in g·32768/16)."""
        counts = np.rint(samples_g * 32768 / wm.FULL_SCALE_G).astype(np.int16)
        return wm.encode_frames(counts)

    async def _send(self, lo: int, hi: int) -> None:
        """Send the tick's frames as two notifications cut at a varying byte offset."""
        assert self.data_characteristic is not None and self._origin_k is not None
        first_k = self._origin_k + lo
        stream = self.encode_frame(first_k, self.recording.samples_g[lo:hi])
        cut = min(CUTS[self._n_ticks % len(CUTS)], len(stream) - 1)
        self._n_ticks += 1
        # What host_clock() reports on receipt: the last sample completed by each part.
        self._in_flight.append(first_k + cut // wm.FRAME_BYTES - 1)
        self._in_flight.append(first_k + (hi - lo) - 1)
        last = self.sent[-1] if self.sent else None
        if last and last.connection == self.n_connections and last.stop == lo:
            self.sent[-1] = SentRange(last.connection, last.start, hi)
        else:
            self.sent.append(SentRange(self.n_connections, lo, hi))
        self.n_data_notifications += 2
        await self.notify(self.data_characteristic, stream[:cut])
        await self.notify(self.data_characteristic, stream[cut:])


__all__ = ["EmulatedWitMotion"]
