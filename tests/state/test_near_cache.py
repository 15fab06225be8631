"""The per-replica near-cache in front of Redis (gateway/state/near_cache.py),
over a real redis-server: repeats are served locally, a local copy never
outlives the shared entry nor ``max_age_s``, memory stays bounded, and every
miss or failure is the shared cache's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.state.base import CachedResponse, StateUnavailable
from gateway.state.factory import build_state
from gateway.state.near_cache import NearCache
from gateway.state.redis_backend import connect
from gateway.state.redis_stores import RedisResponseCache
from tests.servers import RedisServer
from tests.state.conftest import FakeClock

ENTRY = CachedResponse(target="local", level=0, body=b'{"answer": 42}', created_at=1.0)


class Counting:
    """The real Redis cache, counting its reads."""

    def __init__(self, inner: RedisResponseCache) -> None:
        self.inner = inner
        self.reads = 0

    async def get_with_ttl(self, key: str) -> tuple[CachedResponse | None, float | None]:
        self.reads += 1
        return await self.inner.get_with_ttl(key)

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None:
        await self.inner.set(key, entry, ttl_s)


@pytest.fixture
async def shared(redis_server: RedisServer) -> AsyncIterator[Counting]:
    redis_server.start()
    raw = Redis.from_url(redis_server.url)
    await raw.flushall()
    await raw.aclose()
    connection = connect(redis_server.url, 1.0)
    yield Counting(RedisResponseCache(connection))
    await connection.aclose()


async def test_a_write_then_reads_are_served_locally(shared: Counting) -> None:
    near = NearCache(shared, max_age_s=10, clock=FakeClock(0.0))
    await near.set("k", ENTRY, 60)
    for _ in range(5):
        assert await near.get("k") == ENTRY
    assert shared.reads == 0


async def test_another_replicas_entry_is_read_once_then_kept(shared: Counting) -> None:
    writer = NearCache(shared, max_age_s=10)
    reader = NearCache(shared, max_age_s=10, clock=FakeClock(0.0))
    await writer.set("k", ENTRY, 60)
    assert await reader.get("k") == ENTRY
    assert await reader.get("k") == ENTRY
    assert shared.reads == 1


async def test_a_local_copy_lives_at_most_max_age(shared: Counting) -> None:
    clock = FakeClock(0.0)
    near = NearCache(shared, max_age_s=10, clock=clock)
    await near.set("k", ENTRY, 60)
    clock.advance(9.9)
    assert await near.get("k") == ENTRY and shared.reads == 0
    clock.advance(0.2)
    assert await near.get("k") == ENTRY  # from Redis again, still there
    assert shared.reads == 1


async def test_a_local_copy_never_outlives_the_shared_entry(shared: Counting) -> None:
    clock = FakeClock(0.0)
    writer, reader = NearCache(shared, max_age_s=10), NearCache(shared, max_age_s=10, clock=clock)
    await writer.set("k", ENTRY, 2.0)  # Redis keeps it 2 s
    assert await reader.get("k") == ENTRY
    clock.advance(1.9)
    assert await reader.get("k") == ENTRY and shared.reads == 1
    clock.advance(0.2)  # past the entry's own expiry: Redis is asked
    await reader.get("k")
    assert shared.reads == 2


async def test_misses_are_not_kept(shared: Counting) -> None:
    near = NearCache(shared, max_age_s=10)
    assert await near.get("nothing") is None
    assert await near.get("nothing") is None
    assert shared.reads == 2


async def test_a_corrupt_shared_entry_is_a_miss(
    shared: Counting, redis_server: RedisServer
) -> None:
    raw = Redis.from_url(redis_server.url)
    await raw.set("gw:cache:k", b"GWC1 not an entry", px=60_000)
    await raw.aclose()
    near = NearCache(shared, max_age_s=10)
    assert await near.get("k") is None
    assert await near.get("k") is None
    assert shared.reads == 2


async def test_memory_is_bounded_least_recently_used_first(shared: Counting) -> None:
    near = NearCache(shared, max_age_s=10, max_bytes=3 * 1_300, clock=FakeClock(0.0))
    big = CachedResponse(target="local", level=0, body=b"x" * 1_000)
    for key in ("a", "b", "c"):
        await near.set(key, big, 60)
    assert await near.get("a") == big  # "a" is now the most recent
    await near.set("d", big, 60)  # evicts "b", the least recent
    assert shared.reads == 0
    assert await near.get("b") == big
    assert shared.reads == 1
    for key in ("a", "d"):
        assert await near.get(key) == big
    assert shared.reads == 1


async def test_an_outage_passes_through_but_local_copies_serve(
    redis_server: RedisServer,
) -> None:
    redis_server.start()
    state = await build_state(redis_server.url, timeout_s=0.05, near_cache_s=10)
    try:
        assert isinstance(state.cache, NearCache)
        await state.cache.set("kept", ENTRY, 60)
        redis_server.stop()
        assert await state.cache.get("kept") == ENTRY
        with pytest.raises(StateUnavailable):
            await state.cache.get("other")
        with pytest.raises(StateUnavailable):
            await state.cache.set("other", ENTRY, 60)
    finally:
        redis_server.start()
        await state.aclose()


async def test_no_near_cache_unless_asked(redis_server: RedisServer) -> None:
    redis_server.start()
    state = await build_state(redis_server.url, timeout_s=1.0)
    try:
        assert isinstance(state.cache, RedisResponseCache)
    finally:
        await state.aclose()
