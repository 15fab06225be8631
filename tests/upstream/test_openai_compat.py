"""The OpenAI-compatible provider over real sockets: what it sends, and how every
upstream failure maps onto the gateway's errors (before and after the first event)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.endpoints import Endpoint
from gateway.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.levels import Level
from gateway.targets import Kind, ProviderType, Target, Timeouts
from gateway.upstream.openai_compat import OpenAICompatProvider
from gateway.upstream.provider import UpstreamCall
from tests.upstream.http1.raw_server import (
    RawServer,
    ServerConn,
    answer,
    chunked,
    chunked_head,
    serving,
)
from tests.upstream_server import free_port

KEY = "sk-upstream-secret-0123456789"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def target(url: str, **changes: Any) -> Target:
    values: dict[str, Any] = {
        "name": "local",
        "kind": Kind.OPEN,
        "provider": ProviderType.OPENAI_COMPATIBLE,
        "model": "m",
        "base_url": url,
        "api_key": KEY,
        "headers": (("x-team", "blue"),),
        "max_sensitivity": Level.RESTRICTED,
        "timeouts": Timeouts(connect=1.0, first_byte=0.3, total=5.0),
    }
    values.update(changes)
    return Target(**values)


def call(server: RawServer | str, *, stream: bool = False, **changes: Any) -> UpstreamCall:
    url = server if isinstance(server, str) else server.url("/v1/")
    body = {**CHAT, "stream": True} if stream else CHAT
    return UpstreamCall(Endpoint.CHAT, target(url, **changes), body, "req-1")


@pytest.fixture
async def provider() -> AsyncIterator[OpenAICompatProvider]:
    instance = OpenAICompatProvider()
    yield instance
    await instance.aclose()


def replying(*pieces: bytes) -> Any:
    async def script(conn: ServerConn) -> None:
        while await conn.request():
            await conn.send(*pieces)

    return script


async def first_error(provider: OpenAICompatProvider, upstream_call: UpstreamCall) -> UpstreamError:
    """The error of ``complete`` and of a stream's first ``__anext__``: the same."""
    with pytest.raises(UpstreamError) as whole:
        await provider.complete(upstream_call)
    streamed_call = UpstreamCall(
        upstream_call.endpoint, upstream_call.target, {**upstream_call.body, "stream": True}, "r"
    )
    with pytest.raises(UpstreamError) as streamed:
        await anext(aiter(provider.stream(streamed_call)))
    assert type(whole.value) is type(streamed.value)
    assert str(whole.value) == str(streamed.value)
    return whole.value


async def test_what_is_sent(provider: OpenAICompatProvider) -> None:
    async with serving(replying(answer(b'{"id": "x", "choices": []}'))) as server:
        reply = await provider.complete(call(server))
        assert reply.data == {"id": "x", "choices": []}
        assert reply.raw == b'{"id": "x", "choices": []}'
        sent = server.requests[0]
        assert sent.head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert sent.headers[b"authorization"] == f"Bearer {KEY}".encode()
        assert sent.headers[b"content-type"] == b"application/json"
        assert sent.headers[b"x-team"] == b"blue"
        assert sent.headers[b"x-request-id"] == b"req-1"
        assert b"accept-encoding" not in sent.headers
        assert orjson.loads(sent.body) == CHAT


async def test_openai_error_fields_pass_through(provider: OpenAICompatProvider) -> None:
    error = {
        "error": {
            "message": "too long",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    async with serving(replying(answer(orjson.dumps(error), status="400 Bad Request"))) as server:
        failure = await first_error(provider, call(server))
    assert isinstance(failure, UpstreamStatusError)
    assert (failure.upstream_status, str(failure)) == (400, "too long")
    assert (failure.error_type, failure.param, failure.code) == (
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )


async def test_retry_after_is_kept(provider: OpenAICompatProvider) -> None:
    rate = answer(
        b'{"error": {"message": "slow down"}}', status="429 Too Many", headers=("retry-AFTER: 7",)
    )
    async with serving(replying(rate)) as server:
        failure = await first_error(provider, call(server))
    assert isinstance(failure, UpstreamStatusError)
    assert failure.retry_after_s == 7.0


async def test_refused_credentials_never_quote_the_key(provider: OpenAICompatProvider) -> None:
    refusal = orjson.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}})
    async with serving(replying(answer(refusal, status="401 Unauthorized"))) as server:
        failure = await first_error(provider, call(server))
    assert str(failure) == "local refused the gateway's credentials (HTTP 401)"
    leak = orjson.dumps({"error": {"message": f"bad key {KEY} here"}})
    async with serving(replying(answer(leak, status="500 Oops"))) as server:
        failure = await first_error(provider, call(server))
    assert str(failure) == "bad key [redacted] here"


