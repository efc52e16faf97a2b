"""SQLAlchemy 2.0 ORM models of the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so migrations and autogenerate agree on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids for the big tables; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")



def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A therapist or an administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class Patient(Base):
    """A pseudonymous patient owned by one therapist."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("therapist_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class Device(Base):
    """A wearable + collector pair writing data for one patient; its token is stored hashed."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # Hex SHA-256 of the bearer token; the token itself is never stored.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SampleBlockRow(Base):
    """One uploaded block of samples (never one row per sample)."""

    __tablename__ = "sample_blocks"
    __table_args__ = (
        UniqueConstraint("device_id", "stream", "seq"),
        Index("ix_sample_blocks_device_stream_t0", "device_id", "stream", "t0_ns"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    stream: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    t0_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    fs_hz: Mapped[float] = mapped_column(Double)
    n_samples: Mapped[int] = mapped_column(Integer)
    dtype: Mapped[str] = mapped_column(String(16))
    # zlib of little-endian float32, row-major (n_samples, 3), in g.
    data_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    # Hex SHA-256 of the raw (uncompressed) data, for the idempotency comparison.
    data_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class DeviceEvent(Base):
    """An event a collector reported (gap, task_start, task_stop), stored once per (device, id).

    ``fields`` holds the kind's other fields as sent (e.g. ``cause``, ``label``, ``borg``,
    ``note``, ``source``); the times are columns so gaps and marks can be selected by range.
    """

    __tablename__ = "device_events"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id"),
        Index("ix_device_events_device_kind", "device_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    # Client-made UUID4 hex, the idempotency key with the device.
    event_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    stream: Mapped[str | None] = mapped_column(String(32))
    at_ns: Mapped[int | None] = mapped_column(BigInteger)
    start_ns: Mapped[int | None] = mapped_column(BigInteger)
    end_ns: Mapped[int | None] = mapped_column(BigInteger)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Hex SHA-256 of the event's canonical JSON, for the idempotency comparison.
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class DeviceStatusRow(Base):
    """The latest status a device's collector reported (by ``at_ns``); one row per device."""

    __tablename__ = "device_status"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    at_ns: Mapped[int] = mapped_column(BigInteger)
    link: Mapped[str] = mapped_column(String(16))
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    backlog_blocks: Mapped[int | None] = mapped_column(BigInteger)
    backlog_samples: Mapped[int | None] = mapped_column(BigInteger)
    backlog_oldest_t0_ns: Mapped[int | None] = mapped_column(BigInteger)
    decoded_until_ns: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class EpochRow(Base):
    """One 5 s epoch of one device stream: an EpochTable row (columns = ROW_KEYS; NULL is NaN)."""

    __tablename__ = "epochs"
    __table_args__ = (UniqueConstraint("device_id", "stream", "start_ns"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    stream: Mapped[str] = mapped_column(String(32))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    n_samples: Mapped[int] = mapped_column(BigInteger)
    covered_s: Mapped[float | None] = mapped_column(Double)
    enmo_mg: Mapped[float | None] = mapped_column(Double)
    mad_mg: Mapped[float | None] = mapped_column(Double)
    sum_x_g: Mapped[float | None] = mapped_column(Double)
    sum_y_g: Mapped[float | None] = mapped_column(Double)
    sum_z_g: Mapped[float | None] = mapped_column(Double)
    sumsq_x_g2: Mapped[float | None] = mapped_column(Double)
    sumsq_y_g2: Mapped[float | None] = mapped_column(Double)
    sumsq_z_g2: Mapped[float | None] = mapped_column(Double)
    min_x_g: Mapped[float | None] = mapped_column(Double)
    min_y_g: Mapped[float | None] = mapped_column(Double)
    min_z_g: Mapped[float | None] = mapped_column(Double)
    max_x_g: Mapped[float | None] = mapped_column(Double)
    max_y_g: Mapped[float | None] = mapped_column(Double)
    max_z_g: Mapped[float | None] = mapped_column(Double)


class SecondChunkRow(Base):
    """One hour of 1-s ENMO of one device stream (the per-second table sessions are built from).

    ``data_zlib`` is zlib of three little-endian arrays of `api.services.seconds.CHUNK_S`
    values: int64 samples per second, float64 recorded seconds, float64 mean ENMO in mg (NaN
    where no sample) — the values of `analysis.seconds.enmo_by_second`.
    """

    __tablename__ = "second_chunks"
    __table_args__ = (UniqueConstraint("device_id", "stream", "start_ns"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    stream: Mapped[str] = mapped_column(String(32))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    data_zlib: Mapped[bytes] = mapped_column(LargeBinary)


class PatientGridChunk(Base):
    """One hour of a patient's 1-s grid (`analysis.seconds.SecondGrid` arrays, all devices merged).

    ``data_zlib`` is zlib of `api.services.grid.CHUNK_S` values each of: float64 ENMO mg,
    int64 samples, float64 recorded s, int8 worn, int8 intensity class, int8 active.
    """

    __tablename__ = "patient_grid_chunks"
    __table_args__ = (UniqueConstraint("patient_id", "start_ns"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    data_zlib: Mapped[bytes] = mapped_column(LargeBinary)


class GridDirtyRange(Base):
    """Seconds ``[start_ns, end_ns)`` of a patient whose data changed since the grid was built."""

    __tablename__ = "grid_dirty_ranges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)


class LabelledSessionRow(Base):
    """A task session labelled by a therapist: ``[start_ns, end_ns)`` UTC and its activity."""

    __tablename__ = "labelled_sessions"
    __table_args__ = (Index("ix_labelled_sessions_patient_start", "patient_id", "start_ns"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    activity: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class SessionCacheState(Base):
    """A patient's sessions cache is valid while this row exists (ingest and labels delete it)."""

    __tablename__ = "session_cache_state"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class SessionRow(Base):
    """A cached session summary (detected, or labelled): the `otmon analyze` session object."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_patient_start", "patient_id", "start_ns"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    labelled: Mapped[bool] = mapped_column(default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntry(Base):
    """Who read which patient's data, when, and through which action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))


class FatigueWindowRow(Base):
    """One 60-s fatigue window of one device stream (`analysis.fatigue_features`, issue 6).

    Computed on ingest from the samples of the window's padded span; at read time only when
    its ``features_version`` is not the current one. ``n_samples`` counts the samples in
    ``[start_ns, start_ns + 60 s)`` (to pick one stream where several cover a window);
    ``data`` holds the window's other columns as
    little-endian float64 in the order of `api.services.fatigue_windows.LAYOUT`;
    ``features_version`` the `analysis.fatigue_windows.FEATURES_VERSION` it was computed with
    (NULL: stored before migration 0005). Rows of another version are recomputed before scoring.
    """

    __tablename__ = "fatigue_windows"
    __table_args__ = (
        UniqueConstraint("device_id", "stream", "start_ns"),
        # The staleness check of every patient read (api.services.fatigue.ensure_current).
        Index("ix_fatigue_windows_device_version", "device_id", "features_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    stream: Mapped[str] = mapped_column(String(32))
    start_ns: Mapped[int] = mapped_column(BigInteger)
    n_samples: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    features_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
