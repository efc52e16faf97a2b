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

    A block continues while the next frame starts within half a sample period of where the
    previous frame ends by its own timing (t0 + n·period), at the same rate (±0.1 %). An
    emitted block starts at its first frame's t0; its rate is fitted through the first and
    the last frame's own start times, so a clock whose rate the decoder re-estimates (or a
    device clock) is followed to the sample and drift never accumulates across blocks.
    Cuts at `max_samples` are exact; a block never starts before the previous one ends.
    Block boundaries depend only on the decoded stream, never on how it was chunked.
    """

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        self.max_samples = max_samples
        self._fs = 0.0  # rate of the open block's first frame (0: nothing open)
        self._parts: list[NDArray[np.floating]] = []
        self._starts: list[tuple[int, int]] = []  # (own t0 ns, samples before it) per part
        self._n = 0
        self._next_own_ns = 0  # where the last frame ends by its own timing
        self._last_end_ns: int | None = None  # exclusive end of the last emitted block
        self.gaps: list[Gap] = []
        self.n_rate_changes = 0
        self.n_overlap_samples_dropped = 0

    @property
    def n_gaps(self) -> int:
        """Number of time discontinuities that started a new block."""
        return len(self.gaps)

    def _fitted_fs(self) -> float:
        """Rate through the first and last part's own start times (first frame's if unusable)."""
        (t_first, _), (t_last, n_before) = self._starts[0], self._starts[-1]
        if n_before > 0 and t_last > t_first:
            fs = n_before * NS_PER_S / (t_last - t_first)
            if abs(fs - self._fs) <= RATE_TOLERANCE * self._fs:
                return fs
        return self._fs

    def _emit(self) -> list[SampleBlock]:
        if not self._n:
            return []
        accel = self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts)
        t0 = self._starts[0][0]
        if self._last_end_ns is not None and t0 < self._last_end_ns:
            t0 = self._last_end_ns  # less than half a period early: never overlap the last block
        block = SampleBlock(t0_ns=t0, fs_hz=self._fitted_fs(), accel_g=accel)
        self._last_end_ns = block.end_ns
        self._parts, self._starts, self._n = [], [], 0
        return [block]

    def _append(self, accel: NDArray[np.floating], own_t0: int) -> None:
        self._parts.append(accel)
        self._starts.append((own_t0, self._n))
        self._n += len(accel)

    def push(self, block: SampleBlock) -> list[SampleBlock]:
        """Add one decoded block; return the upload blocks it completed."""
        out: list[SampleBlock] = []
        accel, t0 = block.accel_g, block.t0_ns
        if not len(accel):
            return out
        period = NS_PER_S / block.fs_hz
        if self._fs:
            expected = self._next_own_ns
            same_rate = abs(block.fs_hz - self._fs) <= RATE_TOLERANCE * self._fs
            if same_rate and t0 - expected < -period / 2:
                # Samples before the previous frame's end were already taken: drop them.
                times = block.times_ns()
                n_drop = int(np.count_nonzero(times < expected - period / 2))
                self.n_overlap_samples_dropped += n_drop
                if n_drop == len(times):
                    return out
                accel, t0 = accel[n_drop:], int(times[n_drop])
            if not (same_rate and abs(t0 - expected) <= period / 2):
                out += self._emit()
                if same_rate or abs(t0 - expected) > period / 2:
                    self.gaps.append(Gap(expected, t0 - expected))
                else:
                    self.n_rate_changes += 1
                self._fs = 0.0
        if not self._fs:
            self._fs = block.fs_hz
        consumed = 0
        while len(accel):
            take = min(self.max_samples - self._n, len(accel))
            self._append(accel[:take], t0 + round(consumed * period))
            consumed += take
            accel = accel[take:]
            if self._n == self.max_samples:
                out += self._emit()
        self._next_own_ns = t0 + round(consumed * period)
        return out

    @property
    def n_open(self) -> int:
        """Samples in the open block (pushed, not yet returned)."""
        return self._n

    def peek(self) -> SampleBlock | None:
        """The open block as `flush` would return it now, without ending it (a crash draft)."""
        if not self._n:
            return None
        accel = np.concatenate(self._parts)  # a copy: later pushes do not change it
        t0 = self._starts[0][0]
        if self._last_end_ns is not None and t0 < self._last_end_ns:
            t0 = self._last_end_ns
        return SampleBlock(t0_ns=t0, fs_hz=self._fitted_fs(), accel_g=accel)

    def flush(self) -> list[SampleBlock]:
        """Return the open block (if any) and forget it."""
        out = self._emit()
        self._fs = 0.0
        return out


def count_samples(blocks: list[SampleBlock]) -> int:
    """Total samples in `blocks`."""
    return sum(b.n_samples for b in blocks)


__all__ = ["DEFAULT_MAX_SAMPLES", "BlockAssembler", "Gap", "count_samples"]
