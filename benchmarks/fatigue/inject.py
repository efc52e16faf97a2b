"""Fatigue injected at the raw-signal level (methods.md §2.6 A, table of manipulations M1–M6).

The signal is split a = g + d with a per-axis zero-phase Butterworth low-pass (order 4, 0.25 Hz;
methods.md §2.3), the manipulation acts on d (and, for time warps and pauses, on the time axis),
and a = g + d is put back together. Progression p(t) = 0 before t0 and min(1, (t − t0)/τ) after
(τ = 0: a step). Every manipulation leaves the samples before t0 untouched, so the true onset in
the output is t0 itself.

A manipulation returns a `Injected`: the new acceleration plus ``src_s``, for each output sample
the input time it came from (NaN on inserted pause samples), so masks of the input (quiet holds,
inserted rests) can be carried to the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfiltfilt

GRAVITY_CUTOFF_HZ = 0.25  # methods.md §2.3 preprocessing
PAUSE_MEDIAN_S = 20.0  # methods.md §2.6 M3: lognormal durations, median 20 s, sigma_ln 0.5
PAUSE_SIGMA_LN = 0.5
STILL_NOISE_G = 0.003  # methods.md §2.6 M3: device still-noise SD 2–5 mg
TAPER_S = 0.25  # d fades out/in around an inserted pause (no step in the dynamic part)
TREMOR_BAND_HZ = (8.0, 12.0)  # methods.md §2.6 M5 (below the 16 Hz Nyquist limit of 32 Hz)
TREMOR_DRIFT_PERIOD_S = 97.0  # slow sinusoidal drift of the tremor frequency across the band
QUIET_MAD_G = (0.002, 0.030)  # methods.md §2.3 F_trem: quiet hold = MAD_1s in 2–30 mg
ACTIVE_MAD_G = 0.030  # above the quiet-hold band: gross movement (where M6 sub-movements go)
SUBMOVE_DURATION_S = (0.10, 0.20)  # methods.md §2.6 M6
SUBMOVE_RATE_HZ = 2.0  # sub-movements per active second at p = 1 (documented choice)
STILL_SD_G = 0.010  # harness pause detector: 1-s SD of |a| below 10 mg is a still second
MIN_PAUSE_S = 5  # methods.md §2.3: a rest pause is an inactive run ≥ 5 s
MIN_PAUSE_RATE_PER_S = 0.2 / 60  # floor for λ0 when a session has almost no pauses


@dataclass
class Injected:
    """Output of a manipulation: acceleration (n, 3) in g and the input time of each sample (s)."""

    accel_g: np.ndarray = field(repr=False)
    src_s: np.ndarray = field(repr=False)
    fs_hz: float
    onset_s: float | None = None  # true onset in output time (None for controls)
    info: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.accel_g) / self.fs_hz


def split_gravity(accel_g: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """a = g + d: g is the 0.25 Hz zero-phase low-pass per axis (shapes (n, 3), g)."""
    if fs_hz <= 2 * GRAVITY_CUTOFF_HZ:
        raise ValueError(f"fs_hz must exceed {2 * GRAVITY_CUTOFF_HZ} Hz, got {fs_hz}")
    sos = butter(4, GRAVITY_CUTOFF_HZ, "low", fs=fs_hz, output="sos")
    g = sosfiltfilt(sos, accel_g, axis=0)
    return g, accel_g - g


def progression(t_s: np.ndarray, t0_s: float, tau_s: float) -> np.ndarray:
    """p(t) = 0 before t0, min(1, (t − t0)/τ) after; τ = 0 is a step at t0."""
    if tau_s < 0:
        raise ValueError(f"tau_s must be >= 0, got {tau_s}")
    t_s = np.asarray(t_s, float)
    if tau_s == 0:
        return (t_s >= t0_s).astype(float)
    return np.clip((t_s - t0_s) / tau_s, 0.0, 1.0)


def _times(n: int, fs_hz: float) -> np.ndarray:
    return np.arange(n) / fs_hz


def _per_second(x: np.ndarray, fs_hz: float, fn) -> np.ndarray:
    """fn over each whole second of the magnitude, broadcast back to samples (tail = last)."""
    mag = np.linalg.norm(x, axis=1)
    w = round(fs_hz)
    n = len(mag) // w
    vals = fn(mag[: n * w].reshape(n, w)) if n else np.zeros(0)
    out = np.repeat(vals, w)
    if len(out) < len(mag):
        out = np.concatenate([out, np.full(len(mag) - len(out), vals[-1] if n else 0.0)])
    return out


def mad_1s(accel_g: np.ndarray, fs_hz: float) -> np.ndarray:
    """MAD of |a| over each second (methods.md §1.3), per sample, in g."""
    return _per_second(accel_g, fs_hz, lambda r: np.abs(r - r.mean(1, keepdims=True)).mean(1))


def baseline_pause_rate(accel_g: np.ndarray, fs_hz: float, until_s: float) -> float:
    """λ0: still runs ≥ 5 s per second in the signal before ``until_s`` (floored)."""
    still = _per_second(accel_g, fs_hz, lambda r: r.std(1))[:: round(fs_hz)] < STILL_SD_G
    still = still[: int(until_s)]
    edges = np.diff(np.concatenate([[0], still.astype(int), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return max(np.count_nonzero(runs >= MIN_PAUSE_S) / max(until_s, 1.0), MIN_PAUSE_RATE_PER_S)


def _warp(x: np.ndarray, src_idx: np.ndarray) -> np.ndarray:
    """Per-axis linear interpolation of x (n, 3) at fractional sample positions."""
    grid = np.arange(len(x))
    return np.column_stack([np.interp(src_idx, grid, x[:, k]) for k in range(x.shape[1])])


def amplitude_decay(accel_g, fs_hz, *, t0_s, tau_s, alpha) -> Injected:
    """M1: d′ = d·(1 − α·p(t))."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    g, d = split_gravity(accel_g, fs_hz)
    t = _times(len(accel_g), fs_hz)
    p = progression(t, t0_s, tau_s)
    return Injected(g + d * (1 - alpha * p)[:, None], t, fs_hz, t0_s, {"alpha": alpha})


