"""Key lifecycle, one set of operations for the CLI and the admin API, on every store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import InvalidRequest, NotFound
from gateway.quota.keys_admin import KeysAdmin
from gateway.state.base import KeyStore
from gateway.state.factory import build_state, memory_state
from gateway.state.key_file import FileKeyStore
from tests.servers import RedisServer


@pytest.fixture(params=["file", "memory", "redis"])
async def keys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "file":
        yield FileKeyStore(tmp_path / "keys.json")
    elif request.param == "memory":
        yield memory_state().keys
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        state = await build_state(server.url, timeout_s=2.0)
        try:
            yield state.keys
        finally:
            await state.aclose()


async def test_lifecycle(keys: KeyStore) -> None:
    admin = KeysAdmin(keys)
    team = f"research-{uuid.uuid4().hex[:8]}"  # the Redis is shared with other tests
    created = await admin.create(team=team, rpm=60, budget_usd=5, expires="30d")
    view = created.view
    assert created.key.startswith("gw-") and view["status"] == "active"
    assert (view["rpm"], view["budget_usd"], view["period"]) == (60, 5.0, "month")
    assert await keys.authenticate(created.key) is not None
    assert [k["key_id"] for k in await admin.list(team=team)] == [view["key_id"]]
    updated = await admin.update(view["key_id"], rpm=None, tpm=1000, budget_usd=2.5, period="day")
    assert (updated["rpm"], updated["tpm"], updated["budget_usd"], updated["period"]) == (
        None,
        1000,
        2.5,
        "day",
    )
    record = await keys.get_team(team)
    assert record is not None and record.budget is not None and record.budget.usd == 2.5
    rotated = await admin.rotate(view["key_id"])
    assert rotated.key != created.key
    assert await keys.authenticate(created.key) is None
    assert await keys.authenticate(rotated.key) is not None
    assert rotated.view["tpm"] == 1000
    revoked = await admin.revoke(rotated.view["key_id"])
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert await keys.authenticate(rotated.key) is None
    statuses = {k["key_id"]: k["status"] for k in await admin.list(team=team)}
    assert set(statuses.values()) == {"revoked"}
    # revoked keys still count as keys: the gateway never falls back to open
    assert await keys.has_keys()


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"team": ""}, "team", "cannot be empty"),
        ({"team": "   "}, "team", "cannot be empty"),
        ({"team": "a b"}, "team", "Invalid team name"),
        ({"team": "t", "rpm": -5}, "rpm", "at least 1"),
        ({"team": "t", "tpm": 0}, "tpm", "at least 1"),
        ({"team": "t", "max_streams": 1.5}, "max_streams", "whole number"),
        ({"team": "t", "budget_usd": -1}, "budget_usd", "more than 0"),
        ({"team": "t", "budget_usd": float("nan")}, "budget_usd", "number"),
        ({"team": "t", "budget_usd": 1, "period": "year"}, "period", "day"),
        ({"team": "t", "expires": "yesterday"}, "expires", "duration"),
        ({"team": "t", "expires": "2001-01-01"}, "expires", "in the past"),
    ],
)
async def test_bad_input_is_refused_with_the_reason(
    fields: dict[str, object], param: str, words: str
) -> None:
    keys = memory_state().keys
    with pytest.raises(InvalidRequest) as refused:
        await KeysAdmin(keys).create(**fields)  # type: ignore[arg-type]
    assert refused.value.param == param
    assert words in refused.value.message
    assert not await keys.has_keys()


async def test_unknown_and_malformed_key_ids() -> None:
    admin = KeysAdmin(memory_state().keys)
    with pytest.raises(InvalidRequest):
        await admin.show("nope")
    with pytest.raises(NotFound):
        await admin.revoke("0123456789ab")
