"""the outcomes a warm transfer really has, and contact reasons

Revision ID: 0011_outcomes
Revises: 0010_callback_times
Create Date: 2026-12-03

- transfers.status widens to 24 characters for `no_outcome_recorded` (besides `declined` and
  `caller_hung_up`, which fit the old 16).
- transfers.answered_after_threshold: connected, but after the wait threshold (false for every
  transfer recorded before: the service refused those).
- transfers.contact_reason and signposts.contact_reason: one of the receiving body's reasons
  in the route table, or NULL (every record before this revision).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0011_outcomes"
down_revision: str | None = "0010_callback_times"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


# On SQLite columns are added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN), never by
# batch mode's copy of the table: call back requests refer to transfers, and dropping the old
# copy would break their foreign keys. SQLite does not enforce a VARCHAR's length, so the
# wider status needs no change there.


def upgrade() -> None:
    if not _sqlite():
        op.alter_column(
            "transfers", "status", existing_type=sa.String(length=16), type_=sa.String(length=24)
        )
    op.add_column(
        "transfers",
        sa.Column(
            "answered_after_threshold", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    op.add_column("transfers", sa.Column("contact_reason", sa.String(length=32), nullable=True))
    op.add_column("signposts", sa.Column("contact_reason", sa.String(length=32), nullable=True))


def _drop(table: str, column: str) -> None:
    if _sqlite():
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    # The old service knows no other ending: a transfer that ended otherwise was still waiting.
    op.execute(
        "UPDATE transfers SET status = 'waiting', outcome_at = NULL "
        "WHERE status NOT IN ('waiting', 'connected', 'failed')"
    )
    _drop("signposts", "contact_reason")
    _drop("transfers", "contact_reason")
    _drop("transfers", "answered_after_threshold")
    if not _sqlite():
        op.alter_column(
            "transfers", "status", existing_type=sa.String(length=24), type_=sa.String(length=16)
        )
