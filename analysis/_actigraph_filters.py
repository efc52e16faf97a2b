"""Filters of the ActiGraph count chain (private; the public API is `analysis.counts`).

Clean-room re-implementation from the description in Neishabouri et al. 2022 (Sci Rep
12:11958, doi:10.1038/s41598-022-16003-x) and methods.md §1.5; no code of the GPL `agcounts`
package is used. Constants that came from ActiGraph's implementation are either quoted from
methods.md §1.5 (the band-pass coefficients, which are ActiLife constants and cannot be
re-derived) or re-derived from a design rule and checked against ActiGraph's stage outputs
(the 32 → 30 Hz resampler: a Kaiser-windowed sinc and a one-pole low-pass, see
`tests/analysis/test_counts.py`).

All signals here are float64 arrays of shape (n_axes, n_samples): one contiguous row per axis,
so that `scipy.signal.lfilter` runs over contiguous memory.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy import signal

F64 = NDArray[np.float64]

#: Band-pass IIR of the count chain at 30 Hz, numerator and denominator (methods.md §1.5,
#: "Step 2"; Neishabouri et al. 2022). ActiLife's table has a ninth, zero coefficient in both;
#: it changes nothing and is left out.
BPF_B: tuple[float, ...] = (
    -0.009341062898525, -0.025470289659360, -0.004235264826105, 0.044152415456420,
    0.036493718347760, -0.011893961934740, -0.022917390623150, -0.006788163862310,
)  # fmt: skip
BPF_A: tuple[float, ...] = (
    1.0, -3.63367395910957, 5.03689812757486, -3.09612247819666,
    0.50620507633883, 0.32421701566682, -0.15685485875559, 0.01949130205890,
)  # fmt: skip
#: Gain from filtered g to counts: (3/4096)/(2.6/256) × 237.5 = 17.127404 (methods.md §1.5,
#: "Step 3"; the ActiLife value, the firmware uses 17.128125).
COUNTS_GAIN = (3.0 / 4096.0) / (2.6 / 256.0) * 237.5
#: The band-passed samples are rounded to 3 decimals of g, i.e. to whole mg, before the
#: band-pass (methods.md §1.5, "Step 1": "Round to 3 decimals").
MG_PER_G = 1000.0

#: Up/down factors (L, M) of ActiGraph's resampler to 30 Hz (methods.md §1.5, "Step 1").
RESAMPLE_FACTORS: dict[int, tuple[int, int]] = {
    30: (1, 1), 40: (3, 4), 50: (3, 5), 60: (1, 2), 70: (3, 7), 80: (3, 8), 90: (1, 3), 100: (3, 10),
}  # fmt: skip
#: Rates resampled through the 256 Hz path of ActiGraph's power-of-two resampler.
POW2_RATES_HZ: tuple[int, ...] = (32, 64, 128, 256)
POW2_FS_HZ = 256
TARGET_FS_HZ = 30

# The 256 Hz interpolation low-pass. Design rule recovered from ActiGraph's stage outputs
# (`agcounts_py_actilife_stages/upsample256Lpf.csv`, checked to 1e-15 in the tests): a
# 255-tap Kaiser-windowed sinc with cutoff 256/16 = 16 Hz (a Nyquist filter: 1/8 at the
# centre, zero every 8th tap), Kaiser beta for 90 dB stop-band attenuation
# (β = 0.1102·(90 − 8.7), Kaiser's formula), taps rounded to 6 decimals.
_POW2_TAPS = 255
_POW2_ZERO_SPACING = 8
_POW2_ATTENUATION_DB = 90.0
_POW2_TAP_DECIMALS = 6
# The "TASO" one-pole low-pass at 256 Hz: y[k] = g·x[k] + (1 − g)·y[k−1] with
# g = 1 − exp(−2π·15/256), a 15 Hz RC low-pass (matches taso256HzLpf.csv to 1e-15).
_TASO_CUTOFF_HZ = 15.0


@cache
def pow2_kernel() -> F64:
    """The 256 Hz interpolation low-pass taps, shape (255,)."""
    k = np.arange(_POW2_TAPS) - _POW2_TAPS // 2
    beta = signal.kaiser_beta(_POW2_ATTENUATION_DB)
    h = np.sinc(k / _POW2_ZERO_SPACING) / _POW2_ZERO_SPACING
    h = h * signal.windows.kaiser(_POW2_TAPS, beta)
    taps: F64 = np.round(h, _POW2_TAP_DECIMALS)
    taps.flags.writeable = False
    return taps


def taso_gain() -> float:
    """Input weight g of the 256 Hz one-pole low-pass, 1 − exp(−2π·15/256)."""
    return float(1.0 - np.exp(-2.0 * np.pi * _TASO_CUTOFF_HZ / POW2_FS_HZ))


def upsample_to_256hz(x: F64, fs_hz: int) -> F64:
    """Zero-stuff to 256 Hz with gain 256/fs and low-pass with `pow2_kernel` ("same" alignment).

    Parameters
    ----------
    x : ndarray of float64, shape (n_axes, n)
        Samples at `fs_hz` (32, 64, 128 or 256 Hz).

    Returns
    -------
    ndarray of float64, shape (n_axes, n · 256/fs_hz)
    """
    factor = POW2_FS_HZ // fs_hz
    if factor == 1:
        return x
    taps = pow2_kernel()
    half = taps.size // 2
    n_out = x.shape[1] * factor
    # upfirdn = zero-stuffing followed by full convolution; "same" drops `half` leading samples.
    full = signal.upfirdn(taps * factor, x, up=factor, axis=1)
    return np.ascontiguousarray(full[:, half : half + n_out])


def taso_lowpass(x: F64) -> F64:
    """One-pole 15 Hz low-pass at 256 Hz, started in steady state on the first sample.

    Parameters
    ----------
    x : ndarray of float64, shape (n_axes, n), 256 Hz

    Returns
    -------
    ndarray of float64, shape (n_axes, n)
    """
    g = taso_gain()
    b, a = np.array([g]), np.array([1.0, -(1.0 - g)])
    zi = signal.lfilter_zi(b, a)[None, :] * x[:, :1]
    y, _ = signal.lfilter(b, a, x, axis=1, zi=zi)
    return np.asarray(y)


def interpolate_256_to_30hz(x: F64) -> F64:
    """Linear interpolation from 256 Hz to 30 Hz, on ActiGraph's grid.

    Output sample j (0-based) is read at 256 Hz position t_j = (j + 1)·256/30 − 1, linearly
    between the neighbouring samples. The last output sample has no right neighbour and is
    0, as in ActiGraph's reference output (`30Hz_output.csv` ends with 0).

    Parameters
    ----------
    x : ndarray of float64, shape (n_axes, n), 256 Hz

    Returns
    -------
    ndarray of float64, shape (n_axes, n · 30 // 256)
    """
    n_out = x.shape[1] * TARGET_FS_HZ // POW2_FS_HZ
    out = np.zeros((x.shape[0], n_out))
    if n_out < 2:
        return out
    t = np.arange(1, n_out) * (POW2_FS_HZ / TARGET_FS_HZ)  # = (j + 1)·256/30, j < n_out − 1
    right = np.floor(t).astype(np.intp)
    frac = t - right
    lo, hi = x[:, right - 1], x[:, right]
    out[:, :-1] = lo + (hi - lo) * frac
    return out


def pow2_to_30hz(x: F64, fs_hz: int) -> F64:
    """ActiGraph's power-of-two resampler: 32/64/128/256 Hz → 30 Hz (not yet rounded)."""
    return interpolate_256_to_30hz(taso_lowpass(upsample_to_256hz(x, fs_hz)))


#: The resampling low-pass is run as its impulse response, cut where it falls below this
#: fraction of its first tap: |β| ≤ 0.313, so the cut tail sums to < 1e-20 of the signal, far
#: below float64 rounding, and the FIR equals the recursion to rounding.
_LPF_TAIL_CUT = 1e-20


class IntegerRatioResampler:
    """ActiGraph's resampler for 30–100 Hz: zero-stuff by L, one-pole low-pass, keep every M-th.

    The low-pass at L·fs is y[k] = c·(u[k] + u[k−1]) + β·y[k−1] with c = L·π/(π + 2L) and
    β = −(π − 2L)/(π + 2L), started from rest (methods.md §1.5); it is applied only when
    fs ∉ {30, 60, 90}. Its impulse response is h[0] = c, h[i] = c·(1 + β)·β^(i−1); cut at
    `_LPF_TAIL_CUT` it is applied as a polyphase FIR (`scipy.signal.upfirdn`), which computes
    only the kept samples instead of all L·fs of them.

    `process` takes consecutive chunks whose lengths (except the last) are multiples of M and
    carries the last input samples across, so chunked and whole-array results are the same.
    """

    def __init__(self, n_axes: int, fs_hz: int) -> None:
        self.up, self.down = RESAMPLE_FACTORS[fs_hz]
        up = self.up
        c = up * np.pi / (np.pi + 2 * up)
        beta = -(np.pi - 2 * up) / (np.pi + 2 * up)
        n_taps = 1 + int(np.ceil(np.log(_LPF_TAIL_CUT) / np.log(abs(beta)))) if up > 1 else 1
        self.taps = np.concatenate([[c], c * (1 + beta) * beta ** np.arange(n_taps - 1)])
        # Input history that the FIR needs, rounded up to whole periods of M (keeps the phase).
        need = -(-self.taps.size // up)
        self.hist_n = -(-need // self.down) * self.down
        self.hist = np.zeros((n_axes, self.hist_n))  # at rest before the first sample

    def process(self, x: F64) -> F64:
        """Resample one chunk, shape (n_axes, n) at fs → (n_axes, ceil(n·L/M)) at 30 Hz."""
        if self.up == 1:
            return x[:, :: self.down]
        xin = np.concatenate([self.hist, x], axis=1)
        self.hist = xin[:, -self.hist_n :]
        y = signal.upfirdn(self.taps, xin, up=self.up, down=self.down, axis=1)
        skip = self.hist_n * self.up // self.down
        n_out = -(-x.shape[1] * self.up // self.down)
        return np.ascontiguousarray(y[:, skip : skip + n_out])


def integer_ratio_to_30hz(x: F64, fs_hz: int) -> F64:
    """Whole-array `IntegerRatioResampler` (not yet rounded), (n_axes, n) → (n_axes, ceil(n·L/M))."""
    return IntegerRatioResampler(x.shape[0], fs_hz).process(x)


def bpf_zi() -> F64:
    """Steady-state initial state of the counts band-pass for a unit step (scaled per axis)."""
    return np.asarray(signal.lfilter_zi(BPF_B, BPF_A))
