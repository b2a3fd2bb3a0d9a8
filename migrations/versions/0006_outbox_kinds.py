"""outbox messages name their record by kind and subject id, not a foreign key per kind

Revision ID: 0006_outbox_kinds
Revises: 0005_http
Create Date: 2026-12-10

Each existing row keeps its kind (`callback_request` or `feedback`); its `subject_id` is the
id it had in `callback_request_id` or `feedback_id`. One message per kind and subject, as the
two unique columns gave before. The outbox has no foreign key to a sender's table any more.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006_outbox_kinds"
down_revision: str | None = "0005_http"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = "uq_outbox_messages_kind_subject_id"


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE outbox_messages SET subject_id = CASE kind"
        " WHEN 'callback_request' THEN callback_request_id"
        " WHEN 'feedback' THEN feedback_id"
        " ELSE COALESCE(callback_request_id, feedback_id) END"
    )
    # On PostgreSQL dropping a column drops its foreign key and unique constraint with it;
    # on SQLite the batch copies the table without them.
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.alter_column("subject_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("callback_request_id")
        batch_op.drop_column("feedback_id")
        batch_op.create_unique_constraint(UNIQUE, ["kind", "subject_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_request_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("feedback_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE outbox_messages SET"
        " callback_request_id = CASE WHEN kind = 'callback_request' THEN subject_id END,"
        " feedback_id = CASE WHEN kind = 'feedback' THEN subject_id END"
    )
    # Messages of kinds added since have no column to go back to.
    op.execute("DELETE FROM outbox_messages WHERE kind NOT IN ('callback_request', 'feedback')")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint(UNIQUE, type_="unique")
        batch_op.drop_column("subject_id")
        batch_op.create_unique_constraint(
            "outbox_messages_callback_request_id_key", ["callback_request_id"]
        )
        batch_op.create_unique_constraint("outbox_messages_feedback_id_key", ["feedback_id"])
        batch_op.create_foreign_key(
            "outbox_messages_callback_request_id_fkey",
            "callback_requests",
            ["callback_request_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "outbox_messages_feedback_id_fkey", "feedback", ["feedback_id"], ["id"]
        )
