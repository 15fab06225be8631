"""The start-up block's auth line, on a real Redis: keys counted page by page,
revoked ones named apart, and a count that takes too long is said to be unknown
rather than delay start-up."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.startup import auth_line
from gateway.state.factory import build_state
from tests.servers import RedisServer


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[str]:
    # a database of its own: other tests share this Redis
    flush = ["redis-cli", "-p", str(redis_server.port), "-n", "7", "FLUSHDB"]
    subprocess.run(flush, check=True, capture_output=True)
    yield redis_server.url.rsplit("/", 1)[0] + "/7"
    subprocess.run(flush, check=True, capture_output=True)


async def test_the_auth_line_counts_redis_keys_and_gives_up_in_time(redis_db: str) -> None:
    state = await build_state(redis_db, timeout_s=1.0)
    try:
        await state.keys.create_key("search")
        _, gone = await state.keys.create_key("billing")
        await state.keys.update_key(replace(gone, revoked_at=gone.created_at))
        services: Any = SimpleNamespace(state=state)
        assert await auth_line(services, True) == (
            "auth: keys (1 key, 1 team, 1 revoked or expired; source: redis)"
        )
        assert await auth_line(services, True, wait_s=0) == (
            "auth: keys (count not known within 0 s; source: redis)"
        )
    finally:
        await state.aclose()