def tempo_slowing(accel_g, fs_hz, *, t0_s, tau_s, beta) -> Injected:
    """M2: output time t reads the input at u(t) = ∫₀ᵗ (1 − β·p(s)) ds (g and d alike)."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    n_in = len(accel_g)
    t_in_end = (n_in - 1) / fs_hz
    # Output long enough for u to reach the end of the input: at most 1/(1 − β) times longer.
    n_out = int(np.ceil(n_in / (1 - beta))) + 2
    t = _times(n_out, fs_hz)
    rate = 1 - beta * progression(t, t0_s, tau_s)
    u = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2) / fs_hz])
    u = u[u <= t_in_end + 1e-9]
    out = _warp(accel_g, u * fs_hz)
    return Injected(out, u, fs_hz, t0_s, {"beta": beta})


def pauses(accel_g, fs_hz, *, t0_s, tau_s, gamma, rng, lam0_per_s=None) -> Injected:
    """M3: extra rests at rate λ0·γ·p(t), so the total becomes λ0(1 + γ·p(t)).

    A rest is the gravity vector at the insertion point plus still noise; d fades out and in
    over ``TAPER_S`` around it. Durations are lognormal (median 20 s, sigma_ln 0.5).
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    g, d = split_gravity(accel_g, fs_hz)
    n = len(accel_g)
    t = _times(n, fs_hz)
    lam0 = lam0_per_s if lam0_per_s is not None else baseline_pause_rate(
        accel_g, fs_hz, max(t0_s, 60.0))
    # Thinning: candidates at the peak rate λ0·γ, kept with probability p(t).
    n_cand = rng.poisson(lam0 * gamma * t[-1]) if gamma > 0 else 0
    cand = np.sort(rng.uniform(0, t[-1], n_cand))
    keep = cand[rng.uniform(size=n_cand) < progression(cand, t0_s, tau_s)]
    at = np.unique(np.round(keep * fs_hz).astype(int))
    nt = max(round(TAPER_S * fs_hz), 1)
    taper = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(nt) / nt)
    for i in at:
        lo, hi = max(i - nt, 0), min(i + nt, n)
        taper[lo:i] = np.minimum(taper[lo:i], ramp[::-1][: i - lo])
        taper[i:hi] = np.minimum(taper[i:hi], ramp[: hi - i])
    a = g + d * taper[:, None]
    parts, srcs, prev, inserted = [], [], 0, 0.0
    for i in at:
        parts.append(a[prev:i])
        srcs.append(t[prev:i])
        dur = PAUSE_MEDIAN_S * np.exp(rng.normal(0, PAUSE_SIGMA_LN))
        m = max(round(dur * fs_hz), 1)
        parts.append(g[min(i, n - 1)] + rng.normal(0, STILL_NOISE_G, (m, 3)))
        srcs.append(np.full(m, np.nan))
        inserted += m / fs_hz
        prev = i
    parts.append(a[prev:])
    srcs.append(t[prev:])
    return Injected(np.concatenate(parts), np.concatenate(srcs), fs_hz, t0_s,
                    {"gamma": gamma, "lam0_per_min": lam0 * 60, "n_pauses": len(at),
                     "inserted_s": inserted})


