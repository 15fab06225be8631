"""Failures, timeouts, abandoning an answer, TLS, and the real test upstream."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway.targets import Timeouts
from gateway.upstream.http1 import (
    Client,
    ConnectFailed,
    Disconnected,
    InvalidRequest,
    Request,
    RequestTimeout,
)
from tests.upstream.http1.conftest import QUICK, Serve
from tests.upstream.http1.raw_server import ServerConn, answer, chunked_head
from tests.upstream_server import Upstream, free_port

SHORT = Timeouts(connect=0.3, first_byte=0.2, total=5.0)


async def hang(conn: ServerConn) -> None:
    await conn.request()
    await conn.client_closed(timeout_s=30)


# -- connecting -------------------------------------------------------------------------


async def test_connection_refused(client: Client) -> None:
    with pytest.raises(ConnectFailed):
        await client.fetch(Request(f"http://127.0.0.1:{free_port()}/v1"), b"{}", QUICK)
    assert client.connections == 0


async def test_unknown_host(client: Client) -> None:
    with pytest.raises(ConnectFailed):
        await client.fetch(Request("http://no-such-host.invalid/v1"), b"{}", QUICK)


async def test_connect_timeout(client: Client) -> None:
    # a listening socket that never accepts, its backlog already full
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as caught:
            await client.fetch(Request(url), b"{}", SHORT)
        assert caught.value.phase == "connect"
        assert 0.25 < time.monotonic() - started < 2
    assert client.connections == 0


def test_requests_that_cannot_be_sent() -> None:
    for url in ("ftp://host/x", "http:///x", "http://user:pw@host/x", "http://host:99999/"):
        with pytest.raises(InvalidRequest):
            Request(url)
    with pytest.raises(InvalidRequest) as caught:
        Request("http://host/x", [("authorization", "Bearer sk-secret\r\nX-Evil: 1")])
    assert "sk-secret" not in str(caught.value)
    with pytest.raises(InvalidRequest):
        Request("http://host/x").encode(b"", [("bad name", "v")])


def test_the_request_line_and_host() -> None:
    assert Request("http://[::1]:8000/v1/chat/completions").head == (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: [::1]:8000\r\n"
    )
    assert Request("https://API.example.com/v1/x y?a=b c").head == (
        b"POST /v1/x%20y?a=b%20c HTTP/1.1\r\nHost: api.example.com\r\n"
    )
    assert Request("http://h:80").head == b"POST / HTTP/1.1\r\nHost: h\r\n"


# -- timeouts ----------------------------------------------------------------------------


async def test_first_byte_timeout_closes_the_connection(serve: Serve, client: Client) -> None:
    server = await serve(hang)
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await client.fetch(Request(server.url()), b"{}", SHORT)
    assert caught.value.phase == "first_byte"
    assert 0.15 < time.monotonic() - started < 1.5
    assert await server.conns[0].client_closed()


async def test_first_byte_bounds_each_wait_of_a_stream(serve: Serve, client: Client) -> None:
    async def one_event_then_silence(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head() + b"9\r\ndata: 1\n\n\r\n")
        await conn.client_closed(timeout_s=30)

    server = await serve(one_event_then_silence)
    response = await client.stream(Request(server.url()), b"{}", SHORT)
    assert await anext(response) == b"data: 1\n\n"
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await anext(response)
    assert caught.value.phase == "first_byte"
    assert 0.15 < time.monotonic() - started < 1.5


async def test_a_slow_reader_is_not_a_slow_upstream(serve: Serve, client: Client) -> None:
    async def two_events(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head(), b"9\r\ndata: 1\n\n\r\n")
        await asyncio.sleep(0.35)  # silent for longer than first_byte...
        await conn.send(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n")

    server = await serve(two_events)
    response = await client.stream(Request(server.url()), b"{}", SHORT)
    await asyncio.sleep(0.5)  # ...while nobody waited for it
    assert b"".join([chunk async for chunk in response]) == b"data: 1\n\ndata: 2\n\n"


async def test_total_timeout(serve: Serve, client: Client) -> None:
    async def trickle(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            await conn.send(b"x")
            await asyncio.sleep(0.05)

    server = await serve(trickle)
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await client.fetch(Request(server.url()), b"{}", Timeouts(1.0, 0.2, 0.5))
    assert caught.value.phase == "total"
    assert 0.45 < time.monotonic() - started < 1.5


# -- answers cut short, answers abandoned ---------------------------------------------------------


async def test_dropped_mid_body(serve: Serve, client: Client) -> None:
    async def drop(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")

    server = await serve(drop)
    with pytest.raises(Disconnected):
        await client.fetch(Request(server.url()), b"{}", QUICK)


async def test_dropped_mid_stream(serve: Serve, client: Client) -> None:
    async def drop(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head() + b"9\r\ndata: 1\n\n\r\n", b"9\r\ndata: 2")

    server = await serve(drop)
    response = await client.stream(Request(server.url()), b"{}", QUICK)
    received = b""
    with pytest.raises(Disconnected):
        async for chunk in response:
            received += chunk
    assert received == b"data: 1\n\ndata: 2"


async def test_closing_a_stream_early_closes_its_connection(serve: Serve, client: Client) -> None:
    async def endless(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head())
        while True:
            await conn.send(b"9\r\ndata: x\n\n\r\n")
            await asyncio.sleep(0.01)

    server = await serve(endless)
    response = await client.stream(Request(server.url()), b"{}", QUICK)
    assert await anext(response)
    response.close()
    await asyncio.sleep(0.1)
    assert server.active == 0, "the server's writes failed: the connection is gone"
    assert client.connections == 0


async def test_cancelling_a_pending_request_closes_its_connection(
    serve: Serve, client: Client
) -> None:
    closed = asyncio.Event()

    async def wait_for_close(conn: ServerConn) -> None:
        await conn.request()
        if await conn.client_closed(timeout_s=5):
            closed.set()

    server = await serve(wait_for_close)
    for streamed in (False, True):
        closed.clear()
        call = client.stream if streamed else client.fetch
        task = asyncio.create_task(call(Request(server.url()), b"{}", QUICK))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(2):
            await closed.wait()
    assert client.connections == 0


async def test_abandoned_stream_stops_the_real_upstream(client: Client) -> None:
    upstream = await asyncio.to_thread(lambda: Upstream().start())
    try:
        request = Request(upstream.url + "/chat/completions")
        body = orjson.dumps({"model": "slow-stream", "stream": True, "messages": []})
        response = await client.stream(
            request,
            body,
            QUICK,
            [("x-request-id", "abandon-me"), ("content-type", "application/json")],
        )
        assert response.header(b"content-type") == "text/event-stream; charset=utf-8"
        assert (await anext(response)).startswith(b"data: ")
        response.close()
        for _ in range(250):  # the upstream's thread appends to a plain list
            if "abandon-me" in upstream.abandoned:
                break
            await asyncio.sleep(0.02)
        assert "abandon-me" in upstream.abandoned
    finally:
        await asyncio.to_thread(upstream.stop)


async def test_the_real_upstream_non_streamed_and_streamed(client: Client) -> None:
    upstream = await asyncio.to_thread(lambda: Upstream().start())
    try:
        request = Request(
            upstream.url + "/chat/completions", [("content-type", "application/json")]
        )
        messages = [{"role": "user", "content": "one two three"}]
        whole = await client.fetch(
            request, orjson.dumps({"model": "echo", "messages": messages}), QUICK
        )
        assert orjson.loads(whole.body)["choices"][0]["message"]["content"] == "echo: one two three"
        body = orjson.dumps({"model": "echo", "messages": messages, "stream": True})
        response = await client.stream(request, body, QUICK)
        events = b"".join([chunk async for chunk in response])
        assert events.count(b"data: ") == 7 and events.endswith(b"data: [DONE]\n\n")
        assert client.connections == 1
    finally:
        await asyncio.to_thread(upstream.stop)


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield cert, key


def server_context(cert: Path, key: Path, names: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    return context


async def keep_answering(conn: ServerConn) -> None:
    while await conn.request():
        await conn.send(answer(b'{"tls": true}'))


async def test_https_with_a_trusted_certificate(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    names: list[str | None] = []
    server = await serve(keep_answering, ssl_context=server_context(cert, key, names))
    http = Client(ssl_context=ssl.create_default_context(cafile=str(cert)))
    try:
        request = Request(server.url(host="localhost"))
        for _ in range(2):
            assert (await http.fetch(request, b"{}", QUICK)).body == b'{"tls": true}'
        assert names == ["localhost"], "SNI is the host; the second request reused the connection"
        assert server.accepted == 1
    finally:
        await http.aclose()


async def test_https_with_an_untrusted_certificate(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server = await serve(keep_answering, ssl_context=server_context(cert, key, []))
    http = Client()  # the system's CA store: the self-signed certificate is refused
    try:
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await http.fetch(Request(server.url(host="localhost")), b"{}", QUICK)
        assert http.connections == 0
    finally:
        await http.aclose()
