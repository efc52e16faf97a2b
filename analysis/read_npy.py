"""Reader for NumPy ``.npy`` arrays of acceleration (n, 3) in g, memory-mapped."""

from __future__ import annotations

import ctypes
import math
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import ReaderError
from analysis.samples import Recording, SampleBlock

__all__ = ["read_npy", "release_pages"]

#: Rows checked per step for NaN/inf, so the check never holds more than ~24 MB.
_CHECK_ROWS = 1 << 20
#: Linux madvise(2) advice that unmaps pages from this process (file data stays cached).
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)


def _libc_madvise() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise() if os.name == "posix" else None


def release_pages(accel_g: Any) -> None:
    """Unmap the pages of a slice of a memory-mapped array from this process.

    Reading a memory map makes every page read resident in the process, so a scan of a
    week-long file would hold the whole file in its RSS. Calling this on each chunk once
    it is processed keeps the resident set at about one chunk. The data are unchanged
    (a read-only file mapping: a later read faults the page back in from the page
    cache). Does nothing for arrays that are not C-contiguous read-only (``mode="r"``)
    memory maps, or where ``madvise`` is unavailable.

    Parameters
    ----------
    accel_g : ndarray
        A slice of an ``np.memmap`` (e.g. ``SampleBlock.accel_g[lo:hi]`` of a `read_npy`
        block); only whole pages inside it are released.
    """
    if _MADVISE is None or not isinstance(accel_g, np.memmap) or not accel_g.flags.c_contiguous:
        return
    if getattr(accel_g, "mode", None) != "r":  # a copy-on-write map ("c") would lose its edits
        return
    start = int(accel_g.ctypes.data)
    page = mmap.PAGESIZE
    lo = -(-start // page) * page
    hi = (start + accel_g.nbytes) // page * page
    if hi > lo:
        _MADVISE(lo, hi - lo, _MADV_DONTNEED)


def read_npy(path: str | os.PathLike[str], *, fs_hz: float, start: str) -> Recording:
    """Read a ``.npy`` array of acceleration in g without copying it.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` file holding a float32 or float64 array of shape (n, 3), g.
    fs_hz : float
        Sampling rate in Hz (``--fs``).
    start : str
        UTC time of the first sample, ISO-8601 with a UTC offset or ``Z``
        (``--start``, e.g. ``2024-03-04T08:00:00+01:00``).

    Returns
    -------
    Recording
        One block whose ``accel_g`` is a read-only memory map of the file
        (``np.load(mmap_mode="r")``): nothing is copied until an analysis step reads it.

    Raises
    ------
    ReaderError
        Not a ``.npy`` file, wrong shape or dtype, fewer than 2 samples, or a NaN /
        infinite value (row index given; checked chunk by chunk).
    ValueError
        `fs_hz` not positive and finite, or `start` not ISO-8601 with an offset.
    """
    from analysis.readers import _parse_iso_ns

    if not (isinstance(fs_hz, int | float) and math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive finite number, got {fs_hz!r}")
    t0_ns = _parse_iso_ns(start.strip()) if isinstance(start, str) else None
    if t0_ns is None:
        raise ValueError(f"start must be ISO-8601 with a UTC offset or Z, got {start!r}")
    p = Path(path)
    name = str(p)
    try:
        accel = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ReaderError(f"{name}: not a readable .npy array: {exc}") from None
    if not isinstance(accel, np.ndarray) or accel.ndim != 2 or accel.shape[1] != 3:
        raise ReaderError(f"{name}: expected an array of shape (n, 3) in g, got shape {getattr(accel, 'shape', None)}")
    if accel.dtype not in (np.float32, np.float64):
        raise ReaderError(f"{name}: expected float32 or float64 values in g, got {accel.dtype}")
    if accel.shape[0] < 2:
        raise ReaderError(f"{name}: need at least 2 samples, got {accel.shape[0]}")
    for lo in range(0, accel.shape[0], _CHECK_ROWS):
        chunk = accel[lo : lo + _CHECK_ROWS]
        if not np.isfinite(chunk).all():
            row = lo + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
            raise ReaderError(f"{name}: row {row}: value is NaN or infinite")
        release_pages(chunk)
    device = {"source": "npy", "path": name, "fs_hz": float(fs_hz), "n_samples": int(accel.shape[0])}
    return Recording([SampleBlock(t0_ns, fs_hz, accel)], device=device)
