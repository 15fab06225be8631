"""Reading answers: framing, interim answers, compression, keep-alive decisions.

The properties drive one :class:`Connection` through a transport whose reads
the test decides (so that every split is exercised exactly); the rest go
through real sockets to small scripted servers.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.upstream.http1 import BadResponse, Client, Disconnected, Request, StaleConnection
from gateway.upstream.http1.connection import HIGH_WATER, Connection, Response
from gateway.upstream.http1.pool import Pool
from tests.upstream.http1.conftest import QUICK, Serve
from tests.upstream.http1.raw_server import ServerConn, answer, chunked, chunked_head


class Wire(asyncio.Transport):
    """The client end of a connection whose reads the test feeds itself."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def framed(body: bytes, framing: str, sizes: list[int], encoding: str | None) -> bytes:
    """An answer carrying ``body`` with the given framing (``sizes``: chunk sizes)."""
    extra = [f"Content-Encoding: {encoding}"] if encoding else []
    if framing == "length":
        return answer(body, headers=("Content-Type: application/json", *extra))
    if framing == "eof":
        return answer(body, headers=("Connection: close", *extra), length=False)
    chunks, rest = [], body
    for size in sizes:
        if not rest:
            break
        chunks.append(rest[:size])
        rest = rest[size:]
    if rest:
        chunks.append(rest)
    return chunked_head("application/json", *extra) + chunked(*chunks)


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % len(raw) for c in cuts} - {0})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


async def feed(pieces: list[bytes], *, streamed: bool, eof: bool) -> tuple[Response, list[bytes]]:
    loop = asyncio.get_running_loop()
    pool = Pool(limit=1, keepalive_s=15.0, ssl_context=None)
    conn = Connection(pool, "http://upstream:80", loop)
    wire = Wire()
    conn.connection_made(wire)
    response = Response(conn, streamed)
    conn.send(response, b"POST / HTTP/1.1\r\n\r\n", 5.0, loop.time() + 10)
    for piece in pieces:
        conn.data_received(piece)
    if eof:
        conn.connection_lost(None)
    chunks = [chunk async for chunk in response] if streamed else []
    await pool.aclose()
    return response, chunks


bodies = st.binary(min_size=0, max_size=600)


@settings(max_examples=300, deadline=None)
@given(
    body=bodies,
    framing=st.sampled_from(["length", "chunked", "eof"]),
    sizes=st.lists(st.integers(min_value=1, max_value=80), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=15),
    interim=st.booleans(),
    encoding=st.sampled_from([None, "gzip", "deflate", "identity"]),
    streamed=st.booleans(),
)
def test_any_split_of_an_answer_gives_the_same_body(
    body: bytes,
    framing: str,
    sizes: list[int],
    cuts: list[int],
    interim: bool,
    encoding: str | None,
    streamed: bool,
) -> None:
    wire_body = body
    if encoding == "gzip":
        wire_body = gzip.compress(body)
    elif encoding == "deflate":
        wire_body = zlib.compress(body)
    raw = framed(wire_body, framing, sizes, encoding)
    if interim:
        raw = b"HTTP/1.1 100 Continue\r\n\r\n" + raw
    response, chunks = asyncio.run(feed(split(raw, cuts), streamed=streamed, eof=framing == "eof"))
    assert response.status == 200
    assert response._error is None
    if streamed:
        assert all(chunks), "a chunk is never empty"
        assert b"".join(chunks) == body
    else:
        assert response.body == body


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=300), cut=st.integers(min_value=1, max_value=10_000))
def test_an_answer_cut_short_is_an_error_not_a_body(body: bytes, cut: int) -> None:
    for framing in ("length", "chunked"):
        raw = framed(body, framing, [7], None)
        head_end = raw.index(b"\r\n\r\n") + 4
        short = raw[: head_end + cut % (len(raw) - head_end)]
        response, _ = asyncio.run(feed([short], streamed=False, eof=True))
        assert isinstance(response._error, Disconnected)


def test_raw_deflate_is_decoded_too() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    wire_body = compressor.compress(b"raw deflate body") + compressor.flush()
    raw = answer(wire_body, headers=("Content-Encoding: deflate",))
    response, _ = asyncio.run(feed([raw[:-3], raw[-3:]], streamed=False, eof=False))
    assert response.body == b"raw deflate body"


def test_a_connection_closed_before_its_request_went_out() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        pool = Pool(limit=2, keepalive_s=15.0, ssl_context=None)
        for reused, error in ((True, StaleConnection), (False, Disconnected)):
            conn = Connection(pool, "http://upstream:80", loop)
            conn.connection_made(Wire())
            conn.reused = reused
            conn.connection_lost(None)
            response = Response(conn, False)
            conn.send(response, b"POST / HTTP/1.1\r\n\r\n", 5.0, loop.time() + 10)
            assert type(response._error) is error
            assert response._done
        await pool.aclose()

    asyncio.run(run())


