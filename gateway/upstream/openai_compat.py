"""The fast path: any server that speaks OpenAI's HTTP API.

vLLM, Ollama, llama.cpp, TGI, SGLang and OpenAI itself all take the request
as it is (and OpenAI and vLLM also the Responses API, ``Endpoint.RESPONSES``:
the body is posted to ``{base_url}/responses`` and the answer is a Response
object or the Responses event stream, whose ``event:`` lines are dropped here:
each event's ``type`` says the same); this provider forwards the body with one ``orjson.dumps`` and reads
the answer with one ``orjson.loads`` (usage is needed for spend). Streams are
passed on event by event as they arrive, without re-encoding.

HTTP goes through the gateway's own HTTP/1.1 client (:mod:`.http1`: httptools
and one asyncio protocol per connection), which costs a fraction of aiohttp's
client per request (see README, "The upstream HTTP client").

Failure mapping (every one is raised before the first stream event when it
happens before the first event, so the router can still fall back):

* connection refused / DNS / TLS        -> UpstreamConnectError
* connect, first-byte or total timeout  -> UpstreamTimeout
* HTTP status >= 400                    -> UpstreamStatusError (with OpenAI's error fields)
* connection dropped mid-body           -> UpstreamDisconnected
* a body that is not OpenAI's format    -> UpstreamProtocolError
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson

from gateway.endpoints import Endpoint
from gateway.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.targets import Target
from gateway.upstream.http1 import (
    BadResponse,
    Client,
    ConnectFailed,
    Disconnected,
    HTTPClientError,
    InvalidRequest,
    Request,
    RequestTimeout,
    Response,
)
from gateway.upstream.provider import FramedBatch, UpstreamCall, UpstreamReply

log = logging.getLogger("gateway.upstream")

_DATA = b"data:"
_DATA_SPACE = b"data: "
_DONE_LINE = b"data: [DONE]"
_DONE_BLOCK = b"data: [DONE]\n\n"
_DONE = b"[DONE]"
#: how long an error answer's body may take to arrive when streaming
_ERROR_BODY_S = 5.0


class OpenAICompatProvider:
    """One HTTP client (connection pool) shared by every OpenAI-compatible target."""

    def __init__(self, *, pool_size: int = 512) -> None:
        self._pool_size = pool_size
        self._http: Client | None = None
        # per target (by identity) and endpoint: the prepared request, built once
        self._prepared: dict[tuple[int, Endpoint], tuple[Target, Request]] = {}

    def _request(self, target: Target, endpoint: Endpoint) -> Request:
        entry = self._prepared.get((id(target), endpoint))
        if entry is None or entry[0] is not target:
            if len(self._prepared) > 1024:  # policies were reloaded many times
                self._prepared.clear()
            base = (target.base_url or "").rstrip("/")
            try:
                entry = (target, Request(f"{base}/{endpoint.value}", _headers(target).items()))
            except InvalidRequest as exc:
                raise UpstreamConnectError(f"{target.name} cannot be called: {exc}") from None
            self._prepared[(id(target), endpoint)] = entry
        return entry[1]

    def _client(self) -> Client:
        if self._http is None:
            self._http = Client(limit=self._pool_size)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        target = call.target
        request = self._request(target, call.endpoint)
        try:
            response = await self._client().fetch(
                request,
                orjson.dumps(call.body),
                target.timeouts,
                call.trace_headers(),
            )
        except HTTPClientError as exc:
            raise _before_body(exc, target) from exc
        raw = response.body
        if response.status >= 400:
            raise _status_error(response, raw, target)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{target.name} answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"{target.name} answered with a non-object JSON body")
        native = call.endpoint is Endpoint.RESPONSES
        if native and data.get("object") != "response":
            raise UpstreamProtocolError(f"{target.name} did not answer with a Response object")
        return UpstreamReply(data=data, raw=raw, responses=native)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        target = call.target
        request = self._request(target, call.endpoint)
        try:
            response = await self._client().stream(
                request,
                orjson.dumps(call.body),
                target.timeouts,
                call.trace_headers(),
            )
        except HTTPClientError as exc:
            raise _before_body(exc, target) from exc
        try:
            if response.status >= 400:
                raise _status_error(response, await _error_body(response), target)
            content_type = response.header(b"content-type") or ""
            if "text/event-stream" not in content_type:
                raise UpstreamProtocolError(
                    f"{target.name} did not answer with an event stream ({content_type or 'no content-type'})"
                )
            named = call.endpoint is Endpoint.RESPONSES
            async for batch in _event_batches(response, named=named):
                yield batch
        except RequestTimeout as exc:
            raise UpstreamTimeout(f"{target.name} timed out while streaming") from exc
        except Disconnected as exc:
            raise UpstreamDisconnected(f"{target.name} closed the connection mid-stream") from exc
        except BadResponse as exc:
            raise UpstreamProtocolError(f"{target.name} sent a broken stream: {exc}") from exc
        finally:
            # Closing an unfinished answer drops its connection, which is what
            # cancels generation upstream when the client went away.
            response.close()


def _before_body(exc: HTTPClientError, target: Target) -> UpstreamError:
    """Map a failure that happened before the answer's body was read."""
    if isinstance(exc, RequestTimeout):
        return UpstreamTimeout(f"{target.name} timed out")
    if isinstance(exc, ConnectFailed):
        detail = f"{exc} at {target.base_url}"
        return UpstreamConnectError(f"could not connect to {target.name}: {detail}", detail=detail)
    if isinstance(exc, Disconnected):
        return UpstreamDisconnected(f"{target.name} closed the connection")
    if isinstance(exc, BadResponse):
        return UpstreamProtocolError(f"{target.name} did not answer in HTTP/1.x: {exc}")
    return UpstreamConnectError(f"{target.name} failed: {type(exc).__name__}")


