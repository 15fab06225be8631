"""Reading request bodies with a size limit, and cancelling work when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
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


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; cancel it (and so its upstream call or
    stream) if the client disconnects first. One watcher task, nothing more.
    Call it only once the body is read: the watcher is then the only reader."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    def on_watcher_done(watcher: asyncio.Future[None]) -> None:
        nonlocal gone
        if not watcher.cancelled() and watcher.exception() is None:
            gone = True
            task.cancel()

    watcher = asyncio.ensure_future(watch())
    watcher.add_done_callback(on_watcher_done)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientGone from None
        raise
    finally:
        watcher.remove_done_callback(on_watcher_done)
        watcher.cancel()
