"""Emulated Polar PMD device (H10 by default): control point + data, per ble-protocols.md §1.

The control point is read (feature bitmap), written (commands) and indicates responses; the data
characteristic notifies ACC frames: raw 0x01 (int16 mG), or delta 0x80 (counts x factor) / 0x81
(mG, or counts x factor when factor != 1) with one delta block per frame. The device clock counts
ns since 2000-01-01 from its own (unset) origin, as an H10 after a reset does.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence

import numpy as np
from bumble.gatt import Characteristic, Service
from numpy.typing import NDArray

from collector.devices.polar_pmd import (
    CP_UUID,
    DATA_UUID,
    MEASUREMENT_ACC,
    OP_GET_SETTINGS,
    OP_START,
    OP_STOP,
    SERVICE_UUID,
    CpStatus,
    SettingType,
)
from collector.devices.polar_pmd_frames import encode_delta_content, encode_raw_frame
from tests.collector.emulation.wearable import EmulatedWearable, Recording

log = logging.getLogger(__name__)

# H10 online ACC options (ble-protocols.md §1.5): 25/50/100/200 Hz, ±2/4/8 g, 16 bit, 3 channels.
H10_RATES_HZ = (25, 50, 100, 200)
H10_RANGES_G = (2, 4, 8)
# Feature bitmap read from the CP: byte 1 bit0 ECG, bit2 ACC (§1.1); the H10 offers both.
H10_FEATURES = bytes([0x0F, 0b0000_0101, 0x00])
# An H10 after a battery change counts from 2019-01-01 (§1.4): ns from 2000-01-01 to then.
H10_RESET_CLOCK_NS = 599_616_000 * 1_000_000_000
# Factor of Polar's own compressed-frame test (§1.4): 2.44e-4 g per count.
DELTA_FACTOR = 2.44e-4
_VALUE_SIZE = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16}
_INVALID = {
    "SAMPLE_RATE": CpStatus.INVALID_SAMPLE_RATE,
    "RESOLUTION": CpStatus.INVALID_RESOLUTION,
    "RANGE": CpStatus.INVALID_RANGE,
    "CHANNELS": CpStatus.INVALID_NUMBER_OF_CHANNELS,
}


def _tlv(kind: SettingType, values: Sequence[int]) -> bytes:
    size = _VALUE_SIZE[kind]
    return bytes([kind, len(values)]) + b"".join(int(v).to_bytes(size, "little") for v in values)


def _parse_request(data: bytes) -> dict[str, int] | None:
    """Selected settings of a start request (count = 1 each); None if malformed."""
    out: dict[str, int] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data) or data[i] not in _VALUE_SIZE:
            return None
        kind, count, size = SettingType(data[i]), data[i + 1], _VALUE_SIZE[data[i]]
        if count != 1 or i + 2 + size > len(data):
            return None
        out[kind.name] = int.from_bytes(data[i + 2 : i + 2 + size], "little")
        i += 2 + size
    return out


class EmulatedPolar(EmulatedWearable):
    """A Polar H10 (or OH1/Verity Sense, by name and options) streaming ACC over PMD."""

    service_uuids = (SERVICE_UUID,)

    def __init__(
        self,
        *,
        recording: Recording,
        name: str = "Polar H10 0A1B2C3D",
        address: str = "A0:9E:1A:0A:1B:2C",
        frame_type: int = 0x01,
        factor: float | None = None,
        rates_hz: Sequence[int] = H10_RATES_HZ,
        ranges_g: Sequence[int] = H10_RANGES_G,
        device_clock_origin_ns: int = H10_RESET_CLOCK_NS,
        frame_samples: int = 10,
        speedup: float = 25.0,
    ) -> None:
        super().__init__(
            name=name,
            address=address,
            recording=recording,
            frame_samples=frame_samples,
            speedup=speedup,
        )
        if frame_type not in (0x01, 0x80, 0x81):
            raise ValueError(f"frame_type must be 0x01, 0x80 or 0x81, got {frame_type:#x}")
        if int(recording.rate_hz) not in rates_hz:
            raise ValueError(f"recording rate {recording.rate_hz} Hz not among rates_hz {rates_hz}")
        self.frame_type = frame_type
        self.factor = (
            factor if factor is not None else (DELTA_FACTOR if frame_type == 0x80 else 1.0)
        )
        self.rates_hz = tuple(rates_hz)
        self.ranges_g = tuple(ranges_g)
        self.device_clock_origin_ns = device_clock_origin_ns
        self.started_with: list[dict[str, int]] = []  # settings of each accepted start

    def build_services(self) -> list[Service]:
        """PMD service: CP (read, write, indicate) and data (notify)."""
        self.cp: Characteristic[bytes] = Characteristic(
            CP_UUID,
            Characteristic.Properties.READ
            | Characteristic.Properties.WRITE
            | Characteristic.Properties.INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            self.command_value(CP_UUID, read=lambda _conn: H10_FEATURES),
        )
        self.data_characteristic = Characteristic(
            DATA_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        return [Service(SERVICE_UUID, [self.cp, self.data_characteristic])]

    def settings_params(self) -> bytes:
        """The ACC settings list this device answers to GET_MEASUREMENT_SETTINGS."""
        return (
            _tlv(SettingType.SAMPLE_RATE, self.rates_hz)
            + _tlv(SettingType.RESOLUTION, [16])
            + _tlv(SettingType.RANGE, self.ranges_g)
            + _tlv(SettingType.CHANNELS, [3])
        )

    async def _respond(self, opcode: int, mtype: int, status: int, params: bytes = b"") -> None:
        """Indicate a CP response; split with the `more` byte when longer than MTU − 3 (§1.3)."""
        mtu = self.connection.att_mtu if self.connection is not None else 23
        room = max(1, mtu - 3 - 5)
        chunks = [params[i : i + room] for i in range(0, len(params), room)] or [b""]
        for i, chunk in enumerate(chunks):
            more = 1 if i < len(chunks) - 1 else 0
            await self.indicate(self.cp, bytes([0xF0, opcode, mtype, status, more]) + chunk)

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        """Answer GET settings, START and STOP for ACC; refuse everything else with its status."""
        if len(data) < 2:
            await self._respond(data[0] if data else 0, 0, CpStatus.INVALID_LENGTH)
            return
        opcode, mtype = data[0], data[1] & 0x3F
        if opcode not in (OP_GET_SETTINGS, OP_START, OP_STOP):
            await self._respond(opcode, mtype, CpStatus.INVALID_OP_CODE)
        elif mtype != MEASUREMENT_ACC:
            await self._respond(opcode, mtype, CpStatus.NOT_SUPPORTED)
        elif opcode == OP_GET_SETTINGS:
            await self._respond(opcode, mtype, CpStatus.SUCCESS, self.settings_params())
        elif opcode == OP_STOP:
            status = CpStatus.SUCCESS if self.streaming else CpStatus.ALREADY_IN_STATE
            self.stop_streaming()
            await self._respond(opcode, mtype, status)
        else:
            await self._start(data[2:])

    async def _start(self, request: bytes) -> None:
        selected = _parse_request(request)
        if selected is None:
            await self._respond(OP_START, MEASUREMENT_ACC, CpStatus.INVALID_PARAMETER)
            return
        if self.streaming:
            await self._respond(OP_START, MEASUREMENT_ACC, CpStatus.ALREADY_IN_STATE)
            return
        available = {
            "SAMPLE_RATE": self.rates_hz,
            "RESOLUTION": (16,),
            "RANGE": self.ranges_g,
            "CHANNELS": (3,),
        }
        for key, allowed in available.items():
            if key not in selected or selected[key] not in allowed:
                await self._respond(OP_START, MEASUREMENT_ACC, _INVALID[key])
                return
        if selected["SAMPLE_RATE"] != int(self.rate_hz):
            log.error("emulator: recording is at %s Hz, start asked %s", self.rate_hz, selected)
            await self._respond(OP_START, MEASUREMENT_ACC, CpStatus.INVALID_SAMPLE_RATE)
            return
        params = b""
        if self.frame_type != 0x01:  # compressed frames: the host needs the factor (§1.3)
            params = bytes([SettingType.FACTOR, 1]) + struct.pack("<f", self.factor)
        self.started_with.append(selected)
        await self._respond(OP_START, MEASUREMENT_ACC, CpStatus.SUCCESS, params)
        self.start_streaming()

    async def stop_from_device(self) -> None:
        """Device-initiated ONLINE_MEASUREMENT_STOPPED for ACC (e.g. taken off the strap)."""
        self.stop_streaming()
        await self.indicate(self.cp, bytes([0x01, MEASUREMENT_ACC]))

    def device_timestamp_ns(self, k: int) -> int:
        """Device clock (ns since 2000-01-01 by the device's reckoning) of device sample k."""
        return self.device_clock_origin_ns + self.device_time_ns(k)

    def counts(self, samples_g: NDArray[np.float64]) -> NDArray[np.int64]:
        """Wire integers of `samples_g`: mG for raw and factor-1 frames, else round(g / factor)."""
        if self.frame_type == 0x80:
            return np.round(samples_g / self.factor).astype(np.int64)
        if self.frame_type == 0x81 and self.factor != 1.0:
            return np.round(samples_g * 1000 / self.factor).astype(np.int64)
        return np.round(samples_g * 1000).astype(np.int64)

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        """One PMD ACC frame; its timestamp is the device time of its last sample (§1.4)."""
        ts = self.device_timestamp_ns(first_k + len(samples_g) - 1)
        counts = self.counts(samples_g)
        if self.frame_type == 0x01:
            return encode_raw_frame(ts, counts)
        header = bytes([MEASUREMENT_ACC]) + ts.to_bytes(8, "little") + bytes([self.frame_type])
        return header + encode_delta_content(counts, 16)


__all__ = ["DELTA_FACTOR", "H10_RATES_HZ", "EmulatedPolar"]
