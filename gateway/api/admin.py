"""The admin HTTP API: keys and spend, under ``/gateway/*``, with the admin key.

Every route needs ``Authorization: Bearer $GATEWAY_ADMIN_KEY`` (403 when the
gateway has no admin key, 401 for a wrong one). The routes are FastAPI routes
with pydantic models, so the gateway serves their OpenAPI document at
``GET /gateway/openapi.json`` (no key needed: it holds no data). Bodies are
strict: an unknown field or a bad value is a 400 in OpenAI's shape, never
FastAPI's 422. The operations are those of ``gateway keys``
(:class:`gateway.quota.keys_admin.KeysAdmin`), on the same store.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway import __version__
from gateway.api.admin_auth import require_admin as check_admin
from gateway.api.render import error_response, json_response
from gateway.errors import InvalidRequest
from gateway.quota.keys_admin import UNCHANGED, KeysAdmin
from gateway.services import Services
from gateway.state.base import Period

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"


class KeyView(BaseModel):
    """A key's record. Never the key, never its hash."""

    key_id: str = Field(description="12 hex characters; safe to log")
    team: str
    name: str | None
    status: Literal["active", "revoked", "expired"]
    rpm: int | None
    tpm: int | None
    max_streams: int | None
    budget_usd: float | None = Field(description="the team's budget per period")
    period: Literal["day", "month"] | None
    policy: str | None
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None


class CreatedKey(BaseModel):
    key: str = Field(description="the new key: shown this once, stored only as a hash")
    record: KeyView


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN)
    name: str | None = Field(None, max_length=200, description="a note: holder, use")
    rpm: int | None = Field(None, ge=1, description="requests per minute for this key")
    tpm: int | None = Field(None, ge=1, description="tokens per minute for this key")
    max_streams: int | None = Field(None, ge=1, description="concurrent streams for this key")
    budget_usd: float | None = Field(None, gt=0, description="the team's budget per period")
    period: Literal["day", "month"] = "month"
    policy: str | None = Field(None, pattern=NAME_PATTERN, description="named rule set")
    expires: str | None = Field(
        None, description="a duration (30d, 12h) or an ISO date; unset: never"
    )


class KeyUpdate(BaseModel):
    """Only the fields sent change; ``null`` clears a limit, the budget or the expiry."""

    model_config = ConfigDict(extra="forbid")

    team: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN)
    name: str | None = Field(None, max_length=200)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    max_streams: int | None = Field(None, ge=1)
    budget_usd: float | None = Field(None, gt=0)
    period: Literal["day", "month"] | None = None
    policy: str | None = Field(None, pattern=NAME_PATTERN)
    expires: str | None = None


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyView]


class SpendReport(BaseModel):
    period: Literal["day", "month"]
    period_start: str
    by_team: dict[str, float] = Field(description="USD spent per team")
    by_key: dict[str, float]
    by_target: dict[str, float]
    baseline_by_team: dict[str, float] = Field(
        description="what the same usage would have cost on each rule's baseline target"
    )
    savings_by_team: dict[str, float] = Field(description="baseline minus spend, per team")
    tokens_by_team: dict[str, int]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def require_admin(request: Request) -> Services:
    """The services, once the admin key (header, or the console's session
    cookie: :mod:`gateway.api.admin_auth`) is checked."""
    services = services_of(request)
    check_admin(request, services)
    return services


def _admin(services: Services) -> KeysAdmin:
    return KeysAdmin(services.state.keys)


router = APIRouter(prefix="/gateway", dependencies=[Depends(require_admin)])
Admin = Depends(require_admin)


@router.get("/keys", response_model=KeyList, summary="List keys")
async def list_keys(
    services: Services = Admin, team: str | None = Query(None, description="only this team's")
) -> dict[str, Any]:
    return {"object": "list", "data": await _admin(services).list(team=team)}


@router.post("/keys", response_model=CreatedKey, status_code=201, summary="Create a key")
async def create_key(body: KeyCreate, services: Services = Admin) -> dict[str, Any]:
    created = await _admin(services).create(**body.model_dump())
    services.auth.forget()
    return {"key": created.key, "record": created.view}


@router.get("/keys/{key_id}", response_model=KeyView, summary="Show a key")
async def show_key(key_id: str, services: Services = Admin) -> dict[str, Any]:
    return await _admin(services).show(key_id)


@router.patch("/keys/{key_id}", response_model=KeyView, summary="Change a key")
async def update_key(key_id: str, body: KeyUpdate, services: Services = Admin) -> dict[str, Any]:
    sent = body.model_dump(exclude_unset=True)
    if "team" in sent and sent["team"] is None:
        raise InvalidRequest("team cannot be null.", param="team")
    fields = {name: sent.get(name, UNCHANGED) for name in KeyUpdate.model_fields}
    if fields["period"] is None:
        fields["period"] = UNCHANGED
    view = await _admin(services).update(key_id, **fields)
    services.auth.forget()
    return view


@router.post("/keys/{key_id}/revoke", response_model=KeyView, summary="Revoke a key")
async def revoke_key(key_id: str, services: Services = Admin) -> dict[str, Any]:
    view = await _admin(services).revoke(key_id)
    services.auth.forget()
    return view


@router.post(
    "/keys/{key_id}/rotate", response_model=CreatedKey, status_code=201, summary="Rotate a key"
)
async def rotate_key(key_id: str, services: Services = Admin) -> dict[str, Any]:
    created = await _admin(services).rotate(key_id)
    services.auth.forget()
    return {"key": created.key, "record": created.view}


@router.get("/spend", response_model=SpendReport, summary="Spend and savings")
async def spend(
    services: Services = Admin,
    period: str = Query("month", description="day or month"),
) -> dict[str, Any]:
    try:
        chosen = Period(period)
    except ValueError:
        raise InvalidRequest(
            f"Invalid period {period!r}; use 'day' or 'month'.", param="period"
        ) from None
    await services.batch_writer.flush()  # this replica's latest spend is in it
    report = await services.state.ledger.report(chosen)
    return report.to_dict()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the gateway's own ``/gateway/*`` admin routes."""
    document: dict[str, Any] = get_openapi(
        title="Hybrid LLM routing gateway: admin API",
        version=__version__,
        description="Keys and spend. Every route needs `Authorization: Bearer <admin key>`.",
        routes=router.routes,
    )
    document.setdefault("components", {})["securitySchemes"] = {
        "admin": {"type": "http", "scheme": "bearer"}
    }
    document["security"] = [{"admin": []}]
    return document


async def openapi(request: Request) -> Response:
    return json_response(openapi_document())


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """A body or query the admin models refuse: OpenAI's 400, naming the field."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(where) or None
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else "Invalid request body."
    return error_response(InvalidRequest(message, param=param))


def install(app: FastAPI) -> None:
    """Add the admin routes, their OpenAPI document and their 400 renderer to ``app``."""
    app.include_router(router)
    app.add_route("/gateway/openapi.json", openapi, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(RequestValidationError, on_validation_error)
