"""Small scripted HTTP servers on free loopback ports, for the client's edge cases.

Each accepted connection runs ``script(conn)``; the script reads requests and
writes whatever bytes it likes, in pieces, with pauses between them so that
they arrive as separate reads. The server counts connections (accepted,
open at once, closed by the client) for the keep-alive and pool tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    head: bytes
    headers: dict[bytes, bytes]
    body: bytes


@dataclass
class ServerConn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer
    #: requests received on this connection
    requests: list[Received] = field(default_factory=list)
    #: set when the client closed the connection (seen by a read)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _reading: bool = False

    async def request(self) -> Received | None:
        """The next request; None when the client closed the connection."""
        self._reading = True
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.ended.set()
            return None
        finally:
            self._reading = False
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        received = Received(head, headers, body)
        self.requests.append(received)
        self.server.requests.append(received)
        return received

    async def send(self, *pieces: bytes, pause_s: float = 0.01) -> None:
        """Write each piece, flushed, with a pause between them (separate reads)."""
        for index, piece in enumerate(pieces):
            if index and pause_s:
                await asyncio.sleep(pause_s)
            self.writer.write(piece)
            await self.writer.drain()

    async def client_closed(self, timeout_s: float = 2.0) -> bool:
        """Whether the client closes the connection within ``timeout_s`` (read here,
        or by the script's own ``request()`` when it is waiting for one)."""
        try:
            async with asyncio.timeout(timeout_s):
                if self._reading:
                    await self.ended.wait()
                    return True
                self._reading = True
                try:
                    while await self.reader.read(65536):
                        pass
                finally:
                    self._reading = False
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        self.ended.set()
        return True

    def close(self) -> None:
        self.writer.close()


Script = Callable[[ServerConn], Awaitable[None]]


class RawServer:
    def __init__(self, script: Script, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        #: connections the client closed while the script waited on them
        self.closed_by_client = 0
        self.requests: list[Received] = []
        self.conns: list[ServerConn] = []

    def url(self, path: str = "/v1/chat/completions", host: str = "127.0.0.1") -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(
            self._accept,
            "127.0.0.1",
            0,
            ssl=self._ssl,
            ssl_handshake_timeout=5 if self._ssl is not None else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        conn = ServerConn(reader, writer, self)
        self.conns.append(conn)
        try:
            await self._script(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def serving(script: Script, **options: Any) -> AsyncIterator[RawServer]:
    server = await RawServer(script, **options).start()
    try:
        yield server
    finally:
        await server.close()


def answer(
    body: bytes = b"{}",
    *,
    status: str = "200 OK",
    version: str = "HTTP/1.1",
    headers: tuple[str, ...] = ("Content-Type: application/json",),
    length: bool = True,
) -> bytes:
    """An HTTP answer's bytes, with Content-Length unless ``length`` is False."""
    lines = [f"{version} {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*chunks: bytes) -> bytes:
    """A chunked body: the given chunks and the last, empty one."""
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def chunked_head(content_type: str = "text/event-stream", *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", "Transfer-Encoding: chunked"]
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()
