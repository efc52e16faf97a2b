"""Per-window fatigue features of methods.md §2.3 (contract: architecture.md, issue 6).

`window_features` cuts a recording into 60-s windows at UTC multiples of 30 s and computes the
nine features of §2.3 per window. Every window is filtered on its own padded span
[start − 15 s, start + 75 s), so a window's row depends only on those samples and the service can
compute windows incrementally with identical results. Deviations from §2.3 (argued in
docs/fatigue.md §3): tempo, regularity and tremor use the trace of the three axes' spectra and
autocovariances instead of the spectrum of the magnitude (a back-and-forth movement has its
magnitude at twice its frequency, and tremor across gravity vanishes from the magnitude to first
order); movement units for LDLJ-A may be as short as 0.25 s; ASTP per window is over the window
(session_fatigue aggregates it over the trailing 5 min).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from analysis.fatigue_kernels import (
    cycle_cv,
    ldlj_a,
    regularity,
    tempo_hz,
    trace_psd,
)
from analysis.fatigue_stats import sample_entropy
from analysis.fatigue_windows import (
    FEATURES,
    PAD_S,
    SIGNATURE,
    STEP_S,
    WINDOW_S,
    FatigueWindows,
)

__all__ = ["ACTIVE_THRESHOLD_MG", "FEATURES", "SIGNATURE", "FatigueWindows", "window_features"]

FloatArray = NDArray[np.float64]
_NS = 1_000_000_000
_SPAN = WINDOW_S + 2 * PAD_S  # 1-s epochs in a padded span
_W0, _W1 = PAD_S, PAD_S + WINDOW_S  # the window proper, in epochs of the span

#: An epoch is active when the mean movement-band magnitude ‖BP₀.₂₅–₅(a)‖ of its worn samples
#: reaches this, mg (pre-registration deviation 3; methods.md §2.3 used 1-s ENMO ≥ 44.8 mg).
#: The hand is moving, not resting: above the band noise of a still device (≤ 5 mg) and below
#: slow, careful reaching (a minimum-jerk 0.3-m reach in 1.5 s averages 51 mg), immune to
#: calibration offsets and drift (the band excludes gravity), and the signal `int` measures.
ACTIVE_THRESHOLD_MG = 30.0
#: Active runs shorter than this are removed (hysteresis), s (§2.3).
MIN_ACTIVE_RUN_S = 2
#: Rest pause and rest break: worn inactive runs of at least these lengths, s (§2.3).
PAUSE_S = 5
BREAK_S = 30
#: A window is analysable with wear ≥ 90 % of 60 s and ≥ 20 active s (§2.5 step 1).
MIN_WORN_S = 54
MIN_ACTIVE_S = 20
#: An epoch is worn when ≥ 90 % of its samples are finite and worn (mirrors the window rule).
EPOCH_WORN_FRACTION = 0.9
#: Lowest rate accepted: the 0.25–5 Hz band and the 10-Hz jerk low-pass need fs ≥ 20 Hz.
MIN_FS_HZ = 20.0
#: Tremor needs fs ≥ 50 Hz (pre-registration deviation 2; §2.3 item 8 says 30 Hz): the ratio's
#: 1–20 Hz reference band lies inside the Nyquist band, below the anti-alias roll-off, only from
#: 50 Hz on (at 32 Hz it is cut at 16 Hz and the ratio measures something else — on HMP's 6-bit
#: 32-Hz data mostly quantisation noise, docs/fatigue-validation.md).
TREMOR_MIN_FS_HZ = 50.0
#: Spectral and autocorrelation segments: 10 s with a 5-s step (Welch, 50 % overlap; §2.3 3–4).
SEG_S = 10
SEG_STEP_S = 5
#: Dynamic acceleration is low-passed at 10 Hz before differentiation for LDLJ-A (§2.3 item 6).
JERK_LOWPASS_HZ = 10.0
#: Sample entropy: v at 10 Hz over active samples, ≥ 300 samples, m = 2, r = 0.2 SD (§2.3 item 7).
SAMPEN_FS_HZ = 10.0
SAMPEN_MIN_N = 300
#: Quiet hold: 1-s MAD between 2 and 30 mg; tremor bands; ≥ 3 two-second segments (§2.3 item 8).
QUIET_MAD_MG = (2.0, 30.0)
TREM_BAND_HZ = (8.0, 12.0)
TREM46_BAND_HZ = (4.0, 6.0)
TREM_REF_BAND_HZ = (1.0, 20.0)
TREM_SEG_S = 2
TREM_MIN_SEGMENTS = 3


class _Filters:
    """Second-order sections of every filter, designed once per sampling rate (order 4, §2.3)."""

    def __init__(self, fs_hz: float) -> None:
        self.fs_hz = fs_hz
        self.grav = signal.butter(4, 0.25, "lowpass", fs=fs_hz, output="sos")
        self.band = signal.butter(4, [0.25, 5.0], "bandpass", fs=fs_hz, output="sos")
        self.jerk = signal.butter(
            4, min(JERK_LOWPASS_HZ, 0.4 * fs_hz), "lowpass", fs=fs_hz, output="sos"
        )
        self.hp1 = signal.butter(4, 1.0, "highpass", fs=fs_hz, output="sos")


def window_features(
    accel_g: Any,
    *,
    fs_hz: float,
    t0_ns: int,
    worn: Any = None,
    active_threshold_mg: float = ACTIVE_THRESHOLD_MG,
) -> FatigueWindows:
    """Fatigue features per 60-s window (30-s step, UTC-aligned) of a uniform recording.

    Parameters
    ----------
    accel_g : array_like of float, shape (n_samples, 3)
        Calibrated acceleration, g, device axes, uniformly sampled; NaN marks missing samples
        (gaps), which count as not worn.
    fs_hz : float
        Sampling rate, Hz (≥ 20).
    t0_ns : int
        UTC ns of the first sample.
    worn : array_like of bool, shape (n_samples,), optional
        Wear mask per sample; default all worn.
    active_threshold_mg : float, default 30
        θ on the 1-s mean movement-band magnitude, mg (`ACTIVE_THRESHOLD_MG`; deviation 3).

    Returns
    -------
    FatigueWindows
        One row per window whose 60 s lie inside the recording (zero rows when none).

    Raises
    ------
    ValueError
        If `accel_g` is not (n, 3), `fs_hz` < 20 or not finite, `worn` has the wrong shape, or
        `active_threshold_mg` is not positive.
    """
    a = np.asarray(accel_g)
    if a.ndim != 2 or a.shape[1] != 3 or a.dtype.kind not in "fiu":
        raise ValueError(f"accel_g must be a numeric (n_samples, 3) array, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(fs_hz) or fs_hz < MIN_FS_HZ:
        raise ValueError(f"fs_hz must be >= {MIN_FS_HZ} Hz, got {fs_hz!r}")
    if not np.isfinite(active_threshold_mg) or active_threshold_mg <= 0:
        raise ValueError(f"active_threshold_mg must be > 0, got {active_threshold_mg!r}")
    n = a.shape[0]
    ok = np.all(np.isfinite(a), axis=1)
    if worn is not None:
        w = np.asarray(worn, dtype=bool)
        if w.shape != (n,):
            raise ValueError(f"worn must have shape ({n},), got {w.shape}")
        ok &= w
    t0 = int(t0_ns)
    t_rel = np.round(np.arange(n) * (_NS / fs_hz)).astype(np.int64)
    t_end = t0 + round(n * _NS / fs_hz)
    step = STEP_S * _NS
    first = -(-t0 // step) * step
    starts = np.arange(first, t_end - WINDOW_S * _NS + 1, step, dtype=np.int64)
    filt = _Filters(float(fs_hz))
    rows = []
    for start in starts:
        lo_ns = int(start) - PAD_S * _NS
        lo = int(np.searchsorted(t_rel, lo_ns - t0, "left"))
        hi = int(np.searchsorted(t_rel, lo_ns + _SPAN * _NS - t0, "left"))
        ep = (t_rel[lo:hi] + (t0 - lo_ns)) // _NS
        rows.append(_window_row(a[lo:hi], ok[lo:hi], ep, filt, active_threshold_mg))
    if not rows:
        return FatigueWindows.empty()
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return FatigueWindows(
        start_ns=starts,
        worn_s=cols["worn_s"].astype(np.float64),
        active_s=cols["active_s"].astype(np.float64),
        analysable=cols["analysable"].astype(bool),
        features=np.stack([cols[k] for k in FEATURES], axis=1).astype(np.float64),
        signature=np.stack([r["signature"] for r in rows]).astype(np.float64),
        transitions=cols["transitions"].astype(np.float64),
        rest_break=cols["rest_break"].astype(bool),
        trem46=cols["trem46"].astype(np.float64),
    )


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and stop (exclusive) indices of the True runs of a 1-D mask."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _fill(seg: FloatArray, ok: NDArray[np.bool_]) -> FloatArray:
    """Missing samples take the nearest earlier valid sample (the first valid one at the start)."""
    if ok.all():
        return seg
    idx = np.where(ok, np.arange(ok.size), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.argmax(ok))
    return seg[idx]


def _nan_row() -> dict[str, Any]:
    row: dict[str, Any] = {k: np.nan for k in FEATURES}
    row.update(
        worn_s=0.0,
        active_s=0.0,
        analysable=False,
        transitions=0.0,
        rest_break=False,
        trem46=np.nan,
        signature=np.full(len(SIGNATURE), np.nan),
    )
    return row


def _window_row(
    seg: FloatArray, ok: NDArray[np.bool_], ep: NDArray[np.int64], filt: _Filters, thr_mg: float
) -> dict[str, Any]:
    """Features of one window from its padded span (epochs 0..89; the window is 15..74)."""
    fs = filt.fs_hz
    if not ok.any() or seg.shape[0] < 30:
        return _nan_row()
    x = _fill(seg, ok)
    cnt_ok = np.bincount(ep[ok], minlength=_SPAN)[:_SPAN]
    epoch_worn = cnt_ok >= np.floor(EPOCH_WORN_FRACTION * fs)
    en = np.sqrt(np.einsum("ij,ij->i", x, x))
    denom = np.maximum(cnt_ok, 1)
    mean_en = np.bincount(ep[ok], en[ok], _SPAN)[:_SPAN] / denom
    mad_mg = np.bincount(ep[ok], np.abs(en[ok] - mean_en[ep[ok]]), _SPAN)[:_SPAN] / denom * 1000.0
    # Filtered signals of the whole padded span (zero-phase, so the window sees no edge effect).
    grav = signal.sosfiltfilt(filt.grav, x, axis=0)
    band = signal.sosfiltfilt(filt.band, x, axis=0)
    v = np.sqrt(np.einsum("ij,ij->i", band, band))
    band_mg = np.bincount(ep[ok], v[ok], _SPAN)[:_SPAN] / denom * 1000.0
    active = epoch_worn & (band_mg >= thr_mg)
    s0, s1 = _runs(active)
    for a0, a1 in zip(s0, s1):
        if a1 - a0 < MIN_ACTIVE_RUN_S:
            active[a0:a1] = False
    win = slice(_W0, _W1)
    worn_s = float(epoch_worn[win].sum())
    active_s = float(active[win].sum())
    row = _nan_row()
    row.update(
        worn_s=worn_s,
        active_s=active_s,
        analysable=bool(worn_s >= MIN_WORN_S and active_s >= MIN_ACTIVE_S),
    )
    # Pacing: pauses and breaks are worn inactive runs (§2.3); transitions start in the window.
    r0, r1 = _runs(epoch_worn & ~active)
    length = r1 - r0
    trans = sum(
        1
        for b, ln in zip(r0, length)
        if ln >= PAUSE_S and _W0 <= b < _W1 and b > 0 and active[b - 1]
    )
    row["transitions"] = float(trans)
    row["rest_break"] = bool(np.any((length >= BREAK_S) & (r0 < _W1) & (r1 > _W0)))
    if worn_s > 0:
        row["duty"] = active_s / worn_s
    if active_s > 0:
        row["astp"] = trans / (active_s / 60.0)
    in_win = (ep >= _W0) & (ep < _W1)
    # Intensity (pre-registration deviation 2): mean movement-band magnitude over every worn
    # sample of the window, with no activity threshold — linear in the movement's amplitude,
    # free of gravity and calibration offsets, and most quantisation noise (> 5 Hz) is removed.
    worn_sample = in_win & ok & epoch_worn[ep]
    if worn_s > 0 and worn_sample.any():
        row["int"] = 1000.0 * float(np.mean(v[worn_sample]))
    g_mean = grav[in_win & ok].mean(axis=0) if np.any(in_win & ok) else np.full(3, np.nan)
    g_norm = float(np.linalg.norm(g_mean))
    g_unit = g_mean / g_norm if g_norm > 0 else np.full(3, np.nan)
    act_sample = active[ep] & in_win
    first_of_epoch = np.searchsorted(ep, np.arange(_SPAN + 1), "left")
    seg_starts = [e for e in range(_W0, _W1 - SEG_S + 1, SEG_STEP_S) if active[e : e + SEG_S].all()]
    nper = round(SEG_S * fs)
    segs = [band[first_of_epoch[e] : first_of_epoch[e] + nper] for e in seg_starts]
    segs = [s for s in segs if s.shape[0] == nper]
    if segs:
        stack = np.stack(segs)
        row["freq"] = tempo_hz(stack, fs)
        row["reg"] = regularity(stack, fs)
    if active_s > 0:
        row["cv"] = cycle_cv(v, act_sample, band_mg[win][active[win]], fs)
        d_lp = signal.sosfiltfilt(filt.jerk, x - grav, axis=0)
        row["jerk"] = ldlj_a(v, d_lp, act_sample, fs)
        pick = first_of_epoch[_W0] + np.round(
            np.arange(int(WINDOW_S * SAMPEN_FS_HZ)) * fs / SAMPEN_FS_HZ
        ).astype(np.int64)
        pick = pick[pick < v.size]
        pick = pick[act_sample[pick]]
        if pick.size >= SAMPEN_MIN_N:
            row["sampen"] = sample_entropy(v[pick], m=2, r_sd=0.2)
    if fs >= TREMOR_MIN_FS_HZ:
        quiet = epoch_worn & (mad_mg >= QUIET_MAD_MG[0]) & (mad_mg <= QUIET_MAD_MG[1])
        row["trem"], row["trem46"] = _tremor(x, quiet, first_of_epoch, filt)
    sig = np.full(len(SIGNATURE), np.nan)
    sig[0] = np.log1p(row["int"])
    sig[1] = row["freq"]
    sig[3:] = g_unit
    sig[2] = np.degrees(np.arcsin(np.clip(g_unit[0], -1.0, 1.0)))
    row["signature"] = sig
    return row


def _tremor(
    x: FloatArray, quiet: NDArray[np.bool_], first_of_epoch: NDArray[np.int64], filt: _Filters
) -> tuple[float, float]:
    """Relative 8–12 Hz and 4–6 Hz power (to 1–20 Hz) in 2-s quiet-hold segments (§2.3 item 8)."""
    fs = filt.fs_hz
    nper = round(TREM_SEG_S * fs)
    starts = [e for e in range(_W0, _W1 - TREM_SEG_S + 1) if quiet[e : e + TREM_SEG_S].all()]
    if len(starts) < TREM_MIN_SEGMENTS:
        return float("nan"), float("nan")
    hp = signal.sosfiltfilt(filt.hp1, x, axis=0)
    segs = [hp[first_of_epoch[e] : first_of_epoch[e] + nper] for e in starts]
    segs = [s for s in segs if s.shape[0] == nper]
    if len(segs) < TREM_MIN_SEGMENTS:
        return float("nan"), float("nan")
    f, psd = trace_psd(np.stack(segs), fs)

    def power(band: tuple[float, float]) -> float:
        return float(psd[(f >= band[0]) & (f <= min(band[1], fs / 2))].sum())

    ref = power(TREM_REF_BAND_HZ)
    if ref <= 0:
        return float("nan"), float("nan")
    return power(TREM_BAND_HZ) / ref, power(TREM46_BAND_HZ) / ref
