"""Engine, session factory, and the declarative base shared by every domain's models.

Connections are not pinged when taken from the pool (that costs a round trip per
transaction). A connection found dead when first used is discarded, with the rest of the
pool (SQLAlchemy's optimistic disconnect handling), and `reconnecting` runs the request's
whole transaction once more on a fresh one, provided it had not reached its COMMIT.
"""

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC out, on SQLite (which has no zones) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are never stored")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every stored value has the same (naive UTC) form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# How constraints and indexes the models do not name are named: the same on every database,
# so a later migration can refer to them. Migration 0009_naming renamed the existing ones.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_column_names: dict[type, frozenset[str]] = {}


def _columns_of(cls: type) -> frozenset[str]:
    """The names of `cls`'s column attributes (worked out once per class)."""
    found = _column_names.get(cls)
    if found is None:
        found = _column_names[cls] = frozenset(sa_inspect(cls).column_attrs.keys())
    return found


def _constructor(self: Any, **kwargs: Any) -> None:
    """SQLAlchemy's declarative constructor, except that a column's value goes straight into
    the instance's dict rather than through the attribute's change events: a new object has
    no earlier value to compare, and a flush's INSERT reads the dict. Anything else (a
    relationship) is set as before, with its events."""
    cls = type(self)
    columns = _columns_of(cls)
    values = self.__dict__
    for key, value in kwargs.items():
        if key in columns:
            values[key] = value
        elif hasattr(cls, key):
            setattr(self, key, value)
        else:
            raise TypeError(f"{key!r} is an invalid keyword argument for {cls.__name__}")


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION), constructor=_constructor
    )


logger = logging.getLogger("handoff.database")
T = TypeVar("T")


class DatabaseUnreachable(ConnectionError):
    """No connection to the database could be made: refused, timed out, or it is starting or
    shutting down. Raised in place of the driver's own error (asyncpg raises OSError)."""


# SQLSTATEs meaning the connection is gone: connection exceptions (08), the server shutting
# down or restarting (57P01-57P03); or that none can be had now: too many connections (53300).
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_UNAVAILABLE_SQLSTATES = (*_LOST_SQLSTATES, "53300")


def _sqlstate(error: BaseException | None) -> str:
    return str(getattr(error, "sqlstate", None) or getattr(error, "pgcode", None) or "")


def _on_error(context: ExceptionContext) -> None:
    state = _sqlstate(context.original_exception)
    if state and state.startswith(_LOST_SQLSTATES):
        context.is_disconnect = True  # discard this connection (and the pool's others)


def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        # A driver error the pool would pass on as it is (asyncpg raises OSError when refused).
        if isinstance(error, dialect.loaded_dbapi.Error):
            raise
        state = _sqlstate(error)
        if isinstance(error, OSError | TimeoutError) or (
            state and state.startswith(_UNAVAILABLE_SQLSTATES)
        ):
            raise DatabaseUnreachable(type(error).__name__) from error
        raise


def connection_lost(error: BaseException) -> bool:
    """The connection died under a statement or a commit (and has been discarded)."""
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def database_unavailable(error: BaseException) -> bool:
    """The database cannot be used for now: the request deserves 503, not 500."""
    if isinstance(error, DatabaseUnreachable | sa_exc.TimeoutError):  # no connection to be had
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    return (
        error.connection_invalidated
        or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
        or (_sqlstate(error.orig) or "-").startswith(_UNAVAILABLE_SQLSTATES)
    )


class Attempt:
    """One run of a request's transaction: whether it has sent a COMMIT (or anything after
    which running it again could save it twice)."""

    def __init__(self) -> None:
        self.committing = False


_attempt: ContextVar[Attempt | None] = ContextVar("database_attempt", default=None)


def _on_commit(_connection: Any) -> None:
    attempt = _attempt.get()
    if attempt is not None:
        attempt.committing = True


@contextmanager
def tracking_commits() -> Iterator[Attempt]:
    """Note whether the code run inside sends a COMMIT on any of the app's engines."""
    attempt = Attempt()
    token = _attempt.set(attempt)
    try:
        yield attempt
    finally:
        _attempt.reset(token)


