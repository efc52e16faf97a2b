"""Resampling of irregular or gappy sample sequences onto a uniform grid; gaps stay gaps.

Samples are split into *segments*: runs with no gap inside. Within a segment every grid
point between two consecutive samples is linearly interpolated between them; a grid point
that is not between two samples of one segment (before the first sample, after the last,
or inside a gap) is NaN and masked. Nothing is ever interpolated across a gap.

* `resample_blocks` takes `SampleBlock`\\ s (each uniform inside, possibly at different
  rates, as the collector uploads them). Consecutive blocks join into one segment when
  the next block's first sample follows the previous block's last sample within
  `max_gap_s` (default 1.5 sample periods of the earlier block, so blocks that an
  uploader cut from one continuous stream are joined and a dropped sample is a gap).
* `resample_irregular` takes sample times and values, e.g. from a device without a
  stable clock; a step between samples longer than `max_gap_s` is a gap.
* `grid_blocks` turns the result back into gap-free blocks (for `analysis.pipeline`).

Linear interpolation does not low-pass: downsampling by a large factor aliases content
above the new Nyquist frequency. Low-pass first when that matters (the ActiGraph counts
resampler has its own anti-aliasing, methods.md §1.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S, SampleBlock, UniformGrid

__all__ = ["DEFAULT_GAP_PERIODS", "grid_blocks", "resample_blocks", "resample_irregular"]

#: Default gap between two blocks: more than 1.5 sample periods, i.e. at least one
#: sample missing (a gap starts a new block, docs/architecture.md "Core types").
DEFAULT_GAP_PERIODS = 1.5


def _check_rate(fs_hz: Any, name: str = "fs_hz") -> float:
    if (
        isinstance(fs_hz, bool)
        or not isinstance(fs_hz, int | float)
        or not np.isfinite(fs_hz)
        or fs_hz <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number of Hz, got {fs_hz!r}")
    return float(fs_hz)


def _interpolate(
    times_ns: NDArray[np.int64],
    accel: NDArray[np.float64],
    segment_end: NDArray[np.bool_],
    fs_hz: float,
    t0_ns: int | None,
) -> UniformGrid:
    """Core: `segment_end[i]` is True if sample i is the last of its segment."""
    period_ns = NS_PER_S / fs_hz
    t0 = int(times_ns[0]) if t0_ns is None else int(t0_ns)
    last = int(times_ns[-1])
    n = int(np.floor((last - t0) / period_ns + 1e-9)) + 1 if last >= t0 else 0
    grid_t = t0 + np.rint(np.arange(max(n, 0), dtype=np.float64) * period_ns).astype(np.int64)
    out = np.full((grid_t.size, 3), np.nan)
    # i: last sample at or before each grid time.
    i = np.searchsorted(times_ns, grid_t, side="right") - 1
    inside = i >= 0
    ic = np.clip(i, 0, times_ns.size - 1)
    exact = inside & (times_ns[ic] == grid_t)
    between = inside & ~exact & (ic < times_ns.size - 1) & ~segment_end[ic]
    out[exact] = accel[ic[exact]]
    k = ic[between]
    dt = (times_ns[k + 1] - times_ns[k]).astype(np.float64)
    w = ((grid_t[between] - times_ns[k]).astype(np.float64) / dt)[:, None]
    out[between] = accel[k] + (accel[k + 1] - accel[k]) * w
    return UniformGrid(t0_ns=t0, fs_hz=fs_hz, accel_g=out, mask=exact | between)


def resample_irregular(
    times_ns: NDArray[np.integer[Any]],
    accel_g: NDArray[np.floating[Any]],
    *,
    fs_hz: float,
    max_gap_s: float,
    t0_ns: int | None = None,
) -> UniformGrid:
    """Lay irregularly timed samples on a uniform grid by linear interpolation.

    Parameters
    ----------
    times_ns : ndarray of int, shape (n,)
        UTC sample times in ns, strictly increasing.
    accel_g : ndarray of float, shape (n, 3)
        Acceleration in g, finite.
    fs_hz : float
        Grid rate in Hz.
    max_gap_s : float
        Longest step between two samples, in s, that is still interpolated; a longer
        step is a gap (grid points inside it are NaN).
    t0_ns : int, optional
        UTC ns of grid point 0; default the first sample time. Grid point k is at
        ``t0_ns + rint(k · 1e9 / fs_hz)`` (as `SampleBlock.times_ns`); the grid ends at
        the last sample.

    Returns
    -------
    UniformGrid
        ``accel_g`` (m, 3) float64 in g with NaN where ``mask`` (m,) is False.

    Raises
    ------
    ValueError
        If shapes disagree, times are not strictly increasing, values are not finite, or
        `fs_hz`/`max_gap_s` is not positive and finite.

    Examples
    --------
    >>> g = resample_irregular(np.array([0, 1_000_000_000, 5_000_000_000]),
    ...                        np.array([[0.0, 0, 1], [1.0, 0, 1], [2.0, 0, 1]]),
    ...                        fs_hz=2.0, max_gap_s=1.5)
    >>> g.accel_g[:, 0].tolist()
    [0.0, 0.5, 1.0, nan, nan, nan, nan, nan, nan, nan, 2.0]
    """
    fs = _check_rate(fs_hz)
    gap_s = _check_rate(max_gap_s, "max_gap_s")
    t = np.asarray(times_ns)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(
            f"times_ns must be a 1-D integer array, got shape {t.shape} dtype {t.dtype}"
        )
    acc = np.asarray(accel_g, dtype=np.float64)
    if acc.shape != (t.size, 3):
        raise ValueError(
            f"accel_g must have shape ({t.size}, 3) to match times_ns, got {acc.shape}"
        )
    if t.size == 0:
        raise ValueError("times_ns must hold at least one sample, got none")
    t = t.astype(np.int64)
    step = np.diff(t)
    if (step <= 0).any():
        at = int(np.flatnonzero(step <= 0)[0]) + 1
        raise ValueError(
            f"times_ns must be strictly increasing, sample {at} is not after sample {at - 1}"
        )
    if not np.isfinite(acc).all():
        raise ValueError("accel_g must be finite (mark gaps by leaving samples out, not with NaN)")
    seg_end = np.append(step > gap_s * NS_PER_S, True)
    return _interpolate(t, acc, seg_end, fs, t0_ns)


def resample_blocks(
    blocks: Sequence[SampleBlock],
    *,
    fs_hz: float,
    t0_ns: int | None = None,
    max_gap_s: float | None = None,
) -> UniformGrid:
    """Lay sample blocks on one uniform grid by linear interpolation within segments.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        Blocks in any order (sorted by start), not overlapping in time; rates may differ.
    fs_hz : float
        Grid rate in Hz.
    t0_ns : int, optional
        UTC ns of grid point 0; default the first sample time.
    max_gap_s : float, optional
        Longest time between one block's last sample and the next block's first sample,
        in s, for the two to be joined (interpolated across). Default 1.5 sample periods
        of the earlier block. Inside a block samples are always contiguous.

    Returns
    -------
    UniformGrid
        ``accel_g`` (m, 3) float64 in g, NaN where ``mask`` is False.

    Raises
    ------
    ValueError
        If there are no samples, blocks overlap, values are not finite, or `fs_hz` /
        `max_gap_s` is invalid.
    """
    fs = _check_rate(fs_hz)
    gap = None if max_gap_s is None else _check_rate(max_gap_s, "max_gap_s")
    ordered = [b for b in sorted(blocks, key=lambda b: b.t0_ns) if b.n_samples]
    if not ordered:
        raise ValueError("blocks must hold at least one sample, got none")
    times, values, ends = [], [], []
    for j, b in enumerate(ordered):
        if not np.isfinite(b.accel_g).all():
            raise ValueError(f"blocks must hold finite acceleration, {b!r} has NaN or inf")
        tb = b.times_ns()
        end = np.zeros(b.n_samples, dtype=bool)
        if j + 1 < len(ordered):
            nxt = ordered[j + 1]
            step_ns = nxt.t0_ns - int(tb[-1])
            if step_ns <= 0:
                raise ValueError(
                    f"blocks must not overlap in time: {nxt!r} starts before {b!r} ends"
                )
            limit_ns = (DEFAULT_GAP_PERIODS * b.period_ns) if gap is None else gap * NS_PER_S
            end[-1] = step_ns > limit_ns
        else:
            end[-1] = True
        times.append(tb)
        values.append(np.asarray(b.accel_g, dtype=np.float64))
        ends.append(end)
    return _interpolate(
        np.concatenate(times), np.concatenate(values), np.concatenate(ends), fs, t0_ns
    )


def grid_blocks(grid: UniformGrid) -> list[SampleBlock]:
    """Split a grid into gap-free `SampleBlock`\\ s (one per run of valid points).

    Parameters
    ----------
    grid : UniformGrid
        E.g. the result of `resample_blocks`.

    Returns
    -------
    list of SampleBlock
        Blocks at ``grid.fs_hz`` holding float64 acceleration in g, in time order.
    """
    mask = np.asarray(grid.mask, dtype=bool)
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    period_ns = NS_PER_S / grid.fs_hz
    return [
        SampleBlock(
            grid.t0_ns + round(a * period_ns),
            grid.fs_hz,
            np.array(grid.accel_g[a:b], dtype=np.float64),
        )
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
