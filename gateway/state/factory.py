"""Build the state services from one setting: the Redis URL, or none.

``build_state(None)`` gives the in-memory backend, the embedded default of a
single process; with ``keys_file`` its API keys live in that file
(:mod:`gateway.state.key_file`) instead of in memory. Otherwise ``redis_url`` names the Redis deployment:

* ``redis://[user:password@]host:port/db`` — one node (db defaults to 0);
* ``rediss://...`` — the same over TLS; TLS options in the query string
  (``ssl_cert_reqs=none|optional|required``, ``ssl_ca_certs=/path``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``) are passed to
  redis-py as they are;
* ``redis+cluster://host:port`` or ``rediss+cluster://host:port`` — a Redis
  Cluster discovered from that seed node; ``redis://host:port?cluster=true``
  means the same. A cluster has no db number.

Every Redis call is bounded: ``timeout_s`` (default 50 ms) for connecting and
for each read, ``2 * timeout_s`` for the whole call, without retries; past
that, or on any Redis error, the call raises
:class:`~gateway.state.base.StateUnavailable` and the caller applies its fail
mode. A Redis that comes back is used again without rebuilding anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.state.base import (
    KeyStore,
    RateLimiter,
    ResponseCache,
    SpendLedger,
    StateUnavailable,
)
from gateway.state.conversations import (
    Conversations,
    MemoryConversations,
    RedisConversations,
)
from gateway.state.key_file import FileKeyStore
from gateway.state.memory import (
    MemoryKeyStore,
    MemoryKV,
    MemoryRateLimiter,
    MemoryResponseCache,
    MemorySpendLedger,
)
from gateway.state.near_cache import NearCache
from gateway.state.redis_backend import RedisConnection, connect
from gateway.state.redis_stores import (
    RedisKeyStore,
    RedisRateLimiter,
    RedisResponseCache,
    RedisSpendLedger,
)

logger = logging.getLogger("gateway.state")

#: how long the first cluster discovery may take at startup (it is retried lazily)
CLUSTER_DISCOVERY_TIMEOUT_S = 2.0


@dataclass
class StateBackends:
    cache: ResponseCache
    keys: KeyStore
    limiter: RateLimiter
    ledger: SpendLedger
    #: stored Responses (``previous_response_id``)
    conversations: Conversations
    #: ``memory`` | ``redis`` | ``redis-cluster``
    backend: str
    redis: RedisConnection | None = None

    def problems(self) -> list[str]:
        """What is wrong with the state that ``ping`` cannot see (a corrupt keys file)."""
        error = getattr(self.keys, "error", None)
        return [error] if isinstance(error, str) else []

    async def ping(self) -> bool:
        """Is the backend answering (for ``/readyz``)? Never raises."""
        return True if self.redis is None else await self.redis.ping()

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def memory_state(
    clock: Callable[[], float] = time.time, kv: MemoryKV | None = None
) -> StateBackends:
    """In-memory state services sharing one store (``kv``, made if not given)."""
    kv = kv if kv is not None else MemoryKV(clock)
    return StateBackends(
        cache=MemoryResponseCache(kv),
        keys=MemoryKeyStore(kv, clock),
        limiter=MemoryRateLimiter(kv, clock),
        ledger=MemorySpendLedger(kv, clock),
        conversations=MemoryConversations(kv),
        backend="memory",
    )


async def build_state(
    redis_url: str | None,
    *,
    timeout_s: float = 0.05,
    clock: Callable[[], float] = time.time,
    near_cache_s: float = 0.0,
    keys_file: Path | None = None,
) -> StateBackends:
    """The state services for ``redis_url`` (see the module docstring).

    With Redis and ``near_cache_s`` > 0, the response cache is read through a
    per-replica near-cache (:mod:`gateway.state.near_cache`) whose copies live
    at most that long.

    Does not fail when Redis is down at startup: the services raise
    :class:`StateUnavailable` until it answers. Raises ValueError for a URL
    that is not a Redis URL.
    """
    if not redis_url:
        state = memory_state(clock)
        if keys_file is not None:
            state.keys = FileKeyStore(keys_file, clock)
            state.backend = "memory"
        return state
    redis = connect(redis_url, timeout_s)
    if redis.cluster:
        try:
            await redis.initialize(CLUSTER_DISCOVERY_TIMEOUT_S)
        except StateUnavailable as exc:
            logger.warning("redis cluster not reachable at startup: %s", exc)
    shared = RedisResponseCache(redis)
    return StateBackends(
        cache=NearCache(shared, max_age_s=near_cache_s) if near_cache_s > 0 else shared,
        keys=RedisKeyStore(redis, clock),
        limiter=RedisRateLimiter(redis, clock),
        ledger=RedisSpendLedger(redis, clock),
        conversations=RedisConversations(redis),
        backend="redis-cluster" if redis.cluster else "redis",
        redis=redis,
    )
