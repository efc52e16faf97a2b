"""The per-second table: 1-s ENMO per device stream in hour chunks, refreshed on ingest.

Why hour chunks of arrays rather than one row per second: sessions need every second of a
patient's history (86 400 per day); reading a day is 24 rows and one ingest of a 60-s block
rewrites one ~86 KB chunk (zlib), where 86 400 ORM rows per day would take seconds to load.
The values are those of `analysis.seconds.enmo_by_second` over the stored blocks, recomputed
for the seconds a new block touches exactly as `api.services.epochs.refresh` does for epochs,
so they are bit-identical to a whole-recording computation.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.samples import NS_PER_S
from analysis.seconds import enmo_by_second
from api.models import SecondChunkRow
from api.services.epochs import load_blocks, touched_ranges

# One hour of seconds per row (see the module docstring).
CHUNK_S = 3600
CHUNK_NS = CHUNK_S * NS_PER_S
# zlib level 6: the library default (as api.services.ingest).
ZLIB_LEVEL = 6
_I8, _F8 = np.dtype("<i8"), np.dtype("<f8")


@dataclass(slots=True)
class Chunk:
    """Decoded values of one chunk: per second of the hour, samples, recorded s, ENMO mg."""

    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    enmo_mg: NDArray[np.float64]

    @classmethod
    def empty(cls) -> Chunk:
        """A chunk with no samples."""
        return cls(np.zeros(CHUNK_S, np.int64), np.zeros(CHUNK_S), np.full(CHUNK_S, np.nan))

    @classmethod
    def decode(cls, data_zlib: bytes) -> Chunk:
        """Chunk values of a stored ``data_zlib``."""
        raw = zlib.decompress(data_zlib)
        n = np.frombuffer(raw, _I8, CHUNK_S, 0).copy()
        cov = np.frombuffer(raw, _F8, CHUNK_S, 8 * CHUNK_S).copy()
        enmo = np.frombuffer(raw, _F8, CHUNK_S, 16 * CHUNK_S).copy()
        return cls(n, cov, enmo)

    def encode(self) -> bytes:
        """The stored form of this chunk."""
        raw = (
            self.n_samples.astype(_I8).tobytes()
            + self.covered_s.astype(_F8).tobytes()
            + self.enmo_mg.astype(_F8).tobytes()
        )
        return zlib.compress(raw, ZLIB_LEVEL)


def refresh(
    db: Session, *, device_id: int, stream: str, spans: Sequence[tuple[int, int, float, int]]
) -> None:
    """Recompute the seconds touched by new blocks given as (t0_ns, end_ns, fs_hz, n)."""
    for first, last in touched_ranges(spans, unit_ns=NS_PER_S):
        start_ns, end_ns = first * NS_PER_S, (last + 1) * NS_PER_S
        blocks = load_blocks(db, device_id=device_id, stream=stream, start_ns=start_ns, end_ns=end_ns)
        sec = enmo_by_second(blocks)
        keep = (sec.start_ns >= start_ns) & (sec.start_ns < end_ns)
        s_idx = sec.start_ns[keep] // NS_PER_S
        n, cov, enmo = sec.n_samples[keep], sec.covered_s[keep], sec.enmo_mg[keep]
        c_first, c_last = first // CHUNK_S, last // CHUNK_S
        rows = {
            r.start_ns: r
            for r in db.scalars(
                select(SecondChunkRow).where(
                    SecondChunkRow.device_id == device_id,
                    SecondChunkRow.stream == stream,
                    SecondChunkRow.start_ns >= c_first * CHUNK_NS,
                    SecondChunkRow.start_ns <= c_last * CHUNK_NS,
                )
            )
        }
        for c in range(c_first, c_last + 1):
            row = rows.get(c * CHUNK_NS)
            chunk = Chunk.empty() if row is None else Chunk.decode(row.data_zlib)
            lo, hi = max(first, c * CHUNK_S) - c * CHUNK_S, min(last, c * CHUNK_S + CHUNK_S - 1) - c * CHUNK_S
            chunk.n_samples[lo : hi + 1] = 0
            chunk.covered_s[lo : hi + 1] = 0.0
            chunk.enmo_mg[lo : hi + 1] = np.nan
            mine = (s_idx >= c * CHUNK_S) & (s_idx < (c + 1) * CHUNK_S)
            pos = s_idx[mine] - c * CHUNK_S
            chunk.n_samples[pos], chunk.covered_s[pos], chunk.enmo_mg[pos] = n[mine], cov[mine], enmo[mine]
            if row is None:
                if chunk.n_samples.any():
                    db.add(SecondChunkRow(device_id=device_id, stream=stream, start_ns=c * CHUNK_NS, data_zlib=chunk.encode()))
            elif chunk.n_samples.any():
                row.data_zlib = chunk.encode()
            else:
                db.delete(row)
        db.flush()


@dataclass(frozen=True, slots=True)
class StoredSeconds:
    """Seconds with samples of one device stream, in time order (as `SecondEnmo`'s arrays)."""

    start_ns: NDArray[np.int64]
    n_samples: NDArray[np.int64]
    covered_s: NDArray[np.float64]
    enmo_mg: NDArray[np.float64]


def load(
    db: Session, *, device_id: int, stream: str, start_ns: int | None = None, end_ns: int | None = None
) -> StoredSeconds:
    """Stored seconds with samples of a device stream (those in [start_ns, end_ns) if given)."""
    stmt = (
        select(SecondChunkRow.start_ns, SecondChunkRow.data_zlib)
        .where(SecondChunkRow.device_id == device_id, SecondChunkRow.stream == stream)
        .order_by(SecondChunkRow.start_ns)
    )
    lo = -(2**63) if start_ns is None else start_ns
    hi = 2**63 - 1 if end_ns is None else end_ns
    if start_ns is not None:
        stmt = stmt.where(SecondChunkRow.start_ns > start_ns - CHUNK_NS)
    if end_ns is not None:
        stmt = stmt.where(SecondChunkRow.start_ns < end_ns)
    rows = db.execute(stmt).all()
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]] = []
    for chunk_ns, data in rows:
        chunk = Chunk.decode(data)
        has = np.flatnonzero(chunk.n_samples > 0)
        starts = int(chunk_ns) + has.astype(np.int64) * NS_PER_S
        inside = (starts >= lo) & (starts < hi)
        has, starts = has[inside], starts[inside]
        parts.append((starts, chunk.n_samples[has], chunk.covered_s[has], chunk.enmo_mg[has]))
    if not parts:
        z = np.empty(0)
        return StoredSeconds(np.empty(0, np.int64), np.empty(0, np.int64), z, z)
    return StoredSeconds(*(np.concatenate([p[k] for p in parts]) for k in range(4)))  # type: ignore[arg-type]
