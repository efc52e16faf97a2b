"""read_recording dispatch, the bad-input list of issue 5, and `otmon analyze` on every format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ReaderError
from analysis.readers import read_recording

REPO = Path(__file__).parents[2]
REC = REPO / "fixtures" / "recordings"


@pytest.mark.parametrize(
    ("name", "fmt", "n", "fs_hz"),
    [
        ("agcounts_example.gt3x", "gt3x", 18_000, 100.0),
        ("actigraph_testfile.gt3x", "gt3x", 53_040, 30.0),
        ("ax3_sample.cwa", "cwa", 58_800, 197.16),
        ("ax6_sample.cwa", "cwa", 10_360, 98.4),
        ("gnactv_sample.bin", "geneactiv", 900, 50.0),
        ("ax3_testfile_unix_timestamps.csv", "csv", 210, 100.0),
    ],
)
def test_dispatch_by_extension_and_by_content(tmp_path: Path, name: str, fmt: str, n: int, fs_hz: float) -> None:
    rec = read_recording(REC / name)
    assert (rec.device["format"], rec.n_samples, rec.fs_hz) == (fmt, n, fs_hz)
    if fmt != "csv":  # binary formats are recognised without their extension too
        shutil.copy(REC / name, tmp_path / "renamed.dat")
        again = read_recording(tmp_path / "renamed.dat")
        assert again.device["format"] == fmt and again.n_samples == n


def test_npy_needs_rate_and_start_and_options_must_fit(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((100, 3)))
    with pytest.raises(ReaderError, match=r"a\.npy: a \.npy array needs its rate and start time \(--fs HZ --start"):
        read_recording(tmp_path / "a.npy")
    rec = read_recording(tmp_path / "a.npy", fs_hz=25.0, start="2024-01-01T00:00:00Z", idle_sleep=None)
    assert rec.n_samples == 100 and rec.device["format"] == "npy"
    with pytest.raises(ValueError, match="option fs_hz=25.0 does not apply to cwa file"):
        read_recording(REC / "ax6_sample.cwa", fs_hz=25.0)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rec.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"rec\.csv: byte 0: empty file"),
        ("1700000000.00,0,0,1\n", r"rec\.csv: line 1: need at least 2 samples"),
        ("1700000000.00,nan,nan,nan\n1700000000.01,nan,nan,nan\n", r"rec\.csv: line 1: value is NaN"),
        ("1700000000.00,0,0,1\n1700000000.01,0,1\n", r"rec\.csv: line 2: expected 4 columns"),
        ("1700000000.00,0,0,1\n1700000000.20,0,0,1\n1700000000.40,0,0,1\n", r"rec\.csv: sampling rate 5 Hz is under the 10 Hz minimum"),
        ("1700000000.02,0,0,1\n1700000000.01,0,0,1\n", r"rec\.csv: line 2: timestamp '1700000000.01' is not after the previous one"),
    ],
)
def test_bad_input_is_a_reader_error_naming_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ReaderError, match=message):
        read_recording(_csv(tmp_path, text))


def test_truncated_binaries(tmp_path: Path) -> None:
    data = (REC / "ax3_sample.cwa").read_bytes()
    (tmp_path / "t.cwa").write_bytes(data[:5000])
    with pytest.raises(ReaderError, match=r"t\.cwa: byte 4608: truncated data sector"):
        read_recording(tmp_path / "t.cwa")
    data = (REC / "actigraph_testfile.gt3x").read_bytes()
    (tmp_path / "t.gt3x").write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match=r"t\.gt3x: not a \.gt3x file \(not a readable zip archive\)"):
        read_recording(tmp_path / "t.gt3x")
    np.save(tmp_path / "t.npy", np.zeros((1000, 3)))
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[:2000])
    with pytest.raises(ReaderError, match=r"t\.npy: not a readable \.npy array"):
        read_recording(tmp_path / "t.npy", fs_hz=50.0, start="2024-01-01T00:00:00Z")


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ReaderError, match=r"x\.txt: unknown recording format"):
        read_recording(tmp_path / "x.txt")


def _otmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otmon", "analyze", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)


def test_cli_reports_bad_files_in_one_line_with_exit_2(tmp_path: Path) -> None:
    empty = _csv(tmp_path, "")
    (tmp_path / "t.cwa").write_bytes((REC / "ax6_sample.cwa").read_bytes()[:1500])
    np.save(tmp_path / "a.npy", np.zeros((100, 3)))
    for args, message in [
        ((str(empty),), f"otmon: error: {empty}: byte 0: empty file"),
        ((str(tmp_path / "t.cwa"),), f"otmon: error: {tmp_path / 't.cwa'}: byte 1024: truncated data sector"),
        ((str(tmp_path / "a.npy"),), f"otmon: error: {tmp_path / 'a.npy'}: a .npy array needs its rate"),
        ((str(tmp_path / "a.npy"), "--fs", "50", "--start", "yesterday"), "otmon: error: start must be ISO-8601"),
    ]:
        done = _otmon(*args)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr


def test_cli_analyses_npy_and_gt3x(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    accel = (np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (30_000, 3))).astype(np.float32)
    np.save(tmp_path / "a.npy", accel)
    done = _otmon(str(tmp_path / "a.npy"), "--fs", "100", "--start", "2024-03-04T08:00:00+01:00", "--json")
    assert done.returncode == 0, done.stderr
    days = json.loads(done.stdout)["days"]
    assert [d["date"] for d in days] == ["2024-03-04"] and days[0]["samples"] == 30_000
    done = _otmon(str(REC / "agcounts_example.gt3x"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("agcounts_example.gt3x: 18000 samples in 1 blocks (gt3x)")
