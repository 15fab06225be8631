"""The Redis boundary: the only module that imports ``redis``.

:func:`connect` builds a pooled client for a single node or a cluster, and
:class:`RedisConnection` exposes the handful of operations the Redis stores
(:mod:`gateway.state.redis_stores`) need. Its contract:

* every socket operation (connect, read) is bounded by ``timeout_s``, and the
  whole call (pool checkout, connect, script reload, cluster redirections) by
  ``2 * timeout_s``; there are no retries that could stretch a call;
* any Redis error, socket error or timeout raises :class:`StateUnavailable`;
* a value of the wrong type under a key is corrupt data: it reads as absent
  (logged on ``gateway.state``), never as an error;
* a Redis that went away and came back is used again without rebuilding
  anything: broken pooled connections are dropped and reopened on next use,
  and scripts the restarted server forgot (``NOSCRIPT``) are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError

from gateway.state.base import StateUnavailable
from gateway.state.redis_scripts import LuaScript

logger = logging.getLogger("gateway.state")

T = TypeVar("T")

#: connections per process (per cluster node); a call waits at most timeout_s for one
MAX_CONNECTIONS = 128
_TRUE = {"1", "true", "yes", "on"}

RedisArg = str | bytes | int | float


def parse_url(url: str) -> tuple[str, bool]:
    """``(URL redis-py understands, is it a cluster?)``.

    A cluster is named by the scheme ``redis+cluster://`` / ``rediss+cluster://``
    or by the query parameter ``cluster=true``; both are removed from the URL
    handed to redis-py. Every other query parameter (``ssl_cert_reqs``,
    ``ssl_ca_certs``, ...) passes through unchanged.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    cluster = scheme.endswith("+cluster")
    scheme = scheme.removesuffix("+cluster")
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} in {url!r}")
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "cluster":
            cluster = cluster or value.strip().lower() in _TRUE
        else:
            query.append((name, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), "")), cluster


def connect(url: str, timeout_s: float) -> RedisConnection:
    """A lazily-connecting client for ``url`` (see :func:`parse_url`)."""
    clean_url, cluster = parse_url(url)
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 0,
        "retry": Retry(NoBackoff(), 0),
    }
    client: Redis | RedisCluster
    if cluster:
        client = RedisCluster.from_url(clean_url, max_connections=MAX_CONNECTIONS, **options)
    else:
        pool = BlockingConnectionPool.from_url(
            clean_url, max_connections=MAX_CONNECTIONS, timeout=timeout_s, **options
        )
        client = Redis.from_pool(pool)  # the client owns (and closes) its pool
    return RedisConnection(client, timeout_s=timeout_s, cluster=cluster)


