"""Incremental epoch table: feed samples in time order, get finished epochs out.

`EpochAccumulator` aggregates acceleration chunk by chunk with carried state (the
samples of the epoch still open at a chunk edge, at most one epoch long), so a 30-day
memory-mapped file or a stream of uploaded blocks is analysed in bounded memory. The
concatenation of everything it returns equals ``epoch_table`` of the whole input **bit
for bit** (tolerance 0): every epoch is aggregated in one piece, its sums added sample
after sample in time order exactly as `numpy.bincount` adds them (docs/architecture.md,
"Analysis pipeline"; methods.md §1.1–§1.3).

The aggregation itself is done by the two kernels of `analysis.epoch_kernels`, which
give identical numbers: `bincount` for irregular pieces, a first-axis reduction for runs of
whole equal epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.epoch_kernels import Parts, aggregate_even, aggregate_sorted
from analysis.epochs import EpochTable, epoch_ns_of
from analysis.read_npy import release_pages
from analysis.samples import SampleBlock
from analysis.seconds import SecondEnmo

__all__ = ["CHUNK_SAMPLES", "EpochAccumulator", "NonFiniteError", "stream_block"]

#: Samples aggregated per step: ~40 MB of float64 temporaries, so peak memory does not
#: grow with the file, while NumPy calls stay long enough to run at memory speed.
CHUNK_SAMPLES = 1 << 19
#: Fewer epochs than this per run go through `bincount`: with very few columns NumPy may
#: turn the first-axis reduction into a pairwise one, which would change the last bits.
_MIN_EVEN_EPOCHS = 8
_FIELDS = (
    "start_ns",
    "n_samples",
    "covered_s",
    "enmo_mg",
    "mad_mg",
    "sum_g",
    "sumsq_g2",
    "min_g",
    "max_g",
)


class NonFiniteError(ValueError):
    """A fed sample holds NaN or an infinite value."""


def _table(parts: list[Parts], epoch_s: float) -> EpochTable:
    if not parts:
        return EpochTable.empty(epoch_s)
    if len(parts) == 1:
        return EpochTable(epoch_s, **parts[0])
    return EpochTable(epoch_s, **{f: np.concatenate([p[f] for p in parts]) for f in _FIELDS})


class EpochAccumulator:
    """Epoch table built incrementally from samples fed in time order.

    Parameters
    ----------
    epoch_s : float, optional
        Epoch length in s (UTC-aligned as in `analysis.epochs.epoch_table`). Default 5.0
        (GGIR short epoch, methods.md §1.1, §1.11).
    chunk_samples : int, optional
        Samples aggregated per step; bounds the temporaries (~80 B per sample).
    sub_epoch_s : float, optional
        Also compute ENMO per sub-epoch of this length (a divisor of `epoch_s`, e.g.
        1 s for the 1-s grid of methods.md §1.11) in the same pass; collect them with
        `pop_sub_epochs`. Their values equal ``epoch_table(…, epoch_s=sub_epoch_s)``'s
        ``enmo_mg``, ``n_samples`` and ``covered_s`` exactly.

    Notes
    -----
    `feed` / `feed_array` return the epochs finished by that call; the epoch still open
    at the end of the input is carried (as its raw samples, at most one epoch long) and
    returned by a later call or by `finish`. ``EpochTable.concat`` of all returned
    tables equals ``epoch_table(blocks, epoch_s=epoch_s)`` exactly, for any chunking,
    when the blocks do not overlap in time.

    Examples
    --------
    >>> acc = EpochAccumulator(epoch_s=1.0)
    >>> a = np.tile([[0.0, 0.0, 1.5]], (250, 1))
    >>> len(acc.feed_array(a[:130], t0_ns=0, fs_hz=100.0)), len(acc.feed_array(a[130:], t0_ns=0, fs_hz=100.0, first_index=130))
    (1, 1)
    >>> acc.finish().enmo_mg.tolist()
    [500.0]
    """

    def __init__(
        self,
        *,
        epoch_s: float = 5.0,
        chunk_samples: int = CHUNK_SAMPLES,
        sub_epoch_s: float | None = None,
    ) -> None:
        self.epoch_ns = epoch_ns_of(epoch_s)
        self.epoch_s = float(epoch_s)
        self._sub: list[Parts] | None = None
        self.sub_ns = 0
        if sub_epoch_s is not None:
            self.sub_ns = epoch_ns_of(sub_epoch_s)
            if self.epoch_ns % self.sub_ns:
                raise ValueError(
                    f"sub_epoch_s must divide epoch_s, got {sub_epoch_s!r} and {epoch_s!r}"
                )
            self._sub = []
            self.sub_epoch_s = float(sub_epoch_s)
        if not isinstance(chunk_samples, int) or chunk_samples < 1:
            raise ValueError(f"chunk_samples must be a positive int, got {chunk_samples!r}")
        self.chunk_samples = chunk_samples
        self._last_ns: int | None = None
        self._pend_t: list[NDArray[np.int64]] = []
        self._pend_a: list[NDArray[np.float64]] = []
        self._pend_p: list[NDArray[np.float64]] = []
        self._pend_epoch: int | None = None

    @property
    def pending_samples(self) -> int:
        """Samples of the open epoch carried to the next call."""
        return sum(t.size for t in self._pend_t)

    def pop_sub_epochs(self) -> SecondEnmo:
        """ENMO per sub-epoch finished since the last call (needs ``sub_epoch_s``).

        Raises
        ------
        ValueError
            If the accumulator was made without ``sub_epoch_s``.
        """
        if self._sub is None:
            raise ValueError("sub_epoch_s was not given: this accumulator computes no sub-epochs")
        parts, self._sub = self._sub, []
        if not parts:
            z = np.empty(0)
            return SecondEnmo(np.empty(0, np.int64), np.empty(0, np.int64), z, z, self.sub_epoch_s)
        cat = {
            f: np.concatenate([p[f] for p in parts])
            for f in ("start_ns", "n_samples", "covered_s", "enmo_mg")
        }
        return SecondEnmo(epoch_s=self.sub_epoch_s, **cat)

    def feed(self, block: SampleBlock) -> EpochTable:
        """Add a whole block (its samples follow everything fed so far); finished epochs.

        Raises
        ------
        ValueError
            If the block holds NaN or infinite values or starts before the last sample fed.
        """
        return self.feed_array(block.accel_g, t0_ns=block.t0_ns, fs_hz=block.fs_hz)

    def feed_array(
        self, accel_g: NDArray[Any], *, t0_ns: int, fs_hz: float, first_index: int = 0
    ) -> EpochTable:
        """Add samples ``first_index …`` of a uniform block starting at `t0_ns`; finished epochs.

        Parameters
        ----------
        accel_g : ndarray of float, shape (m, 3)
            Acceleration in g (float32 or float64; may be a memory map, read chunk by chunk).
        t0_ns : int
            UTC ns of sample 0 of the block this array is part of.
        fs_hz : float
            Sampling rate of that block in Hz.
        first_index : int, optional
            Index of ``accel_g[0]`` in that block, so that sample times equal
            ``SampleBlock.times_ns`` of the whole block: ``t0_ns + rint(i·1e9/fs_hz)``.

        Raises
        ------
        ValueError
            Malformed arguments, NaN/inf values, or samples earlier than the last one fed.
        """
        # Validate like SampleBlock does (shape, dtype, rate).
        block = SampleBlock(t0_ns, fs_hz, accel_g)
        if not isinstance(first_index, int | np.integer) or first_index < 0:
            raise ValueError(f"first_index must be a non-negative int, got {first_index!r}")
        parts: list[Parts] = []
        period_ns = block.period_ns
        for c0 in range(0, block.n_samples, self.chunk_samples):
            chunk = block.accel_g[c0 : c0 + self.chunk_samples]
            if not np.isfinite(chunk).all():
                row = c0 + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
                raise NonFiniteError(
                    f"accel_g must be finite, sample {first_index + row} of {block!r} is NaN or inf"
                )
            idx = np.arange(first_index + c0, first_index + c0 + chunk.shape[0], dtype=np.float64)
            times = block.t0_ns + np.rint(idx * period_ns).astype(np.int64)
            self._chunk(times, chunk, period_ns, parts)
            release_pages(chunk)  # a memory-mapped file stays out of the resident set
        return _table(parts, self.epoch_s)

    def finish(self) -> EpochTable:
        """Close the open epoch and return it (the accumulator can keep being fed after)."""
        parts: list[Parts] = []
        self._flush(parts)
        return _table(parts, self.epoch_s)

    def _flush(self, parts: list[Parts]) -> None:
        if self._pend_t:
            t = np.concatenate(self._pend_t)
            a, p = np.concatenate(self._pend_a), np.concatenate(self._pend_p)
            parts.append(aggregate_sorted(t, a, p, self.epoch_ns, self._sub, self.sub_ns))
        self._pend_t, self._pend_a, self._pend_p, self._pend_epoch = [], [], [], None

    def _hold(self, times: NDArray[np.int64], accel: NDArray[Any], period_ns: float) -> None:
        self._pend_t.append(times)
        self._pend_a.append(np.array(accel, dtype=np.float64))
        self._pend_p.append(np.full(times.size, period_ns))
        self._pend_epoch = int(times[0] // self.epoch_ns)

    def _chunk(
        self, times: NDArray[np.int64], accel: NDArray[Any], period_ns: float, parts: list[Parts]
    ) -> None:
        if times.size == 0:
            return
        if self._last_ns is not None and int(times[0]) < self._last_ns:
            raise ValueError(
                f"samples must be fed in time order, got t_ns={int(times[0])} after t_ns={self._last_ns}"
            )
        self._last_ns = int(times[-1])
        epoch_no = times // self.epoch_ns
        bounds = np.flatnonzero(epoch_no[1:] != epoch_no[:-1]) + 1
        last = int(bounds[-1]) if bounds.size else 0  # start of the epoch left open
        first_end = int(bounds[0]) if bounds.size else times.size
        lo = 0
        if self._pend_t:
            if self._pend_epoch == int(epoch_no[0]):
                # The carried epoch continues here: it is finished once this run ends.
                self._hold(times[:first_end], accel[:first_end], period_ns)
                if first_end == times.size:
                    return
                self._flush(parts)
                lo = first_end
            else:
                self._flush(parts)
        if lo < last:
            self._complete(times, accel, period_ns, epoch_no, bounds, lo, last, parts)
        self._hold(times[last:], accel[last:], period_ns)

    def _complete(
        self,
        times: NDArray[np.int64],
        accel: NDArray[Any],
        period_ns: float,
        epoch_no: NDArray[np.int64],
        bounds: NDArray[np.intp],
        lo: int,
        hi: int,
        parts: list[Parts],
    ) -> None:
        """Aggregate the whole epochs in samples [lo, hi) of one chunk of one block."""
        starts = np.concatenate(([lo], bounds[(bounds > lo) & (bounds < hi)]))
        lens = np.diff(np.append(starts, hi))
        per = int(lens[lens.size // 2])
        even = lens == per
        # Only the first and the last epoch may differ (a block edge inside an epoch).
        i0 = 0 if even[0] else 1
        i1 = lens.size if even[-1] else lens.size - 1
        usable = i1 - i0 >= _MIN_EVEN_EPOCHS and bool(even[i0:i1].all())
        # Consecutive epochs only: a gap of a whole epoch inside a block cannot happen,
        # but a rate slower than one sample per epoch would skip epochs.
        if usable:
            span = epoch_no[starts[i1 - 1]] - epoch_no[starts[i0]]
            usable = int(span) == i1 - i0 - 1
        a0, a1 = (
            (int(starts[i0]), int(starts[i1]) if i1 < lens.size else hi) if usable else (lo, lo)
        )
        first_ns = int(epoch_no[a0]) * self.epoch_ns
        sub_starts = sub_offsets = None
        if usable and self._sub is not None:
            sub_starts, sub_offsets = self._sub_pattern(times[a0:a1], per, first_ns)
            usable = sub_starts is not None
        if not usable:
            a0 = a1 = lo
        if a0 > lo:
            p = np.full(a0 - lo, period_ns)
            parts.append(
                aggregate_sorted(
                    times[lo:a0], accel[lo:a0], p, self.epoch_ns, self._sub, self.sub_ns
                )
            )
        if a1 > a0:
            parts.append(
                aggregate_even(
                    accel[a0:a1],
                    per,
                    period_ns,
                    first_ns,
                    self.epoch_ns,
                    self._sub,
                    sub_starts,
                    sub_offsets,
                )
            )
        if a1 < hi:
            p = np.full(hi - a1, period_ns)
            parts.append(
                aggregate_sorted(
                    times[a1:hi], accel[a1:hi], p, self.epoch_ns, self._sub, self.sub_ns
                )
            )

    def _sub_pattern(
        self, times: NDArray[np.int64], per: int, first_ns: int
    ) -> tuple[NDArray[np.intp], NDArray[np.int64]] | tuple[None, None]:
        """Sample offsets and ns offsets of the sub-epochs, if equal in every epoch."""
        k = times.size // per
        sub_start = (times // self.sub_ns) * self.sub_ns
        rel = (
            sub_start.reshape(k, per)
            - (first_ns + np.arange(k, dtype=np.int64) * self.epoch_ns)[:, None]
        )
        if not bool((rel == rel[0]).all()):
            return None, None
        row = rel[0]
        starts = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
        return starts, row[starts]


def stream_block(
    block: SampleBlock,
    *,
    epoch_s: float = 5.0,
    sub_epoch_s: float = 1.0,
    chunk_samples: int = CHUNK_SAMPLES,
) -> tuple[EpochTable, SecondEnmo]:
    """Epoch table and sub-epoch ENMO of one block in a single bounded-memory pass.

    Parameters
    ----------
    block : SampleBlock
        Any length; a memory-mapped ``accel_g`` (`analysis.read_npy.read_npy`) is read
        chunk by chunk and its pages released as it goes.
    epoch_s, sub_epoch_s : float, optional
        Epoch and sub-epoch lengths in s (default 5 s and 1 s, methods.md §1.11).
    chunk_samples : int, optional
        Samples per step.

    Returns
    -------
    epochs : EpochTable
        Equal, bit for bit, to ``epoch_table([block], epoch_s=epoch_s)``.
    sub_epochs : SecondEnmo
        ENMO per sub-epoch, equal bit for bit to the ``start_ns``, ``n_samples``,
        ``covered_s`` and ``enmo_mg`` of ``epoch_table([block], epoch_s=sub_epoch_s)``
        (`analysis.seconds.enmo_by_second` sums in another order: within 1e-9 mg).

    Raises
    ------
    ValueError
        If the block holds NaN or infinite values or the epoch lengths are invalid.
    """
    acc = EpochAccumulator(epoch_s=epoch_s, chunk_samples=chunk_samples, sub_epoch_s=sub_epoch_s)
    tables = [acc.feed(block), acc.finish()]
    return EpochTable.concat([t for t in tables if len(t)] or tables[:1]), acc.pop_sub_epochs()
