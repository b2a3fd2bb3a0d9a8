"""the report both bodies sign: one signature per body and version (issue 17)

Revision ID: 0014_signing
Revises: 0012_feedback_answers
Create Date: 2026-12-03

A version is complete once every body of the report has signed it. Each existing publication
becomes a complete legacy version signed by the one body that published it, with its note,
complete when it was published. api_keys.role widens to 32 characters for
`relationship_owner` (SQLite does not enforce a length, so only other databases change).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_signing"
down_revision: str | None = "0013_feedback_times"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "api_keys", "role", type_=sa.String(length=32), existing_type=sa.String(length=16)
        )
    op.add_column(
        "report_publications",
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "report_publications",
        sa.Column("legacy", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "report_signatures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("publication_id", sa.Uuid(), nullable=False),
        sa.Column("org", sa.String(length=32), nullable=False),
        sa.Column("fluctuation_note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_by_key_id", sa.Uuid(), nullable=False),
        sa.Column("signed_by_name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["report_publications.id"],
            name="fk_report_signatures_publication_id_report_publications",
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_key_id"],
            ["api_keys.id"],
            name="fk_report_signatures_signed_by_key_id_api_keys",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_report_signatures"),
        sa.UniqueConstraint(
            "publication_id", "org", name="uq_report_signatures_publication_id_org"
        ),
    )
    publications = sa.table(
        "report_publications",
        sa.column("id", sa.Uuid()),
        sa.column("published_at", sa.DateTime(timezone=True)),
        sa.column("completed_at", sa.DateTime(timezone=True)),
        sa.column("legacy", sa.Boolean()),
        sa.column("fluctuation_note", sa.Text()),
        sa.column("published_by_key_id", sa.Uuid()),
        sa.column("published_by_org", sa.String()),
        sa.column("published_by_name", sa.String()),
    )
    # The one body's signature of each existing publication: its id is the publication's (one
    # signature each), so no id needs making in SQL.
    op.execute(
        sa.text(
            "INSERT INTO report_signatures (id, publication_id, org, fluctuation_note, "
            "signed_at, signed_by_key_id, signed_by_name) "
            "SELECT id, id, published_by_org, fluctuation_note, published_at, "
            "published_by_key_id, published_by_name FROM report_publications"
        )
    )
    op.execute(
        publications.update().values(completed_at=publications.c.published_at, legacy=sa.true())
    )


def downgrade() -> None:
    op.drop_table("report_signatures")
    with op.batch_alter_table("report_publications", schema=None) as batch_op:
        batch_op.drop_column("legacy")
        batch_op.drop_column("completed_at")
