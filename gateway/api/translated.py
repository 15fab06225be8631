"""Endpoints served by translation onto the chat pipeline (``/v1/messages``,
``/v1/responses``).

Contract: the body is parsed and translated to a chat body (a 4xx in the
dialect's own error shape when it cannot be), the pipeline handles it as chat
(same judging, policy, limits, cache, routing and record), and its answer is
translated back, whole or as the dialect's event stream. The request record is
emitted once, by the lane (:mod:`gateway.api.fastlane`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.types import Send

from gateway.api import messages, messages_answer, responses, responses_answer, responses_store
from gateway.api.render import send_error, send_json
from gateway.endpoints import Endpoint
from gateway.errors import GatewayError, InternalError, InvalidRequest, NotFound
from gateway.judging.build import CLASSIFICATION_HEADER
from gateway.judging.shape import check_depth
from gateway.judging.tokens import estimate_request_tokens
from gateway.observability.record import Exchange
from gateway.pipeline.handler import Reply
from gateway.services import Services
from gateway.upstream.responses_wire import NativeResponses

log = logging.getLogger("gateway.api")

_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
RESPONSES = "/v1/responses"
#: path -> the record's endpoint label
PATHS = {MESSAGES: "messages", COUNT_TOKENS: "messages_count_tokens", RESPONSES: "responses"}


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
    if path == RESPONSES:
        await serve_responses(services, ex, raw, headers, send)
        return
    headers = anthropic_headers(headers)
    try:
        body = _json(raw, services.settings.max_json_depth)
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
        await send_json(send, reply.status, messages_answer.from_chat(data, model), reply.headers)
        return
    await _stream(send, reply, messages_answer.EventStream(model).translate(reply.events))
    await send({"type": "http.response.body", "body": b""})


def _json(raw: bytes, max_depth: int) -> Any:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    check_depth(raw, body, max_depth)
    return body


async def serve_responses(
    services: Services, ex: Exchange, raw: bytes, headers: dict[str, str], send: Send
) -> None:
    """``POST /v1/responses``: expand ``previous_response_id`` from the store,
    judge the whole conversation as chat, route it (a target that speaks
    Responses gets a native body rebuilt from the judged one, and the
    provider's own id of the previous turn when it served it; any other gets
    the chat body), answer a Response (or its event stream) and store it when
    ``store`` is on, with the provider's id when a native target served it."""
    response_id = responses.new_id("resp")
    try:
        turn = responses.parse(_json(raw, services.settings.max_json_depth))
        who = await services.auth.authenticate(headers.get("authorization"))
        team = who.team if who is not None else None
        history: list[dict[str, Any]] = []
        earlier_level: str | None = None
        stored = None
        if turn.previous_id is not None:
            stored = await responses_store.load(services, team, turn.previous_id)
            if stored is None:
                raise NotFound(
                    f"Previous response with id '{turn.previous_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            history, earlier_level = stored.messages, stored.level
            messages = turn.chat["messages"]
            first = 1 if turn.echo["instructions"] is not None else 0
            turn.chat["messages"] = messages[:first] + history + messages[first:]
            # the conversation counts at least at the highest level it ever had
            declared = headers.get(CLASSIFICATION_HEADER)
            headers = {
                **headers,
                CLASSIFICATION_HEADER: earlier_level
                if declared is None
                else f"{declared}, {earlier_level}",
            }
        native = NativeResponses(
            response_id=response_id,
            previous_id=turn.previous_id,
            store=turn.store,
            instructions=turn.echo["instructions"] is not None,
            history=len(history),
            provider_target=stored.target if stored is not None else None,
            provider_previous=stored.provider_id if stored is not None else None,
        )
        reply = await services.pipeline.handle(
            ex, Endpoint.CHAT, orjson.dumps(turn.chat), headers, native
        )
    except GatewayError as error:
        ex.failed(error)
        await send_error(send, error, ex.headers())
        return
    except Exception as exc:  # a bug: logged with its traceback, no details sent
        log.error("unhandled error on POST %s", RESPONSES, exc_info=exc)
        internal = InternalError("The gateway had an internal error; it has been logged.")
        ex.failed(internal)
        await send_error(send, internal, ex.headers())
        return

    async def keep(response: dict[str, Any]) -> None:
        if turn.store:
            level = responses_store.highest(ex.level, earlier_level)
            provider_id = native.provider_id if reply.native else None
            await responses_store.save(
                services, team, response, turn.input_items, history, level, ex.target, provider_id
            )

    if reply.events is None:
        data = orjson.loads(reply.body or b"{}")
        if reply.native:
            native.rewrite(data)
            response = data
        else:
            output = responses_answer.output_from_chat(data)
            usage = responses_answer.usage_of(data.get("usage"))
            response = responses_answer.response_object(response_id, turn.echo, output, usage)
        await keep(response)
        await send_json(send, reply.status, response, reply.headers)
        return
    done: list[dict[str, Any]] = []
    events = (
        reply.events
        if reply.native
        else responses_answer.EventStream(response_id, turn.echo, done.append).translate(
            reply.events
        )
    )
    await _stream(send, reply, events)
    final = native.final if reply.native else (done[0] if done else None)
    if final is not None:
        await keep(final)
    await send({"type": "http.response.body", "body": b""})


async def _stream(send: Send, reply: Reply, translated: AsyncIterator[bytes]) -> None:
    """Send the response head and the ``translated`` events; both streams are
    closed however this ends (closing the chat stream settles the request)."""
    head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": _SSE + head})
        async for chunk in translated:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        for stream in (translated, reply.events):
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
