"""Per-second ENMO chunks, the patient 1-s grid, labelled sessions and the sessions cache (issue 5 item 8).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 13:16:17.221405
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('grid_dirty_ranges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('end_ns', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_grid_dirty_ranges_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_dirty_ranges'))
    )
    with op.batch_alter_table('grid_dirty_ranges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_dirty_ranges_patient_id'), ['patient_id'], unique=False)

    op.create_table('labelled_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('end_ns', sa.BigInteger(), nullable=False),
    sa.Column('activity', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_labelled_sessions_created_by_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_labelled_sessions_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labelled_sessions'))
    )
    with op.batch_alter_table('labelled_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_labelled_sessions_patient_start', ['patient_id', 'start_ns'], unique=False)

    op.create_table('patient_grid_chunks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('data_zlib', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_grid_chunks_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_grid_chunks')),
    sa.UniqueConstraint('patient_id', 'start_ns', name=op.f('uq_patient_grid_chunks_patient_id_start_ns'))
    )
    op.create_table('session_cache_state',
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_session_cache_state_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_session_cache_state'))
    )
    op.create_table('sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('end_ns', sa.BigInteger(), nullable=False),
    sa.Column('labelled', sa.Boolean(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_sessions_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_patient_start', ['patient_id', 'start_ns'], unique=False)

    op.create_table('second_chunks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('data_zlib', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_second_chunks_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_chunks')),
    sa.UniqueConstraint('device_id', 'stream', 'start_ns', name=op.f('uq_second_chunks_device_id_stream_start_ns'))
    )


def downgrade() -> None:
    op.drop_table('second_chunks')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_patient_start')

    op.drop_table('sessions')
    op.drop_table('session_cache_state')
    op.drop_table('patient_grid_chunks')
    with op.batch_alter_table('labelled_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_labelled_sessions_patient_start')

    op.drop_table('labelled_sessions')
    with op.batch_alter_table('grid_dirty_ranges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_dirty_ranges_patient_id'))

    op.drop_table('grid_dirty_ranges')
