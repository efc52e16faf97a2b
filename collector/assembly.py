"""Cut the decoded sample stream into upload blocks (contract: pure and deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S, SampleBlock

# 3000 samples ≈ 60 s at 50 Hz: small enough to lose little on a crash, large enough that
# the service stores few rows (architecture.md, "Upload blocks").
DEFAULT_MAX_SAMPLES = 3000
# Rates within 0.1 % are the same rate: device clocks drift by ppm, a real rate change by ≥ 2x.
RATE_TOLERANCE = 0.001


@dataclass(frozen=True, slots=True)
class Gap:
    """A discontinuity that started a new block: predicted end of the previous block and jump."""

    start_ns: int
    length_ns: int  # next block's t0 minus the predicted end (negative = overlap)


class BlockAssembler:
    """Merge consecutive frame blocks into upload blocks of at most `max_samples` samples.

    A block continues while the next block starts within half a sample period of the
    predicted end (t0 + n·period) at the same rate (±0.1 %); the merged block keeps its
    first t0 and rate. Cuts at `max_samples` are exact and continue the same time grid, so
    block boundaries depend only on the sample stream, never on how it was chunked.
    """

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        self.max_samples = max_samples
        self._t0: int | None = None  # t0 of the open block (None: nothing open)
        self._fs = 0.0
        self._parts: list[NDArray[np.floating]] = []
        self._n = 0
        self.gaps: list[Gap] = []
        self.n_rate_changes = 0
        self.n_overlap_samples_dropped = 0

    @property
    def n_gaps(self) -> int:
        """Number of time discontinuities that started a new block."""
        return len(self.gaps)

    def _end_ns(self) -> int:
        assert self._t0 is not None
        return self._t0 + round(self._n * (NS_PER_S / self._fs))

    def _emit(self) -> list[SampleBlock]:
        if not self._n:
            return []
        assert self._t0 is not None
        accel = self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts)
        block = SampleBlock(t0_ns=self._t0, fs_hz=self._fs, accel_g=accel)
        self._parts, self._n = [], 0
        return [block]

    def push(self, block: SampleBlock) -> list[SampleBlock]:
        """Add one decoded block; return the upload blocks it completed."""
        out: list[SampleBlock] = []
        accel, t0 = block.accel_g, block.t0_ns
        if not len(accel):
            return out
        if self._t0 is not None:
            period = NS_PER_S / self._fs
            end = self._end_ns()
            same_rate = abs(block.fs_hz - self._fs) <= RATE_TOLERANCE * self._fs
            if same_rate and t0 - end < -period / 2:
                # Samples before the open block's end were already taken: drop them.
                times = block.times_ns()
                keep = times >= end - period / 2
                n_drop = int(len(times) - keep.sum())
                self.n_overlap_samples_dropped += n_drop
                if n_drop == len(times):
                    return out
                accel, t0 = accel[n_drop:], int(times[n_drop])
            if not (same_rate and abs(t0 - end) <= period / 2):
                out += self._emit()
                if same_rate or abs(t0 - end) > period / 2:
                    self.gaps.append(Gap(end, t0 - end))
                else:
                    self.n_rate_changes += 1
                self._t0 = None
        if self._t0 is None:
            self._t0, self._fs, self._parts, self._n = t0, block.fs_hz, [], 0
        while len(accel):
            take = min(self.max_samples - self._n, len(accel))
            self._parts.append(accel[:take])
            self._n += take
            accel = accel[take:]
            if self._n == self.max_samples:
                next_t0 = self._end_ns()
                out += self._emit()
                self._t0 = next_t0  # the cut continues the same grid
        return out

    def flush(self) -> list[SampleBlock]:
        """Return the open block (if any) and forget it."""
        out = self._emit()
        self._t0 = None
        return out


def count_samples(blocks: list[SampleBlock]) -> int:
    """Total samples in `blocks`."""
    return sum(b.n_samples for b in blocks)


__all__ = ["DEFAULT_MAX_SAMPLES", "BlockAssembler", "Gap", "count_samples"]
