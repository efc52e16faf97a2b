"""`otmon analyze --json`: recording, calibration, days (unchanged contract) and sessions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.pipeline import epoch_table, summarise_days
from collector.session import decode_capture
from otmon.analyze_cmd import Progress
from otmon.cli import main
from tests.analysis.task_signals import ENMO_OF_AMPLITUDE_MG, task_signal

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
SESSION_KEYS = {
    "start", "end", "activity", "duration_s", "active_s", "rest_breaks", "pauses", "work_to_rest",
    "longest_active_s", "time_to_first_break_s", "mean_enmo_mg", "peak_enmo_mg", "personal_peak_mg",
    "pct_personal_peak", "minutes_by_class", "cutpoints", "mvpa_bouts", "met", "completeness",
    "source", "borg", "note", "gaps",
    "fatigue",
}  # fmt: skip
# 6 min still, 10 min arm movement (1.5 Hz, 0.5 g) in three 200-s parts with two 45-s rests, 6 min still.
TASK = [("still", 360), ("move", 200), ("still", 45), ("move", 200), ("still", 45), ("move", 200), ("still", 360)]
T0_S = 1_700_000_000  # 2023-11-14T22:13:20Z


def _analyze_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["analyze", *args, "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == ""  # no progress output when stderr is not a terminal
    return json.loads(out.out)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def task_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fs_hz = 25  # ≥ 10 Hz reader floor; small file
    accel = task_signal(TASK)[::2]
    t = T0_S + np.arange(accel.shape[0]) / fs_hz
    path = tmp_path_factory.mktemp("task") / "task.csv"
    np.savetxt(path, np.column_stack([t, accel]), fmt=["%.2f", "%.5f", "%.5f", "%.5f"], delimiter=",",
               header="timestamp,x,y,z", comments="")  # fmt: skip
    return path


def test_capture_report_shape_and_days_as_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    report = _analyze_json(capsys, str(CAPTURE), "--tz", "Europe/Berlin")
    assert list(report) == ["recording", "calibration", "days", "sessions"]
    blocks = list(decode_capture(CAPTURE).blocks)
    assert report["days"] == summarise_days(epoch_table(blocks), tz="Europe/Berlin")
    rec = report["recording"]
    assert rec["format"] == "otmon-capture" and rec["profile"] == "polar_pmd"
    assert (rec["n_samples"], rec["fs_hz"], rec["blocks"], rec["gaps"]) == (180_000, 50.0, 60, [])
    assert rec["start"] == "2023-04-24T22:02:00.015153Z" and rec["end"] == "2023-04-24T23:02:00.015153Z"
    cal = report["calibration"]
    assert cal["applied"] is False and cal["status"] == "poor_sphere_coverage" and cal["ok"] is False
    (s,) = report["sessions"]
    assert set(s) == SESSION_KEYS
    # Regression figures of the synthesised wrist capture (change only on purpose).
    assert (s["start"], s["end"], s["duration_s"], s["active_s"]) == (
        "2023-04-24T22:20:35Z", "2023-04-24T23:02:00Z", 2485.0, 1522.0,
    )  # fmt: skip
    assert s["rest_breaks"] == {"count": 9, "total_s": 494.0, "longest_s": 91.0}
    assert s["active_s"] + s["rest_breaks"]["total_s"] + s["pauses"]["total_s"] <= s["duration_s"]
    assert sum(s["minutes_by_class"].values()) == pytest.approx(s["duration_s"] / 60, abs=0.02)


def test_whole_file_session_agrees_with_the_day(capsys: pytest.CaptureFixture[str]) -> None:
    report = _analyze_json(capsys, str(CAPTURE), "--session", "--activity", "vacuuming")
    (day,) = report["days"]
    (s,) = report["sessions"]
    assert (s["start"], s["end"], s["duration_s"]) == ("2023-04-24T22:02:00Z", "2023-04-24T23:02:00Z", 3600.0)
    assert s["activity"] == "vacuuming" and s["met"] == 3.3
    for name in ("sedentary", "light", "moderate", "vigorous"):
        assert s["minutes_by_class"][name] == pytest.approx(day[f"{name}_min"], abs=0.01)
    assert s["completeness"]["wear_fraction"] == pytest.approx(day["wear_min"] / 60, abs=0.01)


def test_csv_task_is_detected_with_its_rest_breaks(capsys: pytest.CaptureFixture[str], task_csv: Path) -> None:
    report = _analyze_json(capsys, str(task_csv))
    assert report["recording"]["format"] and report["recording"]["fs_hz"] == 25.0
    (s,) = report["sessions"]
    assert (s["start"], s["end"]) == ("2023-11-14T22:19:20Z", "2023-11-14T22:30:50Z")
    assert s["duration_s"] == 690.0 and s["active_s"] == 600.0
    assert s["rest_breaks"] == {"count": 2, "total_s": 90.0, "longest_s": 45.0}
    assert s["work_to_rest"] == pytest.approx(6.67, abs=0.01)
    assert s["mean_enmo_mg"] == pytest.approx(ENMO_OF_AMPLITUDE_MG[0.5], abs=1.0)
    assert s["minutes_by_class"] == {"sedentary": 1.5, "light": 10.0, "moderate": 0.0, "vigorous": 0.0}


def test_older_adult_cutpoints_name_their_classes(capsys: pytest.CaptureFixture[str], task_csv: Path) -> None:
    report = _analyze_json(capsys, str(task_csv), "--cutpoints", "migueles2021_wrist_older")
    (s,) = report["sessions"]
    assert report["days"][0]["cutpoints"] == s["cutpoints"] == "migueles2021_wrist_older"
    # 59.8 mg ≥ 18 and < 60 mg: light for Migueles 2021; no vigorous class.
    assert s["minutes_by_class"] == {"sedentary": 1.5, "light": 10.0, "moderate_or_vigorous": 0.0}


def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str], task_csv: Path) -> None:
    assert main(["analyze", str(task_csv), "--activity", "cooking"]) == 2
    assert "--session" in capsys.readouterr().err
    assert main(["analyze", str(task_csv), "--cutpoints", "vahaypya2015_hip_mad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'mad'" in err
    assert main(["analyze", str(task_csv), "--cutpoints", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_text_output_and_epochs_csv(capsys: pytest.CaptureFixture[str], task_csv: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "epochs.csv"
    assert main(["analyze", str(task_csv), "--epochs", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "session 2023-11-14T22:19:20Z" in text and "2 rest breaks" in text
    assert out_csv.read_text().startswith("start_ns,n_samples,covered_s,enmo_mg")
    assert len(out_csv.read_text().splitlines()) == 1 + 1410 // 5


def test_progress_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(stream, total=2)
        p.step("epochs")
        p.finish()
    assert "[1/2] epochs" in tty.getvalue() and pipe.getvalue() == ""
