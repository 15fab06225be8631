"""Redis going away and coming back: bounded failures, automatic recovery.

Uses the real default timeout (50 ms) and the session's real servers, which
are stopped and started again on the same ports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.state.base import Budget, CachedResponse, KeyLimits, SpendRecord, StateUnavailable
from gateway.state.factory import StateBackends, build_state
from tests.servers import RedisCluster, RedisServer

TIMEOUT_S = 0.05
#: the whole call may take 2 x timeout; allow for a slow CI machine on top
BOUND_S = 2 * TIMEOUT_S + 0.25
ENTRY = CachedResponse(target="t", level=0, body=b"{}")
SPEND = SpendRecord("k", "team", "t", 0.1, 0.2, 1, 1)


def operations(state: StateBackends) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: state.cache.get("k"),
        lambda: state.cache.set("k", ENTRY, 60),
        lambda: state.keys.authenticate("gw-" + "x" * 43),
        lambda: state.keys.has_keys(),
        lambda: state.keys.list_teams(),
        lambda: state.limiter.lease("key:a", KeyLimits(rpm=5), 1),
        lambda: state.limiter.open_stream("key:a", 5),
        lambda: state.ledger.reserve("team", Budget(usd=1.0), 0.1),
        lambda: state.ledger.record(SPEND, 0.1),
        lambda: state.ledger.report(Budget(usd=1.0).period),
    ]


async def assert_all_unavailable(state: StateBackends) -> None:
    for op in operations(state):
        started = time.perf_counter()
        with pytest.raises(StateUnavailable):
            await op()
        assert time.perf_counter() - started < BOUND_S
    assert await state.ping() is False


async def assert_works_again(state: StateBackends, within_s: float) -> None:
    """Every operation succeeds again, on the same objects, soon after restart."""
    deadline = time.monotonic() + within_s
    pending = operations(state)
    while pending:
        try:
            await pending[0]()
            pending.pop(0)
        except StateUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    assert await state.ping() is True


async def test_single_node_outage_and_recovery(redis_server: RedisServer) -> None:
    redis_server.start()
    state = await build_state(redis_server.url, timeout_s=TIMEOUT_S)
    try:
        for op in operations(state):  # warm: pooled connections, loaded scripts
            await op()
        redis_server.stop()
        await assert_all_unavailable(state)
        redis_server.start()
        # the restarted server forgot its scripts: NOSCRIPT is handled too
        await assert_works_again(state, within_s=2.0)
    finally:
        redis_server.start()
        await state.aclose()


async def test_redis_down_at_startup(redis_server: RedisServer) -> None:
    redis_server.stop()
    try:
        state = await build_state(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            assert state.backend == "redis"
            await assert_all_unavailable(state)
            redis_server.start()
            await assert_works_again(state, within_s=2.0)
        finally:
            await state.aclose()
    finally:
        redis_server.start()


async def test_cluster_outage_and_recovery(redis_cluster: RedisCluster) -> None:
    state = await build_state(redis_cluster.url, timeout_s=TIMEOUT_S)
    try:
        assert state.backend == "redis-cluster"
        for op in operations(state):
            await op()
        for node in redis_cluster.nodes:
            node.stop()
        await assert_all_unavailable(state)
        for node in redis_cluster.nodes:
            node.start()
        redis_cluster.wait_ok()
        await assert_works_again(state, within_s=10.0)
    finally:
        for node in redis_cluster.nodes:
            node.start()
        redis_cluster.wait_ok()
        await state.aclose()
