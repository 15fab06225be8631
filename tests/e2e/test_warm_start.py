"""Warm before ready: right after start-up, a known key is never refused for the key store's sake.

In Redis mode, 50 concurrent requests with a valid key sent the moment
``/readyz`` first answers 200 used to get 1-21 x 503 ``key_store_unavailable``
in 3 of 5 restarts (a storm of first connections, each past the 50 ms state
timeout). Now the key store is warmed before ``/readyz`` turns ready, lookups
of one key in flight at once share one round trip, and a transient state
error is retried within the request's budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.quota.keys_admin import create_key
from gateway.settings import Settings
from tests.e2e.conftest import e2e_policy
from tests.harness import GatewayProcess, write_policy
from tests.servers import RedisServer
from tests.upstream_server import Upstream

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def burst(url: str, key: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as client:
        headers = {"authorization": f"Bearer {key}"}
        return await asyncio.gather(
            *(client.post("/v1/chat/completions", json=CHAT, headers=headers) for _ in range(n))
        )


def test_a_known_key_is_never_refused_right_after_start(
    redis: RedisServer, upstream: Upstream, tmp_path: Path
) -> None:
    key, _ = asyncio.run(create_key(Settings(redis_url=redis.url), team="warm"))
    policies = write_policy(tmp_path / "policies", e2e_policy())
    env = {"GATEWAY_REDIS_URL": redis.url, "UPSTREAM_URL": upstream.url}
    statuses: list[list[int]] = []
    for _ in range(5):
        process = GatewayProcess("--policies", str(policies), env=env)
        try:
            process.wait_ready()
            responses = asyncio.run(burst(process.url, key, 50))
        finally:
            process.stop()
        statuses.append(sorted({r.status_code for r in responses}))
        refused = [r.text for r in responses if r.status_code != 200]
        assert not refused, (statuses, refused[:3])
    assert statuses == [[200]] * 5
