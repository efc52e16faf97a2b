"""Epoch table: per-epoch aggregates of raw samples (re-exported by `analysis.pipeline`).

Epochs are aligned to multiples of ``epoch_s`` in UTC: a sample at UTC time ``t_ns``
belongs to epoch ``floor(t_ns / epoch_ns)``. Only epochs that contain samples appear.

Determinism contract (docs/architecture.md, "Analysis pipeline"): every value of an
epoch depends only on that epoch's samples in time order. Sums are accumulated with
`numpy.bincount`, which adds the samples of each epoch one after the other, so the
result is bit-identical whether the table is computed from a whole recording or only
from the blocks that overlap some epochs. Minima and maxima are exact in any order.

Memory: blocks that follow one another in time (the normal case) are aggregated chunk by
chunk by `analysis.streaming.EpochAccumulator` (same sums in the same order, so the same
bits), never as an (n, 3) float64 copy of the input; only overlapping blocks, which must be
sorted sample by sample, are concatenated in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.samples import NS_PER_S, SampleBlock

__all__ = ["ROW_KEYS", "EpochTable", "epoch_ns_of", "epoch_table"]

_AXES = ("x", "y", "z")
#: Keys of `EpochTable.to_rows` (the service stores them as float64/int64 columns).
ROW_KEYS: tuple[str, ...] = (
    "start_ns",
    "n_samples",
    "covered_s",
    "enmo_mg",
    "mad_mg",
    *(f"sum_{a}_g" for a in _AXES),
    *(f"sumsq_{a}_g2" for a in _AXES),
    *(f"min_{a}_g" for a in _AXES),
    *(f"max_{a}_g" for a in _AXES),
)
_VEC = ("covered_s", "enmo_mg", "mad_mg")
_MAT = (("sum_g", "sum_{}_g"), ("sumsq_g2", "sumsq_{}_g2"), ("min_g", "min_{}_g"), ("max_g", "max_{}_g"))


def epoch_ns_of(epoch_s: float) -> int:
    """Epoch length in integer ns.

    Raises
    ------
    ValueError
        If `epoch_s` is not positive and finite or not a whole number of ns.
    """
    if not isinstance(epoch_s, int | float) or not np.isfinite(epoch_s) or epoch_s <= 0:
        raise ValueError(f"epoch_s must be a positive finite number of seconds, got {epoch_s!r}")
    epoch_ns = round(epoch_s * NS_PER_S)
    if epoch_ns < 1 or abs(epoch_ns - epoch_s * NS_PER_S) > 1e-3:
        raise ValueError(f"epoch_s must be a whole number of nanoseconds, got {epoch_s!r}")
    return int(epoch_ns)


def _frozen(a: Any, dtype: Any, shape: tuple[int, ...], name: str) -> NDArray[Any]:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class EpochTable:
    """Per-epoch aggregates of acceleration (contract, docs/architecture.md).

    Attributes
    ----------
    epoch_s : float
        Epoch length in s; epochs start at UTC multiples of it.
    start_ns : ndarray of int64, shape (n,)
        UTC ns of each epoch start, strictly increasing.
    n_samples : ndarray of int64, shape (n,)
        Number of samples in each epoch (≥ 1).
    covered_s : ndarray of float64, shape (n,)
        Σ of the sample periods (1 / fs_hz of each sample's block) in s.
    enmo_mg, mad_mg : ndarray of float64, shape (n,)
        Mean ENMO and MAD in mg (methods.md §1.2, §1.3).
    sum_g : ndarray of float64, shape (n, 3)
        Σ acceleration per axis in g.
    sumsq_g2 : ndarray of float64, shape (n, 3)
        Σ squared acceleration per axis in g².
    min_g, max_g : ndarray of float64, shape (n, 3)
        Minimum and maximum per axis in g.

    Arrays are read-only copies. Equality compares every array exactly.
    """

    epoch_s: float
    start_ns: NDArray[np.int64]
    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    enmo_mg: NDArray[np.float64]
    mad_mg: NDArray[np.float64]
    sum_g: NDArray[np.float64]
    sumsq_g2: NDArray[np.float64]
    min_g: NDArray[np.float64]
    max_g: NDArray[np.float64]

    def __post_init__(self) -> None:
        epoch_ns_of(self.epoch_s)
        object.__setattr__(self, "epoch_s", float(self.epoch_s))
        start = np.array(self.start_ns, dtype=np.int64, copy=True)
        if start.ndim != 1:
            raise ValueError(f"start_ns must be 1-D, got shape {start.shape}")
        if start.size > 1 and not bool(np.all(np.diff(start) > 0)):
            raise ValueError("start_ns must be strictly increasing (sorted, no duplicate epochs)")
        start.setflags(write=False)
        object.__setattr__(self, "start_ns", start)
        n = start.size
        object.__setattr__(self, "n_samples", _frozen(self.n_samples, np.int64, (n,), "n_samples"))
        for name in _VEC:
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64, (n,), name))
        for name, _ in _MAT:
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64, (n, 3), name))

    def __len__(self) -> int:
        return int(self.start_ns.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpochTable):
            return NotImplemented
        return self.epoch_s == other.epoch_s and all(
            np.array_equal(getattr(self, f), getattr(other, f), equal_nan=True)
            for f in ("start_ns", "n_samples", *_VEC, *(m for m, _ in _MAT))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EpochTable(epoch_s={self.epoch_s}, n_epochs={len(self)})"

    @classmethod
    def empty(cls, epoch_s: float) -> EpochTable:
        """A table with no epochs."""
        z1 = np.empty(0, dtype=np.float64)
        z3 = np.empty((0, 3), dtype=np.float64)
        return cls(epoch_s, np.empty(0, np.int64), np.empty(0, np.int64), z1, z1, z1, z3, z3, z3, z3)

    def _take(self, index: NDArray[Any]) -> EpochTable:
        return EpochTable(
            self.epoch_s,
            self.start_ns[index],
            self.n_samples[index],
            *(getattr(self, name)[index] for name in _VEC),
            *(getattr(self, name)[index] for name, _ in _MAT),
        )

    @classmethod
    def concat(cls, tables: Sequence[EpochTable]) -> EpochTable:
        """Join tables of equal ``epoch_s`` into one, sorted by epoch start.

        Raises
        ------
        ValueError
            If `tables` is empty, epoch lengths differ, or an epoch start occurs twice.
        """
        tables = list(tables)
        if not tables:
            raise ValueError("tables must contain at least one EpochTable, got none")
        epoch_s = tables[0].epoch_s
        for t in tables:
            if t.epoch_s != epoch_s:
                raise ValueError(f"tables must share epoch_s, got {epoch_s!r} and {t.epoch_s!r}")
        start = np.concatenate([t.start_ns for t in tables])
        order = np.argsort(start, kind="stable")
        dup = np.diff(start[order]) == 0
        if dup.any():
            first = int(start[order][1:][dup][0])
            raise ValueError(f"tables must not contain duplicate epochs, got start_ns={first} twice")
        parts = {
            name: np.concatenate([getattr(t, name) for t in tables])[order]
            for name in ("n_samples", *_VEC, *(m for m, _ in _MAT))
        }
        return cls(epoch_s=epoch_s, start_ns=start[order], **parts)

    def select(self, start_ns_from: int, start_ns_to: int) -> EpochTable:
        """Epochs with ``start_ns_from <= start_ns < start_ns_to`` (UTC ns, half-open)."""
        lo = int(np.searchsorted(self.start_ns, start_ns_from, side="left"))
        hi = int(np.searchsorted(self.start_ns, start_ns_to, side="left"))
        return self._take(np.arange(lo, max(lo, hi)))

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per epoch with the keys `ROW_KEYS` (Python int/float, float64-exact)."""
        cols: dict[str, list[Any]] = {
            "start_ns": self.start_ns.tolist(),
            "n_samples": self.n_samples.tolist(),
        }
        for name in _VEC:
            cols[name] = getattr(self, name).tolist()
        for name, pattern in _MAT:
            mat = getattr(self, name)
            for j, axis in enumerate(_AXES):
                cols[pattern.format(axis)] = mat[:, j].tolist()
        return [dict(zip(ROW_KEYS, vals, strict=True)) for vals in zip(*(cols[k] for k in ROW_KEYS), strict=True)]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], *, epoch_s: float) -> EpochTable:
        """Rebuild a table from `to_rows` output (any order; sorted by ``start_ns``).

        Raises
        ------
        ValueError
            If a row lacks a key of `ROW_KEYS` or an epoch start occurs twice.
        """
        rows = list(rows)
        if not rows:
            return cls.empty(epoch_s)
        for i, row in enumerate(rows):
            missing = [k for k in ROW_KEYS if k not in row]
            if missing:
                raise ValueError(f"rows[{i}] lacks keys {missing}")
        start = np.array([r["start_ns"] for r in rows], dtype=np.int64)
        order = np.argsort(start, kind="stable")
        if np.any(np.diff(start[order]) == 0):
            raise ValueError("rows must not contain duplicate start_ns")

        def col(key: str, dtype: Any) -> NDArray[Any]:
            return np.array([r[key] for r in rows], dtype=dtype)[order]

        mats = {
            name: np.stack([col(pattern.format(a), np.float64) for a in _AXES], axis=1)
            for name, pattern in _MAT
        }
        return cls(
            epoch_s=epoch_s,
            start_ns=start[order],
            n_samples=col("n_samples", np.int64),
            **{name: col(name, np.float64) for name in _VEC},
            **mats,
        )


