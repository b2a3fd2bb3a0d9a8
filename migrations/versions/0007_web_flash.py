"""a refused form's values and problems kept for the page it redirects to

Revision ID: 0007_web_flash
Revises: 0006_outbox_kinds
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007_web_flash'
down_revision: str | None = "0006_outbox_kinds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flash', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('flash_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_column('flash_at')
        batch_op.drop_column('flash')
