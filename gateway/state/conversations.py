"""Stored Responses (``store: true``) and their conversations, scoped per team.

One entry per response id: an opaque blob (the API layer's JSON) that lives
``ttl_s`` seconds. Ids are scoped to the caller's team: the name of an entry
includes the team, so another team's id is simply not found. Two
implementations with the same contract: in memory (one process) and Redis
(every replica sees every stored response). Redis failures raise
:class:`~gateway.state.base.StateUnavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.state.memory import MemoryKV
from gateway.state.redis_backend import RedisConnection

_PREFIX = "gw:resp:"
#: the team of a caller without a key (open mode)
_ANONYMOUS = "-"


def entry_name(team: str | None, response_id: str) -> str:
    """The key of one stored response (the team in braces keeps a team's
    entries in one Redis Cluster slot)."""
    return f"{_PREFIX}{{{team or _ANONYMOUS}}}:{response_id}"


class Conversations(ABC):
    @abstractmethod
    async def get(self, team: str | None, response_id: str) -> bytes | None:
        """The stored blob, or ``None`` (unknown, expired or another team's)."""

    @abstractmethod
    async def put(self, team: str | None, response_id: str, blob: bytes, ttl_s: float) -> None:
        """Store (or replace) ``blob`` for ``ttl_s`` seconds."""

    @abstractmethod
    async def delete(self, team: str | None, response_id: str) -> bool:
        """Forget a stored response; False when there was none."""


class MemoryConversations(Conversations):
    def __init__(self, kv: MemoryKV) -> None:
        self._kv = kv

    async def get(self, team: str | None, response_id: str) -> bytes | None:
        return self._kv.typed(entry_name(team, response_id), bytes)

    async def put(self, team: str | None, response_id: str, blob: bytes, ttl_s: float) -> None:
        self._kv.put(entry_name(team, response_id), blob, ttl_s)

    async def delete(self, team: str | None, response_id: str) -> bool:
        name = entry_name(team, response_id)
        found = self._kv.get(name) is not None
        self._kv.delete(name)
        return found


class RedisConversations(Conversations):
    def __init__(self, redis: RedisConnection) -> None:
        self._redis = redis

    async def get(self, team: str | None, response_id: str) -> bytes | None:
        return await self._redis.get(entry_name(team, response_id))

    async def put(self, team: str | None, response_id: str, blob: bytes, ttl_s: float) -> None:
        await self._redis.set(entry_name(team, response_id), blob, ttl_s)

    async def delete(self, team: str | None, response_id: str) -> bool:
        name = entry_name(team, response_id)
        if not await self._redis.exists(name):
            return False
        await self._redis.commands(("DEL", name))
        return True
