"""The command line: clear one-line errors for bad input, JSON days for good input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from otmon.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otmon", *args], capture_output=True, text=True, timeout=120
    )


def _write_csv(path: Path, seconds: int, fs_hz: int = 50) -> None:
    rng = np.random.default_rng(7)
    n = seconds * fs_hz
    t = 1_700_000_000 + np.arange(n) / fs_hz
    accel = np.column_stack([np.zeros(n), np.zeros(n), np.ones(n)]) + rng.normal(0, 0.2, (n, 3))
    lines = ["timestamp,x,y,z"] + [f"{ti:.3f},{x:.4f},{y:.4f},{z:.4f}" for ti, (x, y, z) in zip(t, accel)]
    path.write_text("\n".join(lines) + "\n")


def test_analyze_csv_prints_days_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "walk.csv"
    _write_csv(csv, seconds=120)
    assert main(["analyze", str(csv), "--json", "--tz", "Europe/London"]) == 0
    days = json.loads(capsys.readouterr().out)["days"]
    assert len(days) == 1
    assert days[0]["date"] == "2023-11-14"
    assert days[0]["samples"] == 6000
    assert days[0]["recorded_min"] == pytest.approx(2.0, abs=0.01)


def test_analyze_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("analyze", str(tmp_path / "nope.csv"), "--json")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "nope.csv" in result.stderr


def test_analyze_bad_csv_names_file_and_line(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp,x,y,z\n1700000000.00,0,0,1\n1700000000.02,0,zero,1\n")
    result = _run("analyze", str(csv))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.csv" in result.stderr and "3" in result.stderr


def test_analyze_unknown_time_zone_is_rejected(tmp_path: Path) -> None:
    csv = tmp_path / "ok.csv"
    _write_csv(csv, seconds=10)
    result = _run("analyze", str(csv), "--tz", "Mars/Olympus_Mons")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Mars/Olympus_Mons" in result.stderr


def test_analyze_unknown_file_type(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    result = _run("analyze", str(other))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "notes.txt" in result.stderr and "unknown" in result.stderr


def test_replay_to_a_server_that_is_not_there_fails_cleanly() -> None:
    from otmon.demo import demo_capture

    result = _run("replay", str(demo_capture()), "--server", "http://127.0.0.1:9", "--token", "x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:9" in result.stderr


def test_user_add_with_a_bad_database_url_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otmon", "user", "add", "--email", "a@b.example", "--password-stdin",
         "--database-url", "nosuch://x"],
        input="long enough password\n", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "otmon: error: bad database URL: Can't load plugin: sqlalchemy.dialects:nosuch"
    ]


def test_user_add_twice_is_refused_and_keeps_the_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'otmon.sqlite3'}"
    args = ["user", "add", "--email", "ot@clinic.example", "--password-stdin", "--database-url", url]

    def add(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otmon", *args], input=password + "\n",
                              capture_output=True, text=True, timeout=120)

    first = add("first password")
    assert first.returncode == 0, first.stderr
    second = add("second password")
    assert second.returncode == 2
    assert "Traceback" not in second.stderr and "ot@clinic.example" in second.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "otmon.sqlite3") as conn:
        (count,) = conn.execute("SELECT count(*) FROM users").fetchone()
    assert count == 1


def test_user_add_rejects_a_short_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otmon", "user", "add", "--email", "a@b.example", "--password-stdin",
         "--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}"],
        input="short\n", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "at least 8 characters" in result.stderr
