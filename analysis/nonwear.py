"""Non-wear detection with GGIR's "2023" rule, computed from epoch aggregates.

Rule (methods.md §1.8; GGIR ``R/detect_nonwear_clipping.R``, ``nonwear_approach = "2023"``):

* Time is cut into 15-min blocks aligned to UTC multiples of 900 s (`MEDIUM_WINDOW_S`).
* A 60-min window (`LONG_WINDOW_S`) starts at every block and covers it and the next three.
* Per axis, if the window's range (max − min) < 50 mg (`RANGE_CRITERION_G`) and its
  standard deviation (ddof = 1, as R's ``sd``) < 13 mg (`SD_CRITERION_G`), the axis is
  flagged in all four blocks of the window.
* A block's score is the number of axes flagged in it by any window (0–3); a block is
  non-wear if the score ≥ 2 (`AXES_NEEDED`). As in GGIR's code (applied after both
  approaches), a lone score of 1 between two blocks with score ≥ 2 is promoted to 2.

Deviations from GGIR, on purpose:

* GGIR tests every ceil(fs/5)-th sample (about 5 Hz). We use *all* samples: the window
  statistics are computed exactly from the per-epoch sums, sums of squares, minima,
  maxima and counts (Chan's pairwise-variance combination), so no raw data are re-read.
* Partly covered windows: GGIR evaluates windows truncated by the end of the data with
  no minimum. We evaluate a window only if its samples cover at least
  `MIN_WINDOW_COVERAGE` (50 %) of its 60 min, i.e. ≥ 30 min of data, and it has at least
  2 samples. Windows not evaluated flag nothing; an epoch never flagged counts as wear.
  Windows start at *every* 15-min block, including the three before the first data and
  blocks inside gaps, so the start of a recording (or of the data after a gap) is treated
  like its end (GGIR starts windows only at data blocks and truncates them at the end).
* An epoch belongs to the 15-min block that contains its start (choose ``epoch_s``
  dividing 900 s, e.g. the default 5 s, so that no epoch straddles two blocks).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S

__all__ = [
    "AXES_NEEDED",
    "LONG_WINDOW_S",
    "MEDIUM_WINDOW_S",
    "MIN_WINDOW_COVERAGE",
    "RANGE_CRITERION_G",
    "SD_CRITERION_G",
    "EpochAggregates",
    "detect_nonwear",
]

#: 15-min block length, GGIR ``windowsizes[2] = 900`` (methods.md §1.8, appendix A).
MEDIUM_WINDOW_S = 900
#: 60-min evaluation window, GGIR ``windowsizes[3] = 3600`` (methods.md §1.8).
LONG_WINDOW_S = 3600
#: Per-axis range criterion, GGIR ``racriter = 0.05`` g (methods.md §1.8).
RANGE_CRITERION_G = 0.05
#: Per-axis SD criterion, GGIR ``sdcriter = 0.013`` g (methods.md §1.8).
SD_CRITERION_G = 0.013
#: Axes that must be flagged for non-wear, GGIR ``wearthreshold = 2`` (methods.md §1.8).
AXES_NEEDED = 2
#: Our rule (not GGIR's): fraction of a window that must hold data to be evaluated.
MIN_WINDOW_COVERAGE = 0.5

_BLOCKS_PER_WINDOW = LONG_WINDOW_S // MEDIUM_WINDOW_S  # 4


class EpochAggregates(Protocol):
    """What `detect_nonwear` reads from an `analysis.pipeline.EpochTable`."""

    @property
    def start_ns(self) -> NDArray[np.int64]: ...  # noqa: D102
    @property
    def n_samples(self) -> NDArray[np.int64]: ...  # noqa: D102
    @property
    def covered_s(self) -> NDArray[np.float64]: ...  # noqa: D102
    @property
    def sum_g(self) -> NDArray[np.float64]: ...  # noqa: D102
    @property
    def sumsq_g2(self) -> NDArray[np.float64]: ...  # noqa: D102
    @property
    def min_g(self) -> NDArray[np.float64]: ...  # noqa: D102
    @property
    def max_g(self) -> NDArray[np.float64]: ...  # noqa: D102


def _shift_reduce(values: NDArray[Any], op: Any, fill: float) -> NDArray[Any]:
    """out[w] = op over values[w], values[w+1], …, values[w+3] (padded with `fill`)."""
    k = _BLOCKS_PER_WINDOW
    padded = np.concatenate([values, np.full((k - 1, *values.shape[1:]), fill, dtype=values.dtype)])
    out = padded[: values.shape[0]].copy()
    for s in range(1, k):
        out = op(out, padded[s : s + values.shape[0]])
    return out


def detect_nonwear(epochs: EpochAggregates) -> NDArray[np.bool_]:
    """Flag non-wear epochs with the GGIR "2023" rule from epoch aggregates.

    Parameters
    ----------
    epochs : EpochTable
        Epoch aggregates (any object with ``start_ns`` (n,) int64 UTC ns,
        ``n_samples`` (n,), ``covered_s`` (n,) in s, ``sum_g``, ``sumsq_g2`` in g and g²,
        ``min_g``, ``max_g`` in g, each (n, 3)), sorted by ``start_ns``.

    Returns
    -------
    ndarray of bool, shape (n,)
        True where the epoch lies in a non-wear 15-min block.

    Notes
    -----
    See the module docstring for the rule, the 50 % coverage requirement and how it
    differs from GGIR. Block indices span the recording densely (one entry per 15 min
    between the first and last epoch), which is small even for a year of data.

    References
    ----------
    van Hees VT et al. (2013) PLoS ONE 8(4):e61691; GGIR ``detect_nonwear_clipping.R``
    (methods.md §1.8).
    """
    start = np.asarray(epochs.start_ns, dtype=np.int64)
    n_ep = start.size
    if n_ep == 0:
        return np.zeros(0, dtype=bool)
    n = np.asarray(epochs.n_samples, dtype=np.float64)
    covered = np.asarray(epochs.covered_s, dtype=np.float64)
    s1 = np.asarray(epochs.sum_g, dtype=np.float64)
    s2 = np.asarray(epochs.sumsq_g2, dtype=np.float64)
    lo = np.asarray(epochs.min_g, dtype=np.float64)
    hi = np.asarray(epochs.max_g, dtype=np.float64)

    block = np.floor_divide(start, MEDIUM_WINDOW_S * NS_PER_S)
    # Dense block axis with 3 blocks of margin before the first, so every window that
    # overlaps data (starting up to 3 blocks earlier) exists.
    b0 = int(block[0]) - (_BLOCKS_PER_WINDOW - 1)
    bi = (block - b0).astype(np.int64)
    nb = int(bi[-1]) + 1

    # Per-block aggregates.
    blk_n = np.bincount(bi, weights=n, minlength=nb)
    blk_cov = np.bincount(bi, weights=covered, minlength=nb)
    blk_sum = np.stack([np.bincount(bi, weights=s1[:, j], minlength=nb) for j in range(3)], axis=1)
    blk_min = np.full((nb, 3), np.inf)
    blk_max = np.full((nb, 3), -np.inf)
    np.minimum.at(blk_min, bi, lo)
    np.maximum.at(blk_max, bi, hi)

    # Per-window (w = first block of the window) aggregates.
    win_n = _shift_reduce(blk_n, np.add, 0.0)
    win_cov = _shift_reduce(blk_cov, np.add, 0.0)
    win_sum = _shift_reduce(blk_sum, np.add, 0.0)
    win_range = _shift_reduce(blk_max, np.maximum, -np.inf) - _shift_reduce(blk_min, np.minimum, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        win_mean = win_sum / win_n[:, None]
        ep_mean = s1 / n[:, None]
    # Chan et al. combination: M2_window = Σ_e [M2_e + n_e (mean_e − mean_w)²],
    # with M2_e = sumsq_e − sum_e² / n_e (small epochs, negligible cancellation).
    ep_m2 = np.maximum(s2 - s1 * ep_mean, 0.0)
    win_m2 = np.zeros((nb, 3))
    for k in range(_BLOCKS_PER_WINDOW):
        w = bi - k  # the window starting k blocks before this epoch's block
        ok = w >= 0
        dev = ep_mean[ok] - win_mean[w[ok]]
        contrib = ep_m2[ok] + n[ok, None] * dev * dev
        for j in range(3):
            win_m2[:, j] += np.bincount(w[ok], weights=contrib[:, j], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        win_sd = np.sqrt(win_m2 / (win_n[:, None] - 1.0))

    evaluated = (win_cov >= MIN_WINDOW_COVERAGE * LONG_WINDOW_S) & (win_n >= 2)
    win_flag = evaluated[:, None] & (win_range < RANGE_CRITERION_G) & (win_sd < SD_CRITERION_G)

    # Block b is flagged on an axis if any window starting at b-3 … b flags that axis.
    blk_flag = win_flag.copy()
    for s in range(1, _BLOCKS_PER_WINDOW):
        blk_flag[s:] |= win_flag[:-s]
    score = blk_flag.sum(axis=1)
    lone = np.zeros(nb, dtype=bool)
    if nb >= 3:
        lone[1:-1] = (score[1:-1] == 1) & (score[:-2] >= AXES_NEEDED) & (score[2:] >= AXES_NEEDED)
    nonwear_block = (score >= AXES_NEEDED) | lone
    return nonwear_block[bi]