async def test_answers_not_in_openai_format(provider: OpenAICompatProvider) -> None:
    async with serving(replying(answer(b"<html>", headers=("Content-Type: text/html",)))) as server:
        with pytest.raises(UpstreamProtocolError, match="invalid JSON"):
            await provider.complete(call(server))
        with pytest.raises(UpstreamProtocolError, match="event stream"):
            await anext(aiter(provider.stream(call(server, stream=True))))
    async with serving(replying(answer(b"[1, 2]"))) as server:
        with pytest.raises(UpstreamProtocolError, match="non-object"):
            await provider.complete(call(server))
    async with serving(replying(b"NOT HTTP\r\n\r\n")) as server:
        assert isinstance(await first_error(provider, call(server)), UpstreamProtocolError)


async def test_connection_failures(provider: OpenAICompatProvider) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    refused = await first_error(provider, call(url))
    assert isinstance(refused, UpstreamConnectError)
    assert str(refused) == f"could not connect to local: connection refused at {url}"
    bad = await first_error(provider, call("ftp://127.0.0.1/v1"))
    assert isinstance(bad, UpstreamConnectError)


async def test_timeouts(provider: OpenAICompatProvider) -> None:
    async def hang(conn: ServerConn) -> None:
        await conn.request()
        await conn.client_closed(timeout_s=30)

    async with serving(hang) as server:
        failure = await first_error(provider, call(server))
    assert isinstance(failure, UpstreamTimeout)
    assert str(failure) == "local timed out"


async def test_stream_events_in_batches_and_gzip(provider: OpenAICompatProvider) -> None:
    events = b'data: {"a": 1}\n\ndata: {"b": 2}\n\n'
    head = chunked_head("text/event-stream", "Content-Encoding: gzip")
    packed = gzip.compress(events + b"data: [DONE]\n\n")
    async with serving(replying(head, chunked(packed))) as server:
        batches = [b async for b in provider.stream(call(server, stream=True))]
    assert batches == [[b'{"a": 1}', b'{"b": 2}']]


async def test_dropped_mid_stream(provider: OpenAICompatProvider) -> None:
    piece = b'data: {"a": 1}\n\n'

    async def drop(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head() + b"%x\r\n%s\r\n" % (len(piece), piece), b"5\r\ndata")

    async with serving(drop) as server:
        events = provider.stream(call(server, stream=True))
        assert await anext(events) == [b'{"a": 1}']
        with pytest.raises(UpstreamDisconnected, match="mid-stream"):
            await anext(events)


async def test_silence_mid_stream_is_a_timeout(provider: OpenAICompatProvider) -> None:
    async def silence(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head() + b"9\r\ndata: 1\n\n\r\n")
        await conn.client_closed(timeout_s=30)

    async with serving(silence) as server:
        events = provider.stream(call(server, stream=True))
        assert await anext(events) == [b"1"]
        with pytest.raises(UpstreamTimeout, match="while streaming"):
            await anext(events)


async def test_closing_the_events_closes_the_connection(provider: OpenAICompatProvider) -> None:
    closed = asyncio.Event()

    async def endless(conn: ServerConn) -> None:
        await conn.request()
        await conn.send(chunked_head() + b"9\r\ndata: 1\n\n\r\n")
        if await conn.client_closed(timeout_s=5):
            closed.set()

    async with serving(endless) as server:
        events = provider.stream(call(server, stream=True))
        assert await anext(events) == [b"1"]
        await events.aclose()  # type: ignore[attr-defined]
        async with asyncio.timeout(2):
            await closed.wait()
        assert server.accepted == 1
