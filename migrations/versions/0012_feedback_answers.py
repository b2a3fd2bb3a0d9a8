"""feedback that gets an answer: its state, acknowledgement and response (issue 17)

Revision ID: 0012_feedback_answers
Revises: 0011_outcomes
Create Date: 2026-12-03

Existing feedback becomes `submitted`, version 1: nobody has answered it yet. The body it is
about reads its list by `ix_feedback_about_org_submitted_at`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_feedback_answers"
down_revision: str | None = "0011_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), server_default="submitted", nullable=False)
        )
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by_key_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("responded_by_key_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("remedial_action", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("training_issue", sa.Boolean(), nullable=True))
        batch_op.create_foreign_key(
            "fk_feedback_acknowledged_by_key_id_api_keys",
            "api_keys",
            ["acknowledged_by_key_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "fk_feedback_responded_by_key_id_api_keys", "api_keys", ["responded_by_key_id"], ["id"]
        )
        batch_op.create_index(
            "ix_feedback_about_org_submitted_at", ["about_org", "submitted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_about_org_submitted_at")
        batch_op.drop_constraint("fk_feedback_responded_by_key_id_api_keys", type_="foreignkey")
        batch_op.drop_constraint("fk_feedback_acknowledged_by_key_id_api_keys", type_="foreignkey")
        for column in (
            "training_issue",
            "remedial_action",
            "responded_by_key_id",
            "responded_at",
            "acknowledged_by_key_id",
            "acknowledged_at",
            "version",
            "state",
        ):
            batch_op.drop_column(column)
