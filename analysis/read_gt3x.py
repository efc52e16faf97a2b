"""Reader for ActiGraph ``.gt3x`` files (zip archives), both layouts.

Re-implemented from ActiGraph's public format descriptions (github.com/actigraph/
GT3X-File-Format and NHANES-GT3X-File-Format), not from any GPL reader:

* current layout: ``info.txt`` + ``log.bin``, a stream of log records
  ``1E | type u8 | unix time u32 LE | size u16 LE | payload | checksum``, where ACTIVITY
  (0x00) holds one second of 12-bit two's complement samples packed big-endian in
  Y, X, Z order and ACTIVITY2 (0x1A) one second of int16 LE samples in X, Y, Z order;
* NHANES layout (NEO/MRA firmware <= 2.5.0): ``info.txt`` + ``activity.bin``, one
  continuous 12-bit Y, X, Z stream from the start date.

AGDC files (``.agdc``) use an undocumented record type 0x1B (12-bit, X, Y, Z order) with
``Acceleration Scale: 1`` and a per-device ``calibration.json``; the records decode exactly
but the calibration is not implemented, so such files are refused with a clear error.

Counts become g by dividing by ``Acceleration Scale`` from info.txt (else 341 LSB/g
for NEO/CLE serials and the NHANES layout, 256 LSB/g otherwise, as the docs state).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording, SampleBlock

__all__ = ["IDLE_SLEEP_MODES", "read_gt3x"]

_ACTIVITY, _ACTIVITY2 = 0x00, 0x1A
#: Undocumented record type of AGDC (.agdc) files: 12-bit packed like ACTIVITY but in
#: X, Y, Z order; established on `WRIST_rawLSB_032Hz_test.agdc`, whose 1,920 samples equal
#: ActiLife's LSB export exactly (tests/analysis/test_read_gt3x.py).
_ACTIVITY_XYZ12 = 0x1B
_PACKED12 = (_ACTIVITY, _ACTIVITY_XYZ12)
#: An "Acceleration Scale" below this is not LSB/g (AGDC files say 1: raw counts that
#: need the per-device calibration.json, which is not applied here).
_MIN_SCALE_LSB_PER_G = 16.0
_SEPARATOR = 0x1E
#: .NET ticks (100 ns since 0001-01-01) of 1970-01-01 (info.txt dates are ticks).
_TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000
#: Scale factors in LSB/g when info.txt has none (Activity2.md: NEO/CLE 341, MOS 256).
_SCALE_OLD, _SCALE_NEW = 341.0, 256.0
IDLE_SLEEP_MODES = ("last", "gap")
#: Activity records decoded per vectorised step (about 2-5 MB of payload bytes at 100 Hz).
_RECORDS_PER_STEP = 4096


def _info(zf: zipfile.ZipFile, name: str) -> dict[str, str]:
    try:
        text = zf.read("info.txt").decode("utf-8-sig", errors="replace")
    except KeyError:
        raise ReaderError(f"{name}: not a .gt3x file: no info.txt in the archive") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _tz_offset_s(text: str) -> int:
    """``-05:00:00`` / ``02:00:00`` to seconds east of UTC."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":") if p]
    while len(parts) < 3:
        parts.append(0)
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _unpack12_rows(data: NDArray[np.uint8], n_samples: int) -> NDArray[np.int64]:
    """Rows of 12-bit two's complement values packed MSB-first in Y,X,Z order.

    `data` has shape (n_rows, >= ceil(n_samples * 4.5)) bytes; returns (n_rows, n_samples, 3)
    in X, Y, Z order. Every row starts on a byte boundary (one log record each).
    """
    n_values = n_samples * 3
    n_bytes = (n_values * 3 + 1) // 2
    b = data[:, :n_bytes].astype(np.int64)
    if n_bytes % 3:
        b = np.concatenate([b, np.zeros((b.shape[0], 3 - n_bytes % 3), dtype=np.int64)], axis=1)
    triples = b.reshape(b.shape[0], -1, 3)
    first = triples[:, :, 0] << 4 | triples[:, :, 1] >> 4
    second = (triples[:, :, 1] & 0x0F) << 8 | triples[:, :, 2]
    values = np.stack([first, second], axis=2).reshape(b.shape[0], -1)[:, :n_values]
    values = np.where(values >= 2048, values - 4096, values).reshape(b.shape[0], n_samples, 3)
    return values[:, :, [1, 0, 2]]


