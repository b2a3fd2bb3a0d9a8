"""The one-request failure's new records, written in one statement: the service's hot path.

A failed transfer recorded in the request that starts it makes six new rows (the transfer,
its call back request, the caller's details, the outbox message and two audit rows). They
are written with plain INSERTs rather than through the unit of work: on PostgreSQL one
statement, one round trip.
"""

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.database import Base
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


_INSERT_NEW_RECORDS = _one_statement_insert()
_INSERTS_ONE_BY_ONE = tuple(table.insert() for table in _NEW_RECORD_TABLES)
# Per table, each column's attribute and its bind name in the one statement: worked out once,
# not on every request.
_COLUMN_KEYS: tuple[tuple[tuple[str, str], ...], ...] = tuple(
    tuple((column.key, f"r{n}_{column.name}") for column in table.columns)
    for n, table in enumerate(_NEW_RECORD_TABLES)
)


async def insert(session: AsyncSession, *records: Base) -> None:
    """Write new transfer, call back request, caller details, outbox and two audit rows.

    On PostgreSQL one statement; elsewhere (SQLite) one INSERT per table. The objects stay
    outside the session: they are the values written, returned to the caller as they are.
    """
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
