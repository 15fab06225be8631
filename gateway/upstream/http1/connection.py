"""One upstream HTTP/1.1 connection: an asyncio protocol feeding httptools.

A :class:`Connection` carries one exchange at a time. ``send`` writes the
request (head and body in one ``transport.write``); httptools' callbacks fill
the :class:`Response`; when the answer is complete the connection goes back
to its owner (the pool) if both sides allow keep-alive, and is closed
otherwise. Whatever ends an exchange early — a timeout, a broken answer, the
server closing, the caller abandoning the response — closes the connection:
closing is what tells an upstream to stop generating.

Timeouts cost no timer per exchange: each connection has one timer, armed
when an exchange could be due sooner than it would fire, and left running
when the exchange ends (a loop timer costs ~3.5 µs to make and cancel on
uvloop, more than a quarter of this client's own work per request). When it
fires it checks the exchange under way, if any: past the total deadline, or
waited ``first_byte`` since the last byte came, it fails; otherwise it
re-arms for when that could next happen. ``first_byte`` counts only while the
caller waits for the upstream (a stream's consumer that is slow is not the
upstream's fault).

This is the only module of the gateway that imports httptools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import httptools

from gateway.upstream.http1.errors import (
    BadResponse,
    Disconnected,
    HTTPClientError,
    RequestTimeout,
    StaleConnection,
)
from gateway.upstream.http1.inflate import Inflater, inflater

#: a stream's unread bytes above which the socket is no longer read
HIGH_WATER = 256 * 1024
#: loop timers may fire this much early (uvloop rounds to milliseconds)
_SLACK_S = 0.002
_NO_HEADERS: dict[bytes, bytes] = {}


def _ended_before_answer(reused: bool) -> Disconnected:
    if reused:
        return StaleConnection("the server closed an idle connection")
    return Disconnected("the server closed the connection without answering")


def _nowhere(body: bytes) -> None:
    raise BadResponse("a body with no exchange under way")


class Owner(Protocol):
    """What a connection tells its pool."""

    def release(self, conn: Connection) -> None:
        """The exchange is over and the connection can carry another."""

    def forget(self, conn: Connection) -> None:
        """The connection is closing: it no longer counts (called once)."""

    def lost(self, conn: Connection) -> None:
        """The transport is gone."""


class Response:
    """One answer. ``status`` and ``headers`` (lower-case names, raw values) are
    set when the head has arrived; a whole answer's body is ``body``; a
    streamed one is read by iterating (chunks as they arrive, several reads
    joined when the consumer was slower than the network).

    ``close()`` abandons the answer: if it is still being read its connection
    is closed, which tells the upstream to stop.
    """

    __slots__ = (
        "_conn",
        "_done",
        "_error",
        "_parts",
        "_size",
        "_wait_since",
        "_waiter",
        "body",
        "headers",
        "status",
        "streamed",
    )

    def __init__(self, conn: Connection, streamed: bool) -> None:
        self.status = 0
        self.headers = _NO_HEADERS
        self.body = b""
        self.streamed = streamed
        self._conn: Connection | None = conn
        self._parts: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._wait_since = 0.0
        self._error: HTTPClientError | None = None
        self._done = False

    def header(self, name: bytes) -> str | None:
        """A header's value by its lower-case name."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        parts = self._parts
        while not parts:
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            await self.wait()
        chunk = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._size = 0
        conn = self._conn
        if conn is not None and conn.paused:
            conn.resume()
        return chunk

    async def read(self) -> bytes:
        """The rest of a streamed body, whole."""
        return b"".join([chunk async for chunk in self])

    async def wait(self) -> None:
        """Until the connection has news for this answer (or it is abandoned)."""
        conn = self._conn
        if conn is None:
            return
        waiter = conn.loop.create_future()
        self._waiter = waiter
        self._wait_since = conn.loop.time()
        try:
            await waiter
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._waiter = None

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._done = True
            conn.abandon(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Connection(asyncio.Protocol):
    """One keep-alive connection to one origin (see the module docstring)."""

    __slots__ = (
        "_add",
        "_complete",
        "_deadline",
        "_first_byte",
        "_headers",
        "_inflater",
        "_interim",
        "_keep_alive",
        "_last_data",
        "_owner",
        "_parser",
        "_received",
        "_response",
        "_timer",
        "_timer_at",
        "_until_eof",
        "closed",
        "idle_since",
        "loop",
        "origin",
        "paused",
        "reused",
        "transport",
    )

    def __init__(self, owner: Owner, origin: str, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        #: this exchange is not the connection's first (a stale keep-alive is possible)
        self.reused = False
        self.paused = False
        self.idle_since = 0.0
        self._response: Response | None = None
        #: the answer's ``_parts.append``: the one call per body piece
        self._add: Callable[[bytes], None] = _nowhere
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._headers = _NO_HEADERS
        self._inflater: Inflater | None = None
        self._received = False
        self._complete = False
        self._interim = False
        self._keep_alive = False
        self._until_eof = False
        self._first_byte = 0.0
        self._deadline = 0.0
        self._last_data = 0.0

    # -- the exchange -----------------------------------------------------------

    def send(self, response: Response, data: bytes, first_byte: float, deadline: float) -> None:
        """Start an exchange: ``data`` is the whole request (head and body)."""
        self._response = response
        if self.closed:  # the server closed it while the request was on its way here
            self._fail(_ended_before_answer(self.reused))
            return
        self._add = response._parts.append
        self._received = False
        self._until_eof = False
        self._keep_alive = False
        self._first_byte = first_byte
        self._deadline = deadline
        now = self.loop.time()
        self._last_data = now
        response._wait_since = now
        due = min(deadline, now + first_byte)
        if self._timer is None or self._timer_at > due:
            self._arm(due)
        assert self.transport is not None
        self.transport.write(data)

    def abandon(self, response: Response) -> None:
        """The caller gave up on ``response``: close if it is still being read."""
        if self._response is response:
            self._response = None
            self._add = _nowhere
            self.close()

    def close(self) -> None:
        self._mark_closed()
        if self.transport is not None:
            self.transport.close()

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            self._owner.forget(self)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def abort(self) -> None:
        self.close()
        if self.transport is not None:
            self.transport.abort()

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None:
            self.transport.resume_reading()

    def _finish(self) -> None:
        response = self._response
        assert response is not None
        self._response = None
        self._add = _nowhere
        self._complete = False
        if self.paused:
            self.resume()
        inflate = self._inflater
        if inflate is not None:
            self._inflater = None
            try:
                tail = inflate.flush()
            except BadResponse as exc:
                response._error = exc
                self._keep_alive = False
            else:
                if tail:
                    response._parts.append(tail)
        response._conn = None
        response._done = True
        if not response.streamed:
            parts = response._parts
            response.body = parts[0] if len(parts) == 1 else b"".join(parts)
        response._wake()
        if self._keep_alive and not self.closed:
            self._owner.release(self)
        else:
            self.close()

    def _fail(self, error: HTTPClientError) -> None:
        response = self._response
        self.close()
        if response is None:
            return
        self._response = None
        self._add = _nowhere
        self._inflater = None
        response._conn = None
        response._error = error
        response._done = True
        response._wake()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        response = self._response
        if response is None or self.closed:
            return  # idle: the next exchange arms it again
        now = self.loop.time() + _SLACK_S
        deadline = self._deadline
        if now >= deadline:
            self._fail(RequestTimeout("total"))
            return
        if response._waiter is not None:
            due = max(self._last_data, response._wait_since) + self._first_byte
            if now >= due:
                self._fail(RequestTimeout("first_byte"))
                return
        else:
            due = now + self._first_byte
        self._arm(min(due, deadline))

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None:
            # bytes nobody asked for (say a 408 before an idle close): not reusable
            self.close()
            return
        self._received = True
        self._last_data = self.loop.time()
        if response.streamed:
            # flow control by wire bytes (framing included): close enough, and one
            # addition per read instead of one per HTTP chunk
            response._size += len(data)
            if response._size > HIGH_WATER and not self.paused:
                self.paused = True
                assert self.transport is not None
                self.transport.pause_reading()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._complete:  # trailing garbage after a whole answer
                self._keep_alive = False
                self._finish()
                return
            cause = exc.__context__
            self._fail(
                cause if isinstance(cause, HTTPClientError) else BadResponse(f"invalid HTTP: {exc}")
            )
            return
        if self._complete:
            self._finish()
        elif response.streamed and response.status:
            response._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._mark_closed()
        self._owner.lost(self)
        if self._response is None:
            return
        if exc is None and self._until_eof:
            # a body delimited by the end of the connection (HTTP/1.0 style) is whole
            self._complete = True
            self._keep_alive = False
            self._finish()
        elif not self._received:
            self._fail(_ended_before_answer(self.reused))
        else:
            self._fail(Disconnected("the server closed the connection mid-answer"))

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            raise BadResponse("a second answer to one request")
        self._headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        status: int = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise BadResponse("the server switched protocols")
            self._interim = True  # 100 Continue, 103 Early Hints: the answer follows
            return
        response = self._response
        assert response is not None
        headers = self._headers
        response.status = status
        response.headers = headers
        encoding = headers.get(b"content-encoding")
        if encoding is not None:
            self._inflater = inflater(encoding)
        if b"content-length" not in headers and status != 204 and status != 304:
            coding = headers.get(b"transfer-encoding")
            self._until_eof = coding is None or b"chunked" not in coding.lower()

    def on_body(self, body: bytes) -> None:
        if self._inflater is None:
            self._add(body)
        else:
            body = self._inflater.feed(body)
            if body:
                self._add(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
