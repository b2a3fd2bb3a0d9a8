"""Independent reads run at once, each on its own PostgreSQL connection, all seeing the
database as it was at one moment.

The request's session exports its snapshot (`pg_export_snapshot()`); each read runs in a
REPEATABLE READ, READ ONLY transaction of the side engine (app/core/database.py) that imports
it (`SET TRANSACTION SNAPSHOT`), so the figures of one report agree with each other however
the database changes meanwhile. A read whose side connection is found dead runs once more on
a fresh one. On SQLite, or given a session not bound to an engine, the
reads run one after the other on the session itself.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.database import reconnecting, side_engine

Read = Callable[[AsyncSession], Awaitable[Any]]

# What pg_export_snapshot() returns (hex virtual transaction id, hex number, serial number).
_SNAPSHOT = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


async def side_by_side(session: AsyncSession, *reads: Read) -> list[Any]:
    """The result of each read, in order. The reads must only read: what the session wrote
    and has not committed is not seen by them on PostgreSQL."""
    engine = session.bind
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "postgresql":
        return [await read(session) for read in reads]
    snapshot = str(await session.scalar(text("SELECT pg_export_snapshot()")))
    if not _SNAPSHOT.fullmatch(snapshot):  # never seen; it is put into a statement below
        raise ValueError("unexpected snapshot id")
    side = side_engine(engine)

    async def run(read: Read) -> Any:
        # Each read is a transaction of its own: `reconnecting` runs it once more on a fresh
        # connection if its connection was dead (the snapshot stays importable while the
        # session's transaction lives), and notes its COMMIT apart from the request's, whose
        # own retry must not be given up because a read committed.
        return await reconnecting(lambda: run_once(read))

    async def run_once(read: Read) -> Any:
        async with side.connect() as connection:
            repeatable = await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with repeatable.begin():
                await repeatable.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                async with AsyncSession(bind=repeatable) as reader:
                    return await read(reader)

    try:
        async with asyncio.TaskGroup() as group:  # one failing cancels the others
            tasks = [group.create_task(run(read)) for read in reads]
    except ExceptionGroup as failed:  # the first failure, as the reads one by one would raise
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]
