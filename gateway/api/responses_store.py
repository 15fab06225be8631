"""Stored Responses: what ``previous_response_id`` expands to, and the routes
that read and delete them (``GET``/``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``).

Each stored response keeps, in the state store (memory or Redis, for
``GATEWAY_RESPONSES_TTL_S``): the Response object, this turn's input items, the
whole conversation as chat messages (every earlier turn's input and output), the
highest sensitivity level any turn of the conversation had, and the target that
served it. A follow-up is judged on the whole conversation and at least at that
level, so a conversation that once held restricted data never reaches a target
below it later. Ids are scoped to the caller's team: another team's id is a 404.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.render import json_response
from gateway.api.responses import items_to_messages, new_id
from gateway.errors import NotFound, ServiceUnavailable
from gateway.levels import Level
from gateway.services import Services
from gateway.state.base import StateUnavailable

log = logging.getLogger("gateway.api")
#: output items a follow-up's chat messages carry
_CARRIED = frozenset({"message", "function_call", "function_call_output"})


class Stored:
    """One stored response, as read back."""

    __slots__ = ("input_items", "level", "messages", "provider_id", "response", "target")

    def __init__(self, data: dict[str, Any]) -> None:
        self.response: dict[str, Any] = data["response"]
        self.input_items: list[dict[str, Any]] = data["input_items"]
        self.messages: list[dict[str, Any]] = data["messages"]
        self.level: str = data["level"]
        self.target: str | None = data.get("target")
        #: the provider's own id of this response, when a native target served it
        self.provider_id: str | None = data.get("provider_id")


async def load(services: Services, team: str | None, response_id: str) -> Stored | None:
    try:
        blob = await services.state.conversations.get(team, response_id)
    except StateUnavailable:
        services.metrics.state_errors.labels("conversations").inc()
        raise ServiceUnavailable(
            "The conversation store is unavailable; retry shortly.", code="state_unavailable"
        ) from None
    if blob is None:
        return None
    try:
        return Stored(orjson.loads(blob))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("a stored response could not be read; treated as missing")
        return None


def input_item_records(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This turn's input items as the API lists them (each with an id)."""
    out = []
    for item in items:
        record = dict(item)
        if record["type"] == "message":
            content = record.get("content")
            if isinstance(content, str):
                kind = "output_text" if record.get("role") == "assistant" else "input_text"
                record["content"] = [{"type": kind, "text": content}]
            record.setdefault("status", "completed")
        record.setdefault("id", new_id("msg" if record["type"] == "message" else "item"))
        out.append(record)
    return out


async def save(
    services: Services,
    team: str | None,
    response: dict[str, Any],
    input_items: list[dict[str, Any]],
    history: list[dict[str, Any]],
    level: str,
    target: str | None,
    provider_id: str | None = None,
) -> None:
    """Store a completed response and its conversation (a store outage is
    logged: the answer was already given, it just cannot be followed up).
    Output items the chat translation cannot carry (a native target's
    built-in tool calls, …) are kept in the Response but not in the messages."""
    turn = items_to_messages(input_items)
    answer = items_to_messages(
        [
            {**item, "role": "assistant"} if item.get("type") == "message" else item
            for item in response.get("output") or []
            if isinstance(item, dict) and item.get("type") in _CARRIED
        ]
    )
    data = {
        "response": response,
        "input_items": input_item_records(input_items),
        "messages": history + turn + answer,
        "level": level,
        "target": target,
        "provider_id": provider_id,
    }
    try:
        await services.state.conversations.put(
            team, response["id"], orjson.dumps(data), services.settings.responses_ttl_s
        )
    except StateUnavailable:
        services.metrics.state_errors.labels("conversations").inc()
        log.warning("response %s could not be stored (state unavailable)", response["id"])


def highest(*labels: str | None) -> str:
    """The highest of some level names (unknown names count as restricted)."""
    best = Level.PUBLIC
    for label in labels:
        if label is None:
            continue
        try:
            level = Level.parse(label)
        except ValueError:
            level = Level.RESTRICTED
        best = max(best, level)
    return best.label


# --- routes ----------------------------------------------------------------------


async def _team(request: Request) -> tuple[Services, str | None]:
    services: Services = request.app.state.services
    headers = request.headers
    who = await services.auth.authenticate(headers.get("authorization"))
    return services, who.team if who is not None else None


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code=None)


async def get_response(request: Request) -> Response:
    services, team = await _team(request)
    response_id = request.path_params["response_id"]
    stored = await load(services, team, response_id)
    if stored is None:
        raise _not_found(response_id)
    return json_response(stored.response)


async def delete_response(request: Request) -> Response:
    services, team = await _team(request)
    response_id = request.path_params["response_id"]
    try:
        found = await services.state.conversations.delete(team, response_id)
    except StateUnavailable:
        raise ServiceUnavailable(
            "The conversation store is unavailable; retry shortly.", code="state_unavailable"
        ) from None
    if not found:
        raise _not_found(response_id)
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: Request) -> Response:
    services, team = await _team(request)
    response_id = request.path_params["response_id"]
    stored = await load(services, team, response_id)
    if stored is None:
        raise _not_found(response_id)
    items = stored.input_items
    if request.query_params.get("order", "desc") == "desc":
        items = list(reversed(items))
    return json_response(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None,
            "has_more": False,
        }
    )