def epoch_table(blocks: Sequence[SampleBlock], *, epoch_s: float = 5.0) -> EpochTable:
    """Aggregate samples into UTC-aligned epochs.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        Sample blocks in any order; sample times come from ``block.times_ns()``.
        Blocks should not overlap in time; samples with equal times are taken in
        block start order.
    epoch_s : float, optional
        Epoch length in s. Epoch k covers UTC ns [k·epoch_ns, (k+1)·epoch_ns).
        Default 5.0 (GGIR short epoch, methods.md §1.1, §1.11).

    Returns
    -------
    EpochTable
        One row per epoch that contains at least one sample.

    Raises
    ------
    ValueError
        If `epoch_s` is invalid or a block contains NaN or infinite values.

    Notes
    -----
    Each epoch's values depend only on its own samples in time order (sequential
    summation by `numpy.bincount`), so a table computed from a subset of blocks equals,
    bit for bit, the same epochs of the table computed from all blocks, provided the
    subset holds every block with a sample in those epochs. Memory is bounded by a chunk
    (`analysis.streaming.CHUNK_SAMPLES`) plus the table unless blocks overlap in time.
    """
    from analysis.epoch_kernels import aggregate_sorted
    from analysis.streaming import EpochAccumulator, NonFiniteError

    epoch_ns = epoch_ns_of(epoch_s)
    blocks = [b for b in sorted(blocks, key=lambda b: b.t0_ns) if b.n_samples]
    if not blocks:
        return EpochTable.empty(epoch_s)
    last_ns = [b.t0_ns + round((b.n_samples - 1) * b.period_ns) for b in blocks]
    if all(blocks[i + 1].t0_ns >= last_ns[i] for i in range(len(blocks) - 1)):
        # Blocks follow one another: aggregate chunk by chunk (bounded memory, no
        # (n, 3) float64 copy of the input); numbers are those of the path below.
        acc = EpochAccumulator(epoch_s=epoch_s)
        tables = []
        for i, b in enumerate(blocks):
            try:
                tables.append(acc.feed(b))
            except NonFiniteError:
                raise ValueError(f"blocks must hold finite acceleration, block {i} ({b!r}) has NaN or inf") from None
        tables.append(acc.finish())
        return EpochTable.concat([t for t in tables if len(t)] or tables[:1])
    # Overlapping blocks: sort all samples by time (stable: block start order on ties).
    for i, b in enumerate(blocks):
        if not np.isfinite(b.accel_g).all():
            raise ValueError(f"blocks must hold finite acceleration, block {i} ({b!r}) has NaN or inf")
    times = np.concatenate([b.times_ns() for b in blocks])
    accel = np.concatenate([b.accel_g.astype(np.float64, copy=False) for b in blocks])
    period_ns = np.concatenate([np.full(b.n_samples, b.period_ns) for b in blocks])
    order = np.argsort(times, kind="stable")
    return EpochTable(epoch_s, **aggregate_sorted(times[order], accel[order], period_ns[order], epoch_ns))
