"""report notices: the report's reminders and completion notices, each queued once (issue 17)

Revision ID: 0015_report_notices
Revises: 0012_feedback_answers
Create Date: 2026-12-03

One row per notice (month, kind, version, mailbox), written in the same transaction as its
outbox message; the unique key is what makes each notice go once, across workers and restarts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_report_notices"
down_revision = "0014_signing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(length=32), nullable=False),
        sa.Column("mailbox", sa.String(length=254), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_notices"),
        sa.UniqueConstraint(
            "month",
            "kind",
            "version",
            "mailbox",
            name="uq_report_notices_month_kind_version_mailbox",
        ),
    )


def downgrade() -> None:
    op.drop_table("report_notices")
