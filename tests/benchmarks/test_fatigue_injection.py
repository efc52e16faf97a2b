"""The raw-signal fatigue manipulations and negative controls do what methods.md §2.6 says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks, welch

from benchmarks.fatigue import controls, inject

FS = 32.0
G = np.array([0.2, -0.3, np.sqrt(1 - 0.13)])


def sine_signal(dur_s: float, f_hz: float = 1.5, amp_g: float = 0.2, axis=(1.0, 0, 0)) -> np.ndarray:
    """Gravity on a tilted axis plus a sinusoidal movement along ``axis`` (the 1.5 Hz 'task')."""
    t = np.arange(int(dur_s * FS)) / FS
    return G + amp_g * np.sin(2 * np.pi * f_hz * t)[:, None] * np.asarray(axis)[None, :]


def dominant_hz(x: np.ndarray, fs: float = FS) -> float:
    f, p = welch(x - x.mean(), fs=fs, nperseg=min(len(x), int(64 * fs)))
    return float(f[np.argmax(p)])


def rms_dynamic(a: np.ndarray) -> float:
    _, d = inject.split_gravity(a, FS)
    return float(np.sqrt((d**2).sum(1).mean()))


def test_progression_ramp_and_step():
    t = np.array([0.0, 100.0, 150.0, 200.0, 400.0])
    np.testing.assert_allclose(inject.progression(t, 100.0, 100.0), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(inject.progression(t, 100.0, 0.0), [0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="tau_s"):
        inject.progression(t, 100.0, -1.0)


def test_split_gravity_recovers_constant_gravity_and_movement():
    a = sine_signal(120)
    g, d = inject.split_gravity(a, FS)
    mid = slice(int(20 * FS), int(100 * FS))
    np.testing.assert_allclose(g[mid], np.tile(G, (mid.stop - mid.start, 1)), atol=2e-3)
    np.testing.assert_allclose(d[mid, 0], a[mid, 0] - G[0], atol=2e-3)


def test_m1_scales_dynamic_amplitude_after_onset_only():
    a = sine_signal(1200)
    r = inject.amplitude_decay(a, FS, t0_s=400, tau_s=300, alpha=0.2)
    early, late = slice(int(50 * FS), int(350 * FS)), slice(int(750 * FS), int(1150 * FS))
    np.testing.assert_allclose(r.accel_g[early], a[early], atol=1e-9)
    assert rms_dynamic(r.accel_g[late]) / rms_dynamic(a[late]) == pytest.approx(0.8, abs=0.005)
    assert r.onset_s == 400 and len(r.accel_g) == len(a)


@pytest.mark.parametrize("beta", [0.05, 0.15])
def test_m2_slows_a_1_5_hz_movement_by_beta(beta):
    a = sine_signal(1200)
    r = inject.tempo_slowing(a, FS, t0_s=300, tau_s=120, beta=beta)
    early = r.accel_g[int(20 * FS): int(280 * FS), 0]
    late = r.accel_g[int(500 * FS): int(1100 * FS), 0]
    assert dominant_hz(early) == pytest.approx(1.5, abs=0.02)
    assert dominant_hz(late) == pytest.approx(1.5 * (1 - beta), abs=0.02)
    # The whole input is played: (T − t0 − τ/2)·β/(1 − β) seconds longer.
    extra = (1200 - 1 / FS - 300 - 60) * beta / (1 - beta)
    assert r.duration_s - 1200 == pytest.approx(extra, abs=0.2)
    np.testing.assert_allclose(r.accel_g[: int(300 * FS)], a[: int(300 * FS)], atol=1e-9)


def test_m3_inserts_still_pauses_at_the_stated_rate_after_onset():
    a = sine_signal(3600)
    rng = np.random.default_rng(1)
    lam0 = 2 / 60  # 2 per minute
    r = inject.pauses(a, FS, t0_s=600, tau_s=0, gamma=1.0, rng=rng, lam0_per_s=lam0)
    ins = np.isnan(r.src_s)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], ins.astype(int)])) == 1)
    assert (r.src_s[starts - 1] >= 600 - 1).all()  # none before the onset
    # Poisson count over 3000 s at λ0·γ = 2/min: mean 100, SD 10.
    assert 70 <= len(starts) <= 130
    assert r.info["n_pauses"] == len(starts)
    assert len(r.accel_g) == len(a) + ins.sum()
    # Pauses are still (device noise only), medians near 20 s.
    assert np.std(np.linalg.norm(r.accel_g[ins], axis=1)) < 0.006
    assert r.info["inserted_s"] / len(starts) == pytest.approx(20 * np.exp(0.125), rel=0.15)
    # Samples kept from the input are the input (apart from the tapers at the pauses).
    keep = ~ins
    src_idx = np.round(r.src_s[keep] * FS).astype(int)
    same = np.isclose(r.accel_g[keep], a[src_idx], atol=1e-9).all(1)
    assert same.mean() > 0.95


def test_m3_with_gamma_zero_is_identity():
    a = sine_signal(600)
    r = inject.pauses(a, FS, t0_s=100, tau_s=0, gamma=0.0, rng=np.random.default_rng(0))
    assert r.info["n_pauses"] == 0
    np.testing.assert_allclose(r.accel_g, a, atol=1e-9)


def test_baseline_pause_rate_counts_still_runs_of_5_s():
    a = sine_signal(600)
    for k in range(10):  # ten 8-s still runs in the first 600 s
        i = int((30 + 55 * k) * FS)
        a[i: i + int(8 * FS)] = G
    assert inject.baseline_pause_rate(a, FS, 600) * 60 == pytest.approx(1.0)


def cycle_stats(x: np.ndarray) -> tuple[float, float]:
    peaks, _ = find_peaks(x, distance=int(0.4 * FS), prominence=0.1)
    amps, periods = x[peaks], np.diff(peaks) / FS
    return float(np.std(amps) / np.mean(amps)), float(np.std(periods) / np.mean(periods))


def test_m4_adds_amplitude_and_duration_variability_after_onset():
    a = sine_signal(1200, f_hz=0.5)
    r = inject.variability(a, FS, t0_s=400, tau_s=0, sigma=0.2, rng=np.random.default_rng(2))
    early = r.accel_g[int(50 * FS): int(380 * FS), 0] - G[0]
    late = r.accel_g[int(500 * FS):, 0] - G[0]
    cv_a0, cv_t0 = cycle_stats(early)
    cv_a1, cv_t1 = cycle_stats(late)
    assert cv_a0 < 0.01 and cv_t0 < 0.05
    assert 0.08 < cv_a1 < 0.3 and 0.08 < cv_t1 < 0.3


def test_m4_sigma_zero_is_identity():
    a = sine_signal(300)
    r = inject.variability(a, FS, t0_s=100, tau_s=0, sigma=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(r.accel_g, a[: len(r.accel_g)], atol=1e-9)


def test_m5_tremor_only_in_quiet_holds_after_onset_at_8_to_12_hz():
    rng = np.random.default_rng(3)
    n = int(1200 * FS)
    a = np.tile(G, (n, 1)) + rng.normal(0, 0.01, (n, 3))  # quiet hold: MAD_1s ≈ 8 mg
    a[int(900 * FS):] = sine_signal(300, amp_g=0.4)  # gross movement: MAD_1s > 30 mg
    r = inject.tremor(a, FS, t0_s=300, tau_s=0, amp_g=0.005, rng=np.random.default_rng(4))
    added = r.accel_g - a
    assert np.abs(added[: int(300 * FS)]).max() == 0
    assert np.abs(added[int(901 * FS):]).max() == 0
    seg = added[int(310 * FS): int(890 * FS)]
    assert np.sqrt((seg**2).sum(1).mean()) == pytest.approx(0.005 / np.sqrt(2), rel=0.05)
    f, p = welch(np.linalg.norm(seg, axis=1) * np.sign(seg @ seg[np.argmax(np.abs(seg[:, 0]))]),
                 fs=FS, nperseg=int(8 * FS))
    assert p[(f >= 8) & (f <= 12)].sum() / p.sum() > 0.9
    with pytest.raises(ValueError, match="fs_hz"):
        inject.tremor(a, 20.0, t0_s=0, tau_s=0, amp_g=0.005, rng=rng)


def test_m6_submovements_are_short_bounded_and_only_in_movement_after_onset():
    a = sine_signal(1200, axis=G)  # along gravity: MAD_1s of |a| > 30 mg, "movement"
    a[int(1000 * FS):] = G  # still at the end
    r = inject.smoothness(a, FS, t0_s=400, tau_s=0, amp_g=0.02, rng=np.random.default_rng(5))
    added = np.linalg.norm(r.accel_g - a, axis=1)
    assert added[: int(400 * FS)].max() == 0 and added[int(1001 * FS):].max() == 0
    # One sub-movement peaks at 20 mg; overlapping ones (≈ 30 % at 2/s of 150 ms) add up.
    nz = added[added > 0]
    assert np.percentile(nz, 80) <= 0.02 + 1e-12 and nz.max() > 0.015
    # About 2 per active second after the onset (Poisson; 600 s → 1200 ± 35).
    assert 1100 < r.info["n_submovements"] < 1300
    assert inject.min_jerk_accel(np.array([0.0, 0.5, 1.0])) == pytest.approx([0, 0, 0])


def test_realistic_combination_keeps_the_start_and_grows_the_session():
    a = sine_signal(1800)
    a[:: int(40 * FS)] = a[:: int(40 * FS)]  # no change; pauses come from λ0's floor
    r = inject.realistic(a, FS, t0_s=600, tau_s=300, rng=np.random.default_rng(6))
    np.testing.assert_allclose(r.accel_g[: int(590 * FS)], a[: int(590 * FS)], atol=1e-9)
    assert r.onset_s == 600 and r.duration_s > 1800 * 1.03
    late = r.accel_g[-int(200 * FS):]
    late = late[~np.isnan(r.src_s[-int(200 * FS):])]
    assert rms_dynamic(late) < 0.92 * rms_dynamic(a[-int(200 * FS):])
    assert {"alpha", "beta", "gamma", "amp_g"} <= set(r.info)


def dyn_mag_stats(a: np.ndarray) -> tuple[float, float]:
    _, d = inject.split_gravity(a, FS)
    m = np.linalg.norm(d, axis=1)[int(30 * FS): -int(30 * FS)]
    return float(m.mean()), float(m.std())


def test_strap_rotation_rotates_gravity_and_keeps_the_dynamic_statistics():
    a = sine_signal(600)
    axis = np.cross(G, [1.0, 0, 0])  # perpendicular to gravity: g turns by the full angle
    r = controls.strap_rotation(a, FS, t_s=300, angle_deg=30, axis=axis)
    np.testing.assert_allclose(np.linalg.norm(r.accel_g, axis=1), np.linalg.norm(a, axis=1))
    g0, g1 = r.accel_g[: int(300 * FS)].mean(0), r.accel_g[int(300 * FS):].mean(0)
    cos = g0 @ g1 / np.linalg.norm(g0) / np.linalg.norm(g1)
    assert np.rad2deg(np.arccos(cos)) == pytest.approx(30, abs=1.0)
    assert dyn_mag_stats(r.accel_g[int(320 * FS):]) == pytest.approx(
        dyn_mag_stats(a[int(320 * FS):]), rel=1e-3)


def test_calibration_drift_ramps_scale_and_offset_only():
    a = sine_signal(600)
    r = controls.calibration_drift(a, FS, scale=[0.02, -0.01, 0.015], offset_g=[0.02, -0.02, 0.01])
    np.testing.assert_allclose(r.accel_g[0], a[0])
    np.testing.assert_allclose(r.accel_g[-1], a[-1] * [1.02, 0.99, 1.015] + [0.02, -0.02, 0.01])
    m0, s0 = dyn_mag_stats(a)
    m1, s1 = dyn_mag_stats(r.accel_g)
    assert m1 == pytest.approx(m0, rel=0.02) and s1 == pytest.approx(s0, rel=0.02)
    with pytest.raises(ValueError, match="3 elements"):
        controls.calibration_drift(a, FS, scale=[0.01], offset_g=[0, 0, 0])


def test_resample_to_25_hz_keeps_tempo_and_amplitude():
    a = sine_signal(600)
    r = controls.resample(a, FS)
    assert r.fs_hz == 25.0 and len(r.accel_g) == len(a) * 25 // 32
    assert dominant_hz(r.accel_g[300:-300, 0], 25.0) == pytest.approx(1.5, abs=0.01)
    assert np.std(r.accel_g[300:-300, 0]) == pytest.approx(np.std(a[300:-300, 0]), rel=0.01)
    r30 = controls.resample(a, FS, up=15, down=16)
    assert r30.fs_hz == 30.0 and len(r30.accel_g) == len(a) * 15 // 16


def test_task_switch_splices_the_other_task_after_a_rest():
    a = sine_signal(600)
    other = sine_signal(600, f_hz=0.8, amp_g=0.1)
    r = controls.task_switch(a, other, FS, t_s=200, rng=np.random.default_rng(0))
    i = int(200 * FS)
    np.testing.assert_array_equal(r.accel_g[:i], a[:i])
    np.testing.assert_array_equal(r.accel_g[i + int(10 * FS):], other[: len(a) - i])
    with pytest.raises(ValueError, match="too short"):
        controls.task_switch(a, other[:100], FS, t_s=200, rng=np.random.default_rng(0))


def test_random_control_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown control"):
        controls.random_control("gravity_flip", sine_signal(60), FS, np.random.default_rng(0))
