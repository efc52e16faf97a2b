"""WitMotion BWT901BLECL / WT901BLECL (BLE 5.0 module): 0x55 0x61 frames over a byte stream.

Wire format: ../shared/docs/ble-protocols.md §6 (WITMOTION/WitBluetooth_BWT901BLE5_0@9efaab0f).
The module bridges a UART: notifications carry a byte stream in which 20-byte frames may be
split or concatenated, so the decoder reassembles across notifications and resynchronises
on the `55 61` / `55 71` headers. Frames carry no timestamp and no checksum.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from bleak.backends.scanner import AdvertisementData
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.devices.base import ControlLink
from collector.errors import DecodeError
from collector.timing import SampleClock

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

HEADER = 0x55
FLAG_DATA = 0x61  # acc + gyro + angle (the default packet)
FLAG_REGISTER = 0x71  # reply to a read-register command: skipped, not a sample
FRAME_BYTES = 20
FULL_SCALE_G = 16  # acc = raw / 32768 × 16 g (§6; fixed in the vendor formula)
GYRO_FULL_SCALE_DPS = 2000
ANGLE_FULL_SCALE_DEG = 180
_FRAME = struct.Struct("<2B9h")

# Commands are `FF AA <reg> <valueL> <valueH>` (§6).
UNLOCK = bytes.fromhex("ffaa6988b5")
SAVE = bytes.fromhex("ffaa000000")
REG_RATE = 0x03
# Return-rate codes documented for this module (`SetRRate`, §6); other codes are unverified.
RATE_CODES = {1: 0x03, 5: 0x05, 10: 0x06, 50: 0x08, 100: 0x09, 200: 0x0B}
DEFAULT_RATE_HZ = 50  # the lowest documented rate that covers wrist activity (device default: 10)
# "unlock → write → save, about 100 ms apart" (§6): the module ignores commands sent faster.
COMMAND_GAP_S = 0.1
# The same bytes again within 1 ms are a repeated delivery, not new data: at ≤ 200 Hz a new
# notification differs (new samples), and bleak's double callbacks arrive microseconds apart.
DUPLICATE_WINDOW_NS = 1_000_000


def command(register: int, value: int) -> bytes:
    """Return the 5-byte write-register command."""
    if not (0 <= register <= 0xFF and 0 <= value <= 0xFFFF):
        raise ValueError(f"WitMotion register/value out of range: {register!r}, {value!r}")
    return bytes([0xFF, 0xAA, register]) + value.to_bytes(2, "little")


def nearest_rate_hz(requested_hz: float) -> int:
    """Return the documented rate nearest to `requested_hz` (ties: the higher)."""
    return min(RATE_CODES, key=lambda r: (abs(r - requested_hz), -r))


def rate_command(rate_hz: int) -> bytes:
    """Return the return-rate command for a documented rate.

    Raises:
        ValueError: `rate_hz` has no documented code.
    """
    if rate_hz not in RATE_CODES:
        raise ValueError(f"WitMotion rate_hz must be one of {sorted(RATE_CODES)}, got {rate_hz!r}")
    return command(REG_RATE, RATE_CODES[rate_hz])


@dataclass(frozen=True, slots=True)
class WitFrame:
    """One 0x61 data frame in integer counts (full scale ±32768)."""

    acc: tuple[int, int, int]
    gyro: tuple[int, int, int] = (0, 0, 0)
    angle: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_bytes(cls, frame: bytes) -> WitFrame:
        """Parse one 20-byte `55 61` frame.

        Raises:
            DecodeError: wrong length or header.
        """
        if len(frame) != FRAME_BYTES:
            raise DecodeError(f"WitMotion frame must be {FRAME_BYTES} bytes, got {len(frame)}")
        header, flag, *v = _FRAME.unpack(frame)
        if header != HEADER or flag != FLAG_DATA:
            raise DecodeError(f"WitMotion frame header must be 55 61, got {frame[:2].hex(' ')}")
        return cls((v[0], v[1], v[2]), (v[3], v[4], v[5]), (v[6], v[7], v[8]))

    def __bytes__(self) -> bytes:
        return _FRAME.pack(HEADER, FLAG_DATA, *self.acc, *self.gyro, *self.angle)


def encode_frames(acc_counts: NDArray[np.integer[Any]]) -> bytes:
    """Encode (n, 3) int16 accel counts (g = count/32768·16) as a byte stream of 0x61 frames.

    Gyro is zero; roll and pitch are the tilt angles of the acceleration, yaw zero.
    """
    acc = np.asarray(acc_counts, dtype=np.float64)
    roll = np.degrees(np.arctan2(acc[:, 1], acc[:, 2]))
    pitch = np.degrees(np.arctan2(-acc[:, 0], np.hypot(acc[:, 1], acc[:, 2])))
    angle = np.clip(np.rint(np.stack([roll, pitch]) / ANGLE_FULL_SCALE_DEG * 32768), -32768, 32767)
    out = bytearray()
    for k, (x, y, z) in enumerate(np.asarray(acc_counts)):
        out += bytes(
            WitFrame((int(x), int(y), int(z)), angle=(int(angle[0, k]), int(angle[1, k]), 0))
        )
    return bytes(out)


class FrameReassembler:
    """Cut a notification byte stream into frames, resynchronising on `55 61` / `55 71`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.n_skipped_bytes = 0
        self.n_register_frames = 0

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Add bytes; return the complete data frames and how many bytes were skipped."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        skipped = 0
        i = 0
        while True:
            j = buf.find(HEADER, i)
            if j < 0:
                skipped += len(buf) - i
                i = len(buf)
                break
            skipped += j - i
            i = j
            if len(buf) - i < 2:
                break
            if buf[i + 1] not in (FLAG_DATA, FLAG_REGISTER):
                skipped += 1  # a 0x55 that is not a header
                i += 1
                continue
            if len(buf) - i < FRAME_BYTES:
                break
            if buf[i + 1] == FLAG_DATA:
                frames.append(bytes(buf[i : i + FRAME_BYTES]))
            else:
                self.n_register_frames += 1
            i += FRAME_BYTES
        del buf[:i]
        self.n_skipped_bytes += skipped
        return frames, skipped


