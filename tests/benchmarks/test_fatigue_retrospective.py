"""The retrospective script on small synthetic CSVs shaped like the public ones (known answers)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import fatigue_retrospective as retro


def write_shoulder(path: Path, rng: np.random.Generator) -> None:
    cols = [f"{s}_{st}" for s in retro.SENSORS for st in retro.D2_STATS]
    header = ["subject", "experimental_condition", "rpe", "wrist_acc_time", *cols]
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for subj in ("1", "2", "3"):
            for cond, slope in (("Condition 2.5-15", 0.4), ("Condition 2.5-5", 0.1)):
                for i in range(60):  # one cycle per 45 s; amplitude falls with fatigue
                    frac = i / 59
                    rpe = round(8 * slope / 0.4 * frac) if i % 6 == 0 else "NA"
                    vals = 1.0 * (1 - slope * frac) * np.exp(rng.normal(0, 0.02, len(cols)))
                    w.writerow([subj, cond, rpe, 1_600_000_000 + 45 * i, *vals])


def write_maman(path: Path, rng: np.random.Generator, cv_name: str, label: str) -> None:
    header = ["", "subject", label, "Wrist.jerk.Mean", "Wrist.ACC.Mean", f"Wrist.jerk.{cv_name}",
              f"Wrist.ACC.{cv_name}", "Hip.ACC.Mean", "HRR-Mean"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        n = 0
        for p in range(4):
            for y in [0] * 9 + [1] * 9:
                n += 1
                shift = 0.3 * y
                w.writerow([n, f"P{p}", y, 10 * (1 - shift) + rng.normal(0, 0.2),
                            10 + rng.normal(0, 0.2), 50 * (1 + shift) + rng.normal(0, 1),
                            50 + rng.normal(0, 1), 5 + rng.normal(0, 0.1), 0.4 + y])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    root = tmp_path / "fatigue"
    write_shoulder(root / "shoulder_fatigue_modeling" / "initial_features.csv", rng)
    write_maman(root / "maman2020" / "MMH_15p.csv", rng, "coefficient.of.variation",
                "fatiguestate1")
    write_maman(root / "maman2020" / "WLK_13p.csv", rng, "CV", "Fatigue state")
    return tmp_path


def test_retrospective_finds_the_planted_decline_and_ordering(data: Path, tmp_path: Path):
    out_path = tmp_path / "out.json"
    assert retro.main(["--data", str(data), "--json", str(out_path)]) == 0
    out = json.loads(out_path.read_text())
    sh = out["shoulder"]
    assert sh["n_sessions"] == 6 and sh["variant"] == "preregistered"
    assert out["shoulder_harness"]["auc_composite"] > 0.95
    assert sh["auc_composite"] > 0.95
    assert sh["rho_composite_median_iqr"][0] > 0.8
    assert sh["rmcorr_composite"]["r"] > 0.8
    # Steeper decline in the heavier, faster condition: slope ordering follows the workload.
    bc = sh["by_condition"]
    assert bc["Condition 2.5-15"]["slope_per_10min_median"] > bc["Condition 2.5-5"]["slope_per_10min_median"] > 0
    assert sh["cusum"]["sessions_reaching_rpe5"] == 3
    for key in ("maman_mmh", "maman_wlk"):
        m = out[key]
        assert m["rows_in_order"] and m["n_participants"] == 4
        assert m["n_fatigued"] == 36 and m["n_nonfatigued_scored"] == 16
        assert m["auc_comp"] > 0.95 and m["auc_d2_wrist"] > 0.95
        assert m["all_acc_features"] == 5  # heart rate is not an accelerometer feature


def test_retrospective_missing_folder_is_a_clear_error(tmp_path: Path, capsys):
    assert retro.main(["--data", str(tmp_path)]) == 2
    assert "fatigue data folder not found" in capsys.readouterr().err