class RedisConnection:
    """Bounded, error-translating access to one Redis deployment."""

    def __init__(self, client: Redis | RedisCluster, *, timeout_s: float, cluster: bool) -> None:
        self._client = client
        self._deadline_s = 2 * timeout_s
        self.cluster = cluster

    async def _bounded(
        self, what: str, op: Callable[[], Awaitable[T]], deadline_s: float | None = None
    ) -> T:
        try:
            async with asyncio.timeout(deadline_s or self._deadline_s):
                return await op()
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            if isinstance(exc, RedisConnectionError | OSError) and not self.cluster:
                await self._drop_idle_connections()
            raise StateUnavailable(f"redis {what} failed: {type(exc).__name__}: {exc}") from exc

    async def _drop_idle_connections(self) -> None:
        """After a connection failure every idle pooled connection is suspect
        (Redis restarted, failed over): drop them so that the next call dials
        afresh instead of failing once per stale connection."""
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await pool.disconnect(inuse_connections=False)

    async def initialize(self, deadline_s: float) -> None:
        """Discover a cluster's nodes now rather than on first use (where a
        failed discovery is simply tried again)."""
        if isinstance(self._client, RedisCluster):
            client = self._client
            await self._bounded("cluster discovery", client.initialize, deadline_s)

    async def ping(self) -> bool:
        """Does Redis answer? Never raises."""
        try:
            return bool(await self._bounded("PING", self._client.ping))
        except StateUnavailable as exc:
            logger.warning("state backend not ready: %s", exc)
            return False

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- plain commands ----------------------------------------------------

    async def get(self, name: str) -> bytes | None:
        async def op() -> bytes | None:
            try:
                value = await self._client.get(name)
            except ResponseError as exc:  # WRONGTYPE: GET only fails on the key's type
                _log_wrong_type(name, exc)
                return None
            return value.encode() if isinstance(value, str) else value

        return await self._bounded("GET", op)

    async def set(self, name: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        await self._bounded("SET", lambda: self._client.set(name, value, px=px))

    async def exists(self, name: str) -> bool:
        return bool(await self._bounded("EXISTS", lambda: self._client.exists(name)))

    async def smembers(self, name: str) -> list[str]:
        async def op() -> list[str]:
            try:
                members = await self._client.smembers(name)
            except ResponseError as exc:
                _log_wrong_type(name, exc)
                return []
            return sorted(_text(m) for m in members)

        return await self._bounded("SMEMBERS", op)

    async def sscan(self, name: str, cursor: int, count: int) -> tuple[int, list[str]]:
        """One SSCAN step: (the next cursor, 0 when done; members of this page)."""

        async def op() -> tuple[int, list[str]]:
            try:
                after, members = await self._client.sscan(name, cursor, count=count)
            except ResponseError as exc:
                _log_wrong_type(name, exc)
                return 0, []
            return int(after), [_text(m) for m in members]

        return await self._bounded("SSCAN", op)

    async def commands(self, *commands: Sequence[RedisArg]) -> None:
        """Send plain commands in one round trip (not a transaction)."""
        await self._bounded("pipeline", lambda: self._pipeline(commands))

    async def get_with_ttl(self, name: str) -> tuple[bytes | None, float | None]:
        """A string value and its remaining time to live in seconds (None: it
        does not expire), in one round trip; a wrong type reads as absent."""
        value, pttl = await self._bounded(
            "GET", lambda: self._pipeline([("GET", name), ("PTTL", name)])
        )
        if isinstance(value, ResponseError):
            _log_wrong_type(name, value)
            return None, None
        if value is None:
            return None, None
        data = value.encode() if isinstance(value, str) else value
        return data, (None if not isinstance(pttl, int) or pttl < 0 else pttl / 1000)

    async def get_many(self, names: Sequence[str]) -> list[bytes | None]:
        results = await self._bounded("GET", lambda: self._pipeline([("GET", n) for n in names]))
        values: list[bytes | None] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, ResponseError):
                _log_wrong_type(name, result)
                result = None
            values.append(result)
        return values

    async def hgetall_many(self, names: Sequence[str]) -> list[dict[str, int]]:
        """Integer fields of each hash; wrong types and non-integer fields are dropped."""
        results = await self._bounded(
            "HGETALL", lambda: self._pipeline([("HGETALL", n) for n in names])
        )
        hashes: list[dict[str, int]] = []
        for name, result in zip(names, results, strict=True):
            fields: dict[str, int] = {}
            if isinstance(result, ResponseError):
                _log_wrong_type(name, result)
                result = {}
            for field, raw in result.items():
                try:
                    fields[_text(field)] = int(raw)
                except ValueError:
                    logger.warning("corrupt field %r in %s ignored", field, name)
            hashes.append(fields)
        return hashes

    async def _pipeline(self, commands: Sequence[Sequence[RedisArg]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for result in results:
            # a wrong type is data the caller handles; anything else is an outage
            if isinstance(result, Exception) and not isinstance(result, ResponseError):
                raise result
        return results

    # --- scripts -------------------------------------------------------------

    async def run(
        self,
        script: LuaScript,
        keys: Sequence[str],
        args: Sequence[RedisArg],
        *,
        also: Sequence[Sequence[RedisArg]] = (),
    ) -> Any:
        """Run ``script`` atomically, by SHA, loading it if the server forgot it.

        ``also`` are plain commands sent in the same round trip, just before
        the script (not atomically with it: they must be idempotent).
        """

        async def op() -> Any:
            call = ("EVALSHA", script.sha, len(keys), *keys, *args)
            if also:
                results = await self._pipeline([*also, call])
                result = results[-1]
            else:
                try:
                    result = await self._client.execute_command(*call)
                except NoScriptError as exc:
                    result = exc
            if isinstance(result, NoScriptError):
                result = await self._client.execute_command(
                    "EVAL", script.source, len(keys), *keys, *args
                )
            elif isinstance(result, ResponseError):
                raise result
            return result

        return await self._bounded(script.name, op)


def _log_wrong_type(name: str, exc: ResponseError) -> None:
    logger.warning("unexpected data at %s treated as missing: %s", name, exc)


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
