"""The real `handoff serve` process, spoken to over raw sockets: the request head is bounded,
silent and stalled clients are cut off, and what the HTTP parser refuses is problem+json."""

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import sqlite_url
from tests.server import Server, clean_env, free_port, run, script

pytestmark = pytest.mark.database_independent

LIMIT = 16 * 1024  # HANDOFF_MAX_HEADER_BYTES's default
READ_TIMEOUT = 1  # seconds, so that the timeout tests are short
BOUNDED_WAIT = 60  # seconds a test waits for the server to act before it fails


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("http-server")
    env = clean_env(
        HANDOFF_DATABASE_URL=sqlite_url(folder / "handoff.db"),
        HANDOFF_OUTBOX_WORKER_ENABLED="false",
        HANDOFF_EMAIL_DIR=str(folder / "outbox"),
        HANDOFF_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT),
    )
    run([script(), "migrate"], env)
    port = free_port()
    process = Server([script(), "serve", "--port", str(port)], env, port, folder)
    try:
        process.wait_until_healthy()
        yield process
        process.stop()
    finally:
        process.kill_leftovers()


def connect(server: Server) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUNDED_WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed
    once the answer has arrived); fails if it keeps the connection open past the wait."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            raise AssertionError(f"still open after {BOUNDED_WAIT}s; got {data[:200]!r}") from None
        if not chunk:
            return data
        data += chunk


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_problem(answer: bytes, status: int, code: str) -> dict[str, object]:
    got, headers, body = parse(answer)
    assert got == status, answer[:300]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] == code, problem
    return problem  # type: ignore[no-any-return]


def exchange(server: Server, request: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def get_with_head_of(size: int) -> bytes:
    """A GET /healthz whose request line and headers are exactly `size` bytes."""
    start = b"GET /healthz HTTP/1.1\r\nHost: handoff.test\r\nConnection: close\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def resident_kib(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def test_a_head_of_16_kib_is_served_and_one_byte_more_is_431(server: Server) -> None:
    status, _, body = parse(exchange(server, get_with_head_of(LIMIT)))
    assert status == 200 and json.loads(body) == {"status": "ok"}

    problem = assert_problem(
        exchange(server, get_with_head_of(LIMIT + 1)), 431, "request_headers_too_large"
    )
    assert "16384 bytes" in str(problem["detail"])


def test_a_huge_header_is_refused_early_and_its_connection_closed(server: Server) -> None:
    """The issue's attack, at 64 MiB: the server answers 431 after reading about 16 KiB and
    closes, so the client cannot even send the rest; the server's memory does not grow."""
    total = 64 * 1024 * 1024
    before = resident_kib(server)
    sent = 0
    with connect(server) as sock:

        def send_header() -> None:
            nonlocal sent
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: handoff.test\r\nX-Huge: ")
            chunk = b"a" * 65536
            try:
                while sent < total:
                    sock.sendall(chunk)
                    sent += len(chunk)
                sock.sendall(b"\r\n\r\n")
            except OSError:
                pass  # the server has closed the connection: what this test wants

        sender = threading.Thread(target=send_header, daemon=True)
        sender.start()
        answer = read_until_closed(sock)
        sender.join(BOUNDED_WAIT)
    assert_problem(answer, 431, "request_headers_too_large")
    assert sent < total, "the server read the whole header"
    assert resident_kib(server) - before < 16 * 1024, "the header stayed in memory"
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_requests_the_parser_refuses_are_problems_with_stable_codes(server: Server) -> None:
    many = "&".join(f"p{i}=1" for i in range(10_000))  # about 78 KB of query string
    assert_problem(
        exchange(server, f"GET /v1/callbacks?{many} HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
        431,
        "request_headers_too_large",
    )
    for content_length in (b"Content-Length: abc", b"Content-Length: 5\r\nContent-Length: 6"):
        request = b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n" + content_length + b"\r\n\r\n"
        assert_problem(exchange(server, request), 400, "invalid_content_length")
    assert_problem(
        exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\r\n\r\n"),
        400,
        "malformed_request",
    )
    assert_problem(exchange(server, b"NOT HTTP AT ALL\r\n\r\n"), 400, "malformed_request")


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_a_request_whose_head_stops_coming_gets_408_and_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: handoff.test\r\nX-Slow: ")
        assert_problem(read_until_closed(sock), 408, "request_timeout")


def test_a_body_that_stops_coming_gets_408_and_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/transfers HTTP/1.1\r\nHost: handoff.test\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"to_org"'
        )
        assert_problem(read_until_closed(sock), 408, "request_timeout")


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: handoff.test\r\n\r\n")
        status, _, body = parse(read_until_closed(sock))
    assert status == 200 and body == b'{"status":"ok"}'
