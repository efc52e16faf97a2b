"""Core sample types shared by the collector, the service and the analysis (contract).

A `SampleBlock` is a run of uniformly spaced samples from one sensor with no gap
inside; a gap, a rate change or a reconnect starts a new block. A `Recording` holds
the blocks of one wear period in time order and can lay them onto one uniform grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, eq=False)
class SampleBlock:
    """Uniformly spaced tri-axial acceleration without a gap inside.

    Attributes
    ----------
    t0_ns : int
        UTC time of the first sample in nanoseconds since 1970-01-01.
    fs_hz : float
        Sampling rate in Hz.
    accel_g : ndarray of float, shape (n_samples, 3)
        Acceleration in g, device axes (float32 or float64).
    """

    t0_ns: int
    fs_hz: float
    accel_g: NDArray[np.floating[Any]]

    def __post_init__(self) -> None:
        accel = self.accel_g
        if not isinstance(accel, np.ndarray) or accel.ndim != 2 or accel.shape[1] != 3:
            shape = getattr(accel, "shape", None)
            raise ValueError(f"accel_g must have shape (n_samples, 3), got {shape}")
        if accel.dtype not in (np.float32, np.float64):
            raise ValueError(f"accel_g must be float32 or float64, got {accel.dtype}")
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise ValueError(f"fs_hz must be a positive finite number, got {self.fs_hz!r}")
        object.__setattr__(self, "t0_ns", int(self.t0_ns))
        object.__setattr__(self, "fs_hz", float(self.fs_hz))

    @property
    def n_samples(self) -> int:
        """Number of samples in the block."""
        return int(self.accel_g.shape[0])

    @property
    def period_ns(self) -> float:
        """Sample period in nanoseconds (not rounded)."""
        return NS_PER_S / self.fs_hz

    @property
    def end_ns(self) -> int:
        """UTC ns one sample period after the last sample (exclusive end)."""
        return self.t0_ns + round(self.n_samples * self.period_ns)

    def times_ns(self) -> NDArray[np.int64]:
        """UTC time of every sample in ns, shape (n_samples,)."""
        offsets = np.rint(np.arange(self.n_samples, dtype=np.float64) * self.period_ns)
        return self.t0_ns + offsets.astype(np.int64)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBlock):
            return NotImplemented
        return (
            self.t0_ns == other.t0_ns
            and self.fs_hz == other.fs_hz
            and self.accel_g.shape == other.accel_g.shape
            and bool(np.array_equal(self.accel_g, other.accel_g, equal_nan=True))
        )

    def __repr__(self) -> str:
        return f"SampleBlock(t0_ns={self.t0_ns}, fs_hz={self.fs_hz}, n_samples={self.n_samples})"


@dataclass(frozen=True, slots=True)
class UniformGrid:
    """Samples of a recording laid on one uniform time grid.

    Attributes
    ----------
    t0_ns : int
        UTC ns of grid index 0.
    fs_hz : float
        Grid rate in Hz.
    accel_g : ndarray of float64, shape (n, 3)
        Acceleration in g; NaN where no sample was recorded.
    mask : ndarray of bool, shape (n,)
        True where a sample was recorded.
    """

    t0_ns: int
    fs_hz: float
    accel_g: NDArray[np.float64]
    mask: NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Recording:
    """Blocks of one wear period in time order, with device metadata."""

    blocks: tuple[SampleBlock, ...]
    device: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, blocks: Iterable[SampleBlock], device: Mapping[str, Any] | None = None):
        ordered = tuple(sorted(blocks, key=lambda b: b.t0_ns))
        object.__setattr__(self, "blocks", ordered)
        object.__setattr__(self, "device", dict(device or {}))

    @property
    def n_samples(self) -> int:
        """Total number of samples over all blocks."""
        return sum(b.n_samples for b in self.blocks)

    @property
    def fs_hz(self) -> float:
        """Rate of the grid: the rate that covers most samples."""
        if not self.blocks:
            raise ValueError("recording has no blocks")
        weights: dict[float, int] = {}
        for b in self.blocks:
            weights[b.fs_hz] = weights.get(b.fs_hz, 0) + b.n_samples
        return max(weights.items(), key=lambda kv: kv[1])[0]

    def to_uniform(self, fs_hz: float | None = None) -> UniformGrid:
        """Lay every sample on one grid at `fs_hz` (default `self.fs_hz`), NaN in gaps.

        Each sample goes to the grid point nearest its own time; where two samples fall
        on one point the later one wins. Blocks at another rate are placed sample by
        sample, not resampled (resampling is analysis work, not a data-model concern).
        """
        if not self.blocks:
            raise ValueError("recording has no blocks")
        fs = float(fs_hz) if fs_hz is not None else self.fs_hz
        period_ns = NS_PER_S / fs
        t0 = self.blocks[0].t0_ns
        last = max(b.times_ns()[-1] for b in self.blocks if b.n_samples)
        n = int(round((last - t0) / period_ns)) + 1
        accel = np.full((n, 3), np.nan, dtype=np.float64)
        mask = np.zeros(n, dtype=bool)
        for b in self.blocks:
            if not b.n_samples:
                continue
            idx = np.rint((b.times_ns() - t0) / period_ns).astype(np.int64)
            accel[idx] = b.accel_g
            mask[idx] = True
        return UniformGrid(t0_ns=t0, fs_hz=fs, accel_g=accel, mask=mask)


def concatenate(blocks: Sequence[SampleBlock]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Sample times (UTC ns, shape (n,)) and acceleration (g, shape (n, 3)) of blocks in order."""
    if not blocks:
        return np.empty(0, dtype=np.int64), np.empty((0, 3), dtype=np.float64)
    times = np.concatenate([b.times_ns() for b in blocks])
    accel = np.concatenate([b.accel_g.astype(np.float64, copy=False) for b in blocks])
    return times, accel