async def reconnecting(run: Callable[[], Awaitable[T]]) -> T:
    """`run()`, and once more if its connection was found dead before it sent its COMMIT.

    Whatever failed stays unsaved then (the server rolls back a transaction whose connection
    is gone), so running it again on a fresh connection cannot save anything twice. A COMMIT
    cut off is not retried here: whether it was saved is unknown.
    """
    with tracking_commits() as attempt:
        try:
            return await run()
        except Exception as error:
            if not connection_lost(error) or attempt.committing:
                raise
    logger.warning("database connection lost; the transaction runs again on a fresh one")
    return await run()


def _note_commit() -> None:
    """What the `commit` event notes (`_on_commit`), for a statement that commits by itself."""
    _on_commit(None)


def _lost(driver: Any, error: BaseException) -> bool:
    """The driver's connection is gone (it says so after `error`, or `error` says so)."""
    return bool(driver.is_closed()) or _sqlstate(error).startswith(_LOST_SQLSTATES)


def _wrapped(statement: str, error: Exception) -> Exception:
    """A driver's error as SQLAlchemy would have raised it for the same statement, so that
    the error handlers answer as they do for a statement run through SQLAlchemy."""
    if _sqlstate(error).startswith("23"):  # integrity constraint violation
        return sa_exc.IntegrityError(statement, None, error)
    return sa_exc.DBAPIError(statement, None, error)


async def _discard(connection: AsyncConnection) -> None:
    """Discard a connection the driver says is gone, and with it every connection pooled
    before it, as SQLAlchemy does for a connection it finds dead (whatever killed this one
    most likely killed those too): a statement on it through SQLAlchemy fails, and
    SQLAlchemy's own disconnect handling does the rest."""
    try:
        await connection.exec_driver_sql("SELECT 1")
    except sa_exc.DBAPIError as error:
        if error.connection_invalidated:
            return
    await connection.invalidate()


async def execute_alone(
    engine: AsyncEngine, statement: str, args: Sequence[Any], *, saved: str, key: Any
) -> None:
    """Run one PostgreSQL statement that commits by itself (outside a transaction, one
    statement is its own), straight on the driver's connection from the engine's pool: no
    BEGIN, no COMMIT, and none of SQLAlchemy's execution layer. `statement` has positional
    parameters ($1, $2, ...) and takes `args` as the driver binds them.

    Not pinged first. A connection the driver already knows is gone is discarded (with the
    pool's older ones) and a fresh one taken. One found gone while the statement ran is
    discarded too, and the statement run again on a fresh one, unless `saved` (a query of
    `key`, true when an earlier run's rows are there) finds that it committed before its
    answer was lost; a fresh connection lost the same way is replaced once more, and then
    it is DatabaseUnreachable (503). Either way the request's transaction counts as
    committed (`tracking_commits`), so that it is never run again as a whole.
    """
    # First on a connection straight from the pool, with nothing of SQLAlchemy's around it.
    pooled = await greenlet_spawn(engine.sync_engine.pool.connect)
    driver = pooled.driver_connection
    sent = False
    try:
        if driver is not None and not driver.is_closed():
            sent = True
            if await _sent(driver, statement, args) is None:
                return
        pooled.invalidate()  # gone, before anything was sent on it or while the statement ran
    finally:
        await greenlet_spawn(pooled.close)
    # Gone before or while it ran: on SQLAlchemy's connections now, whose disconnect handling
    # discards the pool's older connections with the dead one (`_discard`).
    if sent:
        logger.warning("database connection lost; the statement runs again on a fresh one")
    else:
        logger.warning("database connection closed; the statement runs on a fresh one")
    await _settle(engine, statement, args, saved=saved, key=key, sent=sent)


async def driver_of(connection: AsyncConnection) -> Any:
    """The driver's own connection under `connection` (asyncpg's on PostgreSQL), for a
    statement run without SQLAlchemy's execution layer; None once it is gone."""
    return (await connection.get_raw_connection()).driver_connection


async def _sent(driver: Any, statement: str, args: Sequence[Any]) -> Exception | None:
    """Send the statement on the driver's connection (it counts as the request's COMMIT from
    here): None once it ran, or the error that shows the connection gone; any other error is
    raised as SQLAlchemy would have raised it."""
    _note_commit()
    try:
        await driver.execute(statement, *args)
    except Exception as error:
        if not _lost(driver, error):
            raise _wrapped(statement, error) from error
        return error
    return None


