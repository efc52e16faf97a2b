"""Reader for GENEActiv ``.bin`` files (Activinsights).

Re-implemented from the published GENEActiv binary description (GENEActiv instructions
manual, "Binary file format" section): a text header (``Calibration Data`` gains and
offsets, ``Time Zone``), then pages of 9 text header lines (``Page Time``,
``Measurement Frequency`` ...) and one hex line of samples; each sample is 48 bits,
big-endian: x, y, z as 12-bit two's complement, 10 bits light, 1 button, 1 reserved.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording

__all__ = ["read_geneactiv"]

#: Hex characters per sample (48 bits) in a page's data line.
_HEX_PER_SAMPLE = 12
#: Calibration: g = (raw * 100 - offset) / gain (GENEActiv manual, "Calibrating data").
_RAW_FACTOR = 100.0
_TZ = re.compile(r"GMT\s*([+-])(\d{1,2}):(\d{2})")


def _page_time_ns(text: str) -> int | None:
    """``YYYY-MM-DD hh:mm:ss:mmm`` (device local time) to ns since 1970, None if malformed."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}):(\d{3})", text.strip())
    if m is None:
        return None
    try:
        whole = np.datetime64(f"{m.group(1)}T{m.group(2)}", "ns").astype(np.int64)
    except ValueError:
        return None
    return int(whole) + int(m.group(3)) * 1_000_000


def read_geneactiv(path: str | os.PathLike[str]) -> Recording:
    """Read a GENEActiv ``.bin`` file into calibrated acceleration in g.

    Parameters
    ----------
    path : str or path-like
        GENEActiv binary (text with hex pages) as extracted by GENEActiv PC software.

    Returns
    -------
    Recording
        Acceleration in g, float64, shape (n, 3) per block, from the header's gains and
        offsets. Each page's ``Page Time`` dates its first sample; the header's
        ``Time Zone`` (``GMT +hh:mm``) converts the device's local time to UTC (a missing
        zone is taken as UTC). A new block starts where pages are not contiguous.

    Raises
    ------
    ReaderError
        With the file and line: missing header fields, a malformed page or hex line, a
        truncated last page, or no pages.
    """
    p = Path(path)
    name = str(p)
    try:
        lines = p.read_bytes().decode("latin-1").splitlines()
    except OSError as exc:
        raise ReaderError(f"{name}: cannot read file: {exc}") from exc
    header: dict[str, str] = {}
    first_page = None
    for i, line in enumerate(lines):
        if line.strip() == "Recorded Data":
            first_page = i
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() not in header:
            header[key.strip()] = value.strip()
    if first_page is None:
        raise ReaderError(f"{name}: line 1: not a GENEActiv .bin file (no 'Recorded Data' page)")
    try:
        gain = np.array([float(header[f"{a} gain"]) for a in "xyz"])
        offset = np.array([float(header[f"{a} offset"]) for a in "xyz"])
    except (KeyError, ValueError) as exc:
        raise ReaderError(f"{name}: header: missing or bad calibration field {exc}") from None
    if (gain == 0).any():
        raise ReaderError(f"{name}: header: a calibration gain is 0")
    tz = _TZ.search(header.get("Time Zone", ""))
    tz_s = 0 if tz is None else (1 if tz.group(1) == "+" else -1) * (int(tz.group(2)) * 3600 + int(tz.group(3)) * 60)

    page_starts = [i for i in range(first_page, len(lines)) if lines[i].strip() == "Recorded Data"]
    t_first: list[int] = []
    counts: list[int] = []
    fs_pages: list[float] = []
    hex_lines: list[str] = []
    for s in page_starts:
        fields: dict[str, tuple[int, str]] = {}
        j = s + 1
        while j < len(lines) and ":" in lines[j] and len(lines[j]) < 200:
            k, _, v = lines[j].partition(":")
            fields[k.strip()] = (j + 1, v.strip())
            j += 1
        if j >= len(lines) or "Page Time" not in fields or "Measurement Frequency" not in fields:
            raise ReaderError(f"{name}: line {s + 1}: truncated page (no page time, rate or data line)")
        data = lines[j].strip()
        if len(data) % _HEX_PER_SAMPLE or not re.fullmatch(r"[0-9A-Fa-f]*", data):
            raise ReaderError(f"{name}: line {j + 1}: data line is not whole 12-hex-digit samples")
        t = _page_time_ns(fields["Page Time"][1])
        if t is None:
            raise ReaderError(f"{name}: line {fields['Page Time'][0]}: bad page time {fields['Page Time'][1]!r}")
        try:
            fs = float(fields["Measurement Frequency"][1].split()[0])
        except (ValueError, IndexError):
            fs = float("nan")
        if not (np.isfinite(fs) and fs > 0):
            line_no = fields["Measurement Frequency"][0]
            raise ReaderError(f"{name}: line {line_no}: bad measurement frequency")
        t_first.append(t - tz_s * NS_PER_S)
        counts.append(len(data) // _HEX_PER_SAMPLE)
        fs_pages.append(fs)
        hex_lines.append(data)
    if sum(counts) < 2:
        raise ReaderError(f"{name}: need at least 2 samples, got {sum(counts)}")
    if len(set(fs_pages)) != 1:
        raise ReaderError(f"{name}: the measurement frequency changes between pages")
    fs_hz = fs_pages[0]

    raw = np.frombuffer(bytes.fromhex("".join(hex_lines)), dtype=np.uint8).reshape(-1, 6).astype(np.int64)
    x = raw[:, 0] << 4 | raw[:, 1] >> 4
    y = (raw[:, 1] & 0x0F) << 8 | raw[:, 2]
    z = raw[:, 3] << 4 | raw[:, 4] >> 4
    counts12 = np.stack([x, y, z], axis=1)
    counts12 = np.where(counts12 >= 2048, counts12 - 4096, counts12)
    accel: NDArray[np.float64] = (counts12 * _RAW_FACTOR - offset) / gain

    c = np.asarray(counts)
    within = np.arange(raw.shape[0]) - np.repeat(np.cumsum(c) - c, c)
    t_ns = np.repeat(np.asarray(t_first, dtype=np.int64), c) + np.rint(within * NS_PER_S / fs_hz).astype(np.int64)
    if (np.diff(t_ns) <= 0).any():
        i = int(np.flatnonzero(np.diff(t_ns) <= 0)[0]) + 1
        raise ReaderError(f"{name}: sample {i}: page times overlap or go backwards")

    from analysis.readers import _split_blocks

    device = {
        "source": "geneactiv", "path": name, "fs_hz": fs_hz, "n_samples": int(t_ns.size),
        "serial": header.get("Device Unique Serial Code"), "tz_offset_s": tz_s,
    }
    return Recording(_split_blocks(t_ns, accel, fs_hz), device=device)
