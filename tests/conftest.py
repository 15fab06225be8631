"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import RedisCluster, RedisServer, RedisUnavailable

# --- real Redis servers (owned by the state work; see tests/servers.py) -------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real ``redis-server`` for the whole session (fails clearly if missing)."""
    try:
        server = RedisServer()
        server.start()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real three-master Redis Cluster for the whole session."""
    try:
        cluster = RedisCluster()
        cluster.start()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.close()


# --- end of real Redis servers --------------------------------------------------
