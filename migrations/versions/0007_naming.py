"""constraint names from one naming convention (app.core.database.NAMING_CONVENTION)

Revision ID: 0007_naming
Revises: 0007_web_flash
Create Date: 2026-12-03

Generic on purpose: it reads the live names with the inspector and renames each primary
key, foreign key and unique constraint whose name differs from the convention, so it does
the right thing wherever it stands in the chain (whatever tables the revisions before it
made).

- PostgreSQL: ALTER TABLE ... RENAME CONSTRAINT (a primary key's or unique constraint's
  index is renamed with it). Only names change; no table is rewritten or locked for long.
- SQLite: skipped. Its constraints are mostly unnamed inside CREATE TABLE, renaming one
  means copying the table (batch mode), and nothing on SQLite reads a constraint's name
  (its errors do not give one), so the names are left as they are.
- Indexes: not renamed. Every index is named in the models, `ix_<table>_<columns>` as the
  convention says, or on purpose otherwise (`ix_callback_requests_unpurged`, a partial
  index named for what it holds); the convention only names the unnamed ones.
- Check constraints: the schema has none with a name to follow.

The templates are copied here, not imported: a revision keeps doing what it did when it was
written, whatever the application's code says later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_naming"
down_revision: str | None = "0007_web_flash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX_NAME = 63  # PostgreSQL's identifier length; a longer name is left alone


def _wanted(table: str, inspector: sa.Inspector) -> list[tuple[str, str]]:
    """(live name, convention name) of each named constraint of `table`."""
    pairs: list[tuple[str | None, str]] = []
    pk = inspector.get_pk_constraint(table)
    if pk.get("constrained_columns"):
        pairs.append((pk.get("name"), f"pk_{table}"))
    for fk in inspector.get_foreign_keys(table):
        column = fk["constrained_columns"][0]
        pairs.append((fk.get("name"), f"fk_{table}_{column}_{fk['referred_table']}"))
    for unique in inspector.get_unique_constraints(table):
        pairs.append((unique.get("name"), f"uq_{table}_{'_'.join(unique['column_names'])}"))
    return [
        (live, wanted)
        for live, wanted in pairs
        if live and live != wanted and len(wanted) <= _MAX_NAME
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        for live, wanted in _wanted(table, inspector):
            op.execute(sa.text(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{live}" TO "{wanted}"'))


def downgrade() -> None:
    # Names are not behaviour: no earlier revision's code refers to one, so going back
    # leaves the convention's names in place.
    pass