def test_a_stream_that_outruns_its_reader_stops_being_read() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        pool = Pool(limit=1, keepalive_s=15.0, ssl_context=None)
        conn = Connection(pool, "http://upstream:80", loop)
        wire = Wire()
        conn.connection_made(wire)
        response = Response(conn, True)
        conn.send(response, b"POST / HTTP/1.1\r\n\r\n", 5.0, loop.time() + 10)
        conn.data_received(chunked_head())
        piece = b"x" * 65536
        sent = 0
        while not wire.paused:
            conn.data_received(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        # counted in wire bytes (head and chunk framing too)
        assert HIGH_WATER - 1024 < sent <= HIGH_WATER + len(piece)
        assert len(await anext(response)) == sent
        assert not wire.paused, "reading resumes once the reader caught up"
        conn.data_received(b"0\r\n\r\n")
        assert [chunk async for chunk in response] == []
        await pool.aclose()

    asyncio.run(run())


# -- through real sockets -------------------------------------------------------------


async def fetch(client: Client, url: str) -> Response:
    return await client.fetch(Request(url), b'{"x": 1}', QUICK)


async def test_content_length_and_the_request_sent(serve: Serve, client: Client) -> None:
    async def script(conn: ServerConn) -> None:
        while await conn.request():
            await conn.send(answer(b'{"ok": true}'))

    server = await serve(script)
    request = Request(server.url(), [("Authorization", "Bearer k"), ("content-type", "a/b")])
    response = await client.fetch(request, b'{"x": 1}', QUICK, [("x-request-id", "r1")])
    assert (response.status, response.body) == (200, b'{"ok": true}')
    assert response.header(b"content-type") == "application/json"
    sent = server.requests[0]
    assert sent.head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert sent.headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert sent.headers[b"content-length"] == b"8"
    assert sent.headers[b"authorization"] == b"Bearer k"
    assert sent.headers[b"x-request-id"] == b"r1"
    assert b"accept-encoding" not in sent.headers
    assert sent.body == b'{"x": 1}'


async def test_chunks_split_inside_the_size_line_and_the_crlf(serve: Serve, client: Client) -> None:
    raw = chunked_head() + b"1a\r\n" + b"data: {}\n\n" * 2 + b"zzzzzz" + b"\r\n0\r\n\r\n"
    at_size = raw.index(b"1a\r\n") + 1
    at_crlf = raw.index(b"zzzzzz") + 7

    async def script(conn: ServerConn) -> None:
        while await conn.request():
            await conn.send(raw[:at_size], raw[at_size:at_crlf], raw[at_crlf:])

    server = await serve(script)
    response = await fetch(client, server.url())
    assert response.body == b"data: {}\n\n" * 2 + b"zzzzzz"
    streamed = await client.stream(Request(server.url()), b"{}", QUICK)
    assert b"".join([chunk async for chunk in streamed]) == response.body
    assert server.accepted == 1, "both answers were whole: one connection"


@pytest.mark.parametrize(
    "raw",
    [
        answer(b"until the end", headers=("Connection: close",), length=False),
        answer(b"until the end", version="HTTP/1.0", length=False),
        answer(b"until the end", headers=("Connection: close",)),
        answer(b"until the end", version="HTTP/1.0"),
    ],
    ids=["close-delimited", "http/1.0", "connection-close", "http/1.0-length"],
)
async def test_answers_that_end_their_connection(serve: Serve, client: Client, raw: bytes) -> None:
    async def script(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(raw)
        conn.close()

    server = await serve(script)
    assert (await fetch(client, server.url())).body == b"until the end"
    assert (await fetch(client, server.url())).body == b"until the end"
    assert server.accepted == 2, "not reused"


async def test_interim_answers_are_skipped(serve: Serve, client: Client) -> None:
    async def script(conn: ServerConn) -> None:
        while await conn.request():
            await conn.send(
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
                answer(b"final"),
            )

    server = await serve(script)
    response = await fetch(client, server.url())
    assert (response.status, response.body) == (200, b"final")
    assert (await fetch(client, server.url())).body == b"final"
    assert server.accepted == 1


async def test_gzip_answers_and_streams_are_decoded(serve: Serve, client: Client) -> None:
    events = b"".join(b'data: {"n": %d}\n\n' % i for i in range(50))
    packed = gzip.compress(events)

    async def script(conn: ServerConn) -> None:
        while received := await conn.request():
            if b"stream" in received.body:
                head = chunked_head("text/event-stream", "Content-Encoding: gzip")
                thirds = [packed[: len(packed) // 3], packed[len(packed) // 3 :]]
                await conn.send(head, chunked(*thirds)[:-5], b"0\r\n\r\n")
            else:
                await conn.send(answer(packed, headers=("Content-Encoding: GZIP",)))

    server = await serve(script)
    assert (await fetch(client, server.url())).body == events
    response = await client.stream(Request(server.url()), b'{"stream": true}', QUICK)
    assert b"".join([chunk async for chunk in response]) == events


async def test_an_unknown_encoding_is_a_bad_response(serve: Serve, client: Client) -> None:
    async def script(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(answer(b"\x00\x01", headers=("Content-Encoding: br",)))

    server = await serve(script)
    with pytest.raises(BadResponse, match="br"):
        await fetch(client, server.url())


async def test_not_http_is_a_bad_response(serve: Serve, client: Client) -> None:
    async def script(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")

    server = await serve(script)
    with pytest.raises(BadResponse):
        await fetch(client, server.url())
    assert client.connections == 0, "a broken connection is not kept"
