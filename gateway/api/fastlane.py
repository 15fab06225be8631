"""The OpenAI endpoints as a pure ASGI lane in front of the FastAPI app.

``POST /v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``
carry nearly all traffic. Here they skip Starlette's per-request machinery
(Request and Response objects, route matching, the exception middleware's
send wrapper, and StreamingResponse's task group per stream), which costs
more than the whole bare proxy does (see README, Benchmarks). Everything else,
including wrong methods on these paths, goes to the FastAPI app.

Contract, as for every route: read the body (413 past the limit), call the
pipeline once, render its reply or its error in OpenAI's shape. After the body
is read, one watcher task waits for the client to disconnect and then cancels
the work, which cancels the upstream request or stream.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.body import ClientGone, read_body, until_disconnect
from gateway.errors import GatewayError
from gateway.exchange import request_id_from
from gateway.pipeline import Reply
from gateway.providers.base import Endpoint
from gateway.services import Services

ENDPOINTS = {
    "/v1/chat/completions": Endpoint.CHAT,
    "/v1/completions": Endpoint.COMPLETIONS,
    "/v1/embeddings": Endpoint.EMBEDDINGS,
}
_JSON = (b"content-type", b"application/json")
_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class OpenAILane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ENDPOINTS.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            raw = await read_body(receive, headers, services.settings.max_body_bytes)
        except GatewayError as error:
            await _send_error(send, error, headers)
            return
        except ClientGone:
            return
        try:
            await until_disconnect(receive, _serve(services, endpoint, raw, headers, send))
        except ClientGone:
            return


async def _serve(
    services: Services, endpoint: Endpoint, raw: bytes, headers: dict[str, str], send: Send
) -> None:
    try:
        reply: Reply = await services.pipeline.handle(endpoint, raw, headers)
    except GatewayError as error:
        await _send_error(send, error, headers)
        return
    response_headers = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()
    ]
    if reply.events is None:
        body = reply.body or b""
        response_headers.append(_JSON)
        response_headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {"type": "http.response.start", "status": reply.status, "headers": _SSE + response_headers}
    )
    events = reply.events
    try:
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
    await send({"type": "http.response.body", "body": b""})


async def _send_error(send: Send, error: GatewayError, headers: dict[str, str]) -> None:
    body = orjson.dumps(error.body())
    extra = {
        "x-request-id": request_id_from(headers.get("x-request-id")),
        "x-gateway-cache": "bypass",
    }
    extra.update(error.headers)
    response_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    response_headers.append(_JSON)
    response_headers.append((b"content-length", str(len(body)).encode()))
    start: Message = {
        "type": "http.response.start",
        "status": error.http_status,
        "headers": response_headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
