"""Initial schema: users, patients, devices, sample_blocks, epochs, audit_log.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 12:05:47.261653
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['users.id'], name=op.f('fk_patients_therapist_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('therapist_id', 'code', name=op.f('uq_patients_therapist_id_code'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_therapist_id'), ['therapist_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_audit_log_patient_id_patients')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_user_id'), ['user_id'], unique=False)

    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('profile', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_devices_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_devices_token_sha256'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_devices_patient_id'), ['patient_id'], unique=False)

    op.create_table('epochs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('start_ns', sa.BigInteger(), nullable=False),
    sa.Column('n_samples', sa.BigInteger(), nullable=False),
    sa.Column('covered_s', sa.Double(), nullable=True),
    sa.Column('enmo_mg', sa.Double(), nullable=True),
    sa.Column('mad_mg', sa.Double(), nullable=True),
    sa.Column('sum_x_g', sa.Double(), nullable=True),
    sa.Column('sum_y_g', sa.Double(), nullable=True),
    sa.Column('sum_z_g', sa.Double(), nullable=True),
    sa.Column('sumsq_x_g2', sa.Double(), nullable=True),
    sa.Column('sumsq_y_g2', sa.Double(), nullable=True),
    sa.Column('sumsq_z_g2', sa.Double(), nullable=True),
    sa.Column('min_x_g', sa.Double(), nullable=True),
    sa.Column('min_y_g', sa.Double(), nullable=True),
    sa.Column('min_z_g', sa.Double(), nullable=True),
    sa.Column('max_x_g', sa.Double(), nullable=True),
    sa.Column('max_y_g', sa.Double(), nullable=True),
    sa.Column('max_z_g', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_epochs_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epochs')),
    sa.UniqueConstraint('device_id', 'stream', 'start_ns', name=op.f('uq_epochs_device_id_stream_start_ns'))
    )
    op.create_table('sample_blocks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('t0_ns', sa.BigInteger(), nullable=False),
    sa.Column('end_ns', sa.BigInteger(), nullable=False),
    sa.Column('fs_hz', sa.Double(), nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('dtype', sa.String(length=16), nullable=False),
    sa.Column('data_zlib', sa.LargeBinary(), nullable=False),
    sa.Column('data_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_sample_blocks_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sample_blocks')),
    sa.UniqueConstraint('device_id', 'stream', 'seq', name=op.f('uq_sample_blocks_device_id_stream_seq'))
    )
    with op.batch_alter_table('sample_blocks', schema=None) as batch_op:
        batch_op.create_index('ix_sample_blocks_device_stream_t0', ['device_id', 'stream', 't0_ns'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sample_blocks', schema=None) as batch_op:
        batch_op.drop_index('ix_sample_blocks_device_stream_t0')

    op.drop_table('sample_blocks')
    op.drop_table('epochs')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_devices_patient_id'))

    op.drop_table('devices')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_user_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_patient_id'))

    op.drop_table('audit_log')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_therapist_id'))

    op.drop_table('patients')
    op.drop_table('users')
