"""Reading request bodies with a size limit, and cancelling work when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import TypeVar

from starlette.types import Receive

from gateway.errors import InvalidRequest, PayloadTooLarge

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole JSON body, refusing a non-JSON content type (400) and anything
    past ``limit`` bytes (413) as soon as it is declared or read."""
    content_type = headers.get("content-type", "").lower()
    if content_type and "json" not in content_type and "text/plain" not in content_type:
        raise InvalidRequest(
            f"Unsupported content type {content_type!r}; send application/json.",
            code="unsupported_content_type",
        )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


#: a request answered sooner than this never starts a watcher; a client that
#: leaves is noticed at most this late (the upstream call is then cancelled)
WATCH_AFTER_S = 0.05


async def until_disconnect(
    receive: Receive, work: Awaitable[T], *, watch_after_s: float = WATCH_AFTER_S
) -> T:
    """Await ``work`` in this task; cancel it (and so its upstream call or
    stream) if the client disconnects first.

    Most answers are done within milliseconds, and a watcher task per request
    is a measurable share of the gateway's own time, so the watcher starts
    only once ``work`` has run for ``watch_after_s``; a disconnect that came
    earlier is then seen at once. Call this only once the body is read: the
    watcher is then the only reader."""
    watch = _Watch(receive, asyncio.current_task())
    timer = asyncio.get_running_loop().call_later(watch_after_s, watch.start)
    try:
        return await work
    except asyncio.CancelledError:
        if watch.gone:
            watch.task.uncancel()
            raise ClientGone from None
        raise
    finally:
        timer.cancel()
        watch.stop()


class _Watch:
    """One request's disconnect watcher, started late (see :func:`until_disconnect`)."""

    __slots__ = ("gone", "receive", "task", "watcher")

    def __init__(self, receive: Receive, task: asyncio.Task[object] | None) -> None:
        assert task is not None
        self.receive = receive
        self.task = task
        self.gone = False
        self.watcher: asyncio.Future[None] | None = None

    def start(self) -> None:
        self.watcher = asyncio.ensure_future(self._watch())
        self.watcher.add_done_callback(self._done)

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass

    def _done(self, watcher: asyncio.Future[None]) -> None:
        if not watcher.cancelled() and watcher.exception() is None:
            self.gone = True
            self.task.cancel()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.remove_done_callback(self._done)
            self.watcher.cancel()


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by (lower-case) name; a repeated header's values
    are joined with ``", "`` as HTTP combines them, so that none is lost (a
    second ``x-data-classification`` cannot replace the first; judging takes
    the highest level of the list)."""
    headers: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1")
        value = v.decode("latin-1")
        if name in headers:
            headers[name] += ", " + value
        else:
            headers[name] = value
    return headers
