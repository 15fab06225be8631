"""Endpoints served by translation onto the chat pipeline (``/v1/messages``).

Contract: the body is parsed and translated to a chat body (a 4xx in the
dialect's own error shape when it cannot be), the pipeline handles it as chat
(same judging, policy, limits, cache, routing and record), and its answer is
translated back, whole or as the dialect's event stream. The request record is
emitted once, by the lane (:mod:`gateway.api.fastlane`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Send

from gateway.api import messages
from gateway.api.render import send_error, send_json
from gateway.endpoints import Endpoint
from gateway.errors import GatewayError, InternalError, InvalidRequest
from gateway.judging.tokens import estimate_request_tokens
from gateway.observability.record import Exchange
from gateway.services import Services

log = logging.getLogger("gateway.api")

_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
#: path -> the record's endpoint label
PATHS = {MESSAGES: "messages", COUNT_TOKENS: "messages_count_tokens"}


def anthropic_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Anthropic clients send their key as ``x-api-key``: the gateway key is
    accepted there as well as in ``Authorization``."""
    out = dict(headers)
    key = out.get("x-api-key")
    if key and "authorization" not in out:
        out["authorization"] = f"Bearer {key}"
    return out


async def serve(
    services: Services,
    ex: Exchange,
    path: str,
    raw: bytes,
    headers: dict[str, str],
    send: Send,
) -> None:
    headers = anthropic_headers(headers)
    try:
        body = _json(raw)
        chat = messages.to_chat(body, counting=path == COUNT_TOKENS)
        if path == COUNT_TOKENS:
            await services.auth.authenticate(headers.get("authorization"))
            count = {"input_tokens": estimate_request_tokens(chat)}
            await send_json(send, 200, count, ex.headers())
            return
        reply = await services.pipeline.handle(ex, Endpoint.CHAT, orjson.dumps(chat), headers)
    except GatewayError as error:
        ex.failed(error)
        await send_error(send, error, ex.headers(), messages.error_body)
        return
    except Exception as exc:  # a bug: logged with its traceback, no details sent
        log.error("unhandled error on POST %s", path, exc_info=exc)
        internal = InternalError("The gateway had an internal error; it has been logged.")
        ex.failed(internal)
        await send_error(send, internal, ex.headers(), messages.error_body)
        return
    model = chat["model"]
    if reply.events is None:
        data = orjson.loads(reply.body or b"{}")
        await send_json(send, reply.status, messages.from_chat(data, model), reply.headers)
        return
    head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": _SSE + head})
    async for chunk in messages.EventStream(model).translate(reply.events):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _json(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
