"""Polar Measurement Data (PMD) service: H10, OH1, Verity Sense accelerometer streaming.

Wire format: ../shared/docs/ble-protocols.md §1 (from polarofficial/polar-ble-sdk@8fb5311c).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.devices.polar_pmd_frames import (
    HEADER_BYTES,
    MEASUREMENT_ACC,
    NS_PER_S,
    AccFrame,
    encode_delta_content,
    encode_raw_frame,
    parse_delta_content,
    parse_frame,
    sample_timestamps_ns,
)
from collector.errors import DecodeError, ProtocolError

log = logging.getLogger(__name__)

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CP_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

OP_GET_SETTINGS = 0x01
OP_START = 0x02
OP_STOP = 0x03
CP_RESPONSE = 0xF0  # first byte of every CP response; anything else is device-initiated
CP_MEASUREMENT_STOPPED = 0x01  # device-initiated: ONLINE_MEASUREMENT_STOPPED, then types
GET_ACC_SETTINGS = bytes([OP_GET_SETTINGS, MEASUREMENT_ACC])
STOP_ACC = bytes([OP_STOP, MEASUREMENT_ACC])

# Device time counts ns since 2000-01-01T00:00:00; this is that instant in Unix ns.
EPOCH_2000_UNIX_NS = 946_684_800_000_000_000
# A per-sample interval further than this from the nominal one means frames were lost or
# the device clock was set; crystal drift is far below 1 %, so 10 % cannot be mistaken.
MAX_INTERVAL_DEVIATION = 0.10
# Seconds to wait for a CP response: the SDK uses a few seconds, and an H10 answers in < 1 s.
CP_TIMEOUT_S = 10.0
# Requested values when the caller gives none: 50 Hz / ±8 g suits wrist activity monitoring.
DEFAULT_RATE_HZ = 50
DEFAULT_RANGE_G = 8
_INT64_MAX = 2**63 - 1


class CpStatus(IntEnum):
    """Control point response status (§1.3)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


