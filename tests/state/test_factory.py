"""build_state and the Redis URL forms."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.state.factory import build_state
from gateway.state.redis_backend import parse_url
from tests.servers import RedisCluster, RedisServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:6379/2", ("redis://h:6379/2", False)),
        ("redis://:secret@h:6379/0", ("redis://:secret@h:6379/0", False)),
        (
            "rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem",
            ("rediss://h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=%2Fca.pem", False),
        ),
        ("redis+cluster://h:7000", ("redis://h:7000", True)),
        (
            "rediss+cluster://h:7000?ssl_cert_reqs=required",
            ("rediss://h:7000?ssl_cert_reqs=required", True),
        ),
        ("redis://h:7000?cluster=true", ("redis://h:7000", True)),
        (
            "redis://h:7000?cluster=false&socket_keepalive=true",
            ("redis://h:7000?socket_keepalive=true", False),
        ),
    ],
)
def test_parse_url(url: str, expected: tuple[str, bool]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://h:6379", "memcached://h", "h:6379"])
def test_non_redis_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        parse_url(url)


async def test_no_url_is_memory() -> None:
    state = await build_state(None)
    assert state.backend == "memory"
    assert await state.ping() is True
    await state.aclose()


async def test_backend_names(redis_server: RedisServer, redis_cluster: RedisCluster) -> None:
    redis_server.start()  # a previous test may have stopped it
    for node in redis_cluster.nodes:
        node.start()
    redis_cluster.wait_ok()
    raw = Redis.from_url(redis_server.url)
    await raw.flushall()
    await raw.aclose()
    redis_cluster.flushall()
    single = await build_state(redis_server.url)
    cluster = await build_state(redis_cluster.url)
    flagged = await build_state(
        redis_cluster.url.replace("redis+cluster://", "redis://") + "?cluster=true"
    )
    try:
        assert single.backend == "redis"
        assert cluster.backend == flagged.backend == "redis-cluster"
        for state in (single, cluster, flagged):
            assert await state.ping() is True
            assert await state.keys.has_keys() is False
        plaintext, record = await cluster.keys.create_key("team-a")
        # both URL forms name the same cluster: a key made through one is known to the other
        assert await flagged.keys.has_keys() is True
        known = await flagged.keys.authenticate(plaintext)
        assert known is not None and known.key_id == record.key_id and known.team == "team-a"
        # the single node is another store
        assert await single.keys.has_keys() is False
        assert await single.keys.authenticate(plaintext) is None
    finally:
        for state in (single, cluster, flagged):
            await state.aclose()
