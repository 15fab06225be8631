"""Administration of keys, teams and spend: one set of operations for the
``gateway keys`` commands and the admin HTTP API, with or without Redis.

Without Redis the keys live in the keys file (:mod:`gateway.state.key_file`),
which the running gateway reloads on change; with Redis in Redis, as the
gateway reads them. Every input is validated here, once, and refused with an
:class:`~gateway.errors.InvalidRequest` that names the field and says why
(the CLI prints it, the API renders it as a 400).

Budgets are enforced per team: ``budget_usd`` sets the key's team's budget.
``rotate`` makes a new key with the old one's team, limits, budget, policy
and expiry, and revokes the old one. A revocation or change reaches every
replica within :data:`gateway.quota.auth.FRESH_S` seconds (plus one second
for the keys file's check).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.settings import Settings
from gateway.state.base import (
    Budget,
    KeyLimits,
    KeyRecord,
    KeyStore,
    Period,
    StateUnavailable,
    TeamRecord,
)
from gateway.state.factory import StateBackends, build_state
from gateway.state.key_file import KeyFileError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: a limit this large is a typo, not a limit
_MAX_LIMIT = 10**12
#: leave a field as it is (``update``); ``None`` clears it
UNCHANGED: Any = object()


# --- validation ------------------------------------------------------------


def valid_team(team: object, param: str = "team") -> str:
    if not isinstance(team, str) or not team.strip():
        raise InvalidRequest("A team name is required and cannot be empty.", param=param)
    if not _NAME.match(team):
        raise InvalidRequest(
            f"Invalid team name {team!r}: use 1-64 letters, digits and . _ : @ -, "
            "starting with a letter or digit.",
            param=param,
        )
    return team


def valid_limit(value: object, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{param} must be a whole number.", param=param)
    if value < 1 or value > _MAX_LIMIT:
        raise InvalidRequest(
            f"{param} must be at least 1 (got {value}); leave it unset for no limit.",
            param=param,
        )
    return value


def valid_budget(value: object, period: object) -> Budget | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest("budget_usd must be a number of US dollars.", param="budget_usd")
    if value <= 0:
        raise InvalidRequest(
            f"budget_usd must be more than 0 (got {value}); leave it unset for no budget.",
            param="budget_usd",
        )
    try:
        return Budget(float(value), Period(str(period)))
    except ValueError:
        raise InvalidRequest(
            f"Invalid period {period!r}; use 'day' or 'month'.", param="period"
        ) from None


def valid_policy(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRequest(f"Invalid policy name {value!r}.", param="policy")
    return value


def valid_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidRequest("name must be a string of at most 200 characters.", param="name")
    return value


def valid_expiry(value: object, now: float) -> float | None:
    """``None``; a duration from now (``30d``, ``12h``, ``90m``, ``2w``); an ISO
    date or date-time (UTC unless it says otherwise); or epoch seconds. It
    must lie in the future."""
    if value is None:
        return None
    when: float
    if isinstance(value, int | float) and not isinstance(value, bool):
        when = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        when = now + int(match.group(1)) * _UNITS[match.group(2)]
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidRequest(
                f"Invalid expiry {value!r}: use a duration such as 30d or 12h, "
                "or a date such as 2027-01-31.",
                param="expires",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        when = moment.timestamp()
    else:
        raise InvalidRequest(
            "expires must be a duration, a date or epoch seconds.", param="expires"
        )
    if when <= now:
        raise InvalidRequest(f"The expiry {value!r} is in the past.", param="expires")
    return when


def valid_key_id(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{12}", value):
        raise InvalidRequest(
            f"Invalid key id {value!r}: a key id is 12 hex characters (see `gateway keys list`).",
            param="key_id",
        )
    return value


# --- what the operations return ------------------------------------------------


def key_view(
    record: KeyRecord, team: TeamRecord | None = None, now: float | None = None
) -> dict[str, Any]:
    """A key's record as JSON-ready data (never the key, never its hash)."""
    now = time.time() if now is None else now
    status = (
        "revoked"
        if record.revoked_at is not None
        else ("expired" if not record.usable(now) else "active")
    )
    budget = team.budget if team is not None and team.budget is not None else record.budget
    return {
        "key_id": record.key_id,
        "team": record.team,
        "name": record.name,
        "status": status,
        "rpm": record.limits.rpm,
        "tpm": record.limits.tpm,
        "max_streams": record.limits.max_streams,
        "budget_usd": budget.usd if budget is not None else None,
        "period": budget.period.value if budget is not None else None,
        "policy": record.policy,
        "created_at": _iso(record.created_at),
        "expires_at": _iso(record.expires_at),
        "revoked_at": _iso(record.revoked_at),
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Created:
    key: str
    view: dict[str, Any]


# --- the operations -------------------------------------------------------------


class KeysAdmin:
    """Key lifecycle over one key store (the file or Redis)."""

    def __init__(self, keys: KeyStore, clock: Any = time.time) -> None:
        self._keys = keys
        self._clock = clock

    async def create(
        self,
        *,
        team: object,
        rpm: object = None,
        tpm: object = None,
        max_streams: object = None,
        budget_usd: object = None,
        period: object = "month",
        policy: object = None,
        expires: object = None,
        name: object = None,
    ) -> Created:
        now = self._clock()
        team_name = valid_team(team)
        limits = KeyLimits(
            rpm=valid_limit(rpm, "rpm"),
            tpm=valid_limit(tpm, "tpm"),
            max_streams=valid_limit(max_streams, "max_streams"),
        )
        budget = valid_budget(budget_usd, period)
        policy_name = valid_policy(policy)
        expires_at = valid_expiry(expires, now)
        label = valid_name(name)
        async with _store_errors():
            if budget is not None:
                await self._set_team_budget(team_name, budget, policy_name)
            key, record = await self._keys.create_key(
                team_name,
                limits=limits,
                budget=budget,
                policy=policy_name,
                expires_at=expires_at,
                name=label,
            )
            return Created(key, key_view(record, await self._keys.get_team(team_name), now))

    async def list(self, *, team: str | None = None) -> list[dict[str, Any]]:
        async with _store_errors():
            records = await self._keys.list_keys()
            teams = {t.team: t for t in await self._keys.list_teams()}
        now = self._clock()
        return [
            key_view(r, teams.get(r.team), now) for r in records if team is None or r.team == team
        ]

    async def show(self, key_id: object) -> dict[str, Any]:
        record = await self._find(key_id)
        async with _store_errors():
            return key_view(record, await self._keys.get_team(record.team), self._clock())

    async def revoke(self, key_id: object) -> dict[str, Any]:
        record = await self._find(key_id)
        if record.revoked_at is None:
            record = replace(record, revoked_at=self._clock())
            await self._update(record)
        return await self.show(record.key_id)

    async def rotate(self, key_id: object) -> Created:
        old = await self._find(key_id)
        if old.revoked_at is not None:
            raise InvalidRequest(
                f"Key {old.key_id} is revoked; create a new key instead.", param="key_id"
            )
        async with _store_errors():
            key, record = await self._keys.create_key(
                old.team,
                limits=old.limits,
                budget=old.budget,
                policy=old.policy,
                expires_at=old.expires_at,
                name=old.name,
            )
        await self._update(replace(old, revoked_at=self._clock()))
        return Created(key, await self.show(record.key_id))

    async def update(
        self,
        key_id: object,
        *,
        team: object = UNCHANGED,
        rpm: object = UNCHANGED,
        tpm: object = UNCHANGED,
        max_streams: object = UNCHANGED,
        budget_usd: object = UNCHANGED,
        period: object = UNCHANGED,
        policy: object = UNCHANGED,
        expires: object = UNCHANGED,
        name: object = UNCHANGED,
    ) -> dict[str, Any]:
        record = await self._find(key_id)
        now = self._clock()
        changes: dict[str, Any] = {}
        if team is not UNCHANGED:
            changes["team"] = valid_team(team)
        limits = record.limits
        if rpm is not UNCHANGED:
            limits = replace(limits, rpm=valid_limit(rpm, "rpm"))
        if tpm is not UNCHANGED:
            limits = replace(limits, tpm=valid_limit(tpm, "tpm"))
        if max_streams is not UNCHANGED:
            limits = replace(limits, max_streams=valid_limit(max_streams, "max_streams"))
        changes["limits"] = limits
        if policy is not UNCHANGED:
            changes["policy"] = valid_policy(policy)
        if expires is not UNCHANGED:
            changes["expires_at"] = valid_expiry(expires, now)
        if name is not UNCHANGED:
            changes["name"] = valid_name(name)
        updated = replace(record, **changes)
        if budget_usd is not UNCHANGED or period is not UNCHANGED:
            current = updated.budget
            per = period if period is not UNCHANGED else (current.period if current else "month")
            if budget_usd is UNCHANGED and current is None:
                raise InvalidRequest("A period needs a budget: set budget_usd too.", param="period")
            usd = current.usd if budget_usd is UNCHANGED and current else budget_usd
            budget = valid_budget(usd, per)
            updated = replace(updated, budget=budget)
            async with _store_errors():
                await self._set_team_budget(updated.team, budget, updated.policy)
        await self._update(updated)
        return await self.show(updated.key_id)

    async def _set_team_budget(self, team: str, budget: Budget | None, policy: str | None) -> None:
        existing = await self._keys.get_team(team)
        limits = existing.limits if existing is not None else KeyLimits()
        keep_policy = existing.policy if existing is not None and policy is None else policy
        await self._keys.set_team(
            TeamRecord(team, limits=limits, budget=budget, policy=keep_policy)
        )

    async def _find(self, key_id: object) -> KeyRecord:
        wanted = valid_key_id(key_id)
        async with _store_errors():
            for record in await self._keys.list_keys():
                if record.key_id == wanted:
                    return record
        raise NotFound(f"No key with id {wanted}.", param="key_id", code="key_not_found")

    async def _update(self, record: KeyRecord) -> None:
        async with _store_errors():
            if not await self._keys.update_key(record):
                raise NotFound(f"No key with id {record.key_id}.", param="key_id")


class _store_errors:
    """A key store that cannot answer (Redis down, a corrupt keys file) is a 503."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, StateUnavailable | KeyFileError):
            raise ServiceUnavailable(str(exc), code="key_store_unavailable") from exc
        if isinstance(exc, OSError):
            raise ServiceUnavailable(
                f"The key store cannot be written: {exc}", code="key_store_unavailable"
            ) from exc


# --- for the CLI: build the state, run, close ---------------------------------------


async def open_state(settings: Settings) -> StateBackends:
    return await build_state(
        settings.redis_url,
        timeout_s=max(settings.redis_timeout_s, 2.0),
        keys_file=settings.keys_file,
    )


async def create_key(
    settings: Settings,
    *,
    team: str,
    rpm: int | None = None,
    tpm: int | None = None,
    max_streams: int | None = None,
    budget_usd: float | None = None,
    period: str = "month",
    policy: str | None = None,
) -> tuple[str, KeyRecord]:
    """Create a key (only its hash is stored); ``budget_usd`` sets the team's budget."""
    state = await open_state(settings)
    try:
        created = await KeysAdmin(state.keys).create(
            team=team,
            rpm=rpm,
            tpm=tpm,
            max_streams=max_streams,
            budget_usd=budget_usd,
            period=period,
            policy=policy,
        )
        records = await state.keys.list_keys()
        record = next(r for r in records if r.key_id == created.view["key_id"])
        return created.key, record
    finally:
        await state.aclose()


async def spend_report(settings: Settings, period: str) -> dict[str, Any]:
    state = await open_state(settings)
    try:
        report = await state.ledger.report(Period(period))
    finally:
        await state.aclose()
    return report.to_dict()
