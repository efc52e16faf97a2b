"""`otmon analyze --json`: every session carries the OT-FI `fatigue` object (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from otmon.cli import main
from tests.fatigue_signals import FS_HZ, arm_task, still

CAPTURE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "captures"
    / "polar_h10_wrist_1h.capture.jsonl.gz"
)
START = "2024-03-04T09:00:00Z"
#: Keys of `analysis.fatigue.session_fatigue` fixed by the contract (architecture.md, issue 6).
CONTRACT_KEYS = {"index", "delta", "ci95", "onset_s", "alarm", "contributions", "quality"}


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["analyze", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def _npy(tmp_path: Path, name: str, accel: np.ndarray) -> list[str]:
    path = tmp_path / f"{name}.npy"
    np.save(path, accel.astype(np.float32))
    return [str(path), "--fs", str(FS_HZ), "--start", START]


def test_capture_sessions_carry_fatigue(capsys: pytest.CaptureFixture[str]) -> None:
    (detected,) = _report(capsys, str(CAPTURE))["sessions"]
    f = detected["fatigue"]
    assert CONTRACT_KEYS <= set(f) and f["quality"] == "ok"
    # Regression figures of the synthesised wrist capture's 41-min session (change on purpose:
    # they follow the OT-FI parameters of docs/fatigue-preregistration.md, here OT-FI v3 of
    # deviation 3: activity from the movement band, so more of this free-living hour is active).
    assert (f["n_windows"], f["n_scored"], f["active_s"]) == (81, 78, 2243.0)
    assert f["index"] == pytest.approx(1.5224, abs=1e-3)
    assert f["delta"] == pytest.approx(1.8374, abs=1e-3)
    assert f["ci95"][0] < f["delta"] < f["ci95"][1]
    assert f["alarm"] is True and f["onset_s"] == 1566.5
    assert list(f["contributions"])[:2] == ["astp", "duty"]
    values = list(f["contributions"].values())
    assert values == sorted(values, reverse=True)  # ranked
    # The whole file as one session (--session) is scored too, over its own windows.
    (whole,) = _report(capsys, str(CAPTURE), "--session", "--activity", "vacuuming")["sessions"]
    assert whole["fatigue"]["quality"] == "ok" and whole["fatigue"]["n_windows"] == 119


def test_late_amplitude_decay_gives_a_positive_delta(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    control = arm_task(1200, seed=3)
    tired = arm_task(1200, seed=3, fatigue_from_s=600, amp_end_g=0.3, freq_end_hz=1.1)
    (c,) = _report(capsys, *_npy(tmp_path, "control", control), "--session")["sessions"]
    (t,) = _report(capsys, *_npy(tmp_path, "tired", tired), "--session")["sessions"]
    fc, ft = c["fatigue"], t["fatigue"]
    assert fc["quality"] == ft["quality"] == "ok"
    assert ft["delta"] > 0.8 and ft["ci95"][0] > 0  # the decline is found, and is significant
    assert ft["delta"] > fc["delta"] + 0.5  # and is larger than the control's drift
    assert {"int", "freq"} & set(list(ft["contributions"])[:2])  # lower output, slower tempo


def test_a_session_failing_a_gate_has_no_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 3 min of movement in a 13-min file: active time < 5 min (methods.md §2.5 step 9).
    accel = np.concatenate(
        [still(300, seed=1), arm_task(180, pause_every_s=0, seed=1), still(300, seed=2)]
    )
    (s,) = _report(capsys, *_npy(tmp_path, "short", accel), "--session")["sessions"]
    f = s["fatigue"]
    assert f["quality"] == "active_lt_5min"
    assert (f["index"], f["delta"], f["ci95"], f["onset_s"]) == (None, None, None, None)
    assert f["alarm"] is False and f["contributions"] == {}


def test_detected_sessions_share_the_first_three_as_baseline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Four detected sessions of one task; the fourth is weaker and slower from the start."""
    parts = [still(120, seed=9)]
    for i, (amp_g, freq_hz) in enumerate([(0.7, 1.6), (0.85, 1.4), (0.8, 1.5)]):
        parts += [arm_task(480, amp_g=amp_g, freq_hz=freq_hz, seed=10 + i), still(420, seed=20 + i)]
    # A stronger decline makes the session's task signature (log intensity, tempo) "novel"
    # against this narrow synthetic baseline and the session is then not scored. 0.52 g: v1's
    # intensity (active ENMO, ≈ quadratic in amplitude) fell by 0.65²/0.8² at 0.65 g; OT-FI v2's
    # (mean band magnitude, linear in amplitude; deviation 2) falls as much at 0.8·0.65²/0.8².
    parts += [arm_task(480, amp_g=0.52, freq_hz=1.35, seed=13), still(120, seed=24)]
    sessions = _report(capsys, *_npy(tmp_path, "four", np.concatenate(parts)))["sessions"]
    assert len(sessions) == 4 and all(s["activity"] is None for s in sessions)
    fat = [s["fatigue"] for s in sessions]
    assert [f["quality"] for f in fat] == ["ok"] * 4
    between = [f["index_between"] for f in fat]
    # Against the first three sessions the fourth is the one above the baseline.
    assert between[3] > 0.5 > max(between[:3]) and between[3] > max(between[:3]) + 0.1


def test_a_recording_below_20_hz_fails_the_rate_gate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 12.5 Hz (every other sample of the 25-Hz task): no fatigue windows; the session says why.
    accel = arm_task(600, seed=4)
    path = tmp_path / "slow.npy"
    np.save(path, accel[::2].astype(np.float32))
    args = [str(path), "--fs", "12.5", "--start", START, "--session"]
    (s,) = _report(capsys, *args)["sessions"]
    f = s["fatigue"]
    assert f["quality"] == "rate_lt_20hz" and f["quality_failed"][0] == "rate_lt_20hz"
    assert (f["index"], f["delta"], f["onset_s"], f["n_windows"]) == (None, None, None, 0)
    # The same movement at 25 Hz is scored.
    (ok,) = _report(capsys, *_npy(tmp_path, "fast", accel), "--session")["sessions"]
    assert ok["fatigue"]["quality"] == "ok" and ok["fatigue"]["n_windows"] > 0
