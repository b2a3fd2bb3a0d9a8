"""the life of a call back request: state, outcome, due times, attempts

Revision ID: 0008_callback_lifecycle
Revises: 0007_web_flash
Create Date: 2026-12-03

Existing requests become `requested`, version 1, with their due times computed from the
route table (the default one, plus HANDOFF_ROUTES_FILE when set) as of their requested_at.
A request whose route is no longer in the table is due at once (its requested_at).
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op


revision: str = '0008_callback_lifecycle'
down_revision: str | None = "0007_web_flash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(value: datetime, dialect: str) -> datetime:
    # As app.core.database.UTCDateTime stores it: naive UTC on SQLite.
    return value.replace(tzinfo=None) if dialect == 'sqlite' else value


def _fill_due_times() -> None:
    from app.protocol.routes import load_table

    extra = os.environ.get('HANDOFF_ROUTES_FILE')
    table = load_table(Path(extra) if extra else None)
    connection = op.get_bind()
    dialect = connection.dialect.name
    rows = connection.execute(
        sa.text('SELECT id, from_org, to_org, requested_at FROM callback_requests')
    ).all()
    update = sa.text(
        'UPDATE callback_requests SET first_attempt_due_at = :first, close_due_at = :close '
        'WHERE id = :id'
    )
    for row in rows:
        requested_at = _aware(row.requested_at)
        route = table.route(row.from_org, row.to_org)
        if route is not None:
            first, close = table.callback_due(route, requested_at)
        else:
            first = close = requested_at
        connection.execute(
            update,
            {
                'id': row.id,
                'first': _stored(first, dialect),
                'close': _stored(close, dialect),
            },
        )


def upgrade() -> None:
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='requested', nullable=False))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('return_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by_key_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_by_key_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('first_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_attempt_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('close_due_at', sa.DateTime(timezone=True), nullable=True))

    _fill_due_times()

    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.alter_column('first_attempt_due_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column('close_due_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_foreign_key(
            'fk_callback_requests_acknowledged_by_key_id', 'api_keys', ['acknowledged_by_key_id'], ['id']
        )
        batch_op.create_foreign_key(
            'fk_callback_requests_closed_by_key_id', 'api_keys', ['closed_by_key_id'], ['id']
        )
        batch_op.create_index('ix_callback_requests_incoming_state', ['to_org', 'state', 'close_due_at', 'id'], unique=False)
        batch_op.create_index('ix_callback_requests_incoming', ['to_org', 'close_due_at', 'id'], unique=False)
        batch_op.create_index('ix_callback_requests_outgoing_state', ['from_org', 'state', 'requested_at', 'id'], unique=False)

    op.create_table('callback_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('callback_request_id', sa.Uuid(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_key_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['callback_request_id'], ['callback_requests.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_callback_attempts_request_attempted_at', ['callback_request_id', 'attempted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('callback_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_attempts_request_attempted_at')
    op.drop_table('callback_attempts')
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_requests_outgoing_state')
        batch_op.drop_index('ix_callback_requests_incoming')
        batch_op.drop_index('ix_callback_requests_incoming_state')
        batch_op.drop_constraint('fk_callback_requests_closed_by_key_id', type_='foreignkey')
        batch_op.drop_constraint('fk_callback_requests_acknowledged_by_key_id', type_='foreignkey')
        for column in (
            'close_due_at', 'first_attempt_due_at', 'first_attempt_at', 'closed_by_key_id',
            'closed_at', 'acknowledged_by_key_id', 'acknowledged_at', 'version',
            'return_reason', 'outcome', 'state',
        ):
            batch_op.drop_column(column)
