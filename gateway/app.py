"""create_app(settings, services=None): lifespan, routes, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException

from gateway import __version__
from gateway.api import admin, console, responses_store, routes
from gateway.api.fastlane import ENDPOINTS, OpenAILane
from gateway.api.headers import GatewayHeaders
from gateway.api.render import on_gateway_error, on_http_exception, on_unexpected
from gateway.api.translated import PATHS
from gateway.errors import GatewayError
from gateway.services import Services, build_services
from gateway.settings import Settings
from gateway.startup import announce

log = logging.getLogger("gateway")


def create_app(settings: Settings, services: Services | None = None) -> OpenAILane:
    """The ASGI app: the OpenAI lane in front of the FastAPI app (``.app``).
    Without ``services`` they are built (and closed) by the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        built = services if services is not None else await build_services(settings)
        app.state.services = built
        built.start_background()
        await announce(built)
        try:
            yield
        finally:
            built.draining = True
            if own:
                await built.aclose()

    app = FastAPI(
        title="Hybrid LLM routing gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if services is not None:
        app.state.services = services
    # Plain Starlette routes: every handler takes the Request and parses the
    # body itself, so FastAPI's per-request dependency solving would be pure cost.
    add = app.add_route
    for path in (*ENDPOINTS, *PATHS):  # POST is served by the lane, in front of this app
        add(
            path,
            routes.post_only,
            methods=["GET", "PUT", "PATCH", "DELETE"],
            include_in_schema=False,
        )
    add("/v1/models", routes.list_models, methods=["GET"], include_in_schema=False)
    add("/v1/models/{model:path}", routes.get_model, methods=["GET"], include_in_schema=False)
    add(
        "/v1/responses/{response_id}",
        responses_store.get_response,
        methods=["GET"],
        include_in_schema=False,
    )
    add(
        "/v1/responses/{response_id}",
        responses_store.delete_response,
        methods=["DELETE"],
        include_in_schema=False,
    )
    add(
        "/v1/responses/{response_id}/input_items",
        responses_store.list_input_items,
        methods=["GET"],
        include_in_schema=False,
    )
    add("/gateway/explain", routes.explain, methods=["POST"], include_in_schema=False)
    admin.install(app)  # /gateway/keys, /gateway/spend, /gateway/openapi.json
    add(console.PATH, console.console, methods=["GET"], include_in_schema=False)
    add(f"{console.PATH}/login", console.login, methods=["POST"], include_in_schema=False)
    add(f"{console.PATH}/logout", console.logout, methods=["POST"], include_in_schema=False)
    add(f"{console.PATH}/decisions", console.decisions, methods=["GET"], include_in_schema=False)
    add("/healthz", routes.healthz, methods=["GET"], include_in_schema=False)
    add("/readyz", routes.readyz, methods=["GET"], include_in_schema=False)
    add("/metrics", routes.metrics, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(GatewayHeaders)
    return OpenAILane(app)