class SettingType(IntEnum):
    """Setting type codes of the TLV settings list (§1.2)."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5
    SECURITY = 6


_VALUE_SIZE = {
    SettingType.SAMPLE_RATE: 2,
    SettingType.RESOLUTION: 2,
    SettingType.RANGE: 2,
    SettingType.RANGE_MILLIUNIT: 4,
    SettingType.CHANNELS: 1,
    SettingType.FACTOR: 4,
    SettingType.SECURITY: 16,
}


def parse_settings(data: bytes) -> dict[str, list[Any]]:
    """Parse a TLV settings list into {"SAMPLE_RATE": [52, ...], ...}.

    Raises:
        ProtocolError: unknown setting type or truncated list.
    """
    out: dict[str, list[Any]] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ProtocolError(f"PMD settings truncated at byte {i}: {data.hex()}")
        code, count = data[i], data[i + 1]
        try:
            kind = SettingType(code)
        except ValueError:
            raise ProtocolError(f"PMD settings: unknown setting type {code} at byte {i}") from None
        size = _VALUE_SIZE[kind]
        i += 2
        if i + size * count > len(data):
            raise ProtocolError(f"PMD settings: {kind.name} values truncated: {data.hex()}")
        values: list[Any] = []
        for _ in range(count):
            raw = data[i : i + size]
            if kind is SettingType.FACTOR:
                values.append(struct.unpack("<f", raw)[0])
            elif kind is SettingType.SECURITY:
                values.append(raw.hex())
            else:
                values.append(int.from_bytes(raw, "little"))
            i += size
        out[kind.name] = values
    return out


def serialize_settings(selected: Mapping[str, int]) -> bytes:
    """Serialize one value per setting (count = 1, FACTOR never sent), in type order."""
    out = bytearray()
    for kind in SettingType:
        if kind.name not in selected or kind in (SettingType.FACTOR, SettingType.SECURITY):
            continue
        out += bytes([kind, 1]) + int(selected[kind.name]).to_bytes(_VALUE_SIZE[kind], "little")
    return bytes(out)


def start_command(sample_rate_hz: int, resolution_bits: int, range_g: int, channels: int) -> bytes:
    """CP bytes that start online ACC streaming with the given settings."""
    selected = {
        "SAMPLE_RATE": sample_rate_hz,
        "RESOLUTION": resolution_bits,
        "RANGE": range_g,
        "CHANNELS": channels,
    }
    return bytes([OP_START, MEASUREMENT_ACC]) + serialize_settings(selected)


@dataclass(frozen=True, slots=True)
class CpResponse:
    """One CP response packet: `F0, opcode, type, status, more, params…`."""

    opcode: int
    measurement_type: int
    status: CpStatus | int
    more: bool
    params: bytes


def parse_cp_response(payload: bytes) -> CpResponse:
    """Parse one CP response packet.

    Raises:
        ProtocolError: not a response (device-initiated packet) or too short.
    """
    if len(payload) < 4 or payload[0] != CP_RESPONSE:
        raise ProtocolError(f"not a PMD control point response: {payload.hex()}")
    try:
        status: CpStatus | int = CpStatus(payload[3])
    except ValueError:
        status = payload[3]
    more = len(payload) > 4 and payload[4] != 0 and status == CpStatus.SUCCESS
    params = payload[5:] if status == CpStatus.SUCCESS else b""
    return CpResponse(payload[1], payload[2] & 0x3F, status, more, bytes(params))


def is_measurement_stopped(payload: bytes) -> bool:
    """Return True for the device-initiated "online measurement stopped" packet for ACC."""
    return (
        len(payload) >= 1
        and payload[0] == CP_MEASUREMENT_STOPPED
        and (len(payload) == 1 or any(b & 0x3F == MEASUREMENT_ACC for b in payload[1:]))
    )


def choose_nearest(available: Sequence[int] | None, requested: int) -> int:
    """Return `requested` if available, else the nearest available value (ties: the higher)."""
    if not available:
        return requested
    if requested in available:
        return requested
    return min(available, key=lambda v: (abs(v - requested), -v))


async def _await_response(link: ControlLink, opcode: int) -> CpResponse:
    """Wait for the CP response to `opcode`, joining `more` continuations."""
    first: CpResponse | None = None
    params = b""
    while True:
        payload = await link.receive(CP_UUID, CP_TIMEOUT_S)
        if not payload or payload[0] != CP_RESPONSE:
            log.debug("ignoring device-initiated CP packet %s", payload.hex())
            continue
        resp = parse_cp_response(payload)
        if first is None:
            if resp.opcode != opcode:
                log.debug("ignoring CP response to opcode %d", resp.opcode)
                continue
            first = resp
        params += resp.params
        if not resp.more:
            break
    return CpResponse(first.opcode, first.measurement_type, first.status, False, params)


def _check(resp: CpResponse, what: str) -> None:
    status = resp.status
    if status != CpStatus.SUCCESS:
        name = status.name if isinstance(status, CpStatus) else f"status {status}"
        raise ProtocolError(f"Polar PMD {what} failed: {name}")


class PolarAccDecoder:
    """Decoder of one PMD ACC stream; keeps the previous frame timestamp and the UTC anchor."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.sample_rate_hz = float(settings.get("sample_rate_hz") or 0.0)
        self.factor = float(settings.get("factor", 1.0))
        self.resolution_bits = int(settings.get("resolution_bits", 16))
        self.channels = int(settings.get("channels", 3))
        self._initial_previous_ns = int(settings.get("previous_frame_timestamp_ns", 0) or 0)
        self._previous_ns: dict[int, int] = {}  # frame type -> last frame timestamp
        self.clock_offset_ns: int | None = None  # host UTC − device Unix time, fixed at frame 1
        self.last_sample_times_ns: list[int] = []  # device ns since 2000 of the last frame
        self.n_timestamp_resets = 0
        self.n_duplicates = 0  # frames delivered twice (e.g. bleak's repeat callbacks), dropped
        self._last_payload: bytes = b""

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode one data notification received at host UTC `received_ns` into one block."""
        frame = parse_frame(
            bytes(payload),
            factor=self.factor,
            resolution_bits=self.resolution_bits,
            channels=self.channels,
        )
        n = frame.samples_mg.shape[0]
        ts = frame.timestamp_ns
        previous = self._previous_ns.get(frame.frame_type, self._initial_previous_ns)
        if previous and ts == previous and bytes(payload) == self._last_payload:
            # The same frame delivered twice: drop and count it, it is not bad data.
            self.n_duplicates += 1
            return []
        self._last_payload = bytes(payload)
        if previous and ts <= previous:
            raise DecodeError(f"PMD frame timestamp {ts} not after the previous one {previous}")
        if previous and self.sample_rate_hz > 0:
            nominal = NS_PER_S / self.sample_rate_hz
            if abs((ts - previous) / n - nominal) > MAX_INTERVAL_DEVIATION * nominal:
                # Lost frames or a clock jump: restart timing so the gap stays a gap.
                self.n_timestamp_resets += 1
                previous = 0
        if not previous and self.sample_rate_hz <= 0:
            raise DecodeError("first PMD frame but the sample rate is unknown")
        times = sample_timestamps_ns(ts, previous, n, self.sample_rate_hz)
        interval = (ts - previous) / n if previous else NS_PER_S / self.sample_rate_hz
        offset = self.clock_offset_ns
        if offset is None:
            offset = int(received_ns) - (ts + EPOCH_2000_UNIX_NS)
        t0 = times[0] + EPOCH_2000_UNIX_NS + offset
        t_end = ts + EPOCH_2000_UNIX_NS + offset
        if not (0 <= t0 and t_end <= _INT64_MAX):
            raise DecodeError(f"PMD frame timestamp {ts} gives a UTC time outside int64 ns")
        block = SampleBlock(
            t0_ns=t0,
            fs_hz=NS_PER_S / interval,
            accel_g=(frame.samples_mg.astype(np.float64) / 1000.0).astype(np.float32),
        )
        self.clock_offset_ns = offset
        self._previous_ns[frame.frame_type] = ts
        self.last_sample_times_ns = times
        return [block]


class PolarPmdProfile:
    """Polar H10 / OH1 / Verity Sense accelerometer over the PMD service."""

    name: str = "polar_pmd"
    service_uuids: tuple[str, ...] = (SERVICE_UUID,)
    control_uuids: tuple[str, ...] = (CP_UUID,)
    data_uuid: str = DATA_UUID

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for advertisements with the PMD service or a Polar H10/OH1/Sense name."""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        name = advertisement.local_name or ""
        return SERVICE_UUID in uuids or name.startswith(("Polar H10", "Polar OH1", "Polar Sense"))

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Query the ACC settings, start ACC streaming with the nearest supported ones.

        Raises:
            ProtocolError: the device refused a command.
        """
        await client.write(CP_UUID, GET_ACC_SETTINGS)
        resp = await _await_response(client, OP_GET_SETTINGS)
        _check(resp, "get ACC settings")
        available = parse_settings(resp.params)
        chosen = {
            "sample_rate_hz": choose_nearest(
                available.get("SAMPLE_RATE"), int(settings.get("sample_rate_hz", DEFAULT_RATE_HZ))
            ),
            "resolution_bits": choose_nearest(
                available.get("RESOLUTION"), int(settings.get("resolution_bits", 16))
            ),
            "range_g": choose_nearest(
                available.get("RANGE"), int(settings.get("range_g", DEFAULT_RANGE_G))
            ),
            "channels": choose_nearest(available.get("CHANNELS"), int(settings.get("channels", 3))),
        }
        command = start_command(
            chosen["sample_rate_hz"],
            chosen["resolution_bits"],
            chosen["range_g"],
            chosen["channels"],
        )
        await client.write(CP_UUID, command)
        resp = await _await_response(client, OP_START)
        if resp.status == CpStatus.ALREADY_IN_STATE:
            # A previous host left the stream running (H10 known issue): stop, then start again.
            await self.stop(client)
            await client.write(CP_UUID, command)
            resp = await _await_response(client, OP_START)
        _check(resp, "start ACC")
        factor = parse_settings(resp.params).get("FACTOR", [1.0])[0]
        return {"measurement_type": MEASUREMENT_ACC, **chosen, "factor": float(factor)}

    async def stop(self, client: ControlLink) -> None:
        """Stop ACC streaming (ALREADY_IN_STATE counts as stopped).

        Raises:
            ProtocolError: the device refused the stop command.
        """
        await client.write(CP_UUID, STOP_ACC)
        resp = await _await_response(client, OP_STOP)
        if resp.status != CpStatus.ALREADY_IN_STATE:
            _check(resp, "stop ACC")

    def decoder(self, settings: Mapping[str, Any]) -> PolarAccDecoder:
        """Return a fresh ACC decoder for negotiated `settings`."""
        return PolarAccDecoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """Return True when the CP packet says the device stopped ACC streaming."""
        return is_measurement_stopped(control_payload)


PROFILE = PolarPmdProfile()


__all__ = [
    "CP_UUID",
    "DATA_UUID",
    "EPOCH_2000_UNIX_NS",
    "GET_ACC_SETTINGS",
    "HEADER_BYTES",
    "MEASUREMENT_ACC",
    "PROFILE",
    "SERVICE_UUID",
    "STOP_ACC",
    "AccFrame",
    "CpResponse",
    "CpStatus",
    "PolarAccDecoder",
    "PolarPmdProfile",
    "SettingType",
    "choose_nearest",
    "encode_delta_content",
    "encode_raw_frame",
    "is_measurement_stopped",
    "parse_cp_response",
    "parse_delta_content",
    "parse_frame",
    "parse_settings",
    "sample_timestamps_ns",
    "serialize_settings",
    "start_command",
]
