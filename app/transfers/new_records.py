"""The one-request failure's new records, written in one statement: the service's hot path.

A failed transfer recorded in the request that starts it makes six new rows (the transfer,
its call back request, the caller's details, the outbox message and two audit rows). They
are written with plain INSERTs rather than through the unit of work: on PostgreSQL one
statement, one round trip.

On PostgreSQL, when the request's transaction holds nothing else (no Idempotency-Key answer
to store with it, nothing read or added), that statement is its own transaction: it runs
straight on the driver (core.database.execute_alone), with no BEGIN and no COMMIT around it.
While anything listens to the engine's statements (`before_cursor_execute`: SQL logging,
tracing, the tests' injected faults), it goes through SQLAlchemy in the request's
transaction instead, so that they see it.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import Dialect, Table, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.database import Base, RequestSession, execute_alone
from app.outbox.models import OutboxMessage
from app.transfers.models import Transfer

# Parents before children, as the foreign keys need; then the two audit rows (the transfer's
# and the call back request's), which have no foreign keys.
_NEW_RECORD_TABLES: tuple[Table, ...] = (
    Transfer.__table__,  # type: ignore[assignment]
    CallbackRequest.__table__,  # type: ignore[assignment]
    CallerDetails.__table__,  # type: ignore[assignment]
    OutboxMessage.__table__,  # type: ignore[assignment]
    AuditEvent.__table__,  # type: ignore[assignment]
    AuditEvent.__table__,  # type: ignore[assignment]
)


def _one_statement_insert() -> TextClause:
    """WITH t AS (INSERT ...), c AS (INSERT ...), d AS (INSERT ...) INSERT ...: one round trip.

    PostgreSQL checks the foreign keys at the end of the statement, when every row is in.
    Built once, with each table's column types, so values are bound as the ORM binds them.
    """
    inserts, binds = [], []
    for n, table in enumerate(_NEW_RECORD_TABLES):
        names = [column.name for column in table.columns]
        inserts.append(
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(f':r{n}_{name}' for name in names)})"
        )
        binds += [bindparam(f"r{n}_{c.name}", type_=c.type) for c in table.columns]
    ctes = ", ".join(f"r{n} AS ({sql})" for n, sql in enumerate(inserts[:-1]))
    return text(f"WITH {ctes} {inserts[-1]}").bindparams(*binds)


# Per table, each column's attribute and its bind name in the one statement: worked out once,
# not on every request.
_COLUMN_KEYS: tuple[tuple[tuple[str, str], ...], ...] = tuple(
    tuple((column.key, f"r{n}_{column.name}") for column in table.columns)
    for n, table in enumerate(_NEW_RECORD_TABLES)
)


def _positional(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """The one statement with the driver's positional parameters ($1, $2, ...) in place of
    the named ones, and the names in their order (table by table, column by column)."""
    names = tuple(bind for keys in _COLUMN_KEYS for _, bind in keys)
    sql = str(statement)
    for number, name in sorted(enumerate(names, start=1), key=lambda n: -len(n[1])):
        sql = sql.replace(f":{name}", f"${number}")
    return sql, names


_INSERT_NEW_RECORDS = _one_statement_insert()
_POSITIONAL_SQL, _POSITIONAL_NAMES = _positional(_INSERT_NEW_RECORDS)
_TRANSFER_ID = _POSITIONAL_NAMES.index("r0_id")
# Whether the first run of the statement saved its rows (the transfer's id, $1): see
# core.database.execute_alone.
_SAVED = "SELECT EXISTS (SELECT 1 FROM transfers WHERE id = $1)"
_INSERTS_ONE_BY_ONE = tuple(table.insert() for table in _NEW_RECORD_TABLES)


Binder = tuple[tuple[int, str, Callable[[Any], Any] | None], ...]
_binders: dict[str, Binder] = {}


def _binder(dialect: Dialect) -> Binder:
    """Per value of the positional statement: its record, its attribute, and the conversion
    its column's type makes for `dialect` (as SQLAlchemy binds it), worked out once."""
    found = _binders.get(dialect.name)
    if found is None:  # in the order of `_POSITIONAL_NAMES`: table by table, column by column
        found = _binders[dialect.name] = tuple(
            (n, column.key, column.type.bind_processor(dialect))
            for n, table in enumerate(_NEW_RECORD_TABLES)
            for column in table.columns
        )
    return found


def _alone(session: AsyncSession, engine: AsyncEngine) -> bool:
    """Whether the statement can be its own transaction (see the module's docstring)."""
    return (
        engine.dialect.name == "postgresql"
        and not (isinstance(session, RequestSession) and session.commit_held)
        and not session.in_transaction()
        and not engine.sync_engine.dispatch.before_cursor_execute
    )


async def insert(session: AsyncSession, *records: Base) -> None:
    """Write new transfer, call back request, caller details, outbox and two audit rows.

    On PostgreSQL one statement (its own transaction when it can be); elsewhere (SQLite) one
    INSERT per table. The objects stay outside the session: they are the values written,
    returned to the caller as they are.
    """
    engine = session.bind
    if isinstance(engine, AsyncEngine) and _alone(session, engine):
        held = [vars(record) for record in records]
        args = []
        for n, key, convert in _binder(engine.dialect):
            value = held[n].get(key)
            args.append(value if convert is None else convert(value))
        await execute_alone(engine, _POSITIONAL_SQL, args, saved=_SAVED, key=args[_TRANSFER_ID])
        return
    # The session's connection and transaction, without the ORM's execution layer on top.
    connection = await session.connection()
    # Each object's values as its instance dict holds them: what reading each attribute
    # would give for an object no session has seen (a column never set is None), without the
    # attribute machinery.
    columns = [(keys, vars(record)) for keys, record in zip(_COLUMN_KEYS, records, strict=True)]
    if connection.dialect.name == "postgresql":
        params = {bind: values.get(key) for keys, values in columns for key, bind in keys}
        await connection.execute(_INSERT_NEW_RECORDS, params)
        return
    for insert, (keys, values) in zip(_INSERTS_ONE_BY_ONE, columns, strict=True):
        await connection.execute(insert, {key: values.get(key) for key, _ in keys})
