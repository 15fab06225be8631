"""Rendering: every HTTP error the gateway sends comes from here.

The body is always :meth:`gateway.errors.GatewayError.body` (OpenAI's
``{"error": {...}}``); :func:`send_error` writes it on the OpenAI lane (raw
ASGI) and :func:`error_response` for the FastAPI routes, with the same status
and headers. (A stream that fails after its first byte ends with the same body
as an SSE event: :func:`gateway.upstream.relay.error_event`.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Send

from gateway.errors import GatewayError, InternalError, MethodNotAllowed, NotFound

log = logging.getLogger("gateway.api")

JSON = "application/json"


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=dict(headers or {}), media_type=JSON
    )


def error_response(error: GatewayError) -> Response:
    return Response(
        orjson.dumps(error.body()),
        status_code=error.http_status,
        headers=error.headers,
        media_type=JSON,
    )


async def send_error(
    send: Send,
    error: GatewayError,
    headers: Mapping[str, str],
    shape: Callable[[GatewayError], Any] | None = None,
) -> None:
    """Write ``error`` as a whole ASGI response; ``headers`` (the request
    record's) win over the error's own (``retry-after``, ``x-ratelimit-*``).
    ``shape`` gives the body: OpenAI's, or another API's for the endpoints
    that speak it (:func:`gateway.api.messages.error_body`)."""
    body = error.body() if shape is None else shape(error)  # body() is overridden per class
    await send_json(send, error.http_status, body, {**error.headers, **headers})


async def send_json(send: Send, status: int, data: Any, headers: Mapping[str, str]) -> None:
    """Write ``data`` as a whole JSON ASGI response."""
    body = orjson.dumps(data)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-type", JSON.encode()))
    raw.append((b"content-length", str(len(body)).encode()))
    start: Message = {"type": "http.response.start", "status": status, "headers": raw}
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown path or method), in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: GatewayError = MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.url.path}."
        )
    elif exc.status_code == 404:
        error = NotFound(f"Invalid URL ({request.method} {request.url.path})")
    else:
        error = GatewayError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return error_response(error)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log it with its traceback, answer OpenAI's 500 without details."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError("The gateway had an internal error; it has been logged."))
