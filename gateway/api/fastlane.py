"""The OpenAI endpoints as a pure ASGI lane in front of the FastAPI app.

``POST /v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``
carry nearly all traffic. Here they skip FastAPI and Starlette entirely
(FastAPI's per-request telemetry check, the middleware stack and its send
wrappers, Request and Response objects, route matching, and
StreamingResponse's task group per stream), which together cost more than the
whole bare proxy does (see README, Benchmarks). Everything else, including
wrong methods on these paths and the lifespan, goes to the FastAPI app.

Contract, as for every route: read the body (413 past the limit), call the
pipeline once, render its reply or its error in OpenAI's shape
(:mod:`gateway.api.render`); a bug is logged and answered with OpenAI's 500,
without details. A client that disconnects cancels the work, which cancels the
upstream request or stream (see :func:`gateway.api.body.until_disconnect`).

The lane makes each request's record (:class:`~gateway.observability.record.Exchange`)
before reading the body and emits it exactly once (:class:`_Answer`): just
before the last byte of the answer goes out, or when the request ends without
one (the client went away). That is the one place a request's metrics and
access line come from (:func:`~gateway.observability.record.finish`). A
streamed answer's events are closed however the stream ends, before that
emit: closing them settles the request (:mod:`gateway.pipeline.settlement`).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from gateway.api import messages, translated
from gateway.api.body import ClientGone, read_body, request_headers, until_disconnect
from gateway.api.render import send_error
from gateway.api.translated import PATHS
from gateway.endpoints import Endpoint
from gateway.errors import GatewayError, InternalError
from gateway.observability.metrics import Metrics
from gateway.observability.record import Exchange, client_request_id, finish, new_request_id
from gateway.pipeline.handler import ENDPOINT_LABELS, Reply
from gateway.services import Services

log = logging.getLogger("gateway.api")

ENDPOINTS = {
    "/v1/chat/completions": Endpoint.CHAT,
    "/v1/completions": Endpoint.COMPLETIONS,
    "/v1/embeddings": Endpoint.EMBEDDINGS,
}
ENDPOINT_PATHS = {endpoint: path for path, endpoint in ENDPOINTS.items()}
_JSON = (b"content-type", b"application/json")
_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class OpenAILane:
    """The ASGI app the server runs: the lane, then ``app`` for everything else."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._services: Services | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = ENDPOINTS.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in PATHS:
                await self._translated(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        services = self._services
        if services is None:
            # set by the app's lifespan (or by create_app), once
            services = self._services = self.app.state.services
        headers = request_headers(scope["headers"])
        ex = Exchange(
            new_request_id(),
            ENDPOINT_LABELS[endpoint],
            client_request_id(headers.get("x-request-id")),
        )
        answer = _Answer(send, ex, services.metrics)
        try:
            try:
                raw = await read_body(receive, headers, services.settings.max_body_bytes)
            except GatewayError as error:
                ex.failed(error)
                await send_error(answer, error, ex.headers())
                return
            except ClientGone:
                ex.cancelled()
                return
            try:
                await until_disconnect(
                    receive, _serve(services, ex, endpoint, raw, headers, answer)
                )
            except ClientGone:
                return
        finally:
            answer.emit()

    async def _translated(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An endpoint served by translation onto the chat pipeline (the same
        body limit, disconnect handling and record as the OpenAI endpoints)."""
        services = self._services
        if services is None:
            services = self._services = self.app.state.services
        path = scope["path"]
        headers = request_headers(scope["headers"])
        ex = Exchange(new_request_id(), PATHS[path], client_request_id(headers.get("x-request-id")))
        answer = _Answer(send, ex, services.metrics)
        try:
            try:
                raw = await read_body(receive, headers, services.settings.max_body_bytes)
            except GatewayError as error:
                ex.failed(error)
                await send_error(answer, error, ex.headers(), messages.error_body)
                return
            except ClientGone:
                ex.cancelled()
                return
            try:
                await until_disconnect(
                    receive, translated.serve(services, ex, path, raw, headers, answer)
                )
            except ClientGone:
                return
        finally:
            answer.emit()


class _Answer:
    """The ``send`` of one request: emits its record once, just before the
    answer's last body message (so the line and metrics exist when the client
    has its answer), or at the latest when :meth:`emit` is called."""

    __slots__ = ("_done", "_ex", "_metrics", "_send")

    def __init__(self, send: Send, ex: Exchange, metrics: Metrics) -> None:
        self._send, self._ex, self._metrics, self._done = send, ex, metrics, False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.emit()
        await self._send(message)

    def emit(self) -> None:
        if not self._done:
            self._done = True
            finish(self._ex, self._metrics)


async def _serve(
    services: Services,
    ex: Exchange,
    endpoint: Endpoint,
    raw: bytes,
    headers: dict[str, str],
    send: Send,
) -> None:
    try:
        reply: Reply = await services.pipeline.handle(ex, endpoint, raw, headers)
    except GatewayError as error:
        await send_error(send, error, ex.headers())
        return
    except Exception as exc:  # a bug: logged with its traceback, no details sent
        log.error("unhandled error on POST %s", ENDPOINT_PATHS[endpoint], exc_info=exc)
        internal = InternalError("The gateway had an internal error; it has been logged.")
        ex.failed(internal)
        await send_error(send, internal, ex.headers())
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
    events = reply.events
    try:
        # closed however this ends (closing settles the request): even when
        # the client is gone before the first event
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": _SSE + response_headers,
            }
        )
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
    await send({"type": "http.response.body", "body": b""})
