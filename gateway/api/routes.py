"""Thin routes: read the request, call one function, render the answer.

With keys configured every ``/v1/*`` and ``/gateway/*`` route needs one (401
otherwise; ``/gateway/spend`` needs the admin key); ``/healthz``, ``/readyz``
and ``/metrics`` stay open, as Kubernetes probes and Prometheus expect."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api import messages, responses
from gateway.api.body import read_body, request_headers
from gateway.api.render import json_response
from gateway.api.translated import anthropic_headers
from gateway.endpoints import Endpoint
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
)
from gateway.policy.explain import explanation
from gateway.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def post_only(request: Request) -> Response:
    """The OpenAI endpoints answer POST in :mod:`gateway.api.fastlane`; any other
    method reaches this route and gets OpenAI's 405."""
    raise MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.url.path}; use POST."
    )


async def authenticated(request: Request) -> Services:
    """The services, once the caller's key is checked (a no-op in open mode)."""
    services = services_of(request)
    await services.auth.authenticate(request.headers.get("authorization"))
    return services


async def list_models(request: Request) -> Response:
    policy = (await authenticated(request)).policy.policy
    created = int(policy_loaded_at(request))
    data = [_model(name, created) for name in policy.aliases]
    return json_response({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    policy = (await authenticated(request)).policy.policy
    name = request.path_params["model"]
    if name not in policy.aliases:
        raise ModelNotFound(
            f"The model `{name}` does not exist or you do not have access to it.", param="model"
        )
    return json_response(_model(name, int(policy_loaded_at(request))))


def _model(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "gateway"}


def policy_loaded_at(request: Request) -> float:
    loaded: float = services_of(request).policy.loaded_at
    return loaded


async def explain(request: Request) -> Response:
    """The decision for a chat, Responses or Messages body, calling nothing
    upstream. Which API the body speaks: ``?api=chat|responses|messages``, or
    by its shape (``input`` without ``messages``: Responses; a top-level
    ``system`` or an ``anthropic-version`` header: Messages; else chat). A
    Responses or Messages body is judged as the chat body it translates to,
    exactly as its own endpoint would judge it."""
    services = await authenticated(request)  # before the body is read
    raw = await read_body(request.receive, request.headers, services.settings.max_body_bytes)
    headers = request_headers(request.scope["headers"])
    api = request.query_params.get("api") or _api_of(raw, headers)
    if api == "responses":
        raw = orjson.dumps(responses.parse(_json_body(raw)).chat)
    elif api == "messages":
        headers = anthropic_headers(headers)
        raw = orjson.dumps(messages.to_chat(_json_body(raw)))
    elif api != "chat":
        raise InvalidRequest(f"Invalid api {api!r}; use chat, responses or messages.", param="api")
    facts, decision = await services.pipeline.decide_only(Endpoint.CHAT, raw, headers)
    return json_response(explanation(facts, decision))


def _json_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None


def _api_of(raw: bytes, headers: dict[str, str]) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "chat"  # the chat parser gives the error
    if not isinstance(body, dict):
        return "chat"
    if "input" in body and "messages" not in body:
        return "responses"
    if "system" in body or "anthropic-version" in headers:
        return "messages"
    return "chat"


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = services_of(request)
    report, status = await services.readiness()
    return json_response(report, status=status)


async def metrics(request: Request) -> Response:
    services = services_of(request)
    services.refresh_gauges()
    body, content_type = services.metrics.render()
    return Response(
        body, media_type=content_type.split(";")[0], headers={"content-type": content_type}
    )
