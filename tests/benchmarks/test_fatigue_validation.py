"""Validation plumbing on a synthetic base session (the real runs are the benchmark)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import fatigue_validation as fv
from benchmarks.fatigue import hmp, inject, runs


def synthetic_session(seed: int = 0, minutes: float = 24.0) -> hmp.Session:
    """Repeated 1.5-Hz reaching 'trials' of 20 s with still rests, assembled like HMP."""
    rng = np.random.default_rng(seed)
    trials = []
    for k in range(6):
        t = np.arange(int(20 * hmp.FS_HZ)) / hmp.FS_HZ
        move = 0.8 * np.sin(2 * np.pi * 1.5 * t) * np.hanning(len(t)) ** 0.2
        a = np.column_stack([0.2 + move, -0.3 + 0.5 * move, np.full(len(t), 0.93) + 0.3 * move])
        trials.append(hmp.Trial("walk", "f9", f"2011-01-01-00-00-{k:02d}",
                                a + rng.normal(0, 0.01, a.shape)))
    return hmp.assemble([trials], minutes * 60, rng, task="walk", seed=seed)


def test_every_condition_builds_a_case_with_a_known_onset():
    sess = synthetic_session()
    other = synthetic_session(1)
    for j, (kind, level, tau) in enumerate(runs.conditions()):
        rng = np.random.default_rng(j)
        case = runs.make_case(sess, kind, level, tau, rng, other)
        res = case.result
        assert res.accel_g.ndim == 2 and res.accel_g.shape[1] == 3
        assert np.isfinite(res.accel_g).all()
        if kind in ("clean", "task_switch", "strap_rotation", "calibration_drift", "resample",
                    "clean_6bit"):
            assert res.onset_s is None
        else:
            assert 0.3 * sess.duration_s <= res.onset_s <= 0.7 * sess.duration_s
            i = int(res.onset_s * sess.fs_hz) - 64  # untouched before the onset (2-s margin)
            if kind.endswith("_6bit"):
                np.testing.assert_allclose(res.accel_g[:i], hmp.quantise(sess.accel_g[:i]))
            else:
                np.testing.assert_allclose(res.accel_g[:i], sess.accel_g[:i], atol=1e-9)


def test_timing_replays_the_index_cusum_and_onset():
    sess = synthetic_session(2, minutes=30)
    # A strong step (30 % smaller, 20 % slower movements) at 10 min: the index must alarm.
    res = inject.realistic(sess.accel_g, sess.fs_hz, t0_s=600.0, tau_s=0.0,
                           rng=np.random.default_rng(1), alpha=0.3, beta=0.2, gamma=0.0,
                           amp_g=0.0)
    row = fv.evaluate(sess, runs.Case("realistic", None, 0.0, res), 0)
    assert row["quality"] == "ok" and row["delta"] > 0.5
    assert row["alarm"] and row["onset_replay_ok"]
    assert row["onset_wall_s"] < row["alarm_wall_s"] and not row["alarm_before_t0"]
    assert abs(row["onset_wall_s"] - 600.0) <= 180.0


def test_summary_follows_the_preregistered_conventions():
    rows = []
    for b in range(4):
        base = {"base": b, "task": "walk", "volunteers": ["f9"], "level": None, "tau_s": None,
                "ci95": None, "onset_active_s": None, "contributions": {}, "features_used": [],
                "n_scored": 50, "alarm_wall_s": None, "onset_wall_s": None,
                "alarm_before_t0": False, "n_fi": 50, "onset_replay_ok": True,
                "t0_active_s": None, "pelt_onset_active_s": None}
        rows.append({**base, "kind": "clean", "t0_s": None, "duration_s": 1800.0,
                     "quality": "ok", "delta": 0.1 * b, "alarm": b == 0,
                     "fi_after_ref": [0.0, 1.0, -1.0]})
        # One gated control: counts above every fatigued session, and not in the hours.
        rows.append({**base, "kind": "strap_rotation", "t0_s": None, "duration_s": 1800.0,
                     "quality": "active_lt_5min" if b == 3 else "ok",
                     "delta": None if b == 3 else -0.1, "alarm": False, "fi_after_ref": []})
        rows.append({**base, "kind": "realistic", "tau_s": 600.0, "t0_s": 900.0,
                     "duration_s": 1900.0, "quality": "ok" if b else "active_lt_5min",
                     "delta": None if b == 0 else 1.0 + b, "alarm": b > 0,
                     "alarm_wall_s": 1200.0, "onset_wall_s": 960.0, "onset_active_s": 600.0,
                     "t0_active_s": 540.0, "pelt_onset_active_s": 660.0, "fi_after_ref": []})
    s = fv.summarise(rows, seed=0)
    assert s["control_hours_quality_ok"] == pytest.approx(3.5)
    assert s["control_hours_gated"] == pytest.approx(0.5)
    assert s["false_alarms_per_10h"] == pytest.approx(10 / 3.5)  # 1 alarm in 3.5 h
    c = s["primary_realistic"]
    assert c["n"] == 4 and c["gated"] == 1
    # 8 controls (one gated = +inf); fatigued: −inf, 2, 3, 4 → 3 × 7 pairs won of 32.
    assert c["auc_vs_all_controls"] == pytest.approx(21 / 32)
    assert c["auc_vs_all_controls_complete_case"] == pytest.approx(1.0)
    assert c["detection_rate"] == pytest.approx(0.75)
    assert c["onset_error_active_min_median_iqr"][0] == pytest.approx(1.0)
    assert c["onset_error_wall_min_median_iqr"][0] == pytest.approx(1.0)
    assert c["delay_wall_min_median_iqr"][0] == pytest.approx(5.0)
    assert s["ot_fi_after_ref"]["clean"]["mean"] == pytest.approx(0.0)
    assert s["controls"]["strap_rotation"]["gates"] == {"ok": 3, "active_lt_5min": 1}
