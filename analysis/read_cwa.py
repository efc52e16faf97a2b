"""Reader for Axivity AX3/AX6 ``.cwa`` files (OpenMovement continuous wave accelerometer).

Re-implemented from the public OpenMovement format description (``cwa.h`` /
"AX3 data format" in github.com/digitalinteraction/openmovement, BSD-2): a 1024-byte
``MD`` header sector, then 512-byte ``AX`` data sectors of one sensor FIFO each.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording

__all__ = ["read_cwa"]

#: Data sector size and the offset of its sample area (cwa.h ``OM_READER_DATA_PACKET``).
_SECTOR = 512
_SAMPLES_AT = 30
#: Header sector: "MD" + packet length; data starts at packet length + 4 (1024 bytes).
_HEADER_MIN = 1024
#: AX3 packed and int16 accel are in 1/256 g (cwa.h: "units of 1/256 g").
_AX3_LSB_PER_G = 256.0


def _unpack_timestamps(packed: NDArray[np.uint32]) -> NDArray[np.int64]:
    """Packed device clock (cwa.h ``OM_DATETIME``) to seconds since 1970 (device-local, no zone)."""
    year = (packed >> 26 & 0x3F).astype(np.int64) + 2000
    month = (packed >> 22 & 0x0F).astype(np.int64)
    day = (packed >> 17 & 0x1F).astype(np.int64)
    hour = (packed >> 12 & 0x1F).astype(np.int64)
    minute = (packed >> 6 & 0x3F).astype(np.int64)
    second = (packed & 0x3F).astype(np.int64)
    months = (year - 1970) * 12 + (month - 1)
    days = np.array(months, dtype="datetime64[M]").astype("datetime64[D]").astype(np.int64) + day - 1
    return days * 86_400 + hour * 3600 + minute * 60 + second


def _unpack_dword(words: NDArray[np.uint32]) -> NDArray[np.float64]:
    """Packed 3x10-bit + 2-bit exponent samples (cwa.h "packed mode") to 1/256 g, shape (n, 3)."""
    exp = (words >> 30).astype(np.int64)
    out = np.empty((words.size, 3), dtype=np.float64)
    for axis in range(3):
        v = (words >> (10 * axis) & 0x3FF).astype(np.int64)
        v = np.where(v >= 512, v - 1024, v)  # 10-bit two's complement
        out[:, axis] = v << exp
    return out


def read_cwa(path: str | os.PathLike[str]) -> Recording:
    """Read an Axivity AX3 (packed or int16) or AX6 (accel + gyro) ``.cwa`` file.

    Parameters
    ----------
    path : str or path-like
        ``.cwa`` file as written by the device (OMGUI / ``cwa-convert`` input).

    Returns
    -------
    Recording
        Acceleration in g (float64), shape (n, 3) per block, device axes; gyroscope data
        is not returned. Sample times follow the OpenMovement convention: each sector's
        timestamp (whole seconds + 1/32768 s fraction) dates sample ``timestampOffset``;
        times between sectors are interpolated linearly. The rate is the median of the
        per-sector effective rates rounded to 0.01 Hz (the configured rate is in
        ``device['configured_fs_hz']``). Device time has no zone: it is taken as UTC.

    Raises
    ------
    ReaderError
        Not a ``.cwa`` header, a truncated sector (byte offset given), a sector with an
        unknown sample format, or no data sectors.
    """
    p = Path(path)
    name = str(p)
    try:
        raw = np.memmap(p, dtype=np.uint8, mode="r") if p.stat().st_size else np.zeros(0, np.uint8)
    except OSError as exc:
        raise ReaderError(f"{name}: cannot read file: {exc}") from exc
    if raw.size < 4 or bytes(raw[:2]) != b"MD":
        raise ReaderError(f"{name}: byte 0: not an Axivity .cwa file (no 'MD' header)")
    header_len = int(raw[2]) | int(raw[3]) << 8
    start = max(header_len + 4, _HEADER_MIN)
    if raw.size < start:
        raise ReaderError(f"{name}: byte {raw.size}: truncated header ({raw.size} of {start} bytes)")
    body = raw[start:]
    n_sectors = body.size // _SECTOR
    if body.size % _SECTOR:
        raise ReaderError(
            f"{name}: byte {start + n_sectors * _SECTOR}: truncated data sector "
            f"({body.size % _SECTOR} of {_SECTOR} bytes)"
        )
    sectors = np.asarray(body[: n_sectors * _SECTOR]).reshape(n_sectors, _SECTOR)
    is_data = (sectors[:, 0] == ord("A")) & (sectors[:, 1] == ord("X"))
    sectors = sectors[is_data]
    offsets = start + np.flatnonzero(is_data) * _SECTOR
    if sectors.shape[0] == 0:
        raise ReaderError(f"{name}: byte {start}: no data sectors ('AX') in the file")

    def u16(at: int) -> NDArray[np.int64]:
        return sectors[:, at].astype(np.int64) | sectors[:, at + 1].astype(np.int64) << 8

    fractional = u16(4)
    light = u16(18)
    rate_code = sectors[:, 24].astype(np.int64)
    axes_bps = sectors[:, 25].astype(np.int64)
    ts_offset = u16(26)
    ts_offset = np.where(ts_offset >= 32768, ts_offset - 65536, ts_offset)
    count = u16(28)
    packed_ts = sectors[:, 14:18].copy().view("<u4").ravel()

    fs_conf = 3200.0 / (1 << (15 - (rate_code & 0x0F)))
    n_axes = axes_bps >> 4
    bps = axes_bps & 0x0F
    if np.unique(n_axes).size != 1 or np.unique(bps).size != 1 or np.unique(fs_conf).size != 1:
        i = int(np.flatnonzero((n_axes != n_axes[0]) | (bps != bps[0]) | (fs_conf != fs_conf[0]))[0])
        raise ReaderError(f"{name}: byte {offsets[i]}: sample format or rate changes within the file")
    axes, fmt, fs = int(n_axes[0]), int(bps[0]), float(fs_conf[0])
    if not ((axes == 3 and fmt in (0, 2)) or (axes in (6, 9) and fmt == 2)):
        raise ReaderError(f"{name}: byte {offsets[0]}: unsupported sample format (axes={axes}, bps={fmt})")
    bytes_per_sample = 4 if fmt == 0 else 2 * axes
    cap = (_SECTOR - _SAMPLES_AT - 2) // bytes_per_sample
    if (count > cap).any():
        i = int(np.flatnonzero(count > cap)[0])
        raise ReaderError(f"{name}: byte {offsets[i] + 28}: sample count {count[i]} exceeds {cap}")

    # Sample values of every sector at once, then keep the first `count` of each.
    area = sectors[:, _SAMPLES_AT : _SAMPLES_AT + cap * bytes_per_sample]
    if fmt == 0:
        words = np.ascontiguousarray(area).view("<u4")
        vals = _unpack_dword(words.ravel()).reshape(sectors.shape[0], cap, 3) / _AX3_LSB_PER_G
    else:
        ints = np.ascontiguousarray(area).view("<i2").reshape(sectors.shape[0], cap, axes)
        if axes == 3:
            vals = ints.astype(np.float64) / _AX3_LSB_PER_G
        else:
            # AX6/AX9: gyro x,y,z then accel x,y,z (cwa.h); accel unit 1 << (8 + scale bits).
            unit = (1 << (8 + ((light >> 13) & 0x07))).astype(np.float64)
            vals = ints[:, :, 3:6].astype(np.float64) / unit[:, None, None]
    keep = np.arange(cap)[None, :] < count[:, None]
    accel = vals[keep]

    # Times: the sector timestamp (+ fraction) dates sample index `ts_offset` (after undoing
    # the firmware's backwards-compatible shift when the fraction bit is set; cwa.h).
    whole_s = _unpack_timestamps(packed_ts)
    has_frac = (fractional & 0x8000) != 0
    frac_65536 = np.where(has_frac, (fractional & 0x7FFF) << 1, 0)
    ts_offset = ts_offset + np.where(has_frac, (frac_65536 * fs_conf.astype(np.int64)) >> 16, 0)
    first_ns = whole_s * NS_PER_S + (frac_65536 * NS_PER_S >> 16) - np.rint(ts_offset * NS_PER_S / fs).astype(np.int64)
    return _assemble(name, first_ns, count, accel, fs, {
        "source": "cwa", "path": name, "configured_fs_hz": fs, "axes": axes,
        "clock": "device time, no zone (taken as UTC)",
    })


def _assemble(
    name: str, first_ns: NDArray[np.int64], count: NDArray[np.int64], accel: NDArray[np.float64],
    fs_conf: float, device: dict[str, object],
) -> Recording:
    """Per-sample times interpolated between sector starts, then uniform blocks."""
    from analysis.readers import _split_blocks

    has = count > 0
    first_ns, count = first_ns[has], count[has]
    if accel.shape[0] < 2:
        raise ReaderError(f"{name}: need at least 2 samples, got {accel.shape[0]}")
    step = np.diff(first_ns)
    nominal = NS_PER_S / fs_conf
    # A sector is "joined" to the next when the next starts within 1.5 sector lengths.
    joined = (step > 0) & (step < 1.5 * count[:-1] * nominal) & (step > 0.5 * count[:-1] * nominal)
    per_sample = np.where(joined, step / np.maximum(count[:-1], 1), nominal)
    rate_hz = NS_PER_S / per_sample[joined] if joined.any() else np.array([fs_conf])
    fs_hz = round(float(np.median(rate_hz)), 2)
    per_sample = np.append(per_sample, NS_PER_S / fs_hz)
    within = np.arange(accel.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    t_ns = np.repeat(first_ns, count) + np.rint(within * np.repeat(per_sample, count)).astype(np.int64)
    if (np.diff(t_ns) <= 0).any():
        i = int(np.flatnonzero(np.diff(t_ns) <= 0)[0]) + 1
        raise ReaderError(f"{name}: sample {i}: timestamps go backwards (device clock reset?)")
    device["fs_hz"] = fs_hz
    device["n_samples"] = int(accel.shape[0])
    return Recording(_split_blocks(t_ns, accel, fs_hz), device=device)
