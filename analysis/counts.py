"""ActiGraph activity counts, re-implemented from Neishabouri et al. 2022 (methods.md §1.5).

The open ActiGraph count algorithm (Neishabouri A et al., *Quantification of acceleration as
activity counts in ActiGraph wearable*, Sci Rep 2022;12:11958, doi:10.1038/s41598-022-16003-x)
reproduces ActiLife's counts from raw acceleration. This module is a clean-room port of the
published description (methods.md §1.5); it shares no code with the GPL `agcounts` package and
is checked against ActiLife 6.13.4 output on real recordings (`tests/analysis/test_counts.py`).

The chain, per axis:

1. Resample to 30 Hz with ActiGraph's resampler: for 30–100 Hz (steps of 10) zero-stuff by L,
   a one-pole low-pass (except at 30/60/90 Hz) and keep every M-th sample; for 32, 64, 128 and
   256 Hz the power-of-two path (upsample to 256 Hz, Kaiser-windowed sinc, a 15 Hz one-pole
   low-pass, linear interpolation to 30 Hz). Then round to 3 decimals of g (whole mg).
2. Band-pass IIR (ActiLife's coefficients), started in steady state on the first sample.
3. Gain 17.127404 counts per g, rectify, values < 4 → 0, values > 128 → 128, floor.
4. "10 Hz": floor of the mean of each 3 consecutive samples.
5. Sum per epoch. Only whole epochs are returned; a trailing partial epoch is dropped.

Speed and memory: the 30–100 Hz path runs chunk by chunk (a whole number of epochs per chunk,
filter state carried across chunks, so the result does not depend on the chunk size) with the
gain and the mg scaling folded into the band-pass numerator; the one-pole resampling low-pass
runs as a polyphase FIR that computes only the kept samples. The power-of-two path runs in
segments of ≤ 1 h with a warm-up (see `actigraph_counts` Notes). Memory stays bounded for
week-long inputs; `workers` spreads the ranges over threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from analysis import _actigraph_filters as _f

__all__ = [
    "ACTILIFE_AXIS_ORDER",
    "SUPPORTED_FS_HZ",
    "actigraph_counts",
    "resample_to_30hz",
]

#: Column indices that turn `actigraph_counts` output (device x, y, z) into ActiLife's
#: (Axis1, Axis2, Axis3) = (Y, X, Z): ``counts[:, ACTILIFE_AXIS_ORDER]``. Axis1 is the device's
#: vertical axis (methods.md §1.5; ActiLife .agd/.csv exports, agcounts_R_example_gt3x README).
ACTILIFE_AXIS_ORDER: tuple[int, int, int] = (1, 0, 2)
#: Sampling rates with ActiLife-exact resampling (methods.md §1.5, "Step 1").
SUPPORTED_FS_HZ: tuple[int, ...] = tuple(sorted((*_f.RESAMPLE_FACTORS, *_f.POW2_RATES_HZ)))

#: Samples at 30 Hz per "10 Hz" value (methods.md §1.5, "Step 5").
_PER_10HZ = 3
#: Count thresholds per 30 Hz sample in normal (non-LFE) mode (methods.md §1.5, "Step 4").
_MIN_COUNT = 4
_MAX_COUNT = 128
#: 30 Hz samples per chunk (≈ 1.3 MB of float64 input for 3 axes at 100 Hz): large enough
#: to amortise per-call overhead, small enough to stay in cache between the passes over a
#: chunk (measured: 16k beats 4k and 64k by 20–30 % in CPU time).
_CHUNK_30HZ = 1 << 14
#: Warm-up before each parallel range (see `actigraph_counts` Notes) and the least work per
#: thread worth a thread.
_WARMUP_S = 120
_MIN_S_PER_WORKER = 600
#: Power-of-two path: data per segment (its 256 Hz intermediate is 256·3600·3·8 B ≈ 22 MB).
_POW2_SEGMENT_S = 3600


def _check_fs(fs_hz: Any) -> int:
    if isinstance(fs_hz, bool) or not isinstance(fs_hz, Real | np.number):
        # ValueError, not TypeError: the contract promises ValueError for any bad rate.
        raise ValueError(f"fs_hz must be a number, got {fs_hz!r}")  # noqa: TRY004
    fs = float(fs_hz)
    if not fs.is_integer() or int(fs) not in SUPPORTED_FS_HZ:
        supported = ", ".join(str(f) for f in SUPPORTED_FS_HZ)
        raise ValueError(
            f"fs_hz must be one of {supported} Hz (rates ActiGraph's resampler supports), "
            f"got {fs_hz!r}"
        )
    return int(fs)


def _check_epoch(epoch_s: Any) -> int:
    if isinstance(epoch_s, bool) or not isinstance(epoch_s, Real | np.number):
        raise ValueError(f"epoch_s must be a whole number of seconds, got {epoch_s!r}")  # noqa: TRY004
    e = float(epoch_s)
    if not e.is_integer() or e < 1:
        raise ValueError(f"epoch_s must be a whole number of seconds ≥ 1, got {epoch_s!r}")
    return int(e)


def _check_accel(accel_g: Any) -> NDArray[Any]:
    arr = np.asarray(accel_g)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"accel_g must have shape (n_samples, 3), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"accel_g must be numeric, got dtype {arr.dtype}")
    return arr


def resample_to_30hz(accel_g: NDArray[Any], *, fs_hz: float) -> NDArray[np.float64]:
    """ActiGraph's resampler to 30 Hz, as used in front of the count band-pass.

    Parameters
    ----------
    accel_g : ndarray, shape (n_samples, n_axes)
        Acceleration in g (any number of axes; the count chain uses 3), gap-free.
    fs_hz : float
        Sampling rate in Hz: 30, 40, …, 100 or 32, 64, 128, 256.

    Returns
    -------
    ndarray of float64, shape (n_30hz, n_axes)
        Acceleration in g at 30 Hz, not yet rounded to 3 decimals. ``n_30hz`` is
        ``ceil(n_samples·L/M)`` on the 30–100 Hz path and ``n_samples·30 // fs_hz`` on the
        power-of-two path, whose last sample is 0 as in ActiGraph's reference output.

    Raises
    ------
    ValueError
        If `fs_hz` is not a supported rate or `accel_g` is not 2-D and finite.
    """
    fs = _check_fs(fs_hz)
    arr = np.asarray(accel_g)
    if arr.ndim != 2:
        raise ValueError(f"accel_g must have shape (n_samples, n_axes), got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("accel_g must be finite (the resampler needs a gap-free block)")
    x = np.ascontiguousarray(arr.T, dtype=np.float64)
    if fs in _f.POW2_RATES_HZ:
        return np.ascontiguousarray(_f.pow2_to_30hz(x, fs).T)
    return np.ascontiguousarray(_f.integer_ratio_to_30hz(x, fs).T)


class _CountChain:
    """Band-pass → threshold → 10 Hz → epoch sums over 30 Hz chunks, with carried state."""

    def __init__(self, n_axes: int, epoch_s: int) -> None:
        self.per_epoch = _f.TARGET_FS_HZ * epoch_s
        self.per_10hz_epoch = self.per_epoch // _PER_10HZ
        # Counts = gain · BPF(x_g) = BPF(x_mg) · gain/1000: fold both into the numerator.
        self.b = np.asarray(_f.BPF_B) * (_f.COUNTS_GAIN / _f.MG_PER_G)
        self.a = np.asarray(_f.BPF_A)
        self.zi_unit = signal.lfilter_zi(self.b, self.a)
        self.state: NDArray[np.float64] | None = None
        self.n_axes = n_axes

    def epochs_from_mg(self, x_mg: NDArray[np.float64]) -> NDArray[np.int64]:
        """Counts of the whole epochs in `x_mg`, 30 Hz in whole mg, (n_axes, k·per_epoch) → (k, n_axes)."""
        if self.state is None:  # steady state on the first sample, as ActiLife
            self.state = self.zi_unit[None, :] * x_mg[:, :1]
        y, self.state = signal.lfilter(self.b, self.a, x_mg, axis=1, zi=self.state)
        # floor(min(|y|, 128)) = |trunc(clip(y, ±128))|; then values < 4 → 0.
        np.clip(y, -_MAX_COUNT, _MAX_COUNT, out=y)
        per_sample = y.astype(np.int16)
        np.abs(per_sample, out=per_sample)
        np.multiply(per_sample, per_sample >= _MIN_COUNT, out=per_sample)
        tenth = per_sample[:, 0::3] + per_sample[:, 1::3]
        tenth += per_sample[:, 2::3]
        tenth //= _PER_10HZ  # floor of the mean of 3 (methods.md §1.5, "Step 5")
        k = x_mg.shape[1] // self.per_epoch
        per_epoch = tenth.reshape(self.n_axes, k, self.per_10hz_epoch)
        if self.per_10hz_epoch > 32:  # long epochs: numpy's reduction is fast along long rows
            return np.ascontiguousarray(per_epoch.sum(axis=2, dtype=np.int64).T)
        sums = per_epoch[:, :, 0].astype(np.int64)
        for i in range(1, self.per_10hz_epoch):  # short epochs: strided adds beat a row reduce
            sums += per_epoch[:, :, i]
        return np.ascontiguousarray(sums.T)


def actigraph_counts(
    accel_g: NDArray[Any], *, fs_hz: float, epoch_s: int = 60, workers: int = 1
) -> NDArray[np.int64]:
    """ActiGraph activity counts per epoch and axis (Neishabouri et al. 2022; ActiLife-exact).

    Parameters
    ----------
    accel_g : ndarray, shape (n_samples, 3)
        Raw acceleration in g, device axes (x, y, z), one gap-free block at `fs_hz`
        (float32 or float64; ActiGraph devices deliver multiples of 1/256 g at ±8 g).
    fs_hz : float
        Sampling rate in Hz. ActiLife's rates 30, 40, 50, 60, 70, 80, 90, 100, and the
        power-of-two rates 32, 64, 128, 256 (ActiGraph's 256 Hz resampling path).
    epoch_s : int, default 60
        Epoch length in whole seconds (ActiLife uses 1, 5, 10, 15, 30, 60 …).
    workers : int, default 1
        Threads (an extension of the contract). Each counts contiguous ranges of epochs: on
        the 30–100 Hz path one range per thread, at least 10 min long; on the power-of-two
        path the ≤ 1 h segments.

    Returns
    -------
    ndarray of int64, shape (n_epochs, 3)
        Counts per epoch, columns in the order of `accel_g` (x, y, z). ActiLife's
        (Axis1, Axis2, Axis3) are (Y, X, Z), i.e. ``counts[:, ACTILIFE_AXIS_ORDER]``; the
        vector magnitude is ``sqrt((counts**2).sum(axis=1))``. Epoch i covers
        [i·epoch_s, (i + 1)·epoch_s) s from the first sample. Only whole epochs are returned:
        ``n_epochs = n_30hz // (30·epoch_s)`` with ``n_30hz`` as in `resample_to_30hz`.

    Raises
    ------
    ValueError
        If `fs_hz` is not a supported rate, `epoch_s` is not a whole number of seconds ≥ 1,
        or `accel_g` is not numeric of shape (n, 3) or holds NaN/inf (counts need a
        gap-free block: cut at gaps and count each block).

    Notes
    -----
    Normal mode (ActiLife's default filter, "Normal"); the low-frequency extension is not
    implemented. Differences from ActiLife are at most floating-point rounding of values that
    land exactly on an integer threshold (none seen on the reference recordings).

    Ranges after the first (``workers > 1``, and the ≤ 1 h segments of the power-of-two path,
    which bound its 256 Hz intermediate) start 2 min early and discard that warm-up: the
    resampling low-passes forget their start within a few samples and the band-pass by its
    slowest pole, 0.963 per 30 Hz sample (0.963^3600 < 1e-58), so the states at the range start
    equal the sequential ones to floating-point rounding, and so do the counts. The 30–100 Hz
    path with one worker is one range, processed in chunks with carried state: exact.

    Examples
    --------
    >>> still = np.tile([0.0, 0.0, 1.0], (30 * 120, 1))
    >>> actigraph_counts(still, fs_hz=30, epoch_s=60)
    array([[0, 0, 0],
           [0, 0, 0]])
    """
    fs = _check_fs(fs_hz)
    epoch = _check_epoch(epoch_s)
    arr = _check_accel(accel_g)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ValueError(f"workers must be an integer ≥ 1, got {workers!r}")
    per_epoch = _f.TARGET_FS_HZ * epoch
    warm = -(-_WARMUP_S // epoch)
    if fs in _f.POW2_RATES_HZ:
        # Segments of ≤ 1 h with a warm-up each: the 256 Hz intermediate stays small.
        n_epochs = arr.shape[0] * _f.TARGET_FS_HZ // fs // per_epoch
        step = max(1, _POW2_SEGMENT_S // epoch)
        bounds = list(range(0, n_epochs, step)) + [n_epochs]
        count: Any = _pow2_path
    else:
        up, down = _f.RESAMPLE_FACTORS[fs]
        n_epochs = (-(-arr.shape[0] * up // down)) // per_epoch
        n_parts = max(1, min(workers, n_epochs // max(1, _MIN_S_PER_WORKER // epoch)))
        bounds = [i * n_epochs // n_parts for i in range(n_parts + 1)]
        count = _integer_path
    if n_epochs == 0:
        return np.zeros((0, 3), dtype=np.int64)
    # Contiguous epoch ranges; each (but the first) starts a warm-up earlier so that its filter
    # states have forgotten their start (see the Notes). With one worker and the 30–100 Hz path
    # there is a single range and no warm-up: the chunked chain is exact.
    ranges = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]

    def run(r: tuple[int, int]) -> NDArray[np.int64]:
        return count(arr, fs, epoch, r[0], r[1], warm)  # type: ignore[no-any-return]

    if workers == 1 or len(ranges) == 1:
        return np.concatenate([run(r) for r in ranges])
    # lfilter, upfirdn and the NumPy passes release the GIL, so threads share the work.
    with ThreadPoolExecutor(max_workers=min(workers, len(ranges))) as pool:
        return np.concatenate(list(pool.map(run, ranges)))


def _pow2_path(
    arr: NDArray[Any], fs: int, epoch: int, e_start: int, e_stop: int, warmup_epochs: int
) -> NDArray[np.int64]:
    """Counts of epochs [e_start, e_stop) on the 32/64/128/256 Hz path.

    The input slice starts a warm-up earlier (at the true start: none) and ends one epoch
    later when there is more data, because the 256 Hz low-pass looks 127 samples ahead and the
    interpolation one sample; epoch boundaries fall on the resampler's 128-sample grid.
    """
    chain = _CountChain(3, epoch)
    in_per_epoch = fs * epoch
    e_first = max(0, e_start - warmup_epochs)
    i0, i1 = e_first * in_per_epoch, min(arr.shape[0], (e_stop + 1) * in_per_epoch)
    x30 = _f.pow2_to_30hz(_finite_f64(arr[i0:i1].T, i0), fs)
    x_mg = np.rint(x30[:, : (e_stop - e_first) * chain.per_epoch] * _f.MG_PER_G)
    return chain.epochs_from_mg(x_mg)[e_start - e_first :]


def _integer_path(
    arr: NDArray[Any], fs: int, epoch: int, e_start: int, e_stop: int, warmup_epochs: int
) -> NDArray[np.int64]:
    """Counts of epochs [e_start, e_stop) on the 30–100 Hz path, chunk by chunk."""
    chain = _CountChain(3, epoch)
    up, down = _f.RESAMPLE_FACTORS[fs]
    in_per_epoch = fs * epoch  # maps to exactly 30·epoch_s samples (fs·epoch_s·L/M = 30·epoch_s)
    e_first = max(0, e_start - warmup_epochs)
    out = np.empty((e_stop - e_first, 3), dtype=np.int64)
    epochs_per_chunk = max(1, _CHUNK_30HZ // chain.per_epoch)
    resampler = _f.IntegerRatioResampler(3, fs)
    for e0 in range(e_first, e_stop, epochs_per_chunk):
        e1 = min(e_stop, e0 + epochs_per_chunk)
        chunk = arr[e0 * in_per_epoch : e1 * in_per_epoch].T
        if up == 1 and down == 1:  # 30 Hz: scale to mg straight from the caller's layout
            x_mg = np.multiply(chunk, _f.MG_PER_G, dtype=np.float64, order="C")
            _check_finite(x_mg, e0 * in_per_epoch)
        else:
            x30 = resampler.process(_finite_f64(chunk, e0 * in_per_epoch))
            x_mg = np.multiply(x30[:, : (e1 - e0) * chain.per_epoch], _f.MG_PER_G)
        np.rint(x_mg, out=x_mg)  # round to 3 decimals of g (methods.md §1.5, "Step 1")
        out[e0 - e_first : e1 - e_first] = chain.epochs_from_mg(x_mg)
    return out[e_start - e_first :]


def _check_finite(x: NDArray[np.float64], first_sample: int) -> None:
    if not np.isfinite(x).all():
        bad = int(np.argmax(~np.isfinite(x).all(axis=0)))
        raise ValueError(
            "accel_g must be finite (counts need a gap-free block: cut at gaps and count each "
            f"block), got a NaN/inf at sample {first_sample + bad}"
        )


def _finite_f64(x_t: NDArray[Any], first_sample: int = 0) -> NDArray[np.float64]:
    """(n_axes, n) float64 C-contiguous copy of a transposed view, checked finite."""
    x = np.ascontiguousarray(x_t, dtype=np.float64)
    _check_finite(x, first_sample)
    return x
