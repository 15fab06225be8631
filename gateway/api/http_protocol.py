"""uvicorn's httptools protocol, sending a response's head and first body bytes together.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, then the body in a second write: two system calls
(and, on loopback, two trips through the receiving side's network stack) for
every answer, where one would do. Here the transport holds a response head
until the next write and sends both with one ``writelines``; if nothing
follows within the current event-loop iteration (an app that starts a
response and then waits), the head goes out alone. ``100 Continue`` is never
held: the client waits for it before sending its body.

Nothing else changes: every other transport call goes to uvicorn's transport.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class _HeadHoldingTransport:
    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif (
            data.startswith(_HEAD_START)
            and data.endswith(_HEAD_END)
            and data[9:10] != b"1"  # informational (100 Continue): never held
        ):
            self._head = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """Pass as uvicorn's ``http`` setting (as :mod:`gateway.server` does)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        held = _HeadHoldingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, held))
