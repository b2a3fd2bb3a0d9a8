"""indexes of the call back requests and feedback still open, for the report's "open at month end"

Revision ID: 0016_open_records
Revises: 0015_report_notices
Create Date: 2026-12-04

The report counts, per direction, the requests open at each month's end: made before it and
not closed by then (closed later, or not yet). The ones closed later are a range of the partial
index on `closed_at`; the ones not closed yet had no index, so every request ever made was
read (a sequential scan growing with the table's history). This partial index holds only the
open requests, by `requested_at`: with it PostgreSQL reads both parts through their indexes
(a BitmapOr), whatever the history. Feedback not answered yet gets the same kind of index, for
the feedback figures' "not answered at the month's end".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_open_records"
down_revision = "0015_report_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_callback_requests_open",
        "callback_requests",
        ["requested_at"],
        postgresql_where=sa.text("closed_at IS NULL"),
        sqlite_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_feedback_unanswered",
        "feedback",
        ["submitted_at"],
        postgresql_where=sa.text("responded_at IS NULL"),
        sqlite_where=sa.text("responded_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_unanswered", table_name="feedback")
    op.drop_index("ix_callback_requests_open", table_name="callback_requests")
