"""Database faults for the tests: connections that die under a statement or just after a
COMMIT, a database that stops answering, and a TCP proxy that cuts a real PostgreSQL off.

The in-process faults close the driver's own connection and let the driver fail as it would
(asyncpg: "connection is closed"; aiosqlite: "Cannot operate on a closed database."), so
what the service sees is the error a dead connection really gives, on SQLite and PostgreSQL.
"""

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def _driver(connection: Any) -> Any:
    """The driver's (adapted) connection under SQLAlchemy's pool wrapper."""
    return getattr(connection, "dbapi_connection", connection)


def _break(connection: Any) -> None:
    """Close the driver's connection under SQLAlchemy, as a server that went away would."""
    with contextlib.suppress(Exception):
        _driver(connection).close()


def _fail_as_a_dead_connection(dbapi_connection: Any) -> None:
    """Raise the driver's own error for a statement on a closed connection."""
    _driver(dbapi_connection).cursor().execute("SELECT 1")
    raise AssertionError("a closed connection ran a statement")


class ConnectionFaults:
    """Faults in one engine's connections, switched on and off by the test."""

    def __init__(self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sync_engine = engine.sync_engine
        dialect = self.sync_engine.dialect
        # The connection dies just before the next statement holding this text (once).
        self.die_before: str | None = None
        # The connection dies just after the COMMIT of a transaction that ran a statement
        # starting with this text (once); with `then_down`, the database then stays away.
        self.die_after_commit_of: str | None = None
        self.then_down = False
        # The database does not answer: every statement's connection dies, connecting fails.
        self.down = False
        self.statements: list[str] = []
        self._armed: set[int] = set()
        event.listen(self.sync_engine, "before_cursor_execute", self._before_statement)
        real_commit, real_connect = dialect.do_commit, dialect.connect

        def do_commit(dbapi_connection: Any) -> None:
            real_commit(dbapi_connection)
            if id(_driver(dbapi_connection)) in self._armed:  # saved; the answer never comes
                self._armed.discard(id(_driver(dbapi_connection)))
                self.die_after_commit_of = None
                self.down = self.then_down
                _break(dbapi_connection)
                _fail_as_a_dead_connection(dbapi_connection)

        def connect(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionRefusedError(111, "Connect call failed")  # as asyncpg says
            return real_connect(*args, **kwargs)

        monkeypatch.setattr(dialect, "do_commit", do_commit)
        monkeypatch.setattr(dialect, "connect", connect)

    def _before_statement(
        self, conn: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        self.statements.append(statement)
        dbapi_connection = _driver(conn.connection)
        if self.die_after_commit_of and self.die_after_commit_of in statement:
            self._armed.add(id(dbapi_connection))
        if self.down or (self.die_before and self.die_before in statement):
            self.die_before = None
            _break(dbapi_connection)

    def remove(self) -> None:
        event.remove(self.sync_engine, "before_cursor_execute", self._before_statement)


class TcpProxy:
    """A TCP proxy in front of a real server, run in a thread: `cut()` drops every
    connection through it and refuses new ones (the database is unreachable), `restore()`
    accepts them again. `lose_answer_with(marker)`: the next answer from the server that
    holds `marker` is not passed on, and every connection is dropped there (the server did
    the work; its answer is lost on the way), once; `then_refuse`: and new connections are
    refused from that moment, until `restore()`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lose: bytes | None = None
        self._then_refuse = False
        self.answers_lost = 0
        self.restore()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def lose_answer_with(self, marker: bytes, *, then_refuse: bool = False) -> None:
        self._lose, self._then_refuse = marker, then_refuse

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if answers and self._lose is not None and self._lose in data:
                    self._lose = None
                    self.answers_lost += 1
                    if self._then_refuse and self._server is not None:
                        self._server.close()
                        self._server = None
                    for each in list(self._writers):
                        each.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pair = {writer, upstream_writer}
        self._writers |= pair
        await asyncio.gather(
            self._pipe(reader, upstream_writer, answers=False),
            self._pipe(upstream_reader, writer, answers=True),
        )
        self._writers -= pair

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._stop())

    def restore(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
