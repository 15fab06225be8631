"""KeyStore contract, on every backend."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import replace

import orjson
import pytest

from gateway.state.base import Budget, KeyLimits, Period, TeamRecord
from tests.state.conftest import EPOCH, Backend


async def test_created_key_authenticates_to_its_record(backend: Backend) -> None:
    limits = KeyLimits(rpm=10, tpm=1000, max_streams=2)
    budget = Budget(usd=25.5, period=Period.DAY)
    plaintext, record = await backend.state.keys.create_key(
        "research", limits=limits, budget=budget, policy="strict"
    )
    assert re.fullmatch(r"gw-[A-Za-z0-9_-]{40,}", plaintext)
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    assert record.key_id == digest[:12]
    assert (record.team, record.limits, record.budget, record.policy) == (
        "research",
        limits,
        budget,
        "strict",
    )
    assert record.created_at == EPOCH
    assert await backend.state.keys.authenticate(plaintext) == record


async def test_only_the_hash_is_stored(backend: Backend) -> None:
    plaintext, _ = await backend.state.keys.create_key("t")
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    raw = await backend.get_raw("gw:key:" + digest)
    assert raw is not None
    assert plaintext.encode() not in raw
    assert plaintext[3:].encode() not in raw


async def test_keys_are_unique(backend: Backend) -> None:
    made = {(await backend.state.keys.create_key("t"))[0] for _ in range(20)}
    assert len(made) == 20


@pytest.mark.parametrize(
    "presented",
    ["", "gw-", "sk-" + "a" * 43, "gw-" + "a" * 43, "gw-short", "gw-" + "a" * 5000],
)
async def test_unknown_keys_are_refused(backend: Backend, presented: str) -> None:
    await backend.state.keys.create_key("t")
    assert await backend.state.keys.authenticate(presented) is None


async def test_a_key_one_character_off_is_refused(backend: Backend) -> None:
    plaintext, _ = await backend.state.keys.create_key("t")
    last = "A" if plaintext[-1] != "A" else "B"
    assert await backend.state.keys.authenticate(plaintext[:-1] + last) is None


async def test_has_keys(backend: Backend) -> None:
    assert await backend.state.keys.has_keys() is False
    await backend.state.keys.create_key("t")
    assert await backend.state.keys.has_keys() is True


async def test_authentication_compares_hashes_in_constant_time(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    plaintext, _ = await backend.state.keys.create_key("t")
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert await backend.state.keys.authenticate(plaintext) is not None
    digest = hashlib.sha256(plaintext.encode()).hexdigest().encode()
    assert compared == [(digest, digest)]


async def test_a_record_whose_stored_hash_differs_is_refused(backend: Backend) -> None:
    """The lookup by hash is not trusted alone: the stored hash must match too."""
    plaintext, _ = await backend.state.keys.create_key("t")
    name = "gw:key:" + hashlib.sha256(plaintext.encode()).hexdigest()
    stored = await backend.get_raw(name)
    assert stored is not None
    tampered = orjson.loads(stored)
    tampered["hash"] = "0" * 64
    await backend.put_raw(name, orjson.dumps(tampered))
    assert await backend.state.keys.authenticate(plaintext) is None


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json",
        b"[]",
        b'{"hash": 1}',
        b'{"key_id": "x", "team": "t", "hash": "h", "limits": 3}',
    ],
)
async def test_corrupt_key_record_is_missing_and_logged(
    backend: Backend, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    plaintext, _ = await backend.state.keys.create_key("t")
    name = "gw:key:" + hashlib.sha256(plaintext.encode()).hexdigest()
    await backend.put_raw(name, garbage)
    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        assert await backend.state.keys.authenticate(plaintext) is None
    assert any(name in r.getMessage() for r in caplog.records)


async def test_wrong_type_key_record_is_missing(backend: Backend) -> None:
    plaintext, _ = await backend.state.keys.create_key("t")
    await backend.put_wrong_type("gw:key:" + hashlib.sha256(plaintext.encode()).hexdigest())
    assert await backend.state.keys.authenticate(plaintext) is None


async def test_teams(backend: Backend) -> None:
    keys = backend.state.keys
    assert await keys.get_team("a") is None
    assert await keys.list_teams() == []
    a = TeamRecord("a", limits=KeyLimits(rpm=5), budget=Budget(usd=10.0))
    b = TeamRecord("b{weird}%name", policy="p")
    await keys.set_team(b)
    await keys.set_team(a)
    assert await keys.get_team("a") == a
    assert await keys.get_team("b{weird}%name") == b
    assert await keys.list_teams() == [a, b]
    changed = TeamRecord("a", budget=Budget(usd=1.0, period=Period.DAY))
    await keys.set_team(changed)
    assert await keys.list_teams() == [changed, b]


async def test_corrupt_team_record_is_left_out(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await backend.state.keys.set_team(TeamRecord("good"))
    await backend.state.keys.set_team(TeamRecord("bad"))
    await backend.put_raw("gw:{teams}:team:bad", b"\xff\xfe")
    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        assert await backend.state.keys.get_team("bad") is None
        assert await backend.state.keys.list_teams() == [TeamRecord("good")]
    assert caplog.records


async def test_key_pages_hold_every_key_once_revoked_ones_too(backend: Backend) -> None:
    made = {(await backend.state.keys.create_key(f"team-{i % 3}"))[1].key_id for i in range(7)}
    (first, *_) = await backend.state.keys.list_keys()
    await backend.state.keys.update_key(replace(first, revoked_at=EPOCH))
    seen = [r.key_id async for page in backend.state.keys.key_pages(size=2) for r in page]
    assert sorted(set(seen)) == sorted(made)
