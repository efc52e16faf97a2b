"""A patient's 1-s grid (`analysis.seconds.SecondGrid`), stored in hour chunks and rebuilt
region by region where new data arrived, so sessions never need the whole history's epochs.

Why a region is enough: every grid value of a second depends only on data near it —
ENMO and samples on the second itself, the intensity class on its 5-s epoch, the active
state on ±2 s (runs < 2 s dropped, methods.md §2.3), and wear on the GGIR non-wear rule
(`analysis.nonwear.detect_nonwear`, windows every minute: a minute's flag depends on the
60-min windows starting in the 59 min before it, and the promotion of a lone run of up to
15 min on its neighbours, i.e. on data within ±75 min = MARGIN; per-slot sums are computed
slot by slot, so the floats are the same whatever else is loaded). Data changed in ``[a, b)`` is therefore re-graded on
``[a − MARGIN, b + MARGIN)`` from epochs and seconds loaded another MARGIN wider, and the
stored grid stays bit-identical to `second_grid` over the whole history (tested).

Regions are marked dirty by ingest and rebuilt lazily, under the patient lock, when sessions
are read: many small uploads cost one rebuild.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analysis.epochs import EpochTable
from analysis.intensity import DEFAULT_CUTPOINTS, get_cutpoints
from analysis.samples import NS_PER_S
from analysis.seconds import SecondEnmo, SecondGrid, active_threshold_mg, second_grid
from api.models import Device, GridDirtyRange, PatientGridChunk
from api.services import epochs, seconds

CHUNK_S = 3600  # one hour per row, as api.services.seconds
CHUNK_NS = CHUNK_S * NS_PER_S
# GGIR non-wear slot (analysis.nonwear.MEDIUM_WINDOW_S, methods.md §1.8).
SLOT_NS = 900 * NS_PER_S
# Re-graded margin around changed data: 5 slots (75 min) > the 60-min reach derived above.
MARGIN_NS = 5 * SLOT_NS
ZLIB_LEVEL = 6
CUTPOINTS = get_cutpoints(DEFAULT_CUTPOINTS)
THRESHOLD_MG = active_threshold_mg(CUTPOINTS)
_LAYOUT = (("enmo_mg", "<f8"), ("n_samples", "<i8"), ("covered_s", "<f8"), ("worn", "i1"), ("klass", "i1"), ("active", "i1"))


@dataclass(slots=True)
class GridChunk:
    """One hour of grid arrays (gap seconds: NaN ENMO, 0 samples, not worn, class −1)."""

    enmo_mg: NDArray[np.float64]
    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    worn: NDArray[np.bool_]
    klass: NDArray[np.int8]
    active: NDArray[np.bool_]

    @classmethod
    def empty(cls) -> GridChunk:
        """An hour without data."""
        return cls(
            np.full(CHUNK_S, np.nan), np.zeros(CHUNK_S, np.int64), np.zeros(CHUNK_S),
            np.zeros(CHUNK_S, bool), np.full(CHUNK_S, -1, np.int8), np.zeros(CHUNK_S, bool),
        )

    @classmethod
    def decode(cls, data_zlib: bytes) -> GridChunk:
        """Chunk arrays of a stored ``data_zlib``."""
        raw, pos, out = zlib.decompress(data_zlib), 0, []
        for _name, dt in _LAYOUT:
            dtype = np.dtype(dt)
            out.append(np.frombuffer(raw, dtype, CHUNK_S, pos).copy())
            pos += dtype.itemsize * CHUNK_S
        e, n, c, w, k, a = out
        return cls(e, n, c, w.astype(bool), k.astype(np.int8), a.astype(bool))

    def encode(self) -> bytes:
        """The stored form."""
        raw = b"".join(np.asarray(getattr(self, name)).astype(dt).tobytes() for name, dt in _LAYOUT)
        return zlib.compress(raw, ZLIB_LEVEL)

    def clear(self, lo: int, hi: int) -> None:
        """Reset seconds [lo, hi) to gap."""
        self.enmo_mg[lo:hi], self.n_samples[lo:hi], self.covered_s[lo:hi] = np.nan, 0, 0.0
        self.worn[lo:hi], self.klass[lo:hi], self.active[lo:hi] = False, -1, False


def mark_dirty(db: Session, *, patient_id: int, start_ns: int, end_ns: int) -> None:
    """Record that the patient's data changed in [start_ns, end_ns)."""
    db.add(GridDirtyRange(patient_id=patient_id, start_ns=start_ns, end_ns=end_ns))