class WitMotionDecoder:
    """Decoder of one connection's byte stream, timed by a `SampleClock` at the set rate.

    Samples are attributed to the notification that completes their frame. A notification
    of at least a frame's length repeating the previous one byte for byte within
    `DUPLICATE_WINDOW_NS` is a duplicate delivery (bleak's double callback after a
    reconnect): it is dropped before reassembly and counted in `n_duplicates`. Shorter
    repeats are legitimate stream bytes (two `00 00` chunks are nothing unusual).
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.full_scale_g = float(settings.get("acc_full_scale_g") or FULL_SCALE_G)
        self.sample_rate_hz = float(settings.get("sample_rate_hz") or DEFAULT_RATE_HZ)
        self.reassembler = FrameReassembler()
        self.clock = SampleClock(self.sample_rate_hz)
        self.n_duplicates = 0
        self._last: tuple[bytes, int] | None = None

    def decode(self, payload: bytes, received_ns: int) -> list[SampleBlock]:
        """Decode the frames completed by one notification received at host UTC `received_ns`.

        Raises:
            DecodeError: the notification held bytes outside any frame (a corrupted or
                truncated stream). The frames it completed are dropped too, since without a
                checksum they cannot be trusted; they are still counted, so the next block
                starts after them and the assembler reports their gap exactly.
        """
        payload = bytes(payload)
        last, self._last = self._last, (payload, int(received_ns))
        if (
            last is not None
            and len(payload) >= FRAME_BYTES
            and last[0] == payload
            and received_ns - last[1] <= DUPLICATE_WINDOW_NS
        ):
            self.n_duplicates += 1
            return []
        frames, skipped = self.reassembler.feed(payload)
        if skipped:
            if frames:  # keep counting: the dropped frames become an exact gap
                self.clock.push(len(frames), received_ns)
            raise DecodeError(
                f"WitMotion stream: skipped {skipped} bytes outside 55 61/55 71 frames "
                f"(and dropped the {len(frames)} frames completed with them)"
            )
        if not frames:
            return []
        timing = self.clock.push(len(frames), received_ns)
        if timing is None:
            return []
        acc = np.asarray([WitFrame.from_bytes(f).acc for f in frames], dtype=np.float64)
        accel_g = (acc * (self.full_scale_g / 32768.0)).astype(np.float32)
        return [SampleBlock(timing.t0_ns, timing.fs_hz, accel_g)]


class WitMotionProfile:
    """WitMotion BWT901BLECL / WT901BLECL (BLE 5.0) accelerometer."""

    name: str = "witmotion"
    service_uuids: tuple[str, ...] = (SERVICE_UUID,)
    control_uuids: tuple[str, ...] = ()
    data_uuid: str = NOTIFY_UUID

    def matches(self, advertisement: AdvertisementData) -> bool:
        """Return True for a WT901 name, or a "WT…" name advertising the ffe5 service.

        ffe5/ffe9/ffe4 is a generic UART-bridge layout used by many unrelated gadgets, so
        the UUID alone is not enough.
        """
        name = advertisement.local_name or ""
        uuids = {u.lower() for u in advertisement.service_uuids or ()}
        return "WT901" in name or (name.startswith("WT") and SERVICE_UUID in uuids)

    async def start(self, client: ControlLink, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Set the return rate (nearest documented one): unlock → rate → save, 100 ms apart."""
        rate_hz = nearest_rate_hz(float(settings.get("sample_rate_hz") or DEFAULT_RATE_HZ))
        await client.write(WRITE_UUID, UNLOCK)
        await asyncio.sleep(COMMAND_GAP_S)
        await client.write(WRITE_UUID, rate_command(rate_hz))
        await asyncio.sleep(COMMAND_GAP_S)
        await client.write(WRITE_UUID, SAVE)
        return {"sample_rate_hz": rate_hz, "acc_full_scale_g": FULL_SCALE_G}

    async def stop(self, client: ControlLink) -> None:
        """Nothing to send: the module streams continuously; data ends with the subscription."""

    def decoder(self, settings: Mapping[str, Any]) -> WitMotionDecoder:
        """Return a fresh decoder (empty reassembly buffer) for one connection."""
        return WitMotionDecoder(settings)

    def measurement_stopped(self, control_payload: bytes) -> bool:
        """The module has no control notifications."""
        return False


PROFILE = WitMotionProfile()

__all__ = [
    "NOTIFY_UUID",
    "PROFILE",
    "RATE_CODES",
    "SAVE",
    "SERVICE_UUID",
    "UNLOCK",
    "WRITE_UUID",
    "FrameReassembler",
    "WitFrame",
    "WitMotionDecoder",
    "WitMotionProfile",
    "command",
    "encode_frames",
    "nearest_rate_hz",
    "rate_command",
]
