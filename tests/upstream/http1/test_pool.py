"""Keep-alive: reuse, expiry, the bound, and the stale-connection retry."""

from __future__ import annotations

import asyncio

import pytest

from gateway.upstream.http1 import Client, Disconnected, Request
from tests.upstream.http1.conftest import QUICK, Serve
from tests.upstream.http1.raw_server import ServerConn, answer


async def keep_answering(conn: ServerConn) -> None:
    while await conn.request():
        await conn.send(answer(b'{"n": %d}' % len(conn.server.requests)))


async def test_sequential_requests_share_one_connection(serve: Serve, client: Client) -> None:
    server = await serve(keep_answering)
    request = Request(server.url())
    bodies = [(await client.fetch(request, b"{}", QUICK)).body for _ in range(5)]
    assert bodies == [b'{"n": %d}' % n for n in range(1, 6)]
    assert server.accepted == 1
    assert client.connections == 1


async def test_reuse_is_last_in_first_out(serve: Serve, client: Client) -> None:
    server = await serve(keep_answering)
    request = Request(server.url())
    await asyncio.gather(*(client.fetch(request, b"{}", QUICK) for _ in range(3)))
    assert server.accepted == 3
    await client.fetch(request, b"{}", QUICK)
    await client.fetch(request, b"{}", QUICK)
    used = [len(conn.requests) for conn in server.conns]
    assert sorted(used) == [1, 1, 3], "the same (most recent) connection took both"


async def test_idle_connections_expire(serve: Serve) -> None:
    server = await serve(keep_answering)
    http = Client(keepalive_s=0.1)
    try:
        await http.fetch(Request(server.url()), b"{}", QUICK)
        assert await server.conns[0].client_closed(timeout_s=2.0)
        assert http.connections == 0
        await http.fetch(Request(server.url()), b"{}", QUICK)
        assert server.accepted == 2
    finally:
        await http.aclose()


async def test_a_connection_the_server_closed_is_dropped_at_once(
    serve: Serve, client: Client
) -> None:
    async def answer_once(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(answer(b"{}"))

    server = await serve(answer_once)
    await client.fetch(Request(server.url()), b"{}", QUICK)
    for _ in range(100):
        if client.connections == 0:
            break
        await asyncio.sleep(0.01)
    assert client.connections == 0
    await client.fetch(Request(server.url()), b"{}", QUICK)
    assert len(server.requests) == 2, "no retry was needed: the closed one was never used"


async def test_the_bound_is_respected(serve: Serve) -> None:
    async def slow(conn: ServerConn) -> None:
        while await conn.request():
            await asyncio.sleep(0.03)
            await conn.send(answer(b"{}"))

    server = await serve(slow)
    http = Client(limit=2)
    try:
        request = Request(server.url())
        answers = await asyncio.gather(*(http.fetch(request, b"{}", QUICK) for _ in range(8)))
        assert [a.status for a in answers] == [200] * 8
        assert server.max_active <= 2
        assert server.accepted == 2
    finally:
        await http.aclose()


async def test_at_the_bound_an_idle_connection_elsewhere_makes_room(serve: Serve) -> None:
    first = await serve(keep_answering)
    second = await serve(keep_answering)
    http = Client(limit=1)
    try:
        await http.fetch(Request(first.url()), b"{}", QUICK)
        await http.fetch(Request(second.url()), b"{}", QUICK)
        assert await first.conns[0].client_closed(timeout_s=2.0)
        assert http.connections == 1
    finally:
        await http.aclose()


async def test_waiting_for_room_is_bounded_by_the_total_timeout(serve: Serve) -> None:
    async def hang(conn: ServerConn) -> None:
        await conn.request()
        await asyncio.sleep(30)

    server = await serve(hang)
    http = Client(limit=1)
    try:
        request = Request(server.url())
        holder = asyncio.create_task(http.fetch(request, b"{}", QUICK))
        await asyncio.sleep(0.05)
        short = QUICK.__class__(connect=1.0, first_byte=5.0, total=0.2)
        with pytest.raises(Exception, match="total") as caught:
            await http.fetch(request, b"{}", short)
        assert type(caught.value).__name__ == "RequestTimeout"
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
    finally:
        await http.aclose()


# -- the stale keep-alive race ------------------------------------------------------------


async def test_a_reused_connection_closed_before_answering_is_retried_once(
    serve: Serve, client: Client
) -> None:
    async def close_second_request(conn: ServerConn) -> None:
        while await conn.request():
            if len(conn.requests) == 2:
                return  # the race: an idle close meets the next request
            await conn.send(answer(b"fresh" if conn.server.accepted > 1 else b"first"))

    server = await serve(close_second_request)
    request = Request(server.url())
    assert (await client.fetch(request, b"{}", QUICK)).body == b"first"
    assert (await client.fetch(request, b'{"again": 1}', QUICK)).body == b"fresh"
    assert server.accepted == 2
    assert [r.body for r in server.requests] == [b"{}", b'{"again": 1}', b'{"again": 1}']


async def test_no_retry_once_a_byte_of_the_answer_came(serve: Serve, client: Client) -> None:
    async def half_answer_second(conn: ServerConn) -> None:
        while await conn.request():
            if len(conn.requests) == 2:
                await conn.send(b"HTTP/1.1 200 OK\r\n")
                return
            await conn.send(answer(b"first"))

    server = await serve(half_answer_second)
    request = Request(server.url())
    await client.fetch(request, b"{}", QUICK)
    with pytest.raises(Disconnected) as caught:
        await client.fetch(request, b"{}", QUICK)
    assert type(caught.value) is Disconnected
    assert len(server.requests) == 2
    assert server.accepted == 1


async def test_no_retry_on_a_fresh_connection(serve: Serve, client: Client) -> None:
    async def close_at_once(conn: ServerConn) -> None:
        await conn.request()

    server = await serve(close_at_once)
    with pytest.raises(Disconnected) as caught:
        await client.fetch(Request(server.url()), b"{}", QUICK)
    assert type(caught.value) is Disconnected
    assert server.accepted == 1


async def test_a_stream_is_retried_like_a_fetch(serve: Serve, client: Client) -> None:
    async def close_second_request(conn: ServerConn) -> None:
        while await conn.request():
            if len(conn.requests) == 2:
                return
            await conn.send(answer(b"data: x\n\n", headers=("Content-Type: text/event-stream",)))

    server = await serve(close_second_request)
    request = Request(server.url())
    await client.fetch(request, b"{}", QUICK)
    response = await client.stream(request, b"{}", QUICK)
    assert b"".join([chunk async for chunk in response]) == b"data: x\n\n"
    assert server.accepted == 2
