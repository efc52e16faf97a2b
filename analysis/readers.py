"""Readers for recording files.

`read_recording` picks a reader by extension (or content) and checks the result;
`read_csv` reads ``timestamp,x,y,z`` text files (acceleration in g). Device formats live
in `read_actilife_csv`, `read_axivity_csv`, `read_gt3x`, `read_cwa`, `read_geneactiv` and `read_npy`.
"""

from __future__ import annotations

import math
import os
import re
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.errors import ReaderError
from analysis.samples import NS_PER_S, Recording, SampleBlock

__all__ = ["GAP_PERIODS", "MIN_RATE_HZ", "read_csv", "read_recording"]

#: A gap between consecutive samples longer than this many sample periods starts a new
#: block (otmon convention, brief of issue "analysis"; not a published constant).
GAP_PERIODS = 1.5
#: Lowest rate accepted by `read_recording`: the count band-pass reaches ~1.7 Hz and
#: ENMO/MAD need the movement band (0.25-2.5 Hz, methods.md §1), which needs
#: >= 10 Hz with margin; raw devices (ActiGraph, Axivity, GENEActiv) start at 10-12.5 Hz.
MIN_RATE_HZ = 10.0
#: Rates are rounded to this many decimals of Hz, so 49.9997 Hz becomes 50.0 Hz.
_RATE_DECIMALS = 2

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)$"
)
_NUMBER = re.compile(r"^[+-]?(\d+)(?:\.(\d*))?$")
_UNIX_ORDINAL = date(1970, 1, 1).toordinal()


def _parse_unix_ns(text: str) -> int | None:
    m = _NUMBER.match(text)
    if m is None:
        return None
    whole, frac = m.group(1), (m.group(2) or "")
    ns = int(whole) * NS_PER_S + int((frac + "000000000")[:9])
    return -ns if text.startswith("-") else ns


def _parse_iso_ns(text: str) -> int | None:
    m = _ISO.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        days = date(int(y), int(mo), int(d)).toordinal() - _UNIX_ORDINAL
    except ValueError:
        return None
    if int(h) > 23 or int(mi) > 59 or int(s) > 59:
        return None
    secs = days * 86_400 + int(h) * 3600 + int(mi) * 60 + int(s)
    if off not in ("Z", "z"):
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return secs * NS_PER_S + int(((frac or "") + "000000000")[:9])


_ISO_SPLIT = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)(Z|z|[+-]\d{2}(?::?\d{2})?)$")


def _offset_s(off: str) -> int:
    if off in ("Z", "z"):
        return 0
    sign = -1 if off[0] == "-" else 1
    digits = off[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)


def _parse_times(stamps: list[str], name: str, lines: NDArray[np.int64]) -> NDArray[np.int64]:
    """Timestamps (ISO-8601 with offset, or Unix seconds) to UTC ns; ReaderError on a bad one."""
    if _parse_unix_ns(stamps[0]) is not None:
        parsed = [_parse_unix_ns(s) for s in stamps]
        kind = "Unix seconds"
    else:
        kind = "ISO-8601 with a UTC offset or Z"
        matches = [_ISO_SPLIT.match(s) for s in stamps]
        if all(m is not None for m in matches):
            mains = [m.group(1) for m in matches]  # type: ignore[union-attr]
            offsets = [m.group(2) for m in matches]  # type: ignore[union-attr]
            try:
                local = np.array([x.replace(",", ".") for x in mains], dtype="datetime64[ns]")
            except ValueError:
                local = None
            if local is not None and not np.isnat(local).any():
                by_offset = {o: _offset_s(o) for o in set(offsets)}
                off_s = np.array([by_offset[o] for o in offsets], dtype=np.int64)
                return local.astype(np.int64) - off_s * NS_PER_S
        parsed = [_parse_iso_ns(s) for s in stamps]
    for i, t in enumerate(parsed):
        if t is None:
            raise ReaderError(f"{name}: line {lines[i]}: timestamp {stamps[i]!r} is not {kind}")
    return np.array(parsed, dtype=np.int64)


