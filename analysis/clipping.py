"""Clipping detection per 15-min block, GGIR's rule (methods.md §1.8, "Clipping (GGIR)").

Rule (GGIR ``R/detect_nonwear_clipping.R``, re-implemented from its description):

* Time is cut into 15-min blocks aligned to UTC multiples of 900 s (`BLOCK_S`), the same
  blocks as non-wear (`analysis.nonwear`).
* Per block and axis, the clip fraction is the fraction of samples with |a| above the
  clipping threshold (`CLIP_THRESHOLD_G` = 7.5 g, meant for a ±8 g device). A single
  sample above 1.5 × the threshold (`HARD_CLIP_FACTOR`) marks the whole block as clipped
  (fraction 1): such a value cannot come from the sensor, so the block is not trusted.
* The block's clip fraction is the largest of the three axes. A block with a fraction
  above 0.3 (`INVALID_FRACTION`) is invalid; above 0.05 (`SOME_CLIPPING_FRACTION`) it
  counts as "some clipping".

For other device ranges scale the threshold with `clip_threshold_for_range_g`
(7.5 / 8 of the range: e.g. 1.875 g for ±2 g, 15 g for ±16 g).

Deviation from GGIR: GGIR divides the count by the nominal number of samples in a full
block; we divide by the samples actually present, so a block cut short by a gap or the end
of the recording is judged on its own samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S, SampleBlock

__all__ = [
    "BLOCK_S",
    "CLIP_THRESHOLD_G",
    "HARD_CLIP_FACTOR",
    "INVALID_FRACTION",
    "SOME_CLIPPING_FRACTION",
    "ClippingBlocks",
    "clip_threshold_for_range_g",
    "detect_clipping",
]

#: Block length, GGIR ``windowsizes[2] = 900`` s (methods.md §1.8).
BLOCK_S = 900
#: GGIR ``clipthres = 7.5`` g, for ±8 g devices (methods.md §1.8, appendix A).
CLIP_THRESHOLD_G = 7.5
#: A sample beyond 1.5 × threshold clips the whole block, GGIR (methods.md §1.8).
HARD_CLIP_FACTOR = 1.5
#: Clip fraction above which a block is invalid, GGIR 0.3 (methods.md §1.8, appendix A).
INVALID_FRACTION = 0.3
#: Clip fraction above which a block has "some clipping", GGIR 0.05 (methods.md §1.8).
SOME_CLIPPING_FRACTION = 0.05
#: GGIR's threshold relative to the ±8 g range it was chosen for (7.5 / 8).
_THRESHOLD_PER_RANGE = CLIP_THRESHOLD_G / 8.0


def clip_threshold_for_range_g(range_g: float) -> float:
    """Clipping threshold for a device with a ±`range_g` sensor.

    Parameters
    ----------
    range_g : float
        Full-scale range of the accelerometer in g (e.g. 8 for ±8 g).

    Returns
    -------
    float
        Threshold in g: 7.5 / 8 of the range, GGIR's ratio.

    Raises
    ------
    ValueError
        If `range_g` is not positive and finite.

    Examples
    --------
    >>> clip_threshold_for_range_g(8.0), clip_threshold_for_range_g(2.0)
    (7.5, 1.875)
    """
    if (
        isinstance(range_g, bool)
        or not isinstance(range_g, int | float)
        or not np.isfinite(range_g)
        or range_g <= 0
    ):
        raise ValueError(f"range_g must be a positive finite number of g, got {range_g!r}")
    return float(range_g) * _THRESHOLD_PER_RANGE


@dataclass(frozen=True, slots=True, eq=False)
class ClippingBlocks:
    """Clipping per 15-min block (only blocks that hold samples).

    Attributes
    ----------
    threshold_g : float
        Clipping threshold used, in g.
    start_ns : ndarray of int64, shape (m,)
        UTC ns of each block start (a multiple of 900 s), increasing.
    n_samples : ndarray of int64, shape (m,)
        Samples in each block.
    clip_fraction : ndarray of float64, shape (m,)
        Largest per-axis fraction of samples with |a| > `threshold_g` (1.0 if hard clipped).
    hard_clipped : ndarray of bool, shape (m,)
        True if any sample exceeds 1.5 × `threshold_g`.
    invalid : ndarray of bool, shape (m,)
        ``clip_fraction > 0.3``: the block should be treated like missing data.
    some_clipping : ndarray of bool, shape (m,)
        ``clip_fraction > 0.05``.
    """

    threshold_g: float
    start_ns: NDArray[np.int64]
    n_samples: NDArray[np.int64]
    clip_fraction: NDArray[np.float64]
    hard_clipped: NDArray[np.bool_]
    invalid: NDArray[np.bool_]
    some_clipping: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.start_ns.size)

    def invalid_at(self, times_ns: NDArray[np.integer[Any]]) -> NDArray[np.bool_]:
        """Whether the block holding each time (e.g. an epoch start, UTC ns) is invalid.

        Parameters
        ----------
        times_ns : ndarray of int, shape (n,)
            UTC times in ns.

        Returns
        -------
        ndarray of bool, shape (n,)
            True where the time falls in a listed block with ``invalid``; times in no
            listed block are not invalid.
        """
        t = np.asarray(times_ns, dtype=np.int64)
        if not len(self):
            return np.zeros(t.shape, dtype=bool)
        block_ns = BLOCK_S * NS_PER_S
        block = np.floor_divide(t, block_ns) * block_ns
        idx = np.clip(np.searchsorted(self.start_ns, block), 0, len(self) - 1)
        out: NDArray[np.bool_] = (self.start_ns[idx] == block) & self.invalid[idx]
        return out


def detect_clipping(
    blocks: Sequence[SampleBlock], *, threshold_g: float = CLIP_THRESHOLD_G
) -> ClippingBlocks:
    """Clip fraction and GGIR flags per UTC 15-min block.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        Sample blocks (any order, any rates); each sample counts in the 15-min block that
        holds its time. For one array ``accel_g`` (n, 3) at ``fs_hz`` from ``t0_ns``, pass
        ``[SampleBlock(t0_ns, fs_hz, accel_g)]``.
    threshold_g : float, optional
        Clipping threshold in g. Default 7.5 g (GGIR, ±8 g devices); see
        `clip_threshold_for_range_g` for other ranges.

    Returns
    -------
    ClippingBlocks
        One row per 15-min block that holds samples.

    Raises
    ------
    ValueError
        If `threshold_g` is not positive and finite, or a block holds NaN or infinite values.

    References
    ----------
    van Hees VT et al. (2013) PLoS ONE 8(4):e61691; GGIR ``detect_nonwear_clipping.R``
    (methods.md §1.8).
    """
    if (
        isinstance(threshold_g, bool)
        or not isinstance(threshold_g, int | float)
        or not np.isfinite(threshold_g)
        or threshold_g <= 0
    ):
        raise ValueError(f"threshold_g must be a positive finite number of g, got {threshold_g!r}")
    thr = float(threshold_g)
    hard = HARD_CLIP_FACTOR * thr
    block_ns = BLOCK_S * NS_PER_S
    counts: dict[int, NDArray[np.int64]] = {}  # block start -> [n, clipped x, y, z, hard]
    for i, b in enumerate(blocks):
        if not b.n_samples:
            continue
        acc = np.abs(np.asarray(b.accel_g, dtype=np.float64))
        if not np.isfinite(acc).all():
            raise ValueError(
                f"blocks must hold finite acceleration, block {i} ({b!r}) has NaN or inf"
            )
        q = np.floor_divide(b.times_ns(), block_ns)
        first = int(q[0])
        idx = (q - first).astype(np.int64)
        m = int(idx[-1]) + 1
        per = np.zeros((m, 5), dtype=np.int64)
        per[:, 0] = np.bincount(idx, minlength=m)
        for j in range(3):
            per[:, 1 + j] = np.bincount(idx, weights=acc[:, j] > thr, minlength=m).astype(np.int64)
        per[:, 4] = np.bincount(idx, weights=(acc > hard).any(axis=1), minlength=m).astype(np.int64)
        for k in np.flatnonzero(per[:, 0]):
            key = (first + int(k)) * block_ns
            counts[key] = counts[key] + per[k] if key in counts else per[k].copy()
    keys = sorted(counts)
    table = np.array([counts[k] for k in keys], dtype=np.int64).reshape(len(keys), 5)
    n = table[:, 0]
    hard_clipped = table[:, 4] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = table[:, 1:4].max(axis=1) / n
    frac = np.where(hard_clipped, 1.0, frac).astype(np.float64)
    return ClippingBlocks(
        threshold_g=thr,
        start_ns=np.array(keys, dtype=np.int64),
        n_samples=n,
        clip_fraction=frac,
        hard_clipped=hard_clipped,
        invalid=frac > INVALID_FRACTION,
        some_clipping=frac > SOME_CLIPPING_FRACTION,
    )
