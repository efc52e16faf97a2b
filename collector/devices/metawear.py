"""MbientLab MetaWear / MetaMotion (R, RL, C, S) accelerometer: BMI160, BMI270, BMA255, MMA8452Q.

Wire format: ../shared/docs/ble-protocols.md §2 (from mbientlab/MetaWear-SDK-Cpp@f67699e5 and its
Python tests). Every command and notification is `[module, register, payload…]`; the
accelerometer is module 0x03. Samples carry no device timestamp: they are timed by
`collector.timing.SampleClock` at the configured output data rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.errors import DecodeError, ProtocolError
from collector.timing import SampleClock

# The push-button switch module (docs/collector.md, "Buttons"; MetaWear-SDK-Cpp
# src/metawear/core/module.h `MBL_MW_MODULE_SWITCH = 1`, sensor/cpp/switch_register.h
# `SwitchRegister::STATE = 1`, switch.cpp: one unsigned byte, 1 pushed, 0 released). Subscribing
# is `[0x01, 0x01, 0x01]` on the command characteristic; each change is notified on 326a9006,
# with the samples, as `[0x01, 0x01, state]`.
MODULE_SWITCH = 0x01
REG_SWITCH_STATE = 0x01
SWITCH_SUBSCRIBE = bytes([MODULE_SWITCH, REG_SWITCH_STATE, 1])


def switch_state(payload: bytes) -> int | None:
    """The switch state (1 pushed, 0 released) of a switch notification; None for others."""
    if len(payload) == 3 and payload[0] == MODULE_SWITCH and payload[1] == REG_SWITCH_STATE:
        return payload[2]
    return None


SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

MODULE_ACC = 0x03
REG_POWER = 0x01  # start / stop the accelerometer (§2.4)
REG_INTERRUPT_ENABLE = 0x02  # enable / disable sampling
REG_DATA_CONFIG = 0x03  # acc_conf, acc_range (§2.3)
REG_DATA = 0x04  # plain data: one sample per notification (§2.5)
REG_INFO = 0x80  # module discovery: read bit | register 0 (§2.2)
DISCOVERY = bytes([MODULE_ACC, REG_INFO])

# Module implementation ids of the discovery reply (§2.2).
CHIP_BY_IMPLEMENTATION = {0: "MMA8452Q", 1: "BMI160", 3: "BMA255", 4: "BMI270"}
# Packed data register: 3 samples per notification (§2.4, §2.5).
PACKED_REGISTER = {"BMI160": 0x1C, "BMA255": 0x1C, "BMI270": 0x05, "MMA8452Q": 0x12}
PACKED_SAMPLES = 3
# Packed data needs module revision >= 1 on the older chips (SDK PACKED_ACC_REVISION, §2.2).
PACKED_MIN_REVISION = {"BMI160": 1, "BMA255": 1, "MMA8452Q": 1, "BMI270": 0}
# Bosch ODR codes 1..12 are 0.78125 * 2**(code - 1) Hz (BMI160/BMI270, §2.3).
BOSCH_ODR_HZ = {code: 0.78125 * 2 ** (code - 1) for code in range(1, 13)}
# BMA255 codes 8..15: 15.62 ... 2000 Hz (§2.3).
BMA255_ODR_HZ = {
    8: 15.62,
    9: 31.26,
    10: 62.5,
    11: 125.0,
    12: 250.0,
    13: 500.0,
    14: 1000.0,
    15: 2000.0,
}
# Range byte per full scale (g): BMI160 and BMA255 share one table, BMI270 another (§2.3).
RANGE_CODE = {
    "BMI160": {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},
    "BMA255": {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},
    "BMI270": {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03},
}
# What the SDK assumes when nothing was written (§2.3): BMI160 100 Hz ±2 g, BMI270 100 Hz ±8 g.
SDK_DEFAULT_RANGE_G = {"BMI160": 2, "BMA255": 2, "BMI270": 8, "MMA8452Q": 2}
DEFAULT_RATE_HZ = 100.0  # the SDK default ODR
DEFAULT_CHIP = "BMI270"  # MetaMotion S, the model on sale (R/RL/C with BMI160 are discontinued)
MMA8452Q_LSB_PER_G = 1000.0  # the firmware sends milli-g (§2.5)
SAMPLE_BYTES = 6  # int16 x, y, z


def bosch_lsb_per_g(range_g: int) -> float:
    """LSB per g of a Bosch chip at full scale `range_g` (16384 at ±2 g, §2.5)."""
    if range_g not in (2, 4, 8, 16):
        raise ValueError(f"range_g must be 2, 4, 8 or 16, got {range_g!r}")
    return 32768.0 / range_g


def normalise_chip(chip: Any) -> str:
    """Return the chip name in upper case; raise ValueError for an unknown chip."""
    name = str(chip).upper()
    if name not in PACKED_REGISTER:
        raise ValueError(f"chip must be one of {sorted(PACKED_REGISTER)}, got {chip!r}")
    return name


def odr_code(chip: str, rate_hz: float) -> tuple[int, float]:
    """Return (ODR code, actual rate) nearest to `rate_hz` (the SDK rounds 55 Hz to 50 Hz)."""
    table = BMA255_ODR_HZ if chip == "BMA255" else BOSCH_ODR_HZ
    code = min(table, key=lambda c: (abs(table[c] - rate_hz), -c))
    return code, table[code]


def config_command(chip: str, rate_hz: float, range_g: int) -> bytes:
    """`03 03 <acc_conf> <acc_range>` exactly as the SDK writes it (§2.3)."""
    chip = normalise_chip(chip)
    if chip == "MMA8452Q":
        raise ValueError("MMA8452Q configuration bytes are not documented (ble-protocols.md §2.3)")
    code, actual = odr_code(chip, rate_hz)
    if chip == "BMA255":
        conf = code
    elif chip == "BMI160":
        conf = code | (2 << 4) if actual >= 12.5 else code | (1 << 7)  # bwp 2 / us 1
    else:
        conf = code | (2 << 4) | (1 << 7) if actual >= 12.5 else code | (2 << 4)  # perf bit
    try:
        range_code = RANGE_CODE[chip][range_g]
    except KeyError:
        raise ValueError(f"range_g must be 2, 4, 8 or 16, got {range_g!r}") from None
    return bytes([MODULE_ACC, REG_DATA_CONFIG, conf, range_code])


def data_register(chip: str, packed: bool) -> int:
    """Register of the data notifications: 0x04 plain, or the chip's packed register."""
    return PACKED_REGISTER[normalise_chip(chip)] if packed else REG_DATA


