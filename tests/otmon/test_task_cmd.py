"""`otmon task start|stop` through the real command line (subprocesses), into the outbox."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.outbox import Outbox

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def otmon(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otmon", *args],
        check=False,
        cwd=REPO,
        env=ENV,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def events(path: Path) -> list[tuple[str, dict[str, object]]]:
    with Outbox(path) as box:
        return [(e.kind, e.fields) for e in box.pending_events(100)]


def test_start_stop_second_start_and_status(tmp_path: Path) -> None:
    box = tmp_path / "outbox.sqlite3"
    config = tmp_path / "collector.toml"
    config.write_text('outbox = "outbox.sqlite3"\n')  # relative to the config file
    t_before = time.time_ns()
    assert otmon("task", "start", "cooking", "--config", str(config)).returncode == 0
    second = otmon("task", "start", "laundry", "--outbox", str(box))
    assert second.returncode == 0 and "stopped 'cooking'" in second.stdout
    status = json.loads(otmon("status", "--outbox", str(box), "--json").stdout)
    assert status["open_task"]["label"] == "laundry" and status["backlog_events"] == 3
    stop = otmon("task", "stop", "--borg", "13", "--note", "felt dizzy", "--outbox", str(box))
    assert (
        stop.returncode == 0 and "stopped 'laundry'" in stop.stdout and "effort 13" in stop.stdout
    )
    t_after = time.time_ns()
    got = events(box)
    assert [k for k, _ in got] == ["task_start", "task_stop", "task_start", "task_stop"]
    assert [f.get("label") for _, f in got] == ["cooking", None, "laundry", None]
    assert got[1][1] == {"at_ns": got[2][1]["at_ns"], "borg": None, "note": None, "source": "cli"}
    assert got[3][1]["borg"] == 13 and got[3][1]["note"] == "felt dizzy"
    assert all(t_before <= f["at_ns"] <= t_after and f["source"] == "cli" for _, f in got)
    text = otmon("status", "--outbox", str(box)).stdout
    assert "events waiting    4" in text and "task              none" in text


@pytest.mark.parametrize("borg", ["21", "5", "13.5", "hard"])
def test_bad_borg_is_one_line_and_exit_2(tmp_path: Path, borg: str) -> None:
    box = tmp_path / "outbox.sqlite3"
    result = otmon("task", "stop", "--borg", borg, "--outbox", str(box))
    assert result.returncode == 2
    message = "--borg must be an integer from 6 (no effort) to 20 (maximal effort)"
    assert result.stderr.strip().splitlines() == [f"otmon: error: {message}, got {borg!r}"]
    assert not box.exists() or events(box) == []  # nothing written


def test_bad_label_and_both_flags_are_refused(tmp_path: Path) -> None:
    box = tmp_path / "outbox.sqlite3"
    long = otmon("task", "start", "x" * 65, "--outbox", str(box))
    assert long.returncode == 2 and "LABEL must be 1-64 characters" in long.stderr
    both = otmon("task", "start", "a", "--outbox", str(box), "--config", str(box))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def _run_on_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run `otmon ARGS` with a pseudo-terminal as stdin/stdout, typing `answers` at prompts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otmon", *args],
        cwd=REPO,
        env=ENV,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if pending and out.rstrip().endswith(b"Enter to skip):"):
                os.write(master, pending.pop(0).encode() + b"\n")
                out += b"\n"
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_stop_on_a_terminal_asks_for_the_rating(tmp_path: Path) -> None:
    box = tmp_path / "outbox.sqlite3"
    assert otmon("task", "start", "cooking", "--outbox", str(box)).returncode == 0
    code, out = _run_on_terminal(["task", "stop", "--outbox", str(box)], ["25", "14"])
    assert code == 0, out
    assert "please type a whole number from 6 to 20" in out
    code, out = _run_on_terminal(["task", "stop", "--outbox", str(box)], [""])  # Enter skips
    assert code == 0, out
    stops = [f for k, f in events(box) if k == "task_stop"]
    assert [f["borg"] for f in stops] == [14, None]
    # not a terminal (a desktop shortcut, a script): never asks
    assert otmon("task", "stop", "--outbox", str(box), stdin="13\n").returncode == 0
    assert [f["borg"] for k, f in events(box) if k == "task_stop"] == [14, None, None]


def test_waits_for_a_running_collectors_write_and_then_succeeds(tmp_path: Path) -> None:
    box = tmp_path / "outbox.sqlite3"
    Outbox(box).close()
    collector = sqlite3.connect(box, isolation_level=None)
    collector.execute("BEGIN IMMEDIATE")  # as the collector holds the write lock while storing
    proc = subprocess.Popen(
        [sys.executable, "-m", "otmon", "task", "start", "cooking", "--outbox", str(box)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert proc.poll() is None  # it waits (busy timeout), it does not fail
    collector.execute("COMMIT")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [k for k, _ in events(box)] == ["task_start"]
