"""feedback's working days to its answer, for the report (issue 17)

Revision ID: 0013_feedback_times
Revises: 0012_feedback_answers
Create Date: 2026-12-03

`response_working_days` holds the England and Wales working days from the UK date a feedback
was submitted to the UK date it was answered, written by app/feedback/lifecycle.py when it is
answered, so that the report takes the median in SQL (bank holidays are not in the database).
Feedback already answered is filled here with the same rule. `ix_feedback_responded_at` (partial:
answered rows only) serves the report's count of answers in a month.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013_feedback_times"
down_revision: str | None = "0012_feedback_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fill() -> None:
    from app.feedback.lifecycle import response_working_days

    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, submitted_at, responded_at FROM feedback WHERE responded_at IS NOT NULL"
        )
    ).all()
    update = sa.text("UPDATE feedback SET response_working_days = :days WHERE id = :id")
    for row in rows:
        days = response_working_days(_aware(row.submitted_at), _aware(row.responded_at))
        connection.execute(update, {"id": row.id, "days": days})


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_working_days", sa.Integer(), nullable=True))
    _fill()
    op.create_index(
        "ix_feedback_responded_at",
        "feedback",
        ["responded_at"],
        postgresql_where=sa.text("responded_at IS NOT NULL"),
        sqlite_where=sa.text("responded_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_responded_at", table_name="feedback")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("response_working_days")
