"""ResponseCache contract, on every backend."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.state.base import CachedResponse
from gateway.state.cache_codec import encode
from tests.state.conftest import Backend

WHOLE = CachedResponse(
    target="open-llama",
    level=2,
    body=b'{"id":"chatcmpl-1","choices":[]}',
    prompt_tokens=12,
    completion_tokens=34,
    created_at=1_767_225_600.5,
)
STREAMED = CachedResponse(
    target="gpt-4o",
    level=0,
    chunks=(b'{"choices":[{"delta":{"content":"Hel"}}]}', b"", b'{"x":"\\u00e9\xff"}'),
    prompt_tokens=1,
    completion_tokens=2,
)


@pytest.mark.parametrize("entry", [WHOLE, STREAMED], ids=["body", "chunks"])
async def test_roundtrip(backend: Backend, entry: CachedResponse) -> None:
    await backend.state.cache.set("k1", entry, ttl_s=60)
    assert await backend.state.cache.get("k1") == entry


async def test_unknown_key_misses(backend: Backend) -> None:
    assert await backend.state.cache.get("never-set") is None


async def test_entries_are_stored_under_the_cache_prefix(backend: Backend) -> None:
    await backend.state.cache.set("abc", WHOLE, ttl_s=60)
    assert await backend.get_raw("gw:cache:abc") == encode(WHOLE)


async def test_ttl_is_honoured(backend: Backend) -> None:
    await backend.state.cache.set("short", WHOLE, ttl_s=0.2)
    assert await backend.state.cache.get("short") == WHOLE
    # memory expires on the injected clock, Redis on its own: move both
    backend.clock.advance(0.3)
    await asyncio.sleep(0.3)
    assert await backend.state.cache.get("short") is None


async def test_zero_ttl_stores_nothing(backend: Backend) -> None:
    await backend.state.cache.set("none", WHOLE, ttl_s=0)
    assert await backend.state.cache.get("none") is None


@pytest.mark.parametrize(
    "garbage",
    [b"not a cache entry", b"GWC1\x00\x00\x00\x05{}", encode(WHOLE)[:-3], encode(WHOLE) + b"x"],
    ids=["garbage", "short-header", "truncated", "trailing"],
)
async def test_corrupt_entry_is_a_logged_miss(
    backend: Backend, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    await backend.put_raw("gw:cache:bad", garbage)
    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        assert await backend.state.cache.get("bad") is None
    assert any("gw:cache:bad" in r.getMessage() for r in caplog.records)


async def test_wrong_type_under_the_key_is_a_logged_miss(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await backend.put_wrong_type("gw:cache:typed")
    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        assert await backend.state.cache.get("typed") is None
    assert any("gw:cache:typed" in r.getMessage() for r in caplog.records)
    # and a later set replaces it
    await backend.state.cache.set("typed", WHOLE, ttl_s=60)
    assert await backend.state.cache.get("typed") == WHOLE
