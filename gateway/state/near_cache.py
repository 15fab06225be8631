"""A per-replica near-cache in front of the shared response cache.

A hit in Redis costs a round trip and redis-py's own work per request (about
0.1 ms of CPU on this machine: more than forwarding the request to a fast
local upstream). Popular deterministic prompts are asked again and again, so
each replica keeps the entries it recently read or wrote, decoded, in a
bounded LRU, and serves repeats from memory.

Why serving a local copy is safe: an entry is the answer to a deterministic
request under a key that names everything that changes the answer (the team
scope, targets and models, the request fields); entries are only ever added
or expire, never changed. The same sensitivity check as for any hit runs on
every request (``response_cache.may_serve``). A local copy never outlives the
shared entry: it lives ``min(the entry's remaining TTL in Redis, max_age_s)``.

What it costs: a purge of the shared cache (``redis-cli DEL``/``FLUSHDB``) is
seen by a replica after at most ``max_age_s``; memory is bounded by
``max_bytes`` of answer bytes per replica.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from gateway.state.base import CachedResponse

#: answer bytes kept per replica
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: what an entry costs beyond its answer bytes (its object, the key)
_OVERHEAD = 256


class SharedCache(Protocol):
    async def get_with_ttl(self, key: str) -> tuple[CachedResponse | None, float | None]:
        """The entry and its remaining time to live in seconds (None: no expiry)."""
        ...

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None: ...


class NearCache:
    """A :class:`~gateway.state.base.ResponseCache`: this replica's recent
    entries first, then the shared cache (whose failures pass through)."""

    def __init__(
        self,
        shared: SharedCache,
        *,
        max_age_s: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._max_age_s = max_age_s
        self._max_bytes = max_bytes
        self._clock = clock
        #: key -> (entry, expires at, size)
        self._entries: OrderedDict[str, tuple[CachedResponse, float, int]] = OrderedDict()
        self._bytes = 0

    async def get(self, key: str) -> CachedResponse | None:
        kept = self._entries.get(key)
        if kept is not None:
            if self._clock() < kept[1]:
                self._entries.move_to_end(key)
                return kept[0]
            self._forget(key)
        entry, ttl_s = await self._shared.get_with_ttl(key)
        if entry is not None:
            self._keep(key, entry, ttl_s)
        return entry

    async def set(self, key: str, entry: CachedResponse, ttl_s: float) -> None:
        await self._shared.set(key, entry, ttl_s)
        if ttl_s > 0:
            self._keep(key, entry, ttl_s)

    def _keep(self, key: str, entry: CachedResponse, ttl_s: float | None) -> None:
        life = self._max_age_s if ttl_s is None else min(ttl_s, self._max_age_s)
        if life <= 0:
            return
        size = _OVERHEAD + len(entry.body or b"") + sum(len(chunk) for chunk in entry.chunks)
        if size > self._max_bytes:
            return
        self._forget(key)
        self._entries[key] = (entry, self._clock() + life, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            self._forget(next(iter(self._entries)))

    def _forget(self, key: str) -> None:
        kept = self._entries.pop(key, None)
        if kept is not None:
            self._bytes -= kept[2]
