"""read_csv: good files and every bad-input error (file name and line in the message)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ReaderError
from analysis.readers import read_csv
from analysis.samples import NS_PER_S, concatenate


def _write(tmp_path: Path, text: str, name: str = "rec.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_unix_seconds_with_header_and_gap(tmp_path: Path) -> None:
    rows = ["timestamp,x,y,z"]
    times = [1679702400 + k * 0.02 for k in range(100)] + [1679702410 + k * 0.02 for k in range(50)]
    rows += [f"{t:.2f},0.0,0.{k % 10},1.0" for k, t in enumerate(times)]
    rec = read_csv(_write(tmp_path, "\n".join(rows) + "\n"))
    assert rec.device["fs_hz"] == 50.0 and rec.device["n_rows"] == 150
    assert [b.n_samples for b in rec.blocks] == [100, 50]
    assert rec.blocks[0].t0_ns == 1679702400 * NS_PER_S
    assert rec.blocks[1].t0_ns == 1679702410 * NS_PER_S
    t, a = concatenate(rec.blocks)
    assert np.array_equal(t, np.round(np.array(times) * 100).astype(np.int64) * 10_000_000)
    assert a[3].tolist() == [0.0, 0.3, 1.0]


def test_iso_with_offsets_and_no_header(tmp_path: Path) -> None:
    text = (
        "2023-03-26T01:59:59.900+01:00,0,0,1\n"
        "2023-03-26T01:59:59.950+01:00,0,0,1\n"
        "2023-03-26T01:00:00Z,0,0,1\n"  # = 03:00:00 CEST = 02:00:00 CET
        "2023-03-26T03:00:00.050+02:00,0,0,1\n"
    )
    rec = read_csv(_write(tmp_path, text))
    t, _ = concatenate(rec.blocks)
    base = 1679792400 * NS_PER_S  # 2023-03-26T01:00:00Z
    assert t.tolist() == [base - 100_000_000, base - 50_000_000, base, base + 50_000_000]
    assert rec.device["fs_hz"] == 20.0 and len(rec.blocks) == 1


def test_nanosecond_timestamps_are_exact(tmp_path: Path) -> None:
    text = "1679702400.000000001,0,0,1\n1679702400.010000001,0,0,1\n1679702400.020000001,0,0,1\n"
    t, _ = concatenate(read_csv(_write(tmp_path, text)).blocks)
    assert t.tolist() == [1679702400_000000001 + k * 10_000_000 for k in range(3)]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("", 1, "empty"),
        ("timestamp,x,y,z\n", 2, "no data rows"),
        ("1.0,0,0,1\n1.02,0,0\n", 2, "expected 4 columns"),
        ("1.0,0,0,1\n1.02,0,0,1,5\n", 2, "expected 4 columns"),
        ("t,x,y,z\n1.0,0,0,1\n1.02,0,abc,1\n", 3, "'abc' is not a number"),
        ("1.0,0,0,1\n1.02,0,nan,1\n", 2, "NaN"),
        ("1.0,0,0,1\n1.02,0,0,inf\n", 2, "NaN or infinite"),
        ("1.0,0,0,1\n1.04,0,0,1\n1.02,0,0,1\n", 3, "strictly increasing"),
        ("1.0,0,0,1\n1.0,0,0,1\n", 2, "strictly increasing"),
        ("1.0,0,0,1\nyesterday,0,0,1\n", 2, "Unix seconds"),
        ("2023-03-26T00:00:00Z,0,0,1\n2023-03-26T00:00:01,0,0,1\n", 2, "UTC offset"),
        ("2023-03-26T00:00:00Z,0,0,1\n2023-02-30T00:00:01Z,0,0,1\n", 2, "ISO-8601"),
        ("1.0,0,0,1\n", 1, "at least 2 samples"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = _write(tmp_path, text, name="bad_input.csv")
    with pytest.raises(ReaderError, match=what) as info:
        read_csv(path)
    message = str(info.value)
    assert "bad_input.csv" in message and f"line {line}:" in message
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="nowhere.csv"):
        read_csv(tmp_path / "nowhere.csv")


def test_drifting_clock_is_reanchored(tmp_path: Path) -> None:
    # True rate 50.002 Hz: fs rounds to 50.0 Hz and the nominal grid drifts 0.8 µs per
    # sample (one period after ~25 000 samples), so blocks are re-anchored.
    times = 1679702400 + np.arange(40_000) / 50.002
    text = "".join(f"{t:.6f},0,0,1\n" for t in times)
    rec = read_csv(_write(tmp_path, text))
    t, _ = concatenate(rec.blocks)
    assert rec.device["fs_hz"] == 50.0 and len(rec.blocks) == 2
    assert np.abs(t - np.round(times * 1e6).astype(np.int64) * 1000).max() <= NS_PER_S / 50.0


def test_one_hour_at_50_hz_reads_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 180_000
    a = rng.normal(0, 0.1, (n, 3)).round(5)
    t = 1679702400 + np.arange(n) * 0.02
    lines = [f"{ti:.2f},{x},{y},{z}" for ti, (x, y, z) in zip(t, a.tolist(), strict=True)]
    path = _write(tmp_path, "timestamp,x,y,z\n" + "\n".join(lines) + "\n")
    rec = read_csv(path)
    assert rec.n_samples == n and len(rec.blocks) == 1
    assert np.array_equal(concatenate(rec.blocks)[1], a)
