"""Constraint and index names: the models' naming convention, and a migrated PostgreSQL
database that has the same names (migration 0009_naming renamed what differed)."""

import asyncio

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Inspector, UniqueConstraint, inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.database import NAMING_CONVENTION
from app.core.migrate import alembic_config, upgrade_async
from app.models import Base


def _model_names() -> dict[str, set[str]]:
    """Per table, the name of each primary key, foreign key, unique constraint and index the
    models give (explicitly or by the convention), as PostgreSQL would be told them."""
    preparer = postgresql.dialect().identifier_preparer
    names: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        constraints = [
            table.primary_key,
            *table.foreign_key_constraints,
            *(c for c in table.constraints if isinstance(c, UniqueConstraint)),
        ]
        names[table.name] = {preparer.format_constraint(c) for c in constraints} | {
            preparer.format_constraint(index) for index in table.indexes
        }
    return names


def _live_names(inspector: Inspector) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        found = {inspector.get_pk_constraint(table)["name"]}
        found |= {fk["name"] for fk in inspector.get_foreign_keys(table)}
        found |= {uq["name"] for uq in inspector.get_unique_constraints(table)}
        found |= {
            index["name"]
            for index in inspector.get_indexes(table)
            if not index.get("duplicates_constraint")
        }
        names[table] = found
    return names


def test_the_models_name_every_constraint_by_the_convention() -> None:
    assert Base.metadata.naming_convention == {
        **Base.metadata.naming_convention,
        **NAMING_CONVENTION,
    }
    for table, names in _model_names().items():
        assert f"pk_{table}" in names
        assert all(name.startswith(("pk_", "fk_", "uq_", "ix_")) for name in names), names


@pytest.mark.asyncio
async def test_a_migrated_postgresql_database_has_the_models_names(
    database_url: str, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("SQLite keeps its names: 0009_naming leaves them (nothing reads them there)")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            live = await connection.run_sync(lambda sync: _live_names(inspect(sync)))
    finally:
        await engine.dispose()
    assert live == _model_names()


def _pg_default_names(inspector: Inspector) -> list[tuple[str, str, str]]:
    """(table, convention name, the name PostgreSQL gives an unnamed one) of every
    constraint: what a database made before the convention has."""
    found = []
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        pk = inspector.get_pk_constraint(table)
        found.append((table, pk["name"], f"{table}_pkey"))
        for fk in inspector.get_foreign_keys(table):
            found.append((table, fk["name"], f"{table}_{fk['constrained_columns'][0]}_fkey"))
        for uq in inspector.get_unique_constraints(table):
            found.append((table, uq["name"], f"{table}_{'_'.join(uq['column_names'])}_key"))
    return found


@pytest.mark.asyncio
async def test_the_naming_migration_renames_the_names_of_a_database_made_before_it(
    database_url: str, is_postgres: bool
) -> None:
    """A database migrated before the convention has PostgreSQL's own names (transfers_pkey,
    ..._fkey, ..._key); upgrading through 0009_naming gives it the models' names."""
    if not is_postgres:
        pytest.skip("0009_naming renames nothing on SQLite")
    before = ScriptDirectory.from_config(alembic_config(database_url)).get_revision("0009_naming")
    # Back to 0009_naming first: the revisions after it are undone, so that they can be
    # applied again after it, whatever they add.
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0009_naming")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            renames = await connection.run_sync(lambda sync: _pg_default_names(inspect(sync)))
            for table, ours, theirs in renames:
                await connection.execute(
                    text(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{ours}" TO "{theirs}"')
                )
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": before.down_revision}
            )
        await upgrade_async(database_url)
        async with engine.connect() as connection:
            live = await connection.run_sync(lambda sync: _live_names(inspect(sync)))
    finally:
        await engine.dispose()
        await upgrade_async(database_url)
    assert renames and live == _model_names()
