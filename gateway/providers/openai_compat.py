"""The fast path: any server that speaks OpenAI's HTTP API.

vLLM, Ollama, llama.cpp, TGI, SGLang and OpenAI itself all take the request
as it is; this provider forwards the body with one ``orjson.dumps`` and reads
the answer with one ``orjson.loads`` (usage is needed for spend). Streams are
passed on event by event as they arrive, without re-encoding.

aiohttp is used rather than httpx because it is several times faster per
request here (see README, "Why aiohttp"). This module is the only one that
imports it.

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
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from gateway.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.providers.base import UpstreamCall, UpstreamReply
from gateway.targets import Target

log = logging.getLogger("gateway.providers")

_DATA = b"data:"
_DONE = b"[DONE]"


class OpenAICompatProvider:
    """One aiohttp session (connection pool) shared by every OpenAI-compatible target."""

    def __init__(self, *, pool_size: int = 512) -> None:
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        # per target (by identity): URL prefix, headers and timeout, built once
        self._prepared: dict[int, tuple[Target, str, dict[str, str], aiohttp.ClientTimeout]] = {}

    def _prepare(
        self, target: Target, path: str, request_id: str
    ) -> tuple[str, dict[str, str], aiohttp.ClientTimeout]:
        entry = self._prepared.get(id(target))
        if entry is None or entry[0] is not target:
            if len(self._prepared) > 1024:  # policies were reloaded many times
                self._prepared.clear()
            base = (target.base_url or "").rstrip("/")
            entry = (target, base, _headers(target), _timeout(target))
            self._prepared[id(target)] = entry
        _, base, headers, timeout = entry
        return f"{base}/{path}", {**headers, "x-request-id": request_id}, timeout

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=0,
                ttl_dns_cache=300,
                keepalive_timeout=30,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        target = call.target
        url, headers, timeout = self._prepare(target, call.endpoint.value, call.request_id)
        try:
            async with self._client().post(
                url, data=orjson.dumps(call.body), headers=headers, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise await _status_error(response, target)
                raw = await response.read()
        except UpstreamError:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _before_body(exc, target) from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"{target.name} answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"{target.name} answered with a non-object JSON body")
        return UpstreamReply(data=data, raw=raw)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        target = call.target
        session = self._client()
        url, headers, timeout = self._prepare(target, call.endpoint.value, call.request_id)
        try:
            response = await session.post(
                url, data=orjson.dumps(call.body), headers=headers, timeout=timeout
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _before_body(exc, target) from exc
        try:
            if response.status >= 400:
                raise await _status_error(response, target)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise UpstreamProtocolError(
                    f"{target.name} did not answer with an event stream ({content_type or 'no content-type'})"
                )
            async for batch in _event_batches(response.content):
                yield batch
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"{target.name} timed out while streaming") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise UpstreamDisconnected(f"{target.name} closed the connection mid-stream") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamDisconnected(
                f"{target.name} failed mid-stream: {type(exc).__name__}"
            ) from exc
        finally:
            # Closing (not releasing) drops the connection, which is what
            # cancels generation upstream when the client went away.
            response.close()


def _before_body(exc: BaseException, target: Target) -> UpstreamError:
    """Map a failure that happened before the answer's body was read."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{target.name} timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectError(f"could not connect to {target.name}")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamDisconnected(f"{target.name} closed the connection")
    return UpstreamConnectError(f"{target.name} failed: {type(exc).__name__}")


async def _event_batches(content: aiohttp.StreamReader) -> AsyncIterator[list[bytes]]:
    """Yield the data of the server-sent events of each network read, together.

    Stops at ``[DONE]``. Line ends may be ``\n``, ``\r\n`` or ``\r``;
    multi-line ``data:`` fields are joined with newlines (SSE spec); comments
    and ``event:``/``id:`` lines are ignored.
    """
    buffer = b""
    async for data in content.iter_any():
        buffer += data
        if b"\r" in buffer:
            # keep a trailing CR: its LF may come with the next read
            tail = b"\r" if buffer.endswith(b"\r") else b""
            body = buffer[:-1] if tail else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        if b"\n\n" not in buffer:
            continue
        *blocks, buffer = buffer.split(b"\n\n")
        batch: list[bytes] = []
        for block in blocks:
            payload = _payload(block)
            if payload is None:
                continue
            if payload == _DONE:
                if batch:
                    yield batch
                return
            batch.append(payload)
        if batch:
            yield batch
    payload = _payload(buffer.rstrip(b"\r\n"))
    if payload is not None and payload != _DONE:
        yield [payload]


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


def _timeout(target: Target) -> aiohttp.ClientTimeout:
    t = target.timeouts
    return aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect, sock_read=t.first_byte)


async def _status_error(response: aiohttp.ClientResponse, target: Target) -> UpstreamStatusError:
    """Turn an upstream error response into OpenAI's error fields.

    401/403 mean the *gateway's* credentials were refused: that is not the
    client's fault, so the upstream's message (which may quote part of the
    key) is replaced and the error is retryable on the next target.
    """
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        raw = await asyncio.wait_for(response.read(), timeout=5)
    except (TimeoutError, aiohttp.ClientError):
        raw = b""
    message = f"upstream returned HTTP {response.status}"
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
    if response.status in (401, 403):
        message = f"{target.name} refused the gateway's credentials (HTTP {response.status})"
        error_type = param = code = None
    elif target.api_key and target.api_key in message:
        message = message.replace(target.api_key, "[redacted]")
    return UpstreamStatusError(
        response.status,
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
