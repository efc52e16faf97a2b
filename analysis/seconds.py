"""The dense 1-s grid of a recording: ENMO per second, wear, intensity class, active state.

methods.md §1.11: 1-s resolution for active/rest state, rest pauses and bouts. ENMO per
second comes either from ``epoch_table(blocks, epoch_s=1)`` or from the lighter
`enmo_by_second` (ENMO only, block by block, so memory stays bounded by a block; about
10× faster than the full 1-s epoch table and equal to it within 1e-13 mg). Wear and
intensity class of each second are taken from the coarser epoch table the day summaries
use (5 s by default, GGIR's short epoch, §1.11), so session figures agree with
``summarise_days``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from analysis.bouts import active_mask
from analysis.epochs import EpochTable
from analysis.intensity import (
    CUTPOINTS,
    DEFAULT_CUTPOINTS,
    CutPoints,
    classify,
    get_cutpoints,
    personal_peak_mg,
)
from analysis.metrics import GRAVITY_G, MG_PER_G
from analysis.nonwear import detect_nonwear
from analysis.samples import NS_PER_S, SampleBlock

__all__ = [
    "REST_MARGIN_MG",
    "SecondEnmo",
    "SecondGrid",
    "active_threshold_mg",
    "enmo_by_second",
    "grid_personal_peak_mg",
    "second_grid",
]

#: Rest above the rest noise floor that still counts as rest (methods.md §2.3: θ_act =
#: max(population light threshold, P95 of rest ENMO + 10 mg)).
REST_MARGIN_MG = 10.0


_CHUNK_SAMPLES = 1 << 20  # ~25 MB of float64 temporaries per chunk


class SecondValues(Protocol):
    """1-s epochs: an `EpochTable` with ``epoch_s == 1`` or a `SecondEnmo`."""

    @property
    def epoch_s(self) -> float: ...
    @property
    def start_ns(self) -> NDArray[np.int64]: ...
    @property
    def n_samples(self) -> NDArray[np.int64]: ...
    @property
    def covered_s(self) -> NDArray[np.float64]: ...
    @property
    def enmo_mg(self) -> NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True, eq=False)
class SecondEnmo:
    """ENMO per UTC second (only seconds with samples), from `enmo_by_second`.

    Attributes
    ----------
    start_ns : ndarray of int64, shape (n,)
        UTC ns of each second, strictly increasing.
    n_samples : ndarray of int64, shape (n,)
        Samples in each second.
    covered_s : ndarray of float64, shape (n,)
        Σ sample periods in s.
    enmo_mg : ndarray of float64, shape (n,)
        Mean ENMO in mg.
    """

    start_ns: NDArray[np.int64]
    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    enmo_mg: NDArray[np.float64]
    epoch_s: float = 1.0

    def __len__(self) -> int:
        return int(self.start_ns.size)


def enmo_by_second(blocks: Sequence[SampleBlock]) -> SecondEnmo:
    """Mean ENMO per UTC second, block by block (methods.md §1.2).

    Parameters
    ----------
    blocks : sequence of SampleBlock
        Sample blocks (any order; they should not overlap in time).

    Returns
    -------
    SecondEnmo
        Seconds that hold samples; the values equal ``epoch_table(blocks, epoch_s=1)``'s
        up to float summation order (< 1e-12 mg).

    Raises
    ------
    ValueError
        If a block holds NaN or infinite values.
    """
    secs, counts, sums, covs = [], [], [], []
    for i, b in enumerate(blocks):
        # Chunks bound the float64 temporaries for week-long (memory-mapped) blocks; the
        # sample times are those of `SampleBlock.times_ns`, chunk by chunk.
        for c0 in range(0, b.n_samples, _CHUNK_SAMPLES):
            c1 = min(b.n_samples, c0 + _CHUNK_SAMPLES)
            x = np.asarray(b.accel_g[c0:c1], dtype=np.float64)
            if not np.isfinite(x).all():
                raise ValueError(f"blocks must hold finite acceleration, block {i} ({b!r}) has NaN or inf")
            offsets = np.rint(np.arange(c0, c1, dtype=np.float64) * b.period_ns).astype(np.int64)
            sec = (b.t0_ns + offsets) // NS_PER_S
            enmo = np.sqrt(np.einsum("ij,ij->i", x, x)) - GRAVITY_G
            np.maximum(enmo, 0.0, out=enmo)
            first = np.flatnonzero(np.concatenate(([True], sec[1:] != sec[:-1])))
            cnt = np.diff(np.append(first, sec.size))
            secs.append(sec[first])
            counts.append(cnt)
            sums.append(np.add.reduceat(enmo, first))
            covs.append(cnt * b.period_ns)
    if not secs:
        z = np.empty(0)
        return SecondEnmo(np.empty(0, np.int64), np.empty(0, np.int64), z, z)
    unique, inv = np.unique(np.concatenate(secs), return_inverse=True)
    n = np.bincount(inv, weights=np.concatenate(counts))
    total = np.bincount(inv, weights=np.concatenate(sums))
    covered = np.bincount(inv, weights=np.concatenate(covs)) / NS_PER_S
    return SecondEnmo(unique * NS_PER_S, n.astype(np.int64), covered, total / n * MG_PER_G)


def active_threshold_mg(cutpoints: str | CutPoints = DEFAULT_CUTPOINTS, *, rest_p95_mg: float | None = None) -> float:
    """The 1-s active threshold θ_act in mg of ENMO (methods.md §2.3).

    θ_act = max(population sedentary→light threshold, P95 of ENMO in verified rest +
    10 mg). The population threshold is the set's light boundary when it is an ENMO set
    with one; otherwise Hildebrand's adult wrist 44.8 mg (the default set), because the
    active state is always judged on ENMO.
    """
    cp = get_cutpoints(cutpoints)
    if cp.metric != "enmo" or cp.light_mg is None:
        cp = CUTPOINTS[DEFAULT_CUTPOINTS]
    assert cp.light_mg is not None
    theta = cp.light_mg
    if rest_p95_mg is not None:
        if not np.isfinite(rest_p95_mg):
            raise ValueError(f"rest_p95_mg must be finite, got {rest_p95_mg!r}")
        theta = max(theta, rest_p95_mg + REST_MARGIN_MG)
    return float(theta)


@dataclass(frozen=True, slots=True, eq=False)
class SecondGrid:
    """Dense 1-s grid over a recording, seconds ``t0_ns + i·1 s`` for i in [0, n).

    Attributes
    ----------
    t0_ns : int
        UTC ns of the first second (a whole second).
    enmo_mg : ndarray of float64, shape (n,)
        Mean ENMO per second in mg; NaN where no sample was recorded.
    n_samples : ndarray of int64, shape (n,)
        Samples per second (0 in gaps).
    covered_s : ndarray of float64, shape (n,)
        Recorded seconds (Σ sample periods; 0 in gaps).
    worn : ndarray of bool, shape (n,)
        Recorded and not in a non-wear block.
    klass : ndarray of int8, shape (n,)
        Intensity class of the epoch (of the class table) holding the second; −1 where
        not worn.
    active : ndarray of bool, shape (n,)
        Worn and ENMO ≥ `threshold_mg`, active runs < 2 s removed (methods.md §2.3).
    threshold_mg : float
        Active threshold used, in mg.
    cutpoints : CutPoints
        Set behind `klass`.
    """

    t0_ns: int
    enmo_mg: NDArray[np.float64]
    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    worn: NDArray[np.bool_]
    klass: NDArray[np.int8]
    active: NDArray[np.bool_]
    threshold_mg: float
    cutpoints: CutPoints

    def __len__(self) -> int:
        return int(self.enmo_mg.size)

    @property
    def end_ns(self) -> int:
        """UTC ns just after the last second."""
        return self.t0_ns + len(self) * NS_PER_S

    def index(self, t_ns: int) -> int:
        """Index of the second containing `t_ns`, clipped to [0, n]."""
        return int(min(max((int(t_ns) - self.t0_ns) // NS_PER_S, 0), len(self)))


def _map_to(coarse_start_ns: NDArray[np.int64], coarse_epoch_ns: int, fine_start_ns: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index of the coarse epoch holding each fine epoch start, −1 when none does."""
    idx = np.searchsorted(coarse_start_ns, fine_start_ns, side="right") - 1
    ok = idx >= 0
    ok[ok] = fine_start_ns[ok] < coarse_start_ns[idx[ok]] + coarse_epoch_ns
    return np.where(ok, idx, -1)