def _split_blocks(
    t_ns: NDArray[np.int64], accel: NDArray[np.float64], fs_hz: float
) -> list[SampleBlock]:
    period_ns = NS_PER_S / fs_hz
    gap = np.flatnonzero(np.diff(t_ns) > GAP_PERIODS * period_ns) + 1
    starts = np.concatenate([[0], gap])
    ends = np.concatenate([gap, [t_ns.size]])
    blocks = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        # Re-anchor where the nominal grid has drifted more than one period from the
        # file's own timestamps (a rate that is not exactly fs_hz), so block times stay
        # within a period of the recorded ones. One iteration per block, not per sample.
        while a < b:
            k = np.arange(b - a, dtype=np.float64)
            drift = np.abs(t_ns[a:b] - (t_ns[a] + np.rint(k * period_ns)))
            bad = np.flatnonzero(drift > period_ns)
            cut = b if bad.size == 0 else a + int(bad[0])
            blocks.append(SampleBlock(int(t_ns[a]), fs_hz, accel[a:cut].copy()))
            a = cut
    return blocks


def read_csv(path: str | os.PathLike[str]) -> Recording:
    """Read a ``timestamp,x,y,z`` CSV file of acceleration in g.

    Parameters
    ----------
    path : str or path-like
        Text file, one sample per line: timestamp, then x, y, z in g. An optional header
        row (first field not a timestamp) is skipped. Timestamps are ISO-8601 with a UTC
        offset or ``Z`` (e.g. ``2023-03-26T01:59:59.98+01:00``, up to ns precision) or
        Unix seconds (e.g. ``1679792399.98``); all rows must use the same form.

    Returns
    -------
    Recording
        Blocks of uniformly spaced samples (float64, g). The rate is 1 / median sample
        interval, rounded to 0.01 Hz. A new block starts at a gap longer than
        `GAP_PERIODS` (1.5) periods, and where the nominal grid drifts more than one
        period from the file's timestamps. ``device`` holds ``source``, ``path``,
        ``fs_hz`` and ``n_rows``.

    Raises
    ------
    ReaderError
        With the file name and line number: wrong column count, unparsable timestamp,
        non-numeric or NaN/infinite value, timestamps not strictly increasing, no data
        rows, or a file that cannot be opened.
    """
    p = Path(path)
    name = str(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReaderError(f"{name}: cannot read file: {exc}") from exc
    numbered = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not numbered:
        raise ReaderError(f"{name}: line 1: empty file, expected rows 'timestamp,x,y,z'")
    first_ts = numbered[0][1].split(",", 1)[0].strip()
    if _parse_unix_ns(first_ts) is None and _parse_iso_ns(first_ts) is None:
        numbered = numbered[1:]  # header row
        if not numbered:
            raise ReaderError(f"{name}: line 2: no data rows after the header")
    lines = np.array([i for i, _ in numbered], dtype=np.int64)
    parts = [ln.split(",") for _, ln in numbered]
    ncols = np.array([len(r) for r in parts])
    if (ncols != 4).any():
        i = int(np.flatnonzero(ncols != 4)[0])
        raise ReaderError(
            f"{name}: line {lines[i]}: expected 4 columns (timestamp,x,y,z), got {ncols[i]}"
        )
    stamps = [r[0].strip() for r in parts]
    t_ns = _parse_times(stamps, name, lines)

    try:
        accel = np.loadtxt(
            [ln.split(",", 1)[1] for _, ln in numbered],
            delimiter=",", dtype=np.float64, comments=None, ndmin=2,
        )
    except ValueError:
        for line, row in zip(lines.tolist(), parts, strict=True):
            for value in row[1:]:
                try:
                    float(value)
                except ValueError:
                    raise ReaderError(f"{name}: line {line}: value {value!r} is not a number") from None
        raise  # pragma: no cover - numpy and float() disagree
    bad = ~np.isfinite(accel).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReaderError(f"{name}: line {lines[i]}: value is NaN or infinite: {numbered[i][1]}")
    step = np.diff(t_ns)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        raise ReaderError(
            f"{name}: line {lines[i]}: timestamp {stamps[i]!r} is not after the previous one "
            "(timestamps must be strictly increasing)"
        )
    if t_ns.size < 2:
        raise ReaderError(f"{name}: line {lines[0]}: need at least 2 samples to estimate the rate")
    fs_hz = round(NS_PER_S / float(np.median(step)), _RATE_DECIMALS)
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ReaderError(f"{name}: line {lines[0]}: cannot estimate a sampling rate")
    blocks = _split_blocks(t_ns, accel, fs_hz)
    return Recording(blocks, device={"source": "csv", "path": name, "fs_hz": fs_hz, "n_rows": int(t_ns.size)})


def _sniff(path: Path) -> str:
    """Format name from the file's extension, else from its first bytes."""
    name = path.name.lower()
    for ext, fmt in ((".gt3x", "gt3x"), (".agdc", "gt3x"), (".cwa", "cwa"), (".bin", "geneactiv"),
                     (".npy", "npy"), (".csv", "csv")):
        if name.endswith(ext):
            if fmt == "csv":
                from analysis.read_actilife_csv import is_actilife_csv
                from analysis.read_axivity_csv import is_axivity_csv

                with path.open(encoding="utf-8-sig", errors="replace") as fh:
                    first = fh.readline()
                if is_actilife_csv(first):
                    return "actilife-csv"
                return "axivity-csv" if is_axivity_csv(first) else "csv"
            return fmt
    with path.open("rb") as fh:
        magic = fh.read(16)
    for prefix, fmt in ((b"PK", "gt3x"), (b"MD", "cwa"), (b"Device Identity", "geneactiv"), (b"\x93NUMPY", "npy")):
        if magic.startswith(prefix):
            return fmt
    raise ReaderError(
        f"{path}: unknown recording format (expected .csv, ActiLife .csv, .gt3x, .cwa, GENEActiv .bin or .npy)"
    )


def read_recording(path: str | os.PathLike[str], **options: object) -> Recording:
    """Read any supported recording file into a `Recording` of blocks in g.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` (``timestamp,x,y,z``, an Axivity export or an ActiLife RAW export),
        ``.gt3x``, ``.cwa``,
        GENEActiv ``.bin`` or ``.npy``; the format is taken from the extension, else
        from the first bytes.
    **options
        Passed to the format's reader; ``None`` values are ignored: ``fs_hz`` and
        ``start`` (``.npy``, required), ``idle_sleep`` (``.gt3x``),
        ``scale_lsb_per_g`` (ActiLife LSB exports).

    Returns
    -------
    Recording
        Blocks in time order, acceleration in g; ``device['format']`` names the reader.

    Raises
    ------
    ReaderError
        A malformed file (message names the file and the line or byte where it applies),
        an empty recording, or a rate under `MIN_RATE_HZ`.
    ValueError
        An option the format does not take, or a bad option value.
    """
    p = Path(path)
    if not p.is_file():
        raise ReaderError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ReaderError(f"{p}: byte 0: empty file")
    fmt = _sniff(p)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = {"csv": set(), "axivity-csv": set(), "actilife-csv": {"scale_lsb_per_g"}, "gt3x": {"idle_sleep"}, "cwa": set(),
                "geneactiv": set(), "npy": {"fs_hz", "start"}}[fmt]
    extra = sorted(set(given) - accepted)
    if extra:
        raise ValueError(f"option {extra[0]}={given[extra[0]]!r} does not apply to {fmt} file {p}")
    if fmt == "npy":
        missing = sorted({"fs_hz", "start"} - set(given))
        if missing:
            raise ReaderError(f"{p}: a .npy array needs its rate and start time (--fs HZ --start ISO-8601)")
    if fmt == "csv":
        recording = read_csv(p)
    elif fmt == "axivity-csv":
        from analysis.read_axivity_csv import read_axivity_csv

        recording = read_axivity_csv(p)
    elif fmt == "actilife-csv":
        from analysis.read_actilife_csv import read_actilife_csv

        recording = read_actilife_csv(p, **given)  # type: ignore[arg-type]
    elif fmt == "gt3x":
        from analysis.read_gt3x import read_gt3x

        recording = read_gt3x(p, **given)  # type: ignore[arg-type]
    elif fmt == "cwa":
        from analysis.read_cwa import read_cwa

        recording = read_cwa(p)
    elif fmt == "geneactiv":
        from analysis.read_geneactiv import read_geneactiv

        recording = read_geneactiv(p)
    else:
        from analysis.read_npy import read_npy

        recording = read_npy(p, **given)  # type: ignore[arg-type]
    if recording.n_samples == 0:
        raise ReaderError(f"{p}: no samples")
    if recording.fs_hz < MIN_RATE_HZ:
        raise ReaderError(f"{p}: sampling rate {recording.fs_hz:g} Hz is under the {MIN_RATE_HZ:g} Hz minimum")
    device = dict(recording.device)
    device["format"] = fmt
    return Recording(recording.blocks, device=device)
