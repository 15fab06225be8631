"""One fixture, three backends: every contract test runs against the in-memory
state, a real single Redis node and a real Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as RedisClusterClient

from gateway.state.factory import StateBackends, build_state, memory_state
from gateway.state.memory import MemoryKV
from tests.servers import RedisCluster, RedisServer

#: 2026-01-01T00:00:00Z: a day, a month and a rate window all start here
EPOCH = 1_767_225_600.0
#: generous, so that a loaded CI machine never turns a slow answer into a failure
#: (at 1 s, 150 concurrent first connections timed out once in a full run);
#: the outage tests use the real 50 ms default
TEST_TIMEOUT_S = 3.0


class FakeClock:
    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WrongType:
    """In memory, a value of a type no store ever writes."""


@dataclass
class Backend:
    """A backend under test, with access to its raw storage to damage data."""

    kind: str
    state: StateBackends
    clock: FakeClock
    put_raw: Callable[[str, bytes], Awaitable[None]]
    put_wrong_type: Callable[[str], Awaitable[None]]
    get_raw: Callable[[str], Awaitable[bytes | None]]
    #: state services of another replica sharing the same data
    replica: Callable[[], Awaitable[StateBackends]]
    extra: list[StateBackends] = field(default_factory=list)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = FakeClock()
    kind: str = request.param
    if kind == "memory":
        kv = MemoryKV(clock)
        state = memory_state(clock, kv)

        async def mem_put(name: str, value: bytes) -> None:
            kv.put(name, value)

        async def mem_wrong(name: str) -> None:
            kv.put(name, WrongType())

        async def mem_get(name: str) -> bytes | None:
            value = kv.get(name)
            return value if isinstance(value, bytes) else None

        async def mem_replica() -> StateBackends:
            return state

        yield Backend(kind, state, clock, mem_put, mem_wrong, mem_get, mem_replica)
        return

    raw: Redis | RedisClusterClient
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.start()  # a previous test may have stopped it
        url = server.url
        raw = Redis.from_url(url)
        await raw.flushall()
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        for node in cluster.nodes:
            node.start()
        cluster.wait_ok()
        cluster.flushall()
        url = cluster.url
        raw = RedisClusterClient.from_url(url.replace("redis+cluster://", "redis://"))

    async def put(name: str, value: bytes) -> None:
        await raw.delete(name)
        await raw.set(name, value)

    async def wrong(name: str) -> None:
        await raw.delete(name)
        await raw.hset(name, "field", "value")

    async def get(name: str) -> bytes | None:
        value = await raw.get(name)
        assert value is None or isinstance(value, bytes)
        return value

    extra: list[StateBackends] = []

    async def replica() -> StateBackends:
        other = await build_state(url, timeout_s=TEST_TIMEOUT_S, clock=clock)
        extra.append(other)
        return other

    try:
        state = await build_state(url, timeout_s=TEST_TIMEOUT_S, clock=clock)
        extra.append(state)
        yield Backend(kind, state, clock, put, wrong, get, replica, extra)
    finally:
        for made in extra:
            await made.aclose()
        await raw.aclose()