def _unpack12(data: NDArray[np.uint8], n_samples: int) -> NDArray[np.int64]:
    """12-bit two's complement values packed MSB-first, Y,X,Z order -> (n, 3) in X,Y,Z order."""
    return _unpack12_rows(np.asarray(data)[None, :], n_samples)[0]


def _scan_records(log: NDArray[np.uint8], name: str) -> tuple[NDArray[np.int64], ...]:
    """Offsets, types, times and sizes of every log record (byte-exact walk of the headers)."""
    offsets, types, times, sizes = [], [], [], []
    pos, end = 0, log.size
    raw = log.tobytes()
    while pos < end:
        if raw[pos] != _SEPARATOR:
            if raw[pos] == 0:  # "extra bytes with 0's between valid records" (README)
                pos += 1
                continue
            raise ReaderError(f"{name}: log.bin byte {pos}: expected record separator 0x1E, got {raw[pos]:#04x}")
        if pos + 8 > end:
            raise ReaderError(f"{name}: log.bin byte {pos}: truncated record header")
        size = raw[pos + 6] | raw[pos + 7] << 8
        if pos + 8 + size + 1 > end:
            raise ReaderError(f"{name}: log.bin byte {pos}: truncated record ({size}-byte payload, file ends)")
        offsets.append(pos)
        types.append(raw[pos + 1])
        times.append(int.from_bytes(raw[pos + 2 : pos + 6], "little"))
        sizes.append(size)
        pos += 9 + size
    return tuple(np.asarray(v, dtype=np.int64) for v in (offsets, types, times, sizes))


