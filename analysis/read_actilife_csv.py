"""Reader for ActiLife RAW CSV exports (10-line header, then ``Accelerometer X,Y,Z``).

Header as ActiLife 6 writes it (e.g. ``../shared/data/pygt3x_neo_actilife_csv/neo.csv``)::

    ------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 Firmware v2.5.0 date format M/d/yyyy at 30 Hz  Filter Normal -----------
    Serial Number: NEO1C04110003
    Start Time 11:55:00
    Start Date 12/20/2021
    ... (6 more lines)
    Accelerometer X,Accelerometer Y,Accelerometer Z      (optionally led by Timestamp)
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording, SampleBlock

__all__ = ["is_actilife_csv", "read_actilife_csv"]

_BANNER = "Data File Created By ActiGraph"
_HEADER_LINES = 10
_RATE = re.compile(r"at (\d+(?:\.\d+)?) Hz")
_DATE_FORMAT = re.compile(r"date format (\S+)")
#: |value| above this cannot be g from a ±16 g sensor: the export is in LSB counts.
_MAX_G = 16.0


def is_actilife_csv(first_line: str) -> bool:
    """True if `first_line` is an ActiLife export banner."""
    return _BANNER in first_line


def _parse_date(text: str, fmt: str) -> tuple[int, int, int] | None:
    """Day, month, year from ActiLife's .NET-style date format (M/d/yyyy, d/M/yyyy, yyyy-MM-dd ...)."""
    order = [c for c in re.findall(r"[dMy]+", fmt)]
    parts = re.findall(r"\d+", text)
    if len(order) != 3 or len(parts) != 3:
        return None
    found = {o[0]: int(v) for o, v in zip(order, parts, strict=True)}
    if set(found) != {"d", "M", "y"}:
        return None
    return found["d"], found["M"], found["y"]


def read_actilife_csv(path: str | os.PathLike[str], *, scale_lsb_per_g: float | None = None) -> Recording:
    """Read an ActiLife RAW CSV export (acceleration in g, or in LSB counts).

    Parameters
    ----------
    path : str or path-like
        ActiLife ``*RAW.csv`` export with its 10-line header.
    scale_lsb_per_g : float, optional
        Required for exports in LSB counts (detected by values beyond ±16 g): counts are
        divided by it. ActiLife's per-device calibration of LSB exports is not applied.

    Returns
    -------
    Recording
        One block at the header's rate starting at ``Start Date`` + ``Start Time``;
        acceleration in g, float64, shape (n, 3), columns X, Y, Z. ActiLife writes local
        device time without a zone; it is taken as UTC (``device['clock']`` says so).

    Raises
    ------
    ReaderError
        With the file and line: bad header (banner, rate, start date/time), wrong column
        count, a non-numeric / NaN value, LSB data without `scale_lsb_per_g`, fewer than
        two samples.
    """
    p = Path(path)
    name = str(p)
    try:
        with p.open(encoding="utf-8-sig", errors="replace") as fh:
            head = [fh.readline().rstrip("\r\n") for _ in range(_HEADER_LINES + 1)]
    except OSError as exc:
        raise ReaderError(f"{name}: cannot read file: {exc}") from exc
    if not is_actilife_csv(head[0]):
        raise ReaderError(f"{name}: line 1: not an ActiLife CSV export (no '{_BANNER}' banner)")
    rate = _RATE.search(head[0])
    if rate is None:
        raise ReaderError(f"{name}: line 1: no sample rate ('at N Hz') in the banner")
    fs_hz = float(rate.group(1))
    fmt_m = _DATE_FORMAT.search(head[0])
    fmt = fmt_m.group(1) if fmt_m else "M/d/yyyy"
    fields = {}
    for i, line in enumerate(head[1:_HEADER_LINES], start=2):
        for key in ("Start Time", "Start Date", "Serial Number"):
            if line.startswith(key):
                fields[key] = (i, line[len(key) :].lstrip(": ").strip())
    if "Start Time" not in fields or "Start Date" not in fields:
        raise ReaderError(f"{name}: lines 2-10: header has no 'Start Time' / 'Start Date'")
    line_t, time_text = fields["Start Time"]
    line_d, date_text = fields["Start Date"]
    dmy = _parse_date(date_text, fmt)
    hms = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})", time_text)
    if dmy is None:
        raise ReaderError(f"{name}: line {line_d}: start date {date_text!r} does not match format {fmt}")
    if hms is None:
        raise ReaderError(f"{name}: line {line_t}: start time {time_text!r} is not hh:mm:ss")
    try:
        day = np.datetime64(f"{dmy[2]:04d}-{dmy[1]:02d}-{dmy[0]:02d}", "D")
    except ValueError:
        raise ReaderError(f"{name}: line {line_d}: start date {date_text!r} is not a date") from None
    t0_ns = int(day.astype("datetime64[ns]").astype(np.int64)) + (
        int(hms.group(1)) * 3600 + int(hms.group(2)) * 60 + int(hms.group(3))
    ) * NS_PER_S

    columns = [c.strip() for c in head[_HEADER_LINES].split(",")]
    wanted = ["Accelerometer X", "Accelerometer Y", "Accelerometer Z"]
    if not all(w in columns for w in wanted):
        raise ReaderError(
            f"{name}: line {_HEADER_LINES + 1}: expected columns {','.join(wanted)}, got {head[_HEADER_LINES]!r}"
        )
    use = [columns.index(w) for w in wanted]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            data = np.loadtxt(p, delimiter=",", skiprows=_HEADER_LINES + 1, usecols=use, ndmin=2,
                              dtype=np.float64, comments=None, encoding="utf-8-sig")
    except ValueError as exc:
        # numpy counts data rows from 1 in column errors and from 0 in conversion errors.
        at = re.search(r"at row (\d+)", str(exc))
        first_data_line = _HEADER_LINES + 2
        if at is None:
            where = "data"
        elif "could not convert" in str(exc):
            where = f"line {int(at.group(1)) + first_data_line}"
        else:
            where = f"line {int(at.group(1)) + first_data_line - 1}"
        raise ReaderError(f"{name}: {where}: expected {len(columns)} numeric columns ({exc})") from None
    if data.shape[0] < 2:
        raise ReaderError(f"{name}: line {_HEADER_LINES + 2}: need at least 2 samples, got {data.shape[0]}")
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReaderError(f"{name}: line {i + _HEADER_LINES + 2}: value is NaN or infinite")
    device = {"source": "actilife-csv", "path": name, "fs_hz": fs_hz, "n_samples": int(data.shape[0]),
              "serial": fields.get("Serial Number", (0, None))[1], "clock": "local device time, taken as UTC"}
    if np.abs(data).max() > _MAX_G:
        if scale_lsb_per_g is None:
            raise ReaderError(
                f"{name}: values beyond ±{_MAX_G:g} g: an LSB-count export; pass scale_lsb_per_g "
                "(e.g. 256 or 341) to convert"
            )
        if not (np.isfinite(scale_lsb_per_g) and scale_lsb_per_g > 0):
            raise ValueError(f"scale_lsb_per_g must be a positive number, got {scale_lsb_per_g!r}")
        data = data / scale_lsb_per_g
        device["scale_lsb_per_g"] = float(scale_lsb_per_g)
    return Recording([SampleBlock(t0_ns, fs_hz, data)], device=device)