def _merged_regions(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Slot-aligned regions [a − MARGIN, b + MARGIN) to re-grade, merged."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        lo = a // SLOT_NS * SLOT_NS - MARGIN_NS
        hi = -(-b // SLOT_NS) * SLOT_NS + MARGIN_NS
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _regional_grid(db: Session, device_ids: list[int], lo_ns: int, hi_ns: int) -> SecondGrid | None:
    """`second_grid` of the patient's data in [lo_ns, hi_ns) (slot-aligned), None without data."""
    rows, sources = epochs.stored_rows_and_sources(db, device_ids=device_ids, start_ns=lo_ns, end_ns=hi_ns)
    if not rows:
        return None
    table = EpochTable.from_rows(rows, epoch_s=epochs.EPOCH_S)
    by_source: dict[tuple[int, str], list[int]] = {}
    for start, src in zip(table.start_ns.tolist(), sources, strict=True):
        by_source.setdefault(src, []).append(start)
    parts = []
    for (device_id, stream), starts in by_source.items():
        sec = seconds.load(db, device_id=device_id, stream=stream, start_ns=lo_ns, end_ns=hi_ns)
        keep = np.isin(sec.start_ns // epochs.EPOCH_NS * epochs.EPOCH_NS, np.asarray(starts, np.int64))
        parts.append((sec.start_ns[keep], sec.n_samples[keep], sec.covered_s[keep], sec.enmo_mg[keep]))
    start_ns = np.concatenate([p[0] for p in parts])
    order = np.argsort(start_ns, kind="stable")
    n, cov, enmo = (np.concatenate([p[k] for p in parts])[order] for k in (1, 2, 3))
    return second_grid(SecondEnmo(start_ns[order], n, cov, enmo), class_epochs=table, cutpoints=CUTPOINTS)


def _write(db: Session, patient_id: int, grid: SecondGrid | None, lo_ns: int, hi_ns: int) -> None:
    """Replace the stored grid on [lo_ns, hi_ns) with `grid`'s values there."""
    c0, c1 = lo_ns // CHUNK_NS, (hi_ns - 1) // CHUNK_NS
    stored = {
        r.start_ns: r
        for r in db.scalars(
            select(PatientGridChunk).where(
                PatientGridChunk.patient_id == patient_id,
                PatientGridChunk.start_ns >= c0 * CHUNK_NS,
                PatientGridChunk.start_ns <= c1 * CHUNK_NS,
            )
        )
    }
    for c in range(c0, c1 + 1):
        base = c * CHUNK_NS
        row = stored.get(base)
        chunk = GridChunk.empty() if row is None else GridChunk.decode(row.data_zlib)
        a, b = max(lo_ns, base), min(hi_ns, base + CHUNK_NS)
        chunk.clear((a - base) // NS_PER_S, (b - base) // NS_PER_S)
        if grid is not None:
            g0, g1 = max(a, grid.t0_ns), min(b, grid.end_ns)
            if g1 > g0:
                src = slice((g0 - grid.t0_ns) // NS_PER_S, (g1 - grid.t0_ns) // NS_PER_S)
                dst = slice((g0 - base) // NS_PER_S, (g1 - base) // NS_PER_S)
                for name in ("enmo_mg", "n_samples", "covered_s", "worn", "klass", "active"):
                    getattr(chunk, name)[dst] = getattr(grid, name)[src]
        if chunk.n_samples.any():
            if row is None:
                db.add(PatientGridChunk(patient_id=patient_id, start_ns=base, data_zlib=chunk.encode()))
            else:
                row.data_zlib = chunk.encode()
        elif row is not None:
            db.delete(row)
    db.flush()


def rebuild_dirty(db: Session, *, patient_id: int) -> int:
    """Re-grade the patient's dirty regions (caller holds the patient lock); returns how many."""
    dirty = db.execute(
        select(GridDirtyRange.start_ns, GridDirtyRange.end_ns).where(GridDirtyRange.patient_id == patient_id)
    ).all()
    if not dirty:
        return 0
    device_ids = list(db.scalars(select(Device.id).where(Device.patient_id == patient_id)))
    regions = _merged_regions([(int(a), int(b)) for a, b in dirty])
    for lo, hi in regions:
        grid = _regional_grid(db, device_ids, lo - MARGIN_NS, hi + MARGIN_NS)
        _write(db, patient_id, grid, lo, hi)
    db.execute(delete(GridDirtyRange).where(GridDirtyRange.patient_id == patient_id))
    return len(regions)


def load(db: Session, *, patient_id: int) -> SecondGrid | None:
    """The patient's whole stored grid (first to last recorded second), None without data."""
    rows = db.execute(
        select(PatientGridChunk.start_ns, PatientGridChunk.data_zlib)
        .where(PatientGridChunk.patient_id == patient_id)
        .order_by(PatientGridChunk.start_ns)
    ).all()
    if not rows:
        return None
    first, last = int(rows[0][0]), int(rows[-1][0])
    n_chunks = (last - first) // CHUNK_NS + 1
    full = GridChunk.empty()
    arrays = {name: np.concatenate([getattr(full, name)] * n_chunks) for name, _ in _LAYOUT}
    for start, data in rows:
        off = (int(start) - first) // NS_PER_S
        chunk = GridChunk.decode(data)
        for name, _ in _LAYOUT:
            arrays[name][off : off + CHUNK_S] = getattr(chunk, name)
    has = np.flatnonzero(arrays["n_samples"] > 0)
    i0, i1 = int(has[0]), int(has[-1]) + 1
    a = {name: v[i0:i1] for name, v in arrays.items()}
    return SecondGrid(
        first + i0 * NS_PER_S, a["enmo_mg"], a["n_samples"], a["covered_s"], a["worn"], a["klass"], a["active"],
        THRESHOLD_MG, CUTPOINTS,
    )