def subscribe_command(chip: str, packed: bool, on: bool = True) -> bytes:
    """Subscribe to (or unsubscribe from) plain or packed data (§2.4)."""
    return bytes([MODULE_ACC, data_register(chip, packed), 1 if on else 0])


def sampling_command(enable: bool) -> bytes:
    """Enable (`03 02 01 00`) or disable (`03 02 00 01`) acceleration sampling."""
    return bytes([MODULE_ACC, REG_INTERRUPT_ENABLE, 1, 0] if enable else [MODULE_ACC, 2, 0, 1])


def power_command(chip: str, start: bool, rate_hz: float = DEFAULT_RATE_HZ) -> bytes:
    """Start (`03 01 01`; BMI270 below 12.5 Hz `03 01 02`) or stop (`03 01 00`)."""
    if not start:
        return bytes([MODULE_ACC, REG_POWER, 0])
    low_power = normalise_chip(chip) == "BMI270" and odr_code("BMI270", rate_hz)[1] < 12.5
    return bytes([MODULE_ACC, REG_POWER, 2 if low_power else 1])


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """Accelerometer module discovery reply `03 80 <implementation> <revision> …`."""

    implementation: int
    revision: int

    @property
    def chip(self) -> str | None:
        """Chip name, or None for an unknown implementation."""
        return CHIP_BY_IMPLEMENTATION.get(self.implementation)

    @property
    def supports_packed(self) -> bool:
        """True when the firmware can send packed (3-sample) notifications."""
        chip = self.chip
        return chip is not None and self.revision >= PACKED_MIN_REVISION[chip]


