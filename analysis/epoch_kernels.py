"""Epoch aggregation kernels behind `analysis.epochs.epoch_table` and `analysis.streaming`.

Both give the same numbers bit for bit (docs/analysis.md, "Streaming"):

* `aggregate_sorted` — any epochs (uneven lengths, several blocks in one epoch):
  `numpy.bincount` over the samples, as `epoch_table` has always done; each epoch's sums
  are added sample after sample in time order;
* `aggregate_even` — k whole consecutive epochs of L samples from one block (the bulk of any
  uniform recording): the chunk is laid out as (L, 3, k) and reduced along the first axis,
  which NumPy does row after row, i.e. the same sequential sum per epoch, at a few ns per
  sample instead of ~10 per `bincount` pass.

Definitions: methods.md §1.1–§1.3 (EN, ENMO, MAD).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.metrics import (
    GRAVITY_G,
    MG_PER_G,
    enmo_mad_by_epoch_g,
    epoch_means,
    vector_magnitude_g,
)
from analysis.samples import NS_PER_S

__all__ = ["Parts", "aggregate_even", "aggregate_sorted"]

#: Fields of an `EpochTable` (without ``epoch_s``) as a kernel returns them.
Parts = dict[str, NDArray[Any]]


def aggregate_sorted(
    times_ns: NDArray[np.int64],
    accel_g: NDArray[Any],
    period_ns: NDArray[np.float64],
    epoch_ns: int,
    sub: list[Parts] | None = None,
    sub_ns: int = 0,
) -> Parts:
    """Aggregates of whole epochs from samples in time order (the `bincount` kernel).

    Parameters
    ----------
    times_ns : ndarray of int64, shape (n,)
        UTC ns of each sample, non-decreasing; n ≥ 1.
    accel_g : ndarray of float, shape (n, 3)
        Acceleration in g.
    period_ns : ndarray of float64, shape (n,)
        Sample period of each sample's block in ns.
    epoch_ns : int
        Epoch length in ns.
    sub, sub_ns : list of dict, int, optional
        When `sub` is given, ENMO per sub-epoch of `sub_ns` ns (``start_ns``,
        ``n_samples``, ``covered_s``, ``enmo_mg``, as ``epoch_table(…, epoch_s=sub_ns/1e9)``)
        is appended to it.

    Returns
    -------
    dict of str to ndarray
        The `EpochTable` fields (without ``epoch_s``) of every epoch with samples.
    """
    accel = np.asarray(accel_g, dtype=np.float64)
    epoch_no = np.floor_divide(times_ns, epoch_ns)
    is_first = np.empty(times_ns.size, dtype=bool)
    is_first[0] = True
    np.not_equal(epoch_no[1:], epoch_no[:-1], out=is_first[1:])
    first = np.flatnonzero(is_first)
    group = np.cumsum(is_first) - 1
    n_epochs = first.size
    n_samples = np.bincount(group, minlength=n_epochs).astype(np.int64)
    # Integer-valued periods (e.g. 10 000 000 ns at 100 Hz) sum exactly.
    covered_s = np.bincount(group, weights=period_ns, minlength=n_epochs) / NS_PER_S
    sum_g = np.empty((n_epochs, 3))
    sumsq_g2 = np.empty((n_epochs, 3))
    for j in range(3):
        col = accel[:, j]
        sum_g[:, j] = np.bincount(group, weights=col, minlength=n_epochs)
        sumsq_g2[:, j] = np.bincount(group, weights=col * col, minlength=n_epochs)
    # min/max are exact in any grouping, so reduceat is safe here.
    min_g = np.minimum.reduceat(accel, first, axis=0)
    max_g = np.maximum.reduceat(accel, first, axis=0)
    en = vector_magnitude_g(accel)
    enmo, mad = enmo_mad_by_epoch_g(en, group, n_epochs)
    if sub is not None:
        sub_no = np.floor_divide(times_ns, sub_ns)
        np.not_equal(sub_no[1:], sub_no[:-1], out=is_first[1:])
        sub_group = np.cumsum(is_first) - 1
        n_sub = int(sub_group[-1]) + 1
        sub_enmo, sub_n = epoch_means(np.maximum(en - GRAVITY_G, 0.0), sub_group, n_sub)
        sub.append(
            {
                "start_ns": sub_no[is_first] * sub_ns,
                "n_samples": sub_n,
                "covered_s": np.bincount(sub_group, weights=period_ns, minlength=n_sub) / NS_PER_S,
                "enmo_mg": sub_enmo * MG_PER_G,
            }
        )
    return {
        "start_ns": epoch_no[first] * epoch_ns,
        "n_samples": n_samples,
        "covered_s": covered_s,
        "enmo_mg": enmo * MG_PER_G,
        "mad_mg": mad * MG_PER_G,
        "sum_g": sum_g,
        "sumsq_g2": sumsq_g2,
        "min_g": min_g,
        "max_g": max_g,
    }


@lru_cache(maxsize=64)
def _covered_s(period_ns: float, per_epoch: int) -> float:
    # Σ of per_epoch equal periods added one after the other, as bincount adds them.
    return float(np.add.accumulate(np.full(per_epoch, period_ns))[-1] / NS_PER_S)


def aggregate_even(
    accel_g: NDArray[Any],
    per_epoch: int,
    period_ns: float,
    first_start_ns: int,
    epoch_ns: int,
    sub: list[Parts] | None = None,
    sub_starts: NDArray[np.intp] | None = None,
    sub_offsets_ns: NDArray[np.int64] | None = None,
) -> Parts:
    """Aggregates of k whole consecutive epochs of `per_epoch` samples from one block.

    ``accel_g`` has shape (k·per_epoch, 3); epoch i starts at ``first_start_ns + i·epoch_ns``.
    With `sub`, every epoch splits into sub-epochs at sample offsets `sub_starts`
    (starting with 0) that begin `sub_offsets_ns` after the epoch start; their ENMO is
    appended to `sub` in time order.
    """
    k = accel_g.shape[0] // per_epoch
    # (L, 3, k): reducing over the first axis adds row after row, i.e. each epoch's
    # samples in time order starting from the first — bincount's order (which starts from
    # +0.0, hence the ``+ 0.0`` below: it only turns a sum of −0.0 terms into +0.0).
    lay = np.empty((per_epoch, 3, k))
    lay[...] = accel_g.reshape(k, per_epoch, 3).transpose(1, 2, 0)
    sum_g = np.add.reduce(lay, axis=0) + 0.0
    # min/max with the very call `aggregate_sorted` makes: NumPy's SIMD reductions break
    # +0.0/−0.0 ties in an implementation-defined way, and this keeps even the sign of a
    # zero minimum equal to the bincount kernel's.
    a64 = np.asarray(accel_g, dtype=np.float64)
    first = np.arange(0, k * per_epoch, per_epoch)
    min_g = np.minimum.reduceat(a64, first, axis=0)
    max_g = np.maximum.reduceat(a64, first, axis=0)
    del a64
    sq = lay * lay  # per axis x*x, as bincount's weights col*col
    sumsq_g2 = np.add.reduce(sq, axis=0) + 0.0
    en = sq[:, 0]
    en += sq[:, 1]
    en += sq[:, 2]  # (x*x + y*y) + z*z, as vector_magnitude_g
    del sq, lay
    np.sqrt(en, out=en)
    mean_en = (np.add.reduce(en, axis=0) + 0.0) / per_epoch
    enmo = np.maximum(en - GRAVITY_G, 0.0)
    enmo_g = (np.add.reduce(enmo, axis=0) + 0.0) / per_epoch
    if sub is not None:
        assert sub_starts is not None and sub_offsets_ns is not None
        ends = np.append(sub_starts[1:], per_epoch)
        lens = ends - sub_starts
        sums = np.stack(
            [np.add.reduce(enmo[a:b], axis=0) + 0.0 for a, b in zip(sub_starts, ends, strict=True)]
        )
        n_sub = np.broadcast_to(lens[:, None], sums.shape)
        starts = (
            first_start_ns
            + np.arange(k, dtype=np.int64)[None, :] * epoch_ns
            + sub_offsets_ns[:, None]
        )
        covered = np.array([_covered_s(period_ns, int(n)) for n in lens])
        sub.append(
            {  # (m, k) → epoch-major, i.e. time order
                "start_ns": starts.T.ravel(),
                "n_samples": n_sub.T.ravel().astype(np.int64),
                "covered_s": np.broadcast_to(covered[:, None], sums.shape).T.ravel(),
                "enmo_mg": (sums / n_sub).T.ravel() * MG_PER_G,
            }
        )
    np.subtract(en, mean_en, out=enmo)
    np.abs(enmo, out=enmo)
    mad_g = (np.add.reduce(enmo, axis=0) + 0.0) / per_epoch
    return {
        "start_ns": first_start_ns + np.arange(k, dtype=np.int64) * epoch_ns,
        "n_samples": np.full(k, per_epoch, dtype=np.int64),
        "covered_s": np.full(k, _covered_s(period_ns, per_epoch)),
        "enmo_mg": enmo_g * MG_PER_G,
        "mad_mg": mad_g * MG_PER_G,
        "sum_g": sum_g.T,
        "sumsq_g2": sumsq_g2.T,
        "min_g": min_g,
        "max_g": max_g,
    }
