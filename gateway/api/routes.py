"""Thin routes: read the request, call one function, render the answer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.admin import require_admin
from gateway.api.body import read_body, request_headers
from gateway.api.render import json_response
from gateway.endpoints import Endpoint
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
)
from gateway.policy.explain import explanation
from gateway.services import Services
from gateway.state.base import Period


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def post_only(request: Request) -> Response:
    """The OpenAI endpoints answer POST in :mod:`gateway.api.fastlane`; any other
    method reaches this route and gets OpenAI's 405."""
    raise MethodNotAllowed(
        f"Method {request.method} is not allowed on {request.url.path}; use POST."
    )


async def list_models(request: Request) -> Response:
    policy = services_of(request).policy.policy
    created = int(policy_loaded_at(request))
    data = [_model(name, created) for name in policy.aliases]
    return json_response({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    policy = services_of(request).policy.policy
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
    services = services_of(request)
    raw = await read_body(request.receive, request.headers, services.settings.max_body_bytes)
    headers = request_headers(request.scope["headers"])
    facts, decision = await services.pipeline.decide_only(Endpoint.CHAT, raw, headers)
    return json_response(explanation(facts, decision))


async def spend(request: Request) -> Response:
    services = services_of(request)
    require_admin(request, services)  # the admin key, or a console session
    raw_period = request.query_params.get("period", "month")
    try:
        period = Period(raw_period)
    except ValueError:
        raise InvalidRequest(
            f"Invalid period {raw_period!r}; use 'day' or 'month'.", param="period"
        ) from None
    await services.batch_writer.flush()  # this replica's latest spend is in it
    report = await services.state.ledger.report(period)
    return json_response(report.to_dict())


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
