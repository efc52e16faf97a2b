"""Fatigue windows per device stream, refreshed on ingest (issue 6).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fatigue_windows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("n_samples", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_fatigue_windows_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fatigue_windows")),
        sa.UniqueConstraint(
            "device_id", "stream", "start_ns", name=op.f("uq_fatigue_windows_device_id_stream_start_ns")
        ),
    )


def downgrade() -> None:
    op.drop_table("fatigue_windows")