def parse_module_info(payload: bytes) -> ModuleInfo:
    """Parse the discovery reply; raise ProtocolError when it is not one or the module is absent."""
    if len(payload) < 2 or payload[0] != MODULE_ACC or payload[1] != REG_INFO:
        raise ProtocolError(f"not an accelerometer module info reply: {payload.hex()}")
    if len(payload) < 4:
        raise ProtocolError("the board has no accelerometer module (empty module info)")
    return ModuleInfo(payload[2], payload[3])


def encode_samples(register: int, counts: NDArray[np.integer[Any]]) -> bytes:
    """Encode int16 counts (shape (n, 3)) as one data notification (for emulators and fixtures)."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 3:
        raise ValueError(f"counts must have shape (n, 3), got {counts.shape}")
    return bytes([MODULE_ACC, register]) + counts.astype("<i2").tobytes()


def g_to_counts(accel_g: NDArray[np.floating[Any]], lsb_per_g: float) -> NDArray[np.int16]:
    """Round acceleration in g to the int16 counts the chip sends (clipped to full scale)."""
    counts = np.rint(np.asarray(accel_g, dtype=np.float64) * lsb_per_g)
    return np.clip(counts, -32768, 32767).astype(np.int16)


class MetaWearDecoder:
    """Decoder of one connection's notifications on 326a9006; timed by a `SampleClock`.

    Settings (as in ble-vectors.json; unknown keys ignored): `chip` (default BMI270),
    `range_g` (default: the chip's SDK default), `lsb_per_g` (overrides the range),
    `sample_rate_hz` (default 100).
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.chip = normalise_chip(settings.get("chip") or DEFAULT_CHIP)
        if self.chip == "MMA8452Q":
            self.lsb_per_g = MMA8452Q_LSB_PER_G
        elif settings.get("lsb_per_g"):
            self.lsb_per_g = float(settings["lsb_per_g"])
        else:
            range_g = int(settings.get("range_g") or SDK_DEFAULT_RANGE_G[self.chip])
            self.lsb_per_g = bosch_lsb_per_g(range_g)
        self.sample_rate_hz = float(settings.get("sample_rate_hz") or DEFAULT_RATE_HZ)
        self.packed_register = PACKED_REGISTER[self.chip]
        self.clock = SampleClock(self.sample_rate_hz)
        self.module_info: ModuleInfo | None = None

    def parse(self, payload: bytes) -> NDArray[np.float32]:
        """Return the samples of one data notification in g, shape (n, 3); DecodeError if bad."""
        if len(payload) < 2 or payload[0] != MODULE_ACC:
            raise DecodeError(f"MetaWear: not an accelerometer notification: {payload[:4].hex()}")
        register = payload[1]
        if register == REG_DATA:
            n = 1
        elif register == self.packed_register:
            n = PACKED_SAMPLES
        else:
            raise DecodeError(f"MetaWear: unexpected accelerometer register 0x{register:02x}")
        if len(payload) != 2 + n * SAMPLE_BYTES:
            raise DecodeError(
                f"MetaWear: register 0x{register:02x} needs {2 + n * SAMPLE_BYTES} bytes, "
                f"got {len(payload)}"
            )
        counts = np.frombuffer(payload, "<i2", n * 3, 2).reshape(n, 3)
        return (counts / self.lsb_per_g).astype(np.float32)

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one notification received at host UTC `received_ns`."""
        payload = bytes(payload)
        if switch_state(payload) is not None:
            return []  # the button shares the characteristic; the session handles it
        if payload[:2] == DISCOVERY:
            try:
                info = parse_module_info(payload)
            except ProtocolError as exc:
                raise DecodeError(str(exc)) from None
            if info.chip != self.chip:
                raise DecodeError(
                    f"MetaWear: the board reports {info.chip or info.implementation} but the "
                    f"stream was configured for {self.chip}; set settings chip"
                )
            self.module_info = info
            return []
        accel_g = self.parse(payload)
        timing = self.clock.push(len(accel_g), received_ns, payload)
        if timing is None:
            return []
        return [SampleBlock(timing.t0_ns, timing.fs_hz, accel_g)]


def _chosen(settings: Mapping[str, Any]) -> dict[str, Any]:
    chip = normalise_chip(settings.get("chip") or DEFAULT_CHIP)
    _, rate_hz = odr_code(chip, float(settings.get("sample_rate_hz") or DEFAULT_RATE_HZ))
    range_g = int(settings.get("range_g") or SDK_DEFAULT_RANGE_G[chip])
    packed = bool(settings.get("packed", rate_hz > DEFAULT_RATE_HZ))
    return {"chip": chip, "sample_rate_hz": rate_hz, "range_g": range_g, "packed": packed}


class MetaWearProfile:
    """MetaMotion S/R/RL/C (and legacy MetaWear) accelerometer over the MetaWear service."""

    name: str = "metawear"
    service_uuids: tuple[str, ...] = (SERVICE_UUID,)
    control_uuids: tuple[str, ...] = ()  # replies share 326a9006 with the data (see start)
    data_uuid: str = NOTIFY_UUID
    button_uuid: str = NOTIFY_UUID  # the switch module's notifications share it

    def __init__(self) -> None:
        self._chip = DEFAULT_CHIP  # of the last start(): stop() unsubscribes its packed register

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for the MetaWear service UUID or a MetaWear/MetaMotion name."""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        name = advertisement.local_name or ""
        return SERVICE_UUID in uuids or name.startswith(("MetaWear", "MetaMotion"))

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Discover, configure (always explicitly, §2.3), subscribe, enable and start.

        The discovery reply arrives on 326a9006 with the data, so the decoder checks it
        against the configured `chip` (settings; default BMI270) and refuses the stream on a
        mismatch. Settings: `chip`, `sample_rate_hz` (nearest ODR), `range_g`, `packed`
        (default: above 100 Hz, as the SDK advises).
        """
        chosen = _chosen(settings)
        chip = chosen["chip"]
        if chip == "MMA8452Q":
            raise ProtocolError("MetaWear MMA8452Q: configuration bytes are not documented")
        try:
            config = config_command(chip, chosen["sample_rate_hz"], chosen["range_g"])
        except ValueError as exc:
            raise ProtocolError(f"MetaWear: {exc}") from None
        await client.write(COMMAND_UUID, DISCOVERY)
        await client.write(COMMAND_UUID, config)
        await client.write(COMMAND_UUID, subscribe_command(chip, chosen["packed"]))
        await client.write(COMMAND_UUID, sampling_command(True))
        await client.write(COMMAND_UUID, power_command(chip, True, chosen["sample_rate_hz"]))
        self._chip = chip
        return {**chosen, "lsb_per_g": bosch_lsb_per_g(chosen["range_g"])}

    async def stop(self, client: ControlLink) -> None:
        """Stop, disable sampling, unsubscribe plain and packed data (§2.4)."""
        chip = self._chip
        await client.write(COMMAND_UUID, power_command(chip, False))
        await client.write(COMMAND_UUID, sampling_command(False))
        await client.write(COMMAND_UUID, subscribe_command(chip, False, on=False))
        await client.write(COMMAND_UUID, subscribe_command(chip, True, on=False))

    async def start_button(self, client: ControlLink) -> None:
        """Subscribe to the switch module (its changes come on 326a9006)."""
        await client.write(COMMAND_UUID, SWITCH_SUBSCRIBE)

    def button_state(self, payload: bytes) -> int | None:
        """1 pushed, 0 released for a switch notification; None for anything else."""
        return switch_state(payload)

    def decoder(self, settings: Mapping[str, Any]) -> MetaWearDecoder:
        """Return a fresh decoder for one connection with negotiated `settings`."""
        return MetaWearDecoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """MetaWear sends no "stopped" notification."""
        return False


PROFILE = MetaWearProfile()

__all__ = [
    "COMMAND_UUID",
    "DISCOVERY",
    "MODULE_SWITCH",
    "NOTIFY_UUID",
    "PROFILE",
    "REG_SWITCH_STATE",
    "SERVICE_UUID",
    "SWITCH_SUBSCRIBE",
    "MetaWearDecoder",
    "MetaWearProfile",
    "ModuleInfo",
    "bosch_lsb_per_g",
    "config_command",
    "data_register",
    "encode_samples",
    "g_to_counts",
    "odr_code",
    "parse_module_info",
    "power_command",
    "sampling_command",
    "subscribe_command",
    "switch_state",
]