def second_grid(
    seconds: SecondValues,
    *,
    class_epochs: EpochTable | None = None,
    cutpoints: str | CutPoints = DEFAULT_CUTPOINTS,
    threshold_mg: float | None = None,
) -> SecondGrid:
    """Build the dense 1-s grid with wear, intensity class and active state.

    Parameters
    ----------
    seconds : EpochTable or SecondEnmo
        1-s epochs (``epoch_table(blocks, epoch_s=1)`` or `enmo_by_second`).
    class_epochs : EpochTable, optional
        Epochs for non-wear and intensity classes, from the same blocks (default
        `seconds` itself); the CLI passes the 5-s table behind ``summarise_days``.
    cutpoints : str or CutPoints, optional
        ENMO or MAD set (count sets need counts, which epoch tables do not hold).
    threshold_mg : float, optional
        Active threshold in mg; default `active_threshold_mg(cutpoints)`.

    Raises
    ------
    ValueError
        If `seconds` is not a 1-s table or is empty, `cutpoints` is a count set, or
        `class_epochs` is missing while `seconds` is a `SecondEnmo`.
    """
    if seconds.epoch_s != 1.0:
        raise ValueError(f"seconds must be a 1-s epoch table, got epoch_s={seconds.epoch_s!r}")
    if seconds.start_ns.size == 0:
        raise ValueError("seconds must hold at least one epoch, got an empty table")
    cp = get_cutpoints(cutpoints)
    if cp.metric not in ("enmo", "mad"):
        raise ValueError(
            f"cutpoints {cp.name!r} are defined on {cp.metric!r}; epoch tables hold ENMO and MAD only"
        )
    if class_epochs is None and not isinstance(seconds, EpochTable):
        raise ValueError("class_epochs must be given when seconds is not an EpochTable (non-wear needs its aggregates)")
    coarse = class_epochs if class_epochs is not None else seconds
    assert isinstance(coarse, EpochTable)
    if len(coarse) == 0:
        raise ValueError("class_epochs must hold at least one epoch, got an empty table")
    values = coarse.enmo_mg if cp.metric == "enmo" else coarse.mad_mg
    coarse_class = classify(values, cp, metric=cp.metric)
    coarse_worn = ~detect_nonwear(coarse)
    t0 = int(seconds.start_ns[0])
    n = int((seconds.start_ns[-1] - t0) // NS_PER_S) + 1
    pos = (seconds.start_ns - t0) // NS_PER_S
    enmo = np.full(n, np.nan)
    enmo[pos] = seconds.enmo_mg
    n_samples = np.zeros(n, np.int64)
    n_samples[pos] = seconds.n_samples
    covered = np.zeros(n)
    covered[pos] = seconds.covered_s
    where = _map_to(coarse.start_ns, round(coarse.epoch_s * NS_PER_S), seconds.start_ns)
    if (where < 0).any():
        raise ValueError("class_epochs must cover every second of seconds (built from the same blocks)")
    worn = np.zeros(n, bool)
    worn[pos] = coarse_worn[where]
    klass = np.full(n, -1, np.int8)
    klass[pos] = np.where(coarse_worn[where], coarse_class[where], -1)
    theta = active_threshold_mg(cp) if threshold_mg is None else float(threshold_mg)
    active = active_mask(np.where(worn, enmo, np.nan), threshold_mg=theta, epoch_s=1.0)
    return SecondGrid(t0, enmo, n_samples, covered, worn, klass, active, theta, cp)


def grid_personal_peak_mg(grid: SecondGrid) -> float | None:
    """`analysis.intensity.personal_peak_mg` (P95 of 1-min ENMO) over the grid's worn seconds."""
    rec = np.flatnonzero(grid.n_samples > 0)
    start_ns = grid.t0_ns + rec.astype(np.int64) * NS_PER_S
    return personal_peak_mg(
        start_ns, grid.enmo_mg[rec], grid.n_samples[rec], grid.covered_s[rec], wear=grid.worn[rec]
    )