def read_gt3x(path: str | os.PathLike[str], *, idle_sleep: Literal["last", "gap"] = "last") -> Recording:
    """Read an ActiGraph ``.gt3x`` file (current log.bin or NHANES activity.bin layout).

    Parameters
    ----------
    path : str or path-like
        ``.gt3x`` zip archive.
    idle_sleep : {"last", "gap"}
        Seconds with no ACTIVITY record inside the recording are idle-sleep mode (the
        device stops sampling while still). ``"last"`` (default) repeats the last sample
        through them, as ActiLife's raw export and ``pygt3x`` do, so counts and the
        ActiLife CSV are reproduced; ``"gap"`` leaves them as gaps (new blocks).

    Returns
    -------
    Recording
        Acceleration in g (counts / ``Acceleration Scale``), float64, shape (n, 3) per
        block, axes X, Y, Z. Record times and info.txt dates are device-local; the
        info.txt ``TimeZone`` converts them to UTC. ``device`` has ``serial``,
        ``fs_hz``, ``scale_lsb_per_g``, ``tz_offset_s``, ``idle_sleep_s``.

    Raises
    ------
    ReaderError
        Not a zip / no info.txt, no log.bin or activity.bin, a bad record separator or a
        truncated record (byte offset in log.bin given), an ACTIVITY payload too short
        for the rate, an ``Acceleration Scale`` that is not LSB/g (AGDC), or no samples.
    """
    if idle_sleep not in IDLE_SLEEP_MODES:
        raise ValueError(f"idle_sleep must be one of {IDLE_SLEEP_MODES}, got {idle_sleep!r}")
    p = Path(path)
    name = str(p)
    try:
        zf = zipfile.ZipFile(p)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReaderError(f"{name}: not a .gt3x file (not a readable zip archive): {exc}") from None
    with zf:
        info = _info(zf, name)
        members = set(zf.namelist())
        try:
            fs_hz = float(info["Sample Rate"].replace(",", "."))
        except (KeyError, ValueError):
            raise ReaderError(f"{name}: info.txt: missing or bad 'Sample Rate'") from None
        serial = info.get("Serial Number", "")
        tz_s = _tz_offset_s(info.get("TimeZone", "00:00:00"))
        old_layout = "log.bin" not in members
        default_scale = _SCALE_OLD if old_layout or serial.startswith(("NEO", "CLE")) else _SCALE_NEW
        scale = float(info.get("Acceleration Scale", str(default_scale)).replace(",", "."))
        if scale < _MIN_SCALE_LSB_PER_G:
            raise ReaderError(
                f"{name}: info.txt: Acceleration Scale {scale:g} is not LSB per g (uncalibrated counts "
                "with a per-device calibration.json, which this reader does not apply)"
            )
        if fs_hz != int(fs_hz) or fs_hz <= 0:
            raise ReaderError(f"{name}: info.txt: sample rate {fs_hz} Hz is not a positive whole number")
        device = {
            "source": "gt3x", "path": name, "serial": serial, "fs_hz": fs_hz,
            "scale_lsb_per_g": scale, "tz_offset_s": tz_s, "device_type": info.get("Device Type"),
        }
        if old_layout:
            if "activity.bin" not in members:
                raise ReaderError(f"{name}: no log.bin or activity.bin in the archive")
            data = np.frombuffer(zf.read("activity.bin"), dtype=np.uint8)
            try:
                start_ticks = int(info["Start Date"])
            except (KeyError, ValueError):
                raise ReaderError(f"{name}: info.txt: missing or bad 'Start Date'") from None
            n = data.size * 2 // 9  # 36 bits per sample
            if n < 2:
                raise ReaderError(f"{name}: activity.bin: need at least 2 samples, got {n}")
            counts = _unpack12(data, n)
            t0_ns = (start_ticks - _TICKS_AT_UNIX_EPOCH) * 100 - tz_s * NS_PER_S
            device.update(layout="nhanes", idle_sleep_s=0, n_samples=n)
            return Recording([SampleBlock(t0_ns, fs_hz, counts / scale)], device=device)
        log = np.frombuffer(zf.read("log.bin"), dtype=np.uint8)
    return _read_log(log, name, fs_hz, scale, tz_s, idle_sleep, device)


