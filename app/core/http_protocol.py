"""The HTTP/1.1 protocol `handoff serve` runs: uvicorn's httptools protocol, bounded.

uvicorn's own protocol reads a request's line and headers without any limit and waits for
them for ever (its keep-alive timeout only starts after a first answer), and it answers what
the parser refuses with plain text. This subclass, which changes nothing else:

- refuses a request line plus headers over `HANDOFF_MAX_HEADER_BYTES` with 431
  `request_headers_too_large`, having read at most that many bytes of it, and closes;
- closes a connection whose request line and headers have not all arrived within
  `HANDOFF_READ_TIMEOUT_SECONDS` of connecting (or of the previous answer), or whose body
  pauses longer than that: silently if nothing of a request arrived, else with 408
  `request_timeout`;
- answers what the parser refuses (a bad Content-Length, a malformed line) with 400
  problem+json, `invalid_content_length` or `malformed_request`, and closes.
"""

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.errors import problem
from app.core.settings import get_settings

logger = logging.getLogger("handoff.http")

# Per header line beyond its name and value: ": " and CRLF.
_HEADER_OVERHEAD = 4


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop the parser at once."""


class HandoffHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_head_bytes = settings.max_header_bytes
        self.read_timeout = settings.read_timeout_seconds
        self._reading_head = True  # the next bytes belong to a request's line and headers
        self._head_bytes = 0  # bytes of the current head fed to the parser
        self._request_begun = False  # a byte of the current request has arrived
        self._reading_body = False
        self._read_timer: asyncio.TimerHandle | None = None

    # Timers

    def _arm_read_timer(self) -> None:
        self._cancel_read_timer()
        self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        waiting_on_us = self.flow.read_paused or (
            self._reading_body and self.cycle is not None and self.cycle.waiting_for_100_continue
        )
        if waiting_on_us:
            # The server stopped reading (or has not asked for the body yet): not the client.
            self._arm_read_timer()
            return
        if not self._request_begun:
            self.transport.close()  # an idle connection: nothing to answer
            return
        logger.warning("request refused: %s", "request_timeout")
        if self.cycle is not None and self.cycle.response_started and self._reading_body:
            self.transport.close()  # an answer is already on its way: it cannot be replaced
            return
        self._send_problem(
            408,
            "request_timeout",
            "Request timeout",
            f"The request did not arrive within {self.read_timeout:g} seconds.",
        )

    # The protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_body:
            self._arm_read_timer()  # a body may take long, but it must keep coming
        while data:
            if self._reading_head:
                # Feed no more than the limit: a head that has not ended by then is refused
                # before more of it is read.
                room = self.max_head_bytes - self._head_bytes
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserCallbackError as exc:
                if isinstance(exc.__context__, _HeadTooLarge):
                    self._refuse_head()
                else:
                    self._refuse_malformed(exc)
                return
            except httptools.HttpParserUpgrade:
                self._cancel_read_timer()  # the connection is no longer HTTP/1.1's to time
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError as exc:
                self._refuse_malformed(exc)
                return
            if self.transport.is_closing():
                return
            if self._reading_head and self._head_bytes >= self.max_head_bytes:
                self._refuse_head()
                return

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own plain-text answer, were any path of its left to call it.
        self._send_problem(400, "malformed_request", "Bad request", msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_head_bytes:
            raise _HeadTooLarge()

    def on_headers_complete(self) -> None:
        # Exact where the byte count above is not: a request that began in the same read as
        # the end of the previous one's body.
        size = len(self.url) + sum(len(n) + len(v) + _HEADER_OVERHEAD for n, v in self.headers)
        if size > self.max_head_bytes:
            raise _HeadTooLarge()
        self._reading_head = False
        self._reading_body = True
        self._arm_read_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._reading_head = True
        self._head_bytes = 0
        self._request_begun = False
        self._cancel_read_timer()  # the app is working on it: the next head waits for that
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._reading_head and not self.pipeline:
            self._arm_read_timer()

    # Refusals

    def _refuse_head(self) -> None:
        logger.warning("request refused: %s", "request_headers_too_large")
        self._send_problem(
            431,
            "request_headers_too_large",
            "Request header fields too large",
            f"The request line and headers may be at most {self.max_head_bytes} bytes.",
        )

    def _refuse_malformed(self, exc: httptools.HttpParserError) -> None:
        # The parser's reasons are fixed texts of llhttp's, never the request's bytes.
        reason = str(exc)
        if "content-length" in reason.lower():
            code, detail = "invalid_content_length", "The Content-Length header is not valid."
        else:
            code, detail = "malformed_request", "The request is not valid HTTP/1.1."
        logger.warning("request refused: %s", code)
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # an answer is already on its way: it cannot be replaced
            return
        self._send_problem(400, code, "Bad request", detail)

    def _send_problem(self, status: int, code: str, title: str, detail: str) -> None:
        self._cancel_read_timer()
        response = problem(status, code, title, detail)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + response.media_type.encode("ascii") + b"\r\n",  # type: ignore[union-attr]
                b"content-length: " + str(len(response.body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                bytes(response.body),
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
