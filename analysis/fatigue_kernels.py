"""Signal kernels of the per-window fatigue features (methods.md §2.3 items 3–6).

Pure functions over one window's movement-band signals, used by
`analysis.fatigue_features.window_features`: tempo and regularity from stacked 10-s segments of
the band signal, cycle-amplitude variability and smoothness (LDLJ-A) from its magnitude v.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = ["cycle_cv", "ldlj_a", "regularity", "tempo_hz", "trace_psd"]

FloatArray = NDArray[np.float64]

#: Tempo band and the peak-to-median PSD ratio required to report it (§2.3 item 3).
TEMPO_BAND_HZ = (0.3, 4.0)
TEMPO_MIN_PEAK_RATIO = 3.0
#: Regularity: autocorrelation peak searched at lags 0.25–3 s (§2.3 item 4).
REG_LAGS_S = (0.25, 3.0)
#: Cycle segmentation: peaks ≥ 0.25 s apart with prominence ≥ 0.5 SD; ≥ 10 cycles (§2.3 item 5).
PEAK_DIST_S = 0.25
PEAK_PROM_SD = 0.5
MIN_CYCLES = 10
#: Movement units for LDLJ-A: 0.25–10 s between minima of v (§2.3 item 6; 0.5 s lowered to
#: 0.25 s so that half-cycles of reciprocating movements up to 2 Hz count, docs/fatigue.md §3).
UNIT_S = (0.25, 10.0)


def trace_psd(stack: FloatArray, fs: float) -> tuple[FloatArray, FloatArray]:
    """Hann-windowed periodograms summed over axes and averaged over segments (Welch)."""
    seg = stack - stack.mean(axis=1, keepdims=True)
    win = signal.get_window("hann", seg.shape[1])
    spec = np.fft.rfft(seg * win[None, :, None], axis=1)
    psd = (np.abs(spec) ** 2).sum(axis=2).mean(axis=0)
    freqs = np.asarray(np.fft.rfftfreq(seg.shape[1], 1.0 / fs), dtype=np.float64)
    return freqs, np.asarray(psd, dtype=np.float64)


def tempo_hz(stack: FloatArray, fs: float) -> float:
    """Dominant frequency in 0.3–4 Hz with log-parabolic peak interpolation (§2.3 item 3)."""
    f, psd = trace_psd(stack, fs)
    band = np.flatnonzero((f >= TEMPO_BAND_HZ[0]) & (f <= TEMPO_BAND_HZ[1]))
    p = psd[band]
    k = int(np.argmax(p))
    med = float(np.median(p))
    if p[k] <= 0 or p[k] < TEMPO_MIN_PEAK_RATIO * med:
        return float("nan")
    i = band[k]
    df = f[1] - f[0]
    if 0 < i < psd.size - 1 and psd[i - 1] > 0 and psd[i + 1] > 0:
        la, lb, lc = np.log(psd[i - 1]), np.log(psd[i]), np.log(psd[i + 1])
        den = la - 2 * lb + lc
        off = 0.5 * (la - lc) / den if den < 0 else 0.0
        return float(f[i] + np.clip(off, -0.5, 0.5) * df)
    return float(f[i])


def regularity(stack: FloatArray, fs: float) -> float:
    """Median over segments of the dominant unbiased-autocorrelation peak at 0.25–3 s lags."""
    seg = stack - stack.mean(axis=1, keepdims=True)
    m = seg.shape[1]
    spec = np.fft.rfft(seg, n=2 * m, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, n=2 * m, axis=1)[:, :m, :].sum(axis=2)
    ac = ac / (m - np.arange(m))[None, :]
    lo, hi = int(np.ceil(REG_LAGS_S[0] * fs)), int(np.floor(REG_LAGS_S[1] * fs))
    out = []
    for r in ac:
        if r[0] <= 0:
            continue
        rr = r / r[0]
        seg_r = rr[lo - 1 : hi + 2]
        mid = seg_r[1:-1]
        peaks = (mid > seg_r[:-2]) & (mid >= seg_r[2:])
        if peaks.any():
            out.append(float(mid[peaks].max()))
    return float(np.median(out)) if out else float("nan")


def cycle_cv(
    v: FloatArray, act: NDArray[np.bool_], band_active_mg: FloatArray, fs: float
) -> float:
    """CV of per-cycle peak amplitude of v; with < 10 cycles, CV of the active epochs' mean v.

    §2.3 item 5 falls back on active 1-s ENMO; the band magnitude (deviation 3) is the signal
    that defines activity, and it is free of calibration offsets.
    """
    sd = float(np.std(v[act]))
    if sd > 0:
        pk, _ = signal.find_peaks(
            v, distance=max(1, int(PEAK_DIST_S * fs)), prominence=PEAK_PROM_SD * sd
        )
        pk = pk[act[pk]]
        if pk.size >= MIN_CYCLES:
            amp = v[pk]
            return float(np.std(amp, ddof=1) / np.mean(amp))
    if band_active_mg.size >= 2 and np.mean(band_active_mg) > 0:
        return float(np.std(band_active_mg, ddof=1) / np.mean(band_active_mg))
    return float("nan")


def ldlj_a(v: FloatArray, d_lp: FloatArray, act: NDArray[np.bool_], fs: float) -> float:
    """Median LDLJ-A over movement units between minima of v (§2.3 item 6)."""
    sd = float(np.std(v[act]))
    if sd <= 0:
        return float("nan")
    mins, _ = signal.find_peaks(
        -v, distance=max(1, int(PEAK_DIST_S * fs)), prominence=PEAK_PROM_SD * sd
    )
    if mins.size < 2:
        return float("nan")
    jerk = np.gradient(d_lp, 1.0 / fs, axis=0)
    j2 = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", jerk, jerk))])
    amag = np.sqrt(np.einsum("ij,ij->i", d_lp, d_lp))
    bad = np.concatenate([[0], np.cumsum(~act)])
    i, j = mins[:-1], mins[1:]
    dur = (j - i) / fs
    a_peak = np.maximum(np.maximum.reduceat(amag, mins)[:-1], amag[j])
    integral = (j2[j] - j2[i]) / fs  # ∫ over [t_i, t_j), the unit's duration
    good = (
        (dur >= UNIT_S[0])
        & (dur <= UNIT_S[1])
        & (bad[j + 1] == bad[i])
        & (a_peak > 0)
        & (integral > 0)
    )
    vals = -np.log(dur[good] * integral[good] / a_peak[good] ** 2)
    return float(np.median(vals)) if vals.size else float("nan")
