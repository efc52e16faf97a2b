"""Idempotent storage of uploaded sample blocks, and recomputation of the epochs they touch."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.samples import NS_PER_S
from api.errors import Conflict, Invalid, TooLarge
from api.models import Device, SampleBlockRow
from api.schemas import INT64_MAX, BlockAck, BlockIn, IngestRequest, IngestResponse
from api.services import epochs, events, fatigue, grid, seconds, sessions

# Wire format of `data`: little-endian float32, row-major (n_samples, 3), in g (architecture.md).
WIRE_DTYPE = np.dtype("<f4")
N_AXES = 3
# zlib level 6: the library default, a good speed/size balance for float32 samples.
ZLIB_LEVEL = 6


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """A validated upload block with its decoded samples."""

    stream: str
    seq: int
    t0_ns: int
    end_ns: int
    fs_hz: float
    n_samples: int
    dtype: str
    raw: bytes
    sha256: str
    accel_g: NDArray[np.float32]

    def same_content(self, row: SampleBlockRow) -> bool:
        """True when ``row`` holds exactly this block."""
        return (
            row.t0_ns == self.t0_ns
            and row.fs_hz == self.fs_hz
            and row.n_samples == self.n_samples
            and row.dtype == self.dtype
            and row.data_sha256 == self.sha256
        )


def block_end_ns(t0_ns: int, fs_hz: float, n_samples: int) -> int:
    """Exclusive end of a block in UTC ns (as ``analysis.samples.SampleBlock.end_ns``)."""
    return t0_ns + round(n_samples * (NS_PER_S / fs_hz))


def decode_block(block: BlockIn, index: int) -> DecodedBlock:
    """Decode and check one block's data.

    Raises:
        Invalid: bad base64, data length not n_samples x 3 float32, NaN/inf, end beyond int64.
    """
    where = f"blocks[{index}] (stream {block.stream!r}, seq {block.seq})"
    try:
        raw = base64.b64decode(block.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid(f"{where}: data is not valid base64") from exc
    expected = block.n_samples * N_AXES * WIRE_DTYPE.itemsize
    if len(raw) != expected:
        raise Invalid(
            f"{where}: data has {len(raw)} bytes, expected {expected} "
            f"(n_samples={block.n_samples} x {N_AXES} axes x {WIRE_DTYPE.itemsize} bytes)"
        )
    accel = np.frombuffer(raw, dtype=WIRE_DTYPE).reshape(block.n_samples, N_AXES)
    if not np.isfinite(accel).all():
        raise Invalid(f"{where}: data contains NaN or infinite values")
    end_ns = block_end_ns(block.t0_ns, block.fs_hz, block.n_samples)
    if end_ns > INT64_MAX:
        raise Invalid(f"{where}: block ends after the largest representable time")
    return DecodedBlock(
        stream=block.stream,
        seq=block.seq,
        t0_ns=block.t0_ns,
        end_ns=end_ns,
        fs_hz=block.fs_hz,
        n_samples=block.n_samples,
        dtype=block.dtype,
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        accel_g=accel,
    )


def _check_request_order(blocks: list[DecodedBlock]) -> list[DecodedBlock]:
    """Drop exact duplicates within the request and check time order by seq per stream."""
    by_key: dict[tuple[str, int], DecodedBlock] = {}
    for b in blocks:
        seen = by_key.get((b.stream, b.seq))
        if seen is None:
            by_key[(b.stream, b.seq)] = b
        elif (seen.t0_ns, seen.fs_hz, seen.n_samples, seen.sha256) != (
            b.t0_ns,
            b.fs_hz,
            b.n_samples,
            b.sha256,
        ):
            raise Conflict(f"stream {b.stream!r} seq {b.seq} appears twice with different content")
    unique = sorted(by_key.values(), key=lambda b: (b.stream, b.seq))
    for prev, cur in zip(unique, unique[1:], strict=False):
        if prev.stream == cur.stream and cur.t0_ns < prev.end_ns:
            raise Invalid(
                f"time goes backwards in stream {cur.stream!r}: seq {cur.seq} starts at "
                f"{cur.t0_ns} ns, before the end of seq {prev.seq} ({prev.end_ns} ns)"
            )
    return unique


def _check_against_stored(db: Session, *, device: Device, block: DecodedBlock) -> None:
    """Reject a new block that overlaps (409) or is out of order with (422) stored blocks."""
    same_stream = (SampleBlockRow.device_id == device.id, SampleBlockRow.stream == block.stream)
    overlap = db.scalars(
        select(SampleBlockRow)
        .where(*same_stream, SampleBlockRow.t0_ns < block.end_ns)
        .where(SampleBlockRow.end_ns > block.t0_ns)
        .order_by(SampleBlockRow.t0_ns)
        .limit(1)
    ).first()
    if overlap is not None:
        raise Conflict(
            f"stream {block.stream!r} seq {block.seq} [{block.t0_ns}, {block.end_ns}) ns overlaps "
            f"stored seq {overlap.seq} [{overlap.t0_ns}, {overlap.end_ns}) ns"
        )
    pred = db.scalars(
        select(SampleBlockRow)
        .where(*same_stream, SampleBlockRow.seq < block.seq)
        .order_by(SampleBlockRow.seq.desc())
        .limit(1)
    ).first()
    if pred is not None and pred.t0_ns >= block.end_ns:
        raise Invalid(
            f"time goes backwards in stream {block.stream!r}: seq {block.seq} ends before "
            f"stored seq {pred.seq} starts"
        )
    succ = db.scalars(
        select(SampleBlockRow)
        .where(*same_stream, SampleBlockRow.seq > block.seq)
        .order_by(SampleBlockRow.seq)
        .limit(1)
    ).first()
    if succ is not None and succ.end_ns <= block.t0_ns:
        raise Invalid(
            f"time goes backwards in stream {block.stream!r}: seq {block.seq} starts after "
            f"stored seq {succ.seq} ends"
        )


def _contiguous(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans merged where less than `grid.MARGIN_NS` apart (one dirty region each)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a - out[-1][1] < grid.MARGIN_NS:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def store(
    db: Session, *, device: Device, request: IngestRequest, max_block_samples: int
) -> IngestResponse:
    """Store new blocks and events and the status, refresh the epochs and seconds the blocks
    touch, invalidate sessions when anything new was stored (flushed).

    Raises:
        TooLarge: a block has more than ``max_block_samples`` samples.
        Invalid: undecodable data, or time going backwards.
        Conflict: a stored key (block or event id) with different content, or a time
            overlap with a stored block.
    """
    # Serialise ingests of one device (row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE
    # already serialises writers), so two requests never recompute the same epoch from
    # different snapshots and a racing duplicate sees the first copy.
    db.execute(select(Device.id).where(Device.id == device.id).with_for_update())
    for i, block_in in enumerate(request.blocks):
        if block_in.n_samples > max_block_samples:
            raise TooLarge(
                f"blocks[{i}] has {block_in.n_samples} samples, more than the limit of {max_block_samples}"
            )
    decoded = _check_request_order([decode_block(b, i) for i, b in enumerate(request.blocks)])

    new: list[DecodedBlock] = []
    for b in decoded:
        stored = db.scalars(
            select(SampleBlockRow).where(
                SampleBlockRow.device_id == device.id,
                SampleBlockRow.stream == b.stream,
                SampleBlockRow.seq == b.seq,
            )
        ).one_or_none()
        if stored is not None:
            if not b.same_content(stored):
                raise Conflict(
                    f"stream {b.stream!r} seq {b.seq} is already stored with different content"
                )
            continue
        _check_against_stored(db, device=device, block=b)
        db.add(
            SampleBlockRow(
                device_id=device.id,
                stream=b.stream,
                seq=b.seq,
                t0_ns=b.t0_ns,
                end_ns=b.end_ns,
                fs_hz=b.fs_hz,
                n_samples=b.n_samples,
                dtype=b.dtype,
                data_zlib=zlib.compress(b.raw, ZLIB_LEVEL),
                data_sha256=b.sha256,
            )
        )
        db.flush()
        new.append(b)

    for stream in sorted({b.stream for b in new}):
        spans = [(b.t0_ns, b.end_ns, b.fs_hz, b.n_samples) for b in new if b.stream == stream]
        epochs.refresh(db, device_id=device.id, stream=stream, spans=spans)
        seconds.refresh(db, device_id=device.id, stream=stream, spans=spans)
        fatigue.refresh(db, device_id=device.id, stream=stream, spans=spans)  # issue 6
    if new:
        for start_ns, end_ns in _contiguous(sorted((b.t0_ns, b.end_ns) for b in new)):
            grid.mark_dirty(db, patient_id=device.patient_id, start_ns=start_ns, end_ns=end_ns)
    event_acks, new_events = events.store_events(db, device=device, events=request.events)
    backlog_changed = request.status is not None and events.store_status(
        db, device=device, status=request.status
    )
    if new or new_events or backlog_changed:
        sessions.invalidate(db, patient_id=device.patient_id)

    acks = [
        BlockAck(stream=b.stream, seq=b.seq, n_samples=b.n_samples, t0_ns=b.t0_ns)
        for b in request.blocks
    ]
    return IngestResponse(
        blocks=acks, samples=sum(b.n_samples for b in request.blocks), events=event_acks
    )


def load_accel(row: SampleBlockRow) -> NDArray[np.float32]:
    """Decompress a stored block's samples, shape (n_samples, 3), in g."""
    raw = zlib.decompress(row.data_zlib)
    return np.frombuffer(raw, dtype=WIRE_DTYPE).reshape(row.n_samples, N_AXES)
