"""Keep-alive connections per origin, bounded in total.

* Reuse is LIFO: the connection used last is the one least likely to have
  been closed by the server in the meantime, and the others can expire.
* An idle connection is dropped ``keepalive_s`` after its last answer (one
  sweep timer for the whole pool, not one per connection), or as soon as the
  server closes it.
* At most ``limit`` connections exist at once, idle and busy together. At the
  bound, an idle connection of another origin is closed to make room; when
  none is idle the caller waits (FIFO) for one to be freed, within the
  request's total deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import Protocol

from gateway.upstream.http1.connection import Connection
from gateway.upstream.http1.errors import ConnectFailed, RequestTimeout, connect_failure

#: how long ``aclose`` waits for closing connections before aborting them
_CLOSE_WAIT_S = 2.0


class Address(Protocol):
    origin: str
    host: str
    port: int
    tls: bool


class Pool:
    def __init__(
        self, *, limit: int, keepalive_s: float, ssl_context: ssl.SSLContext | None
    ) -> None:
        if limit < 1:
            raise ValueError("the pool needs room for at least one connection")
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[str, list[Connection]] = {}
        #: connections open or opening, idle or busy
        self._count = 0
        self._open: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closing = False
        self._all_lost: asyncio.Future[None] | None = None

    @property
    def size(self) -> int:
        """Connections open or opening."""
        return self._count

    def take(self, origin: str) -> Connection | None:
        """The most recently used idle connection to ``origin``, if any."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def acquire(
        self, address: Address, connect_s: float, deadline: float, *, fresh: bool = False
    ) -> Connection:
        """An idle connection (unless ``fresh``) or a new one, waiting for room."""
        while True:
            if self._closing:
                raise ConnectFailed("the client is closed")
            if not fresh:
                conn = self.take(address.origin)
                if conn is not None:
                    return conn
            if self._count < self._limit or self._evict_idle():
                return await self._connect(address, connect_s, deadline)
            await self._wait_for_room(deadline)

    async def _connect(self, address: Address, connect_s: float, deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        self._count += 1
        conn = Connection(self, address.origin, loop)
        self._open.add(conn)
        context = None
        if address.tls:
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout_at(min(loop.time() + connect_s, deadline)):
                await loop.create_connection(
                    lambda: conn,
                    address.host,
                    address.port,
                    ssl=context,
                    server_hostname=address.host if context is not None else None,
                )
        except TimeoutError:
            self._dispose(conn)
            raise RequestTimeout("connect") from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            self._dispose(conn)
            raise ConnectFailed(connect_failure(exc)) from exc
        except BaseException:
            self._dispose(conn)
            raise
        return conn

    def _dispose(self, conn: Connection) -> None:
        """A connection that failed to open (or was cancelled while opening)."""
        conn.close()
        self._open.discard(conn)

    async def _wait_for_room(self, deadline: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            raise RequestTimeout("total") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, then cancelled: hand the turn on
            raise

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection of any origin; False when none is idle."""
        oldest: Connection | None = None
        for conns in self._idle.values():
            for conn in conns:  # oldest first
                if not conn.closed:
                    if oldest is None or conn.idle_since < oldest.idle_since:
                        oldest = conn
                    break
        if oldest is None:
            return False
        self._idle[oldest.origin].remove(oldest)
        oldest.close()
        return True

    # -- what connections tell the pool (connection.Owner) -----------------------------

    def release(self, conn: Connection) -> None:
        if self._closing:
            conn.close()
            return
        conn.reused = True
        conn.idle_since = now = conn.loop.time()
        idle = self._idle.get(conn.origin)
        if idle is None:
            self._idle[conn.origin] = [conn]
        else:
            idle.append(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_at(now + self._keepalive_s, self._sweep)
        if self._waiters:
            self._wake()

    def forget(self, conn: Connection) -> None:
        self._count -= 1
        if self._waiters:
            self._wake()

    def lost(self, conn: Connection) -> None:
        self._open.discard(conn)
        if not self._open and self._all_lost is not None and not self._all_lost.done():
            self._all_lost.set_result(None)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        expired = loop.time() - self._keepalive_s + 0.01
        first: float | None = None
        for origin, conns in list(self._idle.items()):
            kept = []
            for conn in conns:
                if conn.closed:
                    continue
                if conn.idle_since <= expired:
                    conn.close()
                else:
                    kept.append(conn)
            if kept:
                self._idle[origin] = kept
                if first is None or kept[0].idle_since < first:
                    first = kept[0].idle_since
            else:
                del self._idle[origin]
        if first is not None:
            self._sweeper = loop.call_at(first + self._keepalive_s, self._sweep)

    async def aclose(self) -> None:
        """Close every connection, idle or busy, and wait (briefly) until they are gone."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        for conn in list(self._open):
            conn.close()
        if self._open:
            self._all_lost = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await self._all_lost
            for conn in list(self._open):
                conn.abort()
        while self._waiters:
            self._wake()
