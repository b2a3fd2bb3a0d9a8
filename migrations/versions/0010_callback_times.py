"""call back requests' working time to the first attempt and to closing, for the report

Revision ID: 0010_callback_times
Revises: 0009_naming
Create Date: 2026-12-03

Two columns hold the working seconds (in the receiving body's opening hours) from the
request to its first attempt and to its closing, written by app/callbacks/lifecycle.py when
the transition happens, so that the report aggregates them in SQL (medians, 90th
percentiles). Existing rows are filled from the route table as it is now (the default one,
plus HANDOFF_ROUTES_FILE when set); a request whose receiving body is no longer in the table
is left NULL and counts in no time figure.

Three indexes serve the report's ranges over the month: requests made by `requested_at`,
first attempts by `first_attempt_at` and closings by `closed_at` (the last two partial: only
the rows that have one).
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op


revision: str = '0010_callback_times'
down_revision: str | None = '0009_naming'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fill() -> None:
    from app.core.working_time import working_seconds_between
    from app.protocol.routes import load_table

    extra = os.environ.get('HANDOFF_ROUTES_FILE')
    table = load_table(Path(extra) if extra else None)
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            'SELECT id, to_org, requested_at, first_attempt_at, closed_at FROM callback_requests '
            'WHERE first_attempt_at IS NOT NULL OR closed_at IS NOT NULL'
        )
    ).all()
    update = sa.text(
        'UPDATE callback_requests SET first_attempt_working_seconds = :first, '
        'close_working_seconds = :close WHERE id = :id'
    )
    for row in rows:
        body = table.body(row.to_org)
        if body is None:
            continue
        requested_at = _aware(row.requested_at)
        assert requested_at is not None

        def seconds(moment: datetime | None) -> float | None:
            if moment is None:
                return None
            return working_seconds_between(
                requested_at, max(moment, requested_at), body.opening_hours
            )

        connection.execute(
            update,
            {
                'id': row.id,
                'first': seconds(_aware(row.first_attempt_at)),
                'close': seconds(_aware(row.closed_at)),
            },
        )


def upgrade() -> None:
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_attempt_working_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('close_working_seconds', sa.Float(), nullable=True))
    _fill()
    op.create_index('ix_callback_requests_requested_at', 'callback_requests', ['requested_at'])
    op.create_index(
        'ix_callback_requests_first_attempt_at', 'callback_requests', ['first_attempt_at'],
        postgresql_where=sa.text('first_attempt_at IS NOT NULL'),
        sqlite_where=sa.text('first_attempt_at IS NOT NULL'),
    )
    op.create_index(
        'ix_callback_requests_closed_at', 'callback_requests', ['closed_at'],
        postgresql_where=sa.text('closed_at IS NOT NULL'),
        sqlite_where=sa.text('closed_at IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_callback_requests_closed_at', table_name='callback_requests')
    op.drop_index('ix_callback_requests_first_attempt_at', table_name='callback_requests')
    op.drop_index('ix_callback_requests_requested_at', table_name='callback_requests')
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_column('close_working_seconds')
        batch_op.drop_column('first_attempt_working_seconds')
