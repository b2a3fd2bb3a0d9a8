"""audit events; an index of the call back requests whose caller's details are still held

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=16), nullable=False),
    sa.Column('actor_key_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('record_type', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_org_at_id', ['org', 'at', 'id'], unique=False)

    # Partial: only the rows a purge still has to look at, so the hourly check stays small
    # however many purged requests pile up.
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.create_index(
            'ix_callback_requests_unpurged',
            ['requested_at'],
            unique=False,
            postgresql_where=sa.text('personal_data_purged_at IS NULL'),
            sqlite_where=sa.text('personal_data_purged_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_requests_unpurged')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_org_at_id')
    op.drop_table('audit_events')