async def _error_body(response: Response) -> bytes:
    """A streamed error answer's body, or nothing when it does not come in time."""
    try:
        async with asyncio.timeout(_ERROR_BODY_S):
            return await response.read()
    except (TimeoutError, HTTPClientError):
        return b""


async def _event_batches(
    chunks: AsyncIterable[bytes], *, named: bool = False
) -> AsyncIterator[list[bytes]]:
    """Yield the data of the server-sent events of each network read, together.

    ``named``: the events are the Responses API's, each ``event: <type>`` then
    ``data: <payload>``; a read of only such blocks is a :class:`FramedBatch`
    too (see :func:`_framed_named`).

    Stops at ``[DONE]``. Line ends may be ``\n``, ``\r\n`` or ``\r``;
    multi-line ``data:`` fields are joined with newlines (SSE spec); comments
    and ``event:``/``id:`` lines are ignored; a last event without its blank
    line is still yielded at the end of the stream.
    """
    buffer = b""
    async for data in chunks:
        buffer += data
        if b"\r" in buffer:
            # keep a trailing CR: its LF may come with the next read
            tail = b"\r" if buffer.endswith(b"\r") else b""
            body = buffer[:-1] if tail else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        if b"\n\n" not in buffer:
            continue
        end = buffer.rfind(b"\n\n") + 2
        events = buffer[:end]
        done_at = events.find(_DONE_BLOCK)
        if done_at >= 0 and (done_at == 0 or events[done_at - 2 : done_at] == b"\n\n"):
            events = events[:done_at]  # the stream ends here
            if not events:
                return
            framed = _framed(events)
            if framed is not None:
                yield framed
                return
        else:
            framed = _framed_named(events) if named else _framed(events)
            if framed is not None:
                buffer = buffer[end:]
                yield framed
                continue
        *blocks, buffer = buffer.split(b"\n\n")
        batch: list[bytes] = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                payload = block[6:]  # the common case: one data line
            else:
                found = _payload(block)
                if found is None:
                    continue
                payload = found
            if payload == _DONE:
                if batch:
                    yield batch
                return
            batch.append(payload)
        if batch:
            yield batch
    last = _payload(buffer.rstrip(b"\r\n"))
    if last is not None and last != _DONE:
        yield [last]


def _framed(events: bytes) -> FramedBatch | None:
    """``events`` (whole event blocks) as a :class:`FramedBatch` when every one
    is a single ``data: `` line and none is ``[DONE]``; else None.

    The blocks are what lies between blank lines: when the text has exactly
    two line ends per block, no block holds a line end of its own."""
    blocks = events[:-2].split(b"\n\n")
    if events.count(b"\n") != 2 * len(blocks) or _DONE_LINE in blocks:
        return None
    payloads = [block[6:] for block in blocks if block.startswith(_DATA_SPACE)]
    if len(payloads) != len(blocks):
        return None
    return FramedBatch(payloads, events)


def _framed_named(events: bytes) -> FramedBatch | None:
    """``events`` (whole event blocks) as a :class:`FramedBatch` when every one
    is exactly ``event: <type>\ndata: <payload>``; else None. Each block then
    holds one line end of its own, and the blank line after it two."""
    blocks = events[:-2].split(b"\n\n")
    if events.count(b"\n") != 3 * len(blocks):
        return None
    payloads = []
    for block in blocks:
        at = block.find(b"\ndata: ")
        if at < 0 or not block.startswith(b"event: "):
            return None
        payloads.append(block[at + 7 :])
    return FramedBatch(payloads, events)


def _payload(block: bytes) -> bytes | None:
    """The data of one event block, or None when it has no ``data:`` line."""
    if block.startswith(b"data: ") and b"\n" not in block:
        return block[6:]  # the common case: one data line
    lines = [line[5:] for line in block.split(b"\n") if line.startswith(_DATA)]
    if not lines:
        return None
    return b"\n".join(line[1:] if line[:1] == b" " else line for line in lines)


def _headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    return headers


def _status_error(response: Response, raw: bytes, target: Target) -> UpstreamStatusError:
    """Turn an upstream error response into OpenAI's error fields.

    401/403 mean the *gateway's* credentials were refused: that is not the
    client's fault, so the upstream's message (which may quote part of the
    key) is replaced and the error is retryable on the next target.
    """
    status = response.status
    retry_after = _retry_after(response.header(b"retry-after"))
    message = f"upstream returned HTTP {status}"
    error_type = param = code = None
    try:
        data: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            if isinstance(err.get("message"), str):
                message = err["message"]
            error_type = err.get("type") if isinstance(err.get("type"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
            raw_code = err.get("code")
            code = str(raw_code) if isinstance(raw_code, str | int) else None
        elif isinstance(err, str):
            message = err
    if status in (401, 403):
        message = f"{target.name} refused the gateway's credentials (HTTP {status})"
        error_type = param = code = None
    elif target.api_key and target.api_key in message:
        message = message.replace(target.api_key, "[redacted]")
    return UpstreamStatusError(
        status,
        message,
        error_type=error_type,
        param=param,
        code=code,
        retry_after_s=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
