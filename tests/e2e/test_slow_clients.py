"""Slow, idle, oversized and surplus connections are cut within their limits (raw sockets).

The gateway here runs with short limits (header 0.5 s, body 0.5 s + 1 s per
2000 bytes, idle 0.8 s, 8 KiB of headers, 30 connections, 64 KiB bodies),
through the same uvicorn configuration as ``gateway serve``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.settings import Settings
from tests.e2e.conftest import e2e_policy
from tests.harness import GatewayServer, write_policy
from tests.upstream_server import Upstream

HEADER_S = 0.5
BODY_S = 0.5
RATE = 2000
IDLE_S = 0.8
SLACK_S = 0.4  # scheduling on a loaded CI machine
CHAT = b'{"model":"echo","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def strict(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    policies = write_policy(tmp_path_factory.mktemp("policies"), e2e_policy())
    settings = Settings(
        policies=Path(policies),
        environ={"UPSTREAM_URL": upstream.url},
        reload_interval_s=0,
        max_body_bytes=64 * 1024,
        max_header_bytes=8 * 1024,
        header_timeout_s=HEADER_S,
        body_timeout_s=BODY_S,
        body_min_rate=RATE,
        keepalive_timeout_s=IDLE_S,
        max_connections=30,
    )
    server = GatewayServer(settings).start()
    yield server
    server.stop()


def connect(gateway: GatewayServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.settings.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def head_of(path: str, length: int | None = None, extra: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n".encode()
    if length is not None:
        head += f"content-length: {length}\r\n".encode()
    return head + extra + b"\r\n"


def status_and_error(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return status, error


def trickle(sock: socket.socket, data: bytes, every_s: float, stop: threading.Event) -> None:
    """Send ``data`` one byte at a time, ``every_s`` apart, until told to stop or cut."""
    for byte in data:
        if stop.wait(every_s):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


def test_slowloris_headers_get_a_408_within_the_header_limit(strict: GatewayServer) -> None:
    sock = connect(strict)
    stop = threading.Event()
    started = time.monotonic()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    sender = threading.Thread(
        target=trickle, args=(sock, b"x-slow: " + b"a" * 200, 0.05, stop), daemon=True
    )
    sender.start()
    answer = read_until_closed(sock)
    elapsed = time.monotonic() - started
    stop.set()
    sender.join()
    sock.close()
    assert HEADER_S - 0.05 <= elapsed <= HEADER_S + SLACK_S, elapsed
    status, error = status_and_error(answer)
    assert status == 408 and error["code"] == "request_timeout"


def test_a_body_at_one_byte_a_tick_gets_a_408_at_the_minimum_rate(strict: GatewayServer) -> None:
    sock = connect(strict)
    stop = threading.Event()
    started = time.monotonic()
    body = CHAT + b" " * 2000
    head = head_of("/v1/chat/completions", len(body))
    sock.sendall(head)
    sender = threading.Thread(target=trickle, args=(sock, body, 0.02, stop), daemon=True)
    sender.start()
    answer = read_until_closed(sock)
    elapsed = time.monotonic() - started
    stop.set()
    sender.join()
    sock.close()
    # ~50 bytes/s: the allowance grows by 1/RATE s per byte, far slower than time passes
    assert BODY_S <= elapsed <= BODY_S + (len(head) + 60) / RATE + SLACK_S, elapsed
    status, error = status_and_error(answer)
    assert status == 408 and error["code"] == "request_timeout"


def test_a_body_sent_at_a_fair_rate_is_served(strict: GatewayServer) -> None:
    """The same body in 10 pieces over ~0.9 s: slower than the flat 0.5 s,
    but above the minimum rate once its size is counted."""
    body = CHAT[:-1] + b', "pad": "' + b"x" * 3000 + b'"}'
    sock = connect(strict)
    sock.sendall(head_of("/v1/chat/completions", len(body)))
    pieces = [body[i : i + len(body) // 10 + 1] for i in range(0, len(body), len(body) // 10 + 1)]
    for piece in pieces:
        time.sleep(0.09)
        sock.sendall(piece)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_an_idle_connection_is_closed_before_and_between_requests(strict: GatewayServer) -> None:
    sock = connect(strict)
    started = time.monotonic()
    assert read_until_closed(sock) == b""  # closed without a word
    assert IDLE_S - 0.05 <= time.monotonic() - started <= IDLE_S + SLACK_S
    sock.close()

    sock = connect(strict)
    sock.sendall(head_of("/v1/chat/completions", len(CHAT)) + CHAT)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    answered = time.monotonic()
    assert read_until_closed(sock) == b""
    assert IDLE_S - 0.05 <= time.monotonic() - answered <= IDLE_S + SLACK_S
    sock.close()


def test_a_busy_keepalive_connection_and_a_long_stream_are_not_cut(strict: GatewayServer) -> None:
    with httpx.Client(base_url=strict.url, timeout=10) as client:
        for _ in range(6):  # 6 x 0.3 s: longer than every limit, idle never more than one
            response = client.post("/v1/chat/completions", content=CHAT)
            assert response.status_code == 200
            time.sleep(0.3)
        # 100 chunks 50 ms apart: 5 s of answer, ten times the header and body limits
        started = time.monotonic()
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "slow-stream",
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            },
        ) as stream:
            text = b"".join(stream.iter_bytes())
        assert time.monotonic() - started > 4
        assert text.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize("size", [10_000, 8 * 1024 * 1024])
def test_headers_over_the_limit_get_a_431(strict: GatewayServer, size: int) -> None:
    sock = connect(strict)
    started = time.monotonic()

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-big: " + b"a" * size + b"\r\n\r\n"
            )

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = read_until_closed(sock)
    sender.join(10)
    sock.close()
    assert time.monotonic() - started < 2
    status, error = status_and_error(answer)
    assert status == 431 and "GATEWAY_MAX_HEADER_BYTES" in str(error["message"])


def test_headers_under_the_limit_are_served(strict: GatewayServer) -> None:
    response = httpx.get(strict.url + "/healthz", headers={"x-fine": "a" * 7000}, timeout=10)
    assert response.status_code == 200


def test_past_the_connection_limit_a_new_connection_gets_a_503(strict: GatewayServer) -> None:
    held = [connect(strict) for _ in range(30)]
    try:
        time.sleep(0.1)  # all accepted
        extra = connect(strict)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n")
        status, error = status_and_error(read_until_closed(extra))
        extra.close()
        assert status == 503 and error["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.1)
    assert httpx.get(strict.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_client_that_sends_its_whole_body_first_reads_the_413(
    strict: GatewayServer, declared: bool, close: bool
) -> None:
    """8 MiB against a 64 KiB limit, written in full before reading: more than
    the socket buffers hold, so a gateway that closed on the 413 would reset it
    (as it did for ``connection: close`` clients, urllib's default)."""
    payload = CHAT[:-1] + b', "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    extra = b"connection: close\r\n" if close else b""
    sock = connect(strict)
    if declared:
        sock.sendall(head_of("/v1/chat/completions", len(payload), extra) + payload)
    else:
        extra += b"transfer-encoding: chunked\r\n"
        sock.sendall(head_of("/v1/chat/completions", extra=extra))
        for i in range(0, len(payload), 65536):
            chunk = payload[i : i + 65536]
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
    answer = sock.recv(65536)
    sock.close()
    status, error = status_and_error(answer)
    assert status == 413 and error["code"] == "request_too_large"


def test_a_body_far_past_the_limit_is_not_read_forever(strict: GatewayServer) -> None:
    """Past the discard bound (16 MiB here) the gateway stops reading and closes."""
    sock = connect(strict)
    sock.sendall(head_of("/v1/chat/completions", 10**12))
    sent = 0
    chunk = b"x" * 65536
    with contextlib.suppress(OSError):
        while sent < 200 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    sock.close()
    assert sent < 100 * 1024 * 1024
