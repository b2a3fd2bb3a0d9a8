"""index of the outbox messages waiting for their time, in the order the worker claims them

Revision ID: 0017_outbox_due
Revises: 0016_open_records
Create Date: 2026-12-06

The worker claims the messages due (pending, or retrying from their time) oldest first, by
`(next_attempt_at, id)`. The index on `(status, next_attempt_at)` cannot give two statuses in
that order, so PostgreSQL read every message the table holds, sent ones included, and sorted
the due ones for each batch: a claim's cost grew with the table's history (3 ms a batch at
5,000 messages). This partial index holds only the messages waiting, in the claim's order: a
batch is read from its first entries, whatever the history, and a message leaves it when it
is claimed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_outbox_due"
down_revision = "0016_open_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status IN ('pending', 'retrying')")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_messages_due",
        "outbox_messages",
        ["next_attempt_at", "id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_due", table_name="outbox_messages")