def _read_log(
    log: NDArray[np.uint8], name: str, fs_hz: float, scale: float, tz_s: int,
    idle_sleep: str, device: dict[str, object],
) -> Recording:
    offsets, types, times, sizes = _scan_records(log, name)
    fs = int(fs_hz)
    act = np.isin(types, _PACKED12) | ((types == _ACTIVITY2) & (sizes > 1))  # 1-byte ACTIVITY2: USB event
    if not act.any():
        raise ReaderError(f"{name}: log.bin has no ACTIVITY records")
    a_off, a_type, a_time, a_size = offsets[act], types[act], times[act], sizes[act]
    # A record with an empty payload marks idle sleep in some firmware; treat as absent.
    has_data = a_size > 0
    a_off, a_type, a_time, a_size = a_off[has_data], a_type[has_data], a_time[has_data], a_size[has_data]
    packed = np.isin(a_type, _PACKED12)
    need = np.where(packed, (fs * 36 + 7) // 8, fs * 6)
    if (a_size < need).any():
        i = int(np.flatnonzero(a_size < need)[0])
        # A short last packet (recording stopped mid-second) keeps its whole samples.
        if i != a_size.size - 1:
            raise ReaderError(
                f"{name}: log.bin byte {a_off[i]}: activity record has {a_size[i]} bytes, "
                f"{need[i]} needed for {fs} samples"
            )
    per_record = np.where(
        packed, np.minimum(a_size * 8 // 36, fs), np.minimum(a_size // 6, fs)
    )
    # Duplicate seconds (a clock set back) keep the first record of each second.
    order = np.argsort(a_time, kind="stable")
    a_off, a_type, a_time, per_record = a_off[order], a_type[order], a_time[order], per_record[order]
    first = np.concatenate([[True], np.diff(a_time) > 0])
    a_off, a_type, a_time, per_record = a_off[first], a_type[first], a_time[first], per_record[first]

    # Decode all records of one (type, sample count) at once: gather their payloads into
    # a (records, bytes) matrix, so a week of 1-s records is a few array operations.
    counts = np.empty((int(per_record.sum()), 3), dtype=np.int16)
    sample_at = np.concatenate([[0], np.cumsum(per_record)[:-1]])
    for typ, n in {(int(t), int(k)) for t, k in zip(a_type, per_record, strict=True)}:
        sel_all = np.flatnonzero((a_type == typ) & (per_record == n))
        n_bytes = (n * 36 + 7) // 8 if typ in _PACKED12 else n * 6
        for lo in range(0, sel_all.size, _RECORDS_PER_STEP):  # bounded memory per step
            sel = sel_all[lo : lo + _RECORDS_PER_STEP]
            payloads = log[(a_off[sel] + 8)[:, None] + np.arange(n_bytes)[None, :]]
            if typ == _ACTIVITY:
                values = _unpack12_rows(payloads, n).astype(np.int16)
            elif typ == _ACTIVITY_XYZ12:  # stored X, Y, Z: undo the Y/X swap of _unpack12_rows
                values = _unpack12_rows(payloads, n)[:, :, [1, 0, 2]].astype(np.int16)
            else:
                values = np.ascontiguousarray(payloads).view("<i2").reshape(sel.size, n, 3)
            first_row = int(sample_at[sel[0]])
            if sample_at[sel[-1]] - first_row == (sel.size - 1) * n:  # contiguous: one slice
                counts[first_row : first_row + sel.size * n] = values.reshape(-1, 3)
            else:
                counts[(sample_at[sel][:, None] + np.arange(n)[None, :]).ravel()] = values.reshape(-1, 3)
    accel = counts / scale  # float64 g
    if accel.shape[0] < 2:
        raise ReaderError(f"{name}: need at least 2 samples, got {accel.shape[0]}")

    # Runs of consecutive, complete seconds are blocks; missing seconds are idle sleep.
    starts_s = a_time - tz_s
    full = per_record == fs
    breaks = np.flatnonzero((np.diff(a_time) != 1) | ~full[:-1]) + 1
    run_lo = np.concatenate([[0], breaks])
    run_hi = np.concatenate([breaks, [a_time.size]])
    sample_lo = np.concatenate([[0], np.cumsum(per_record)])
    blocks: list[SampleBlock] = []
    pending: list[NDArray[np.float64]] = []  # segments of the block being built
    pending_t0 = pending_end = 0
    idle_s = 0
    for k, (lo, hi) in enumerate(zip(run_lo.tolist(), run_hi.tolist(), strict=True)):
        seg = accel[sample_lo[lo] : sample_lo[hi]]
        missing_s = int(a_time[hi] - a_time[hi - 1]) - 1 if k + 1 < run_lo.size else 0
        t0 = int(starts_s[lo]) * NS_PER_S
        if not (pending and idle_sleep == "last" and pending_end == t0):
            if pending:
                blocks.append(SampleBlock(pending_t0, fs_hz, np.concatenate(pending)))
            pending, pending_t0 = [], t0
        pending.append(seg)
        pending_end = t0 + round(seg.shape[0] * NS_PER_S / fs_hz)
        if missing_s > 0:
            idle_s += missing_s
            if idle_sleep == "last" and per_record[hi - 1] == fs:
                pending.append(np.repeat(seg[-1:], missing_s * fs, axis=0))
                pending_end += missing_s * NS_PER_S
    blocks.append(SampleBlock(pending_t0, fs_hz, np.concatenate(pending)))
    device.update(layout="log", idle_sleep_s=idle_s, n_samples=sum(b.n_samples for b in blocks))
    return Recording(blocks, device=device)
