"""OT-FI per session (methods.md §2.5): known fatigue, controls, quality gates, never a crash."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.fatigue import (
    DEFAULT_PARAMS,
    active_time_s,
    alert,
    build_baseline,
    session_fatigue,
    trend,
)
from analysis.fatigue_features import FEATURES, FatigueWindows, window_features
from analysis.samples import NS_PER_S
from tests.analysis.test_fatigue_signals import T0_NS, arm, rotation

FS = 50.0
NUMERIC = (
    "index",
    "index_between",
    "delta",
    "ci95",
    "onset_s",
    "pelt_onset_s",
    "intensity_decline_pct_per_10min",
    "intensity_decline_p",
    "recovery_mean",
)


def session(
    minutes: float,
    *,
    seed: int,
    fatigue: float = 0.0,
    onset_min: float = 20.0,
    ramp_min: float = 5.0,
    pauses: bool = True,
) -> np.ndarray:
    """A wiping-like task with natural variability; `fatigue` scales an amplitude decay + slowing
    + longer pauses after `onset_min` (ramp over `ramp_min`)."""
    n = int(minutes * 60 * FS)
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    p = np.clip((t - onset_min * 60) / (ramp_min * 60), 0, 1) * fatigue
    freq = 1.5 * (1 - 0.15 * p) * np.exp(rng.normal(0, 0.03, n // 250 + 1).repeat(250)[:n])
    phase = 2 * np.pi * np.cumsum(freq) / FS
    amp = 0.8 * (1 - 0.3 * p) * np.exp(rng.normal(0, 0.08, n // 100 + 1).repeat(100)[:n])
    a = np.zeros((n, 3))
    a[:, 2] = 1.0
    a[:, 0] = amp * np.sin(phase)
    a[:, 1] = 0.2 * amp * np.sin(2 * phase + 0.4)
    if pauses:
        # Pauses of 6–10 s every ~60 s; fatigue makes them longer and more frequent.
        i = int(rng.uniform(20, 60) * FS)
        while i < n:
            length = rng.uniform(6, 10) * (1 + 1.5 * p[i])
            a[i : i + int(length * FS), :2] = 0.0
            i += int(rng.uniform(40, 80) * (1 - 0.4 * p[i]) * FS)
    return a + rng.normal(0, 0.01, (n, 3))


def fw_of(a: np.ndarray) -> FatigueWindows:
    return window_features(a, fs_hz=FS, t0_ns=T0_NS)


@pytest.fixture(scope="module")
def controls() -> list[FatigueWindows]:
    return [fw_of(session(30, seed=s)) for s in (11, 12, 13, 14)]


@pytest.fixture(scope="module")
def fatigued() -> FatigueWindows:
    return fw_of(session(30, seed=21, fatigue=1.0, onset_min=15.0))


def assert_no_numbers(res: dict[str, object]) -> None:
    assert res["quality"] != "ok"
    for k in NUMERIC:
        assert res[k] is None, k
    assert res["alarm"] is False and res["contributions"] == {}


def test_control_sessions_are_calm(controls: list[FatigueWindows]) -> None:
    for fw in controls:
        res = session_fatigue(fw)
        assert res["quality"] == "ok"
        assert abs(res["delta"]) < 0.5
        assert res["alarm"] is False and res["onset_s"] is None
        assert res["ci95"][0] < res["delta"] < res["ci95"][1]
        assert res["features_used"][:3] == ["int", "duty", "freq"]


def test_fatigue_is_detected_with_onset(fatigued: FatigueWindows) -> None:
    res = session_fatigue(fatigued)
    assert res["quality"] == "ok"
    assert res["delta"] > 0.8 and res["ci95"][0] > 0
    assert res["index"] > 0.8
    assert res["alarm"] is True
    # True onset: 15 min elapsed; onset_s is in active seconds (duty ≈ 0.87 before the onset).
    t_act = active_time_s(fatigued)
    true_onset_s = float(t_act[np.searchsorted(fatigued.start_ns, T0_NS + 15 * 60 * NS_PER_S)])
    assert true_onset_s == float(
        np.sum(fatigued.active_s[fatigued.start_ns < T0_NS + 15 * 60 * NS_PER_S]) / 2
    )
    assert abs(res["onset_s"] - true_onset_s) < 180
    assert res["onset_s"] in t_act  # onsets are window starts on the active-time axis
    top = list(res["contributions"])[:3]
    assert "int" in top
    vals = list(res["contributions"].values())
    assert vals == sorted(vals, reverse=True)
    assert res["intensity_decline_pct_per_10min"] < -5 and res["intensity_decline_p"] < 0.01


def test_delta_grows_with_the_dose() -> None:
    deltas = [
        session_fatigue(fw_of(session(24, seed=51, fatigue=f, onset_min=12.0)))["delta"]
        for f in (0.0, 0.35, 0.7, 1.0)
    ]
    assert deltas == sorted(deltas)
    assert deltas[0] < 0.5 < deltas[-1]


def test_contributions_sum_to_the_index(fatigued: FatigueWindows) -> None:
    res = session_fatigue(fatigued)
    assert sum(res["contributions"].values()) == pytest.approx(res["index"], abs=1e-9)


def test_result_is_deterministic(fatigued: FatigueWindows) -> None:
    assert session_fatigue(fatigued) == session_fatigue(fatigued)


def test_between_session_baseline(controls: list[FatigueWindows], fatigued: FatigueWindows) -> None:
    base = build_baseline(controls[:3])
    assert base is not None and len(base.strata) == 1
    calm = session_fatigue(controls[3], baseline=base)
    tired = session_fatigue(fatigued, baseline=base)
    assert calm["quality"] == "ok" and tired["quality"] == "ok"
    assert abs(calm["index_between"]) < 0.5
    # index_between is the median over the whole session; fatigue fills only its second half.
    assert tired["index_between"] > calm["index_between"] + 0.15
    late = [v for v in tired["series"]["fi_between"][-10:] if v is not None]
    assert np.mean(late) > 1.5
    assert tired["atypical_fraction"] > calm["atypical_fraction"]
    assert calm["atypical_fraction"] is not None


# --- quality gates: each triggered on purpose, never a number --------------------------------


def test_gate_short_session(controls: list[FatigueWindows]) -> None:
    fw = controls[0]
    short = fw.take(slice(0, 8))  # 4.5 min of windows
    res = session_fatigue(short)
    assert res["quality"] == "active_lt_5min"
    assert_no_numbers(res)


def test_gate_wear(controls: list[FatigueWindows]) -> None:
    fw = controls[0]
    worn = fw.worn_s.copy()
    worn[: len(fw) // 5] = 20.0
    res = session_fatigue(dataclasses.replace(fw, worn_s=worn))
    assert res["quality"] == "wear_lt_90pct"
    assert_no_numbers(res)


def test_gate_features(controls: list[FatigueWindows]) -> None:
    fw = controls[0]
    feats = fw.features.copy()
    feats[:, 2:8] = np.nan  # only int, duty, astp left
    res = session_fatigue(dataclasses.replace(fw, features=feats))
    assert res["quality"] == "features_lt_4"
    assert_no_numbers(res)


def test_gate_calibration_when_intensity_dominates() -> None:
    # Fatigue carried by intensity alone (amplitude decay, no slowing, no pauses).
    a = session(30, seed=5, pauses=False)
    t = np.arange(a.shape[0]) / FS
    a[:, :2] *= (1 - 0.4 * np.clip((t - 900) / 300, 0, 1))[:, None]
    fw = fw_of(a)
    assert session_fatigue(fw)["quality"] == "ok"
    res = session_fatigue(fw, calibration_ok=False)
    assert res["quality"] == "calibration_intensity"
    assert_no_numbers(res)


def test_gate_novel_task(controls: list[FatigueWindows]) -> None:
    base = build_baseline(controls[:3])
    # The same movement with the forearm turned 90°: its signature is far from the baseline.
    other = fw_of(session(30, seed=15) @ rotation(90.0, 0.0, 0.0).T)
    res = session_fatigue(other, baseline=base)
    assert res["quality"] == "novel_task_gt_30pct" and res["novel_fraction"] > 0.3
    assert_no_numbers(res)


def test_gate_no_reference_when_activity_is_sparse() -> None:
    # 30 min where 12 of every 60 s are active: > 5 active min in total, no analysable window.
    a = arm(1800.0, pauses=(60.0, 48.0))
    res = session_fatigue(fw_of(a))
    assert res["quality"] == "reference_lt_8_windows"
    assert_no_numbers(res)


def test_empty_session() -> None:
    res = session_fatigue(FatigueWindows.empty())
    assert_no_numbers(res)


def test_gate_rate_is_checked_first(controls: list[FatigueWindows]) -> None:
    # Data below 20 Hz yields no windows: the session reports its rate, not "wear_lt_90pct".
    res = session_fatigue(FatigueWindows.empty(), fs_hz=12.5)
    assert res["quality"] == "rate_lt_20hz"
    assert res["quality_failed"] == ["rate_lt_20hz", "wear_lt_90pct", "active_lt_5min"]
    assert_no_numbers(res)
    # It comes first whatever the windows: scorable windows at 19.9 Hz are not scored.
    slow = session_fatigue(controls[0], fs_hz=19.9)
    assert slow["quality"] == "rate_lt_20hz" and slow["quality_failed"] == ["rate_lt_20hz"]
    assert_no_numbers(slow)
    # From 20 Hz on, or with the rate unknown (None, the default), nothing changes.
    ref = session_fatigue(controls[0])
    assert ref["quality"] == "ok" and ref["index"] is not None
    assert session_fatigue(controls[0], fs_hz=20.0) == ref
    assert session_fatigue(controls[0], fs_hz=50.0) == ref
    assert session_fatigue(FatigueWindows.empty(), fs_hz=25.0)["quality"] == "wear_lt_90pct"


@pytest.mark.parametrize("fs_hz", [0.0, -25.0, float("nan"), float("inf")])
def test_bad_rate_is_a_value_error(fs_hz: float) -> None:
    with pytest.raises(ValueError, match=r"fs_hz must be a positive number of Hz or None, got"):
        session_fatigue(FatigueWindows.empty(), fs_hz=fs_hz)


def _random_windows(draw: st.DrawFn) -> FatigueWindows:
    n = draw(st.integers(0, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    nan_p = draw(st.floats(0.0, 1.0))
    feats = rng.normal(size=(n, len(FEATURES))) * rng.choice(
        [1e-9, 1.0, 1e6], size=(1, len(FEATURES))
    )
    feats[rng.random(feats.shape) < nan_p] = np.nan
    sig = rng.normal(size=(n, 6))
    sig[rng.random(sig.shape) < nan_p] = np.nan
    gap = draw(st.booleans())
    start = T0_NS + 30 * NS_PER_S * np.cumsum(rng.integers(1, 3 if gap else 2, n))
    return FatigueWindows(
        start_ns=start.astype(np.int64),
        worn_s=rng.choice([0.0, 30.0, 60.0], n, p=[0.05, 0.05, 0.9]),
        active_s=rng.uniform(0, 60, n),
        analysable=rng.random(n) < 0.8,
        features=feats,
        signature=sig,
        transitions=rng.integers(0, 4, n).astype(float),
        rest_break=rng.random(n) < 0.1,
        trem46=rng.random(n),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans(), st.booleans())
def test_session_fatigue_never_raises(data: st.DataObject, with_base: bool, cal: bool) -> None:
    fw = data.draw(st.composite(lambda d: _random_windows(d))())
    base = None
    if with_base:
        base = build_baseline(
            [data.draw(st.composite(lambda d: _random_windows(d))()) for _ in range(2)]
        )
    res = session_fatigue(fw, baseline=base, calibration_ok=cal)
    assert isinstance(res["alarm"], bool)
    if res["quality"] != "ok":
        assert_no_numbers(res)
    else:
        assert np.isfinite(res["index"]) and np.isfinite(res["delta"])


def test_trend_per_week() -> None:
    day = 86400.0
    pts = [(i * 7 * day, 0.1 + 0.25 * i) for i in range(6)] + [(10 * day, None)]
    res = trend(pts)
    assert res["slope_per_week"] == pytest.approx(0.25)
    assert res["n"] == 6 and res["p"] < 0.01
    assert trend(pts[:2])["slope_per_week"] is None


def test_alert_k_of_n() -> None:
    ok = {"quality": "ok", "index": 0.9, "index_between": None}
    calm = {"quality": "ok", "index": 0.1, "index_between": 0.0}
    bad = {"quality": "active_lt_5min", "index": None}
    hist = [calm, ok, bad, calm, ok, ok]
    res = alert(hist, k=3, n=5)
    # The failed session is skipped: the last 5 scored are calm, ok, calm, ok, ok → 3 above.
    assert res == {
        "alert": True,
        "above": 3,
        "considered": 5,
        "k": 3,
        "n": 5,
        "level": DEFAULT_PARAMS.alert_level,
    }
    assert alert(hist[:-1], k=3, n=5)["alert"] is False
    assert alert([1.0, None, 2.0], k=2, n=2)["alert"] is True
    with pytest.raises(ValueError, match="k"):
        alert([], k=6, n=5)


def test_task_switch_within_a_session_is_split_not_fatigue() -> None:
    # 15 min of the task, then the same movement with the forearm turned 60°: two strata.
    a = np.concatenate([session(15, seed=31), session(15, seed=32) @ rotation(60.0, 0.0, 0.0).T])
    res = session_fatigue(fw_of(a))
    assert res["quality"] == "ok" and res["strata"] == 2
    assert res["alarm"] is False and abs(res["delta"]) < 0.5


def test_recovery_after_a_rest_break() -> None:
    a = session(30, seed=41)
    i = int(14 * 60 * FS)
    a[i : i + int(90 * FS), :2] = 0.0  # a 90-s break at 14 min
    res = session_fatigue(fw_of(a))
    assert res["quality"] == "ok"
    assert len(res["recovery"]) == 1
    r = res["recovery"][0]
    assert 13 * 60 <= r["break_start_s"] <= 14 * 60 and 15 * 60 <= r["break_end_s"] <= 16.5 * 60
    assert r["change"] == pytest.approx(r["after"] - r["before"])
    assert res["recovery_mean"] == pytest.approx(r["change"])


def test_tagged_baseline_selects_the_stratum(controls: list[FatigueWindows]) -> None:
    base = build_baseline(controls[:2], tags=["wiping", "wiping"])
    assert base is not None and base.tagged and [s.label for s in base.strata] == ["wiping"]
    res = session_fatigue(controls[3], baseline=base, task="wiping")
    assert res["quality"] == "ok" and res["index_between"] is not None
    other = session_fatigue(controls[3], baseline=base, task="cooking")
    assert other["quality"] == "ok" and other["index_between"] is None
    with pytest.raises(ValueError, match="tags"):
        build_baseline(controls[:2], tags=["x"])
    assert build_baseline([controls[0].take(slice(0, 5))]) is None


def test_trend_accepts_datetimes() -> None:
    from datetime import datetime, timedelta

    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    res = trend([(t0 + timedelta(days=3.5 * i), 1.0 - 0.1 * i) for i in range(8)])
    assert res["slope_per_week"] == pytest.approx(-0.2)


def test_astp_scale_is_floored_at_its_poisson_sd() -> None:
    from analysis.fatigue_params import robust_reference

    x = np.zeros((10, len(FEATURES)))
    j = FEATURES.index("astp")
    x[:, j] = 1.2  # a constant reference: MAD 0, the 0.05 floor alone would make z explode
    _, scale = robust_reference(x, active_min=np.linspace(1.0, 4.0, 10))
    assert scale[j] == pytest.approx(np.sqrt(1.2 / 4.0))
    # No transitions in the reference: λ = 1 per reference span (1/A).
    x[:, j] = 0.0
    _, scale0 = robust_reference(x, active_min=np.full(10, 4.0))
    assert scale0[j] == pytest.approx(np.sqrt(0.25 / 4.0))
    _, plain = robust_reference(x)
    assert plain[j] == DEFAULT_PARAMS.floors[j]


def test_duty_scale_is_floored_at_its_compound_poisson_sd() -> None:
    from analysis.fatigue_params import robust_reference

    x = np.zeros((10, len(FEATURES)))
    jd, ja = FEATURES.index("duty"), FEATURES.index("astp")
    x[:, jd], x[:, ja] = 0.7, 2.0  # constant trailing sums: MAD 0
    _, scale = robust_reference(x, active_min=np.linspace(1.0, 4.0, 10))
    # N = 2 rests per active min × 4 active min = 8 pauses: SD = 0.7·0.3·√(2/8) = 0.105.
    assert scale[jd] == pytest.approx(0.105)
    # Without pauses N is floored at 1, and a duty of 1 has no pause noise: the 0.05 floor.
    x[:, ja] = 0.0
    assert robust_reference(x, active_min=np.full(10, 4.0))[1][jd] == pytest.approx(0.7 * 0.3 * np.sqrt(2))
    x[:, jd] = 1.0
    assert robust_reference(x, active_min=np.full(10, 4.0))[1][jd] == DEFAULT_PARAMS.floors[jd]
    # Off without the reference's active minutes, or when switched off.
    x[:, jd], x[:, ja] = 0.7, 2.0
    assert robust_reference(x)[1][jd] == DEFAULT_PARAMS.floors[jd]
    off = dataclasses.replace(DEFAULT_PARAMS, duty_poisson_floor=False)
    assert robust_reference(x, off, active_min=np.full(10, 4.0))[1][jd] == DEFAULT_PARAMS.floors[jd]