def variability(accel_g, fs_hz, *, t0_s, tau_s, sigma, rng) -> Injected:
    """M4: per 1-s block, amplitude × e^{N(0, σ·p)} and duration × e^{N(0, σ·p)}."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    g, d = split_gravity(accel_g, fs_hz)
    n_in = len(accel_g)
    t_end = (n_in - 1) / fs_hz
    nb = int(np.ceil(t_end)) + 1
    centres = np.arange(nb) + 0.5
    pb = progression(centres, t0_s, tau_s)
    dur = np.exp(rng.normal(0, 1, nb) * sigma * pb)
    amp = np.exp(rng.normal(0, 1, nb) * sigma * pb)
    in_edges = np.arange(nb + 1, dtype=float)
    out_edges = np.concatenate([[0.0], np.cumsum(dur)])
    t_out = _times(int(np.floor(np.interp(t_end, in_edges, out_edges) * fs_hz)) + 1, fs_hz)
    u = np.clip(np.interp(t_out, out_edges, in_edges), 0, t_end)
    gain = np.interp(u, centres, amp)  # smooth between block centres: no steps in d
    out = _warp(g, u * fs_hz) + _warp(d, u * fs_hz) * gain[:, None]
    return Injected(out, u, fs_hz, t0_s, {"sigma": sigma})


def _unit(rng) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def quiet_hold_mask(accel_g, fs_hz, rest=None) -> np.ndarray:
    """Samples in seconds with MAD_1s in 2–30 mg (methods.md §2.3), excluding inserted rests."""
    m = mad_1s(accel_g, fs_hz)
    q = (m >= QUIET_MAD_G[0]) & (m <= QUIET_MAD_G[1])
    return q if rest is None else q & ~rest


def tremor(accel_g, fs_hz, *, t0_s, tau_s, amp_g, rng, quiet=None) -> Injected:
    """M5: + A·p(t)·u·sin(2π∫f dt + φ), f drifting in 8–12 Hz, only in quiet-hold samples."""
    if amp_g < 0:
        raise ValueError(f"amp_g must be >= 0, got {amp_g}")
    if fs_hz <= 2 * TREMOR_BAND_HZ[1]:
        raise ValueError(f"fs_hz must exceed {2 * TREMOR_BAND_HZ[1]} Hz for 8–12 Hz tremor")
    n = len(accel_g)
    t = _times(n, fs_hz)
    q = quiet_hold_mask(accel_g, fs_hz) if quiet is None else quiet
    # 0.125-s moving average: bursts fade in and out instead of switching on a sample.
    k = max(round(0.125 * fs_hz), 1)
    env = np.convolve(q.astype(float), np.ones(k) / k, mode="same")
    lo, hi = TREMOR_BAND_HZ
    f = (lo + hi) / 2 + (hi - lo) / 2 * np.sin(2 * np.pi * t / TREMOR_DRIFT_PERIOD_S
                                                + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f) / fs_hz + rng.uniform(0, 2 * np.pi)
    s = amp_g * progression(t, t0_s, tau_s) * env * np.sin(phase)
    out = accel_g + s[:, None] * _unit(rng)[None, :]
    return Injected(out, t, fs_hz, t0_s, {"amp_g": amp_g, "quiet_fraction": float(q.mean())})


def min_jerk_accel(s: np.ndarray) -> np.ndarray:
    """Acceleration shape of a unit minimum-jerk displacement, s in [0, 1], peak |·| = 1."""
    shape = 60 * s - 180 * s**2 + 120 * s**3
    return np.where((s >= 0) & (s <= 1), shape / (10 / np.sqrt(3)), 0.0)


def smoothness(accel_g, fs_hz, *, t0_s, tau_s, amp_g, rng, active=None) -> Injected:
    """M6: minimum-jerk sub-movements (100–200 ms, peak ``amp_g``) at rate 2/s·p(t) in movement."""
    if amp_g < 0:
        raise ValueError(f"amp_g must be >= 0, got {amp_g}")
    n = len(accel_g)
    t = _times(n, fs_hz)
    act = mad_1s(accel_g, fs_hz) > ACTIVE_MAD_G if active is None else active
    n_cand = rng.poisson(SUBMOVE_RATE_HZ * t[-1])
    cand = rng.uniform(0, t[-1], n_cand)
    idx = np.minimum(np.round(cand * fs_hz).astype(int), n - 1)
    keep = cand[(rng.uniform(size=n_cand) < progression(cand, t0_s, tau_s)) & act[idx]]
    out = accel_g.copy()
    for c in keep:
        dur = rng.uniform(*SUBMOVE_DURATION_S)
        i0, i1 = int(np.ceil(c * fs_hz)), min(int(np.floor((c + dur) * fs_hz)) + 1, n)
        shape = min_jerk_accel((t[i0:i1] - c) / dur)
        out[i0:i1] += amp_g * shape[:, None] * _unit(rng)[None, :]
    return Injected(out, t, fs_hz, t0_s, {"amp_g": amp_g, "n_submovements": len(keep)})


def _chain(first: Injected, second: Injected) -> Injected:
    """Compose: ``second`` was applied to ``first.accel_g``; map its times to the original."""
    grid = np.arange(len(first.src_s)) / first.fs_hz
    src = np.interp(second.src_s, grid, first.src_s)
    # Samples taken from (or between) inserted-pause samples have no input time.
    isnan = np.isnan(first.src_s).astype(float)
    src[np.isnan(second.src_s) | (np.interp(np.nan_to_num(second.src_s), grid, isnan) > 0)] = np.nan
    return Injected(second.accel_g, src, first.fs_hz, first.onset_s, {**first.info, **second.info})


def realistic(accel_g, fs_hz, *, t0_s, tau_s, rng, quiet=None, alpha=0.10, beta=0.05, gamma=1.0,
              amp_g=0.005) -> Injected:
    """The realistic combination: M1 α = 0.10, M2 β = 0.05, M5 A = 5 mg, then M3 γ = 1."""
    r1 = amplitude_decay(accel_g, fs_hz, t0_s=t0_s, tau_s=tau_s, alpha=alpha)
    r2 = _chain(r1, tempo_slowing(r1.accel_g, fs_hz, t0_s=t0_s, tau_s=tau_s, beta=beta))
    q = quiet_hold_mask(accel_g, fs_hz) if quiet is None else quiet
    q2 = q[np.minimum(np.round(r2.src_s * fs_hz).astype(int), len(q) - 1)]
    r3 = _chain(r2, tremor(r2.accel_g, fs_hz, t0_s=t0_s, tau_s=tau_s, amp_g=amp_g, rng=rng,
                           quiet=q2))
    lam0 = baseline_pause_rate(accel_g, fs_hz, max(t0_s, 60.0))
    return _chain(r3, pauses(r3.accel_g, fs_hz, t0_s=t0_s, tau_s=tau_s, gamma=gamma, rng=rng,
                             lam0_per_s=lam0))