async def _settle(
    engine: AsyncEngine,
    statement: str,
    args: Sequence[Any],
    *,
    saved: str,
    key: Any,
    sent: bool,
) -> None:
    """`execute_alone` after its first connection was found gone (`sent`: while the statement
    ran): the statement once more on a fresh connection, unless it is found saved."""
    lost = passed_over = False
    for _ in range(3):
        async with engine.connect() as connection:
            driver = await driver_of(connection)
            if driver is None or driver.is_closed():  # nothing sent on it
                await _discard(connection)
                if passed_over:
                    break
                passed_over = True
                continue
            try:
                if sent and await driver.fetchval(saved, key):
                    return
                sent = True
                error = await _sent(driver, statement, args)
                if error is None:
                    return
            except sa_exc.DBAPIError:
                raise  # `_sent`'s own, already as SQLAlchemy raises it
            except Exception as failed:  # the read of `saved`
                if not _lost(driver, failed):
                    raise _wrapped(saved, failed) from failed
                error = failed
            await _discard(connection)
            if lost:
                raise DatabaseUnreachable(type(error).__name__) from error
            lost = True
            logger.warning("database connection lost; the statement runs again on a fresh one")
    raise DatabaseUnreachable("no live connection")


def _watch(engine: AsyncEngine) -> AsyncEngine:
    event.listen(engine.sync_engine, "handle_error", _on_error)
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "commit", _on_commit)
    return engine


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = _watch(create_async_engine(url, connect_args={"timeout": 30}, **kwargs))

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # Keep up to 15 connections open. QueuePool's default (5, plus 10 overflow that are closed
    # when returned) opens and closes a PostgreSQL connection per request under load.
    kwargs.setdefault("pool_size", 15)
    kwargs.setdefault("max_overflow", 0)
    # No pool_pre_ping: see the module's docstring.
    return _watch(create_async_engine(url, **kwargs))


# Connections for reads run side by side (app/core/side_by_side.py), in a pool of their own so
# that a request holding one of the main pool's connections never waits for another of them.
SIDE_CONNECTIONS = 8
_side_engines: "weakref.WeakKeyDictionary[Engine, AsyncEngine]" = weakref.WeakKeyDictionary()


def side_engine(engine: AsyncEngine) -> AsyncEngine:
    """The PostgreSQL engine's companion for side-by-side reads: the same database, a pool of
    SIDE_CONNECTIONS, made when first asked for and disposed of with `engine`."""
    side = _side_engines.get(engine.sync_engine)
    if side is None:
        side = _watch(create_async_engine(engine.url, pool_size=SIDE_CONNECTIONS, max_overflow=0))
        companion = side.sync_engine
        # Engine.dispose runs in SQLAlchemy's greenlet, so the companion's can run inside it.
        event.listen(engine.sync_engine, "engine_disposed", lambda _e: companion.dispose())
        _side_engines[engine.sync_engine] = side
    return side


class RequestSession(AsyncSession):
    """A session whose commit a route class can hold: with `commit_held`, the endpoint's
    `commit()` only flushes, and the route class adds its own rows (idempotency's stored
    answer) and commits once with `commit_now()`. A commit of a session that holds nothing
    (no transaction begun, no object known) does nothing: there is nothing to flush or end
    (e.g. after `execute_alone`)."""

    commit_held = False

    async def commit(self) -> None:
        if not self.in_transaction() and not self.identity_map:
            return
        if self.commit_held:
            await self.flush()
            return
        await super().commit()

    async def commit_now(self) -> None:
        await super().commit()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=RequestSession, expire_on_commit=False)


@asynccontextmanager
async def open_database(url: str | None = None) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The database (`url`, else HANDOFF_DATABASE_URL) for one command's run, the CLI's and
    the outbox worker's: its sessionmaker, the engine disposed of however the command ends."""
    from app.core.settings import get_settings

    engine = make_engine(url if url is not None else get_settings().database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def in_request_session(request: Request, handler: Callable[[Request], Awaitable[T]]) -> T:
    """`handler(request)` with a session of its own as the request's (`get_session` yields
    it), closed when it returns, so that each run of a retried transaction has a fresh one."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as request.state.session:
        return await handler(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; the endpoint commits once, anything uncommitted rolls back.

    A session the request already holds (`request.state.session`, opened and closed around
    each run of the endpoint by `in_request_session`) is used instead of a new one.
    """
    held: AsyncSession | None = getattr(request.state, "session", None)
    if held is not None:
        yield held
        return
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
