"""Reader for Axivity CSV exports (OmGui / ``cwa-convert``): ``time,ax,ay,az[,gx,gy,gz]``.

The time column is either Unix seconds or a zone-less ``YYYY-MM-DD hh:mm:ss.fff`` device
time (as in GGIR's ``ax6_testfile_formatted_timestamps.csv``); zone-less times are taken
as UTC, like `read_cwa` does. Gyroscope columns are ignored.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording

__all__ = ["is_axivity_csv", "read_axivity_csv"]

_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$")
_COLUMNS = (4, 7)


def is_axivity_csv(first_line: str) -> bool:
    """True for a zone-less-timestamp row or a 7-column (accel + gyro) row."""
    fields = first_line.strip().split(",")
    return len(fields) == 7 or (len(fields) == 4 and bool(_LOCAL_TIME.match(fields[0].strip())))


def read_axivity_csv(path: str | os.PathLike[str]) -> Recording:
    """Read an Axivity CSV export of acceleration in g.

    Parameters
    ----------
    path : str or path-like
        Rows ``time,ax,ay,az`` or ``time,ax,ay,az,gx,gy,gz`` without a header; time in
        Unix seconds or ``YYYY-MM-DD hh:mm:ss.fff`` (device time, taken as UTC).

    Returns
    -------
    Recording
        Blocks as `analysis.readers.read_csv` builds them: rate = 1 / median interval
        (0.01 Hz), new block at gaps > 1.5 periods or drift > 1 period.

    Raises
    ------
    ReaderError
        With the file and line: wrong column count, bad time or value, NaN, times not
        strictly increasing, fewer than 2 samples.
    """
    from analysis.readers import _RATE_DECIMALS, _split_blocks

    p = Path(path)
    name = str(p)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReaderError(f"{name}: cannot read file: {exc}") from exc
    numbered = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.strip()]
    if len(numbered) < 2:
        line = numbered[0][0] if numbered else 1
        raise ReaderError(f"{name}: line {line}: need at least 2 samples, got {len(numbered)}")
    width = len(numbered[0][1].split(","))
    if width not in _COLUMNS:
        raise ReaderError(f"{name}: line {numbered[0][0]}: expected 4 or 7 columns, got {width}")
    for i, ln in numbered:
        if ln.count(",") != width - 1:
            raise ReaderError(f"{name}: line {i}: expected {width} columns, got {ln.count(',') + 1}")
    stamps = [ln.split(",", 1)[0].strip() for _, ln in numbered]
    try:
        if _LOCAL_TIME.match(stamps[0]):
            t_ns = np.array([s.replace(" ", "T") for s in stamps], dtype="datetime64[ns]").astype(np.int64)
        else:
            t_ns = np.rint(np.array(stamps, dtype=np.float64) * NS_PER_S).astype(np.int64)
    except ValueError:
        bad = next(k for k, s in enumerate(stamps) if not _is_time(s))
        raise ReaderError(f"{name}: line {numbered[bad][0]}: bad timestamp {stamps[bad]!r}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            accel = np.loadtxt([ln for _, ln in numbered], delimiter=",", usecols=(1, 2, 3), ndmin=2,
                               dtype=np.float64, comments=None)
    except ValueError as exc:
        row = re.search(r"(?:row|line) (\d+)", str(exc))
        where = f"line {numbered[int(row.group(1))][0]}" if row else "data"  # loadtxt rows are 0-based
        raise ReaderError(f"{name}: {where}: value is not a number") from None
    bad_rows = ~np.isfinite(accel).all(axis=1)
    if bad_rows.any():
        raise ReaderError(f"{name}: line {numbered[int(np.flatnonzero(bad_rows)[0])][0]}: value is NaN or infinite")
    step = np.diff(t_ns)
    if (step <= 0).any():
        k = int(np.flatnonzero(step <= 0)[0]) + 1
        raise ReaderError(f"{name}: line {numbered[k][0]}: timestamp {stamps[k]!r} is not after the previous one")
    fs_hz = round(NS_PER_S / float(np.median(step)), _RATE_DECIMALS)
    device = {"source": "axivity-csv", "path": name, "fs_hz": fs_hz, "n_rows": int(t_ns.size),
              "clock": "device time, no zone (taken as UTC)" if _LOCAL_TIME.match(stamps[0]) else "unix"}
    return Recording(_split_blocks(t_ns, accel, fs_hz), device=device)


def _is_time(text: str) -> bool:
    if _LOCAL_TIME.match(text):
        try:
            np.datetime64(text.replace(" ", "T"), "ns")
        except ValueError:
            return False
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True
