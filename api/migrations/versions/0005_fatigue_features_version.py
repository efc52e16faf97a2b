"""Version of the features of each stored fatigue window (issue 6 follow-up).

Rows stored before this migration get NULL, i.e. "another version": the service recomputes
them from the stored samples at the next read of the patient (docs/fatigue-api.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fatigue_windows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features_version", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_fatigue_windows_device_version", ["device_id", "features_version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fatigue_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_fatigue_windows_device_version")
        batch_op.drop_column("features_version")
