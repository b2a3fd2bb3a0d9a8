"""the outcomes a warm transfer really has, and contact reasons

Revision ID: 0011_outcomes
Revises: 0009_naming
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
down_revision: str | None = "0009_naming"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=24)
        )
        batch_op.add_column(
            sa.Column(
                "answered_after_threshold", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(sa.Column("contact_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("signposts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signposts", schema=None) as batch_op:
        batch_op.drop_column("contact_reason")
    # The old service knows no other ending: a transfer that ended otherwise was still waiting.
    op.execute(
        "UPDATE transfers SET status = 'waiting', outcome_at = NULL "
        "WHERE status NOT IN ('waiting', 'connected', 'failed')"
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("contact_reason")
        batch_op.drop_column("answered_after_threshold")
        batch_op.alter_column(
            "status", existing_type=sa.String(length=24), type_=sa.String(length=16)
        )
