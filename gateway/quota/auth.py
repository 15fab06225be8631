"""Who is calling: API keys, checked against the key store.

* No key exists at all → the gateway runs open (it says so loudly at start).
* Keys exist → a missing or unknown key is 401 in OpenAI's shape.
* A key checked in the last :data:`FRESH_S` seconds is not looked up again
  (one Redis round trip saved per request); a change to a key's record (a
  revocation, new limits) takes at most that long to reach every replica
  (with the keys file, plus the file's own check interval, one second).
* The key store (Redis) down → keys seen in the last minute keep working from
  an in-process cache of their hashes; unknown keys get 503, never admission.
* A transient key-store error is retried (``_RETRY_DELAYS_S``, well within a
  request's budget) before that 503; concurrent lookups of one key share one
  round trip. So a known key is never refused for the store's sake while the
  store answers at all.
* :meth:`Authenticator.warm` runs before ``/readyz`` turns ready: it learns
  whether keys exist and opens the store's first connections, so the first
  burst of requests after a start does not open them all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.observability.metrics import Metrics
from gateway.state.base import KeyRecord, KeyStore, StateUnavailable

_HAS_KEYS_TTL_S = 5.0
FRESH_S = 5.0
_RECENT_TTL_S = 60.0
_RECENT_MAX = 10_000
#: waits between attempts of a key lookup that met a state error (each attempt
#: itself bounded by the state timeout): at most ~0.4 s more for the request
_RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2)
#: how long start-up waits for the key store before turning ready anyway (degraded)
_WARM_S = 5.0
#: connections opened to the key store before ready
_WARM_CONNECTIONS = 8

log = logging.getLogger("gateway.quota.auth")


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    def __init__(
        self, keys: KeyStore, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._keys = keys
        self._metrics = metrics
        self._clock = clock
        self._has_keys: bool | None = None
        self._has_keys_at = -_HAS_KEYS_TTL_S
        self._recent: dict[str, tuple[float, KeyRecord]] = {}
        self._lookups: dict[str, asyncio.Task[KeyRecord | None]] = {}
        #: :meth:`warm` has run (``/readyz`` waits for it)
        self.warmed = False

    async def warm(self, *, within_s: float = _WARM_S) -> None:
        """Learn whether keys exist and open the key store's first connections;
        give up (and say so) after ``within_s`` with the store unreachable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        try:
            while True:
                try:
                    found = await asyncio.gather(
                        *(self._keys.has_keys() for _ in range(_WARM_CONNECTIONS))
                    )
                except StateUnavailable:
                    if loop.time() >= deadline:
                        log.warning("the key store did not answer at start-up; ready, degraded")
                        return
                    await asyncio.sleep(0.05)
                    continue
                self._has_keys, self._has_keys_at = any(found), self._clock()
                return
        finally:
            self.warmed = True

    async def has_keys(self) -> bool:
        now = self._clock()
        if self._has_keys is not None and now - self._has_keys_at < _HAS_KEYS_TTL_S:
            return self._has_keys
        try:
            self._has_keys = await self._keys.has_keys()
            self._has_keys_at = now
        except StateUnavailable:
            self._metrics.state_errors.labels("keys").inc()
            # Never known: assume keys exist. Failing closed beats running open.
            if self._has_keys is None:
                return True
        return self._has_keys

    def forget(self) -> None:
        """Drop cached knowledge (a key was just created)."""
        self._has_keys = None
        self._recent.clear()

    async def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The caller's key record; None in open mode (no keys configured)."""
        if not await self.has_keys():
            return None
        token = bearer_token(authorization)
        if token is None:
            raise AuthenticationFailed(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        recent = self._recent.get(digest)
        if recent is not None and self._clock() - recent[0] < FRESH_S:
            return recent[1]
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.get_running_loop().create_task(self._lookup(token, recent))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(digest, None))
        # shielded: one caller leaving does not cancel the others' lookup
        record = await asyncio.shield(lookup)
        if record is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        if len(self._recent) >= _RECENT_MAX:
            self._recent.clear()
        self._recent[digest] = (self._clock(), record)
        return record

    async def _lookup(self, token: str, recent: tuple[float, KeyRecord] | None) -> KeyRecord | None:
        for delay in (*_RETRY_DELAYS_S, None):
            try:
                return await self._keys.authenticate(token)
            except StateUnavailable:
                self._metrics.state_errors.labels("keys").inc()
                if recent is not None and self._clock() - recent[0] < _RECENT_TTL_S:
                    return recent[1]
                if delay is None:
                    break
                await asyncio.sleep(delay)
        raise ServiceUnavailable(
            "The key store is unavailable; try again shortly.", code="key_store_unavailable"
        )

    @staticmethod
    def is_admin(authorization: str | None, admin_key: str) -> bool:
        token = bearer_token(authorization) or ""
        return hmac.compare_digest(token.encode(), admin_key.encode())
