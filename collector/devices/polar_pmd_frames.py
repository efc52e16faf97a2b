"""Polar PMD ACC data frames: parse, encode, delta coding and the SDK sample-timestamp rule.

Wire format: ../shared/docs/ble-protocols.md §1.4 (from polarofficial/polar-ble-sdk@8fb5311c).
Pure functions, no state: `polar_pmd.PolarAccDecoder` keeps the per-stream state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collector.errors import DecodeError

MEASUREMENT_ACC = 2  # PmdMeasurementType.ACC
HEADER_BYTES = 10  # type (1) + timestamp (8) + frame type (1)
NS_PER_S = 1_000_000_000
# A notification carries at most MTU − 3 bytes; without an MTU exchange (23) that is 20 (§1.1).
ATT_DEFAULT_PAYLOAD = 20


@dataclass(frozen=True, slots=True)
class AccFrame:
    """One parsed PMD ACC data frame: device timestamp of the last sample and mG samples."""

    measurement_type: int
    frame_type: int  # byte 9, including the compressed flag (0x01, 0x80, 0x81, ...)
    timestamp_ns: int  # device ns since 2000-01-01 of the last sample
    samples_mg: NDArray[np.int64]  # shape (n, 3)


def parse_delta_content(content: bytes, resolution_bits: int, channels: int) -> NDArray[np.int64]:
    """Decode delta-compressed frame content into raw counts, shape (n, channels).

    Raises:
        DecodeError: truncated content or an impossible bit width.
    """
    ref_size = math.ceil(resolution_bits / 8)
    if resolution_bits < 1 or channels < 1:
        raise DecodeError(f"bad resolution {resolution_bits} / channels {channels}")
    if len(content) < channels * ref_size:
        raise DecodeError(f"delta frame of {len(content)} bytes has no reference sample")
    ref = [
        int.from_bytes(content[c * ref_size : (c + 1) * ref_size], "little", signed=True)
        for c in range(channels)
    ]
    rows: list[NDArray[np.int64]] = [np.asarray([ref], dtype=np.int64)]
    i = channels * ref_size
    while i < len(content):
        if i + 2 > len(content):
            raise DecodeError(f"delta block header truncated at byte {i}")
        width, count = content[i], content[i + 1]
        if width > 32:
            raise DecodeError(f"delta bit width {width} > 32 at byte {i}")
        n_bits = width * count * channels
        n_bytes = math.ceil(n_bits / 8)
        i += 2
        if i + n_bytes > len(content):
            raise DecodeError(f"delta block of {count} samples x {width} bits truncated")
        if width == 0:
            deltas = np.zeros((count, channels), dtype=np.int64)
        else:
            packed = np.frombuffer(content, np.uint8, n_bytes, i)
            unpacked = np.unpackbits(packed, bitorder="little")
            bits = unpacked[:n_bits].reshape(count * channels, width).astype(np.int64)
            values = bits @ (np.int64(1) << np.arange(width, dtype=np.int64))
            values = np.where(bits[:, -1] == 1, values - (np.int64(1) << width), values)
            deltas = values.reshape(count, channels)
        rows.append(deltas)
        i += n_bytes
    return np.cumsum(np.concatenate(rows), axis=0)


def encode_delta_content(counts: NDArray[np.integer[Any]], resolution_bits: int = 16) -> bytes:
    """Inverse of `parse_delta_content` with one delta block (for tests and emulators)."""
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[0]
    ref_size = math.ceil(resolution_bits / 8)
    out = bytearray(b"".join(int(v).to_bytes(ref_size, "little", signed=True) for v in counts[0]))
    if n > 1:
        deltas = np.diff(counts, axis=0).ravel()
        width = max(1, int(max(int(abs(d)) for d in deltas)).bit_length() + 1)
        bits = ((deltas[:, None] >> np.arange(width)) & 1).astype(np.uint8).ravel()
        out += bytes([width, n - 1]) + np.packbits(bits, bitorder="little").tobytes()
    return bytes(out)


def parse_frame(
    payload: bytes, *, factor: float = 1.0, resolution_bits: int = 16, channels: int = 3
) -> AccFrame:
    """Parse one PMD data notification carrying ACC samples into mG.

    Raises:
        DecodeError: wrong measurement type, truncated frame, unsupported frame type, or a
        factor other than 1.0 on a raw frame.
    """
    if len(payload) < HEADER_BYTES:
        raise DecodeError(f"PMD frame of {len(payload)} bytes is shorter than its header")
    mtype = payload[0] & 0x3F
    if mtype != MEASUREMENT_ACC:
        raise DecodeError(f"PMD frame of measurement type {mtype}, expected ACC (2)")
    timestamp = int.from_bytes(payload[1:9], "little")
    frame_type = payload[9]
    content = payload[HEADER_BYTES:]
    if frame_type == 0x01:
        if factor != 1.0:
            raise DecodeError(f"raw ACC frame with factor {factor!r} != 1.0 (SDK uses mG as is)")
        if len(content) % 6:
            hint = (
                " (20 bytes: cut by an ATT MTU of 23?)"
                if len(payload) == ATT_DEFAULT_PAYLOAD
                else ""
            )
            raise DecodeError(
                f"raw ACC frame content of {len(content)} bytes is not a multiple of 6{hint}"
            )
        mg = np.frombuffer(content, dtype="<i2").reshape(-1, 3).astype(np.int64)
    elif frame_type in (0x80, 0x81):
        try:
            counts = parse_delta_content(content, resolution_bits, channels)
        except DecodeError as exc:
            if len(payload) == ATT_DEFAULT_PAYLOAD:
                raise DecodeError(f"{exc} (20 bytes: cut by an ATT MTU of 23?)") from None
            raise
        if counts.shape[1] != 3:
            raise DecodeError(f"ACC frame with {counts.shape[1]} channels, expected 3")
        f32 = np.float32(factor)
        if frame_type == 0x80:
            mg = np.trunc(counts.astype(np.float32) * f32 * np.float32(1000)).astype(np.int64)
        elif factor != 1.0:
            mg = np.trunc(counts.astype(np.float32) * f32).astype(np.int64)
        else:
            mg = counts
    else:
        raise DecodeError(f"PMD ACC frame type 0x{frame_type:02x} not supported yet")
    if mg.shape[0] == 0:
        raise DecodeError("PMD frame has no samples")
    return AccFrame(mtype, frame_type, timestamp, mg)


def encode_raw_frame(
    device_ts_ns: int, samples_mg: NDArray[np.integer[Any]] | Sequence[Any]
) -> bytes:
    """Encode a raw (type 0x01, int16 mG) ACC frame; `device_ts_ns` is the last sample's time."""
    mg = np.asarray(samples_mg)
    if mg.ndim != 2 or mg.shape[1] != 3:
        raise ValueError(f"samples_mg must have shape (n, 3), got {mg.shape}")
    if mg.size and (mg.min() < -32768 or mg.max() > 32767):
        raise ValueError("samples_mg out of int16 range")
    if not 0 <= device_ts_ns < 2**64:
        raise ValueError(f"device_ts_ns out of uint64 range: {device_ts_ns}")
    header = bytes([MEASUREMENT_ACC]) + device_ts_ns.to_bytes(8, "little") + b"\x01"
    return header + mg.astype("<i2").tobytes()


def sample_timestamps_ns(
    timestamp_ns: int, previous_ns: int, n: int, sample_rate_hz: float
) -> list[int]:
    """Device time of each sample per the SDK rule (PmdTimeStampUtils; round half to even)."""
    if previous_ns:
        delta = (timestamp_ns - previous_ns) / n
        times = [round(previous_ns + delta * (i + 1)) for i in range(n - 1)]
    else:
        delta = NS_PER_S / sample_rate_hz
        times = [round(timestamp_ns - delta * (n - 1) + delta * i) for i in range(n - 1)]
    return [*times, timestamp_ns]
