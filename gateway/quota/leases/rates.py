"""Leases of requests- and tokens-per-minute quota (see :mod:`gateway.quota.leases`)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.quota.leases.demand import MAX_LEASES, Background, Demand, want
from gateway.state.base import Grant, KeyLimits, LimitDecision, RateLimiter, StateUnavailable
from gateway.state.window import WINDOW_S


@dataclass(slots=True)
class _RateLease:
    limits: KeyLimits
    window: int
    requests: int = 0
    tokens: int = 0
    #: the last grant's size: a top-up starts when less than half of it is left
    granted_requests: int = 0
    granted_tokens: int = 0
    #: room left under each limit beyond this lease when last counted, and when
    #: each count resets (wall clock), for ``x-ratelimit-*``
    room_requests: int | None = None
    room_tokens: int | None = None
    reset_requests_at: float | None = None
    reset_tokens_at: float | None = None
    used_at: float = 0.0
    requests_demand: Demand | None = None
    tokens_demand: Demand | None = None
    #: a grant on its way (another request's count, or a top-up)
    pending: asyncio.Future[None] | None = None


class RateLeases:
    """This replica's leases of requests- and tokens-per-minute quota, per scope."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        lease_s: float,
        on_error: Callable[[], None],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._lease_s = lease_s
        self._on_error = on_error
        self._clock = clock
        self._monotonic = monotonic
        self._leases: dict[str, _RateLease] = {}
        #: (scope, window) -> [requests, tokens] still to add to the shared count
        self._corrections: dict[tuple[str, int], list[int]] = {}
        self._background = Background()

    async def admit(self, scope: str, limits: KeyLimits, tokens: int) -> LimitDecision:
        """Admit one request of ``tokens`` estimated tokens in ``scope``: from
        the lease when it covers it, else counted by itself (see the module
        docstring). Raises :class:`StateUnavailable` only when a count was
        needed and the shared state did not answer."""
        if limits.rpm is None and limits.tpm is None:
            return LimitDecision(allowed=True)
        lease = self._lease(scope, limits)
        verdict = self._take(scope, lease, limits, tokens)
        if verdict is not None:
            return verdict
        if lease.pending is not None:
            await asyncio.wait((lease.pending,))
            lease = self._lease(scope, limits)
            verdict = self._take(scope, lease, limits, tokens)
            if verdict is not None:
                return verdict
        return await self._count(scope, lease, limits, tokens)

    def correct(self, scope: str, tokens: int) -> None:
        """Add ``tokens`` (negative: fewer were used than estimated) to what
        ``scope`` counted: from or into the lease when it is of this window,
        else at the next :meth:`flush`."""
        window = _window_of(self._clock())
        lease = self._leases.get(scope)
        if (
            self._lease_s > 0
            and lease is not None
            and lease.window == window
            and lease.tokens >= tokens
        ):
            lease.tokens -= tokens
            return
        self._correction(scope, window, 0, tokens)

    async def flush(self) -> bool:
        """Give back what idle or ended leases hold and send token corrections;
        True while leases are still held (a later flush gives them back)."""
        now, window = self._monotonic(), _window_of(self._clock())
        for scope, lease in list(self._leases.items()):
            idle = now - lease.used_at > self._lease_s
            if lease.pending is None and (lease.window != window or idle):
                self._drop(scope)
        corrections, self._corrections = self._corrections, {}
        if corrections:
            await asyncio.gather(
                *(
                    self._adjust(scope, window_index, requests, tokens)
                    for (scope, window_index), (requests, tokens) in corrections.items()
                )
            )
        return bool(self._leases)

    async def aclose(self) -> None:
        """Give everything back, once the top-ups on their way are in."""
        await self._background.wait()
        for scope in list(self._leases):
            self._drop(scope)
        await self.flush()

    # -- the lease of one scope ---------------------------------------------------

    def _lease(self, scope: str, limits: KeyLimits) -> _RateLease:
        """The scope's lease for the current window and these limits (made
        empty when missing; an old window's or old limits' lease gives back)."""
        window = _window_of(self._clock())
        lease = self._leases.get(scope)
        if lease is not None and lease.window == window and lease.limits == limits:
            return lease
        if lease is not None and lease.pending is not None:
            return lease  # replaced once its grant is in
        if lease is not None:
            self._drop(scope)
        elif len(self._leases) >= MAX_LEASES:
            self._drop(next(iter(self._leases)))
        now = self._monotonic()
        lease = _RateLease(limits, window, used_at=now)
        lease.requests_demand = Demand(now)
        lease.tokens_demand = Demand(now)
        self._leases[scope] = lease
        return lease

    def _take(
        self, scope: str, lease: _RateLease, limits: KeyLimits, tokens: int
    ) -> LimitDecision | None:
        if lease.window != _window_of(self._clock()) or lease.limits != limits:
            return None
        if limits.rpm is not None and lease.requests < 1:
            return None
        if limits.tpm is not None and lease.tokens < tokens:
            return None
        if limits.rpm is not None:
            lease.requests -= 1
        if limits.tpm is not None:
            lease.tokens -= tokens
        self._handed_out(lease, tokens)
        if lease.pending is None and (
            lease.requests * 2 < lease.granted_requests or lease.tokens * 2 < lease.granted_tokens
        ):
            self._top_up(scope, lease)
        return self._verdict(lease)

    def _handed_out(self, lease: _RateLease, tokens: int) -> None:
        lease.used_at = self._monotonic()
        assert lease.requests_demand is not None and lease.tokens_demand is not None
        lease.requests_demand.taken += 1
        lease.tokens_demand.taken += tokens

    def _wants(self, lease: _RateLease) -> tuple[int, int]:
        now = self._monotonic()
        assert lease.requests_demand is not None and lease.tokens_demand is not None
        return (
            want(lease.requests_demand, now, self._lease_s),
            want(lease.tokens_demand, now, self._lease_s),
        )

    async def _count(
        self, scope: str, lease: _RateLease, limits: KeyLimits, tokens: int
    ) -> LimitDecision:
        """Count the request by itself, with a lease on top when there is demand."""
        want_requests, want_tokens = self._wants(lease)
        # others wait for this grant only when it may bring units for them
        done = None
        if want_requests > 0 or want_tokens > 0:
            done = lease.pending = asyncio.get_running_loop().create_future()
        try:
            grant = await self._limiter.lease(
                scope, limits, tokens, want_requests=want_requests, want_tokens=want_tokens
            )
        finally:
            if done is not None:
                lease.pending = None
                done.set_result(None)
        if grant.decision.allowed:
            self._handed_out(lease, tokens)
            self._add(scope, limits, grant)
        return grant.decision

    def _top_up(self, scope: str, lease: _RateLease) -> None:
        wants = self._wants(lease)
        if wants == (0, 0):
            return
        done = lease.pending = asyncio.get_running_loop().create_future()
        self._background.start(self._topping_up(scope, lease, wants, done))

    async def _topping_up(
        self, scope: str, lease: _RateLease, wants: tuple[int, int], done: asyncio.Future[None]
    ) -> None:
        try:
            grant = await self._limiter.lease(
                scope, lease.limits, 0, requests=0, want_requests=wants[0], want_tokens=wants[1]
            )
            if grant.decision.allowed:
                self._add(scope, lease.limits, grant)
        except StateUnavailable:
            self._on_error()
        finally:
            lease.pending = None
            done.set_result(None)

    def _add(self, scope: str, limits: KeyLimits, grant: Grant) -> None:
        """Put a grant's extra units into the scope's current lease, or give
        them back when the window changed while it was on its way."""
        lease = self._lease(scope, limits)
        if lease.window != grant.window or lease.limits != limits:
            self._correction(scope, grant.window, -grant.requests, -grant.tokens)
            return
        lease.requests += grant.requests
        lease.tokens += grant.tokens
        lease.granted_requests, lease.granted_tokens = grant.requests, grant.tokens
        d, now = grant.decision, self._clock()
        if d.remaining_requests is not None:
            lease.room_requests = d.remaining_requests - lease.requests
        if d.remaining_tokens is not None:
            lease.room_tokens = d.remaining_tokens - lease.tokens
        if d.reset_requests_s is not None:
            lease.reset_requests_at = now + d.reset_requests_s
        if d.reset_tokens_s is not None:
            lease.reset_tokens_at = now + d.reset_tokens_s

    def _verdict(self, lease: _RateLease) -> LimitDecision:
        now = self._clock()
        return LimitDecision(
            allowed=True,
            limit_requests=lease.limits.rpm,
            remaining_requests=None
            if lease.room_requests is None
            else max(0, lease.room_requests + lease.requests),
            reset_requests_s=None
            if lease.reset_requests_at is None
            else max(0.0, lease.reset_requests_at - now),
            limit_tokens=lease.limits.tpm,
            remaining_tokens=None
            if lease.room_tokens is None
            else max(0, lease.room_tokens + lease.tokens),
            reset_tokens_s=None
            if lease.reset_tokens_at is None
            else max(0.0, lease.reset_tokens_at - now),
        )

    def _drop(self, scope: str) -> None:
        lease = self._leases.pop(scope)
        self._correction(scope, lease.window, -lease.requests, -lease.tokens)

    def _correction(self, scope: str, window: int, requests: int, tokens: int) -> None:
        if requests == 0 and tokens == 0:
            return
        pending = self._corrections.get((scope, window))
        if pending is None:
            self._corrections[(scope, window)] = [requests, tokens]
        else:
            pending[0] += requests
            pending[1] += tokens

    async def _adjust(self, scope: str, window: int, requests: int, tokens: int) -> None:
        try:
            await self._limiter.adjust(scope, window, requests, tokens)
        except StateUnavailable:
            # a give-back lost stays counted (the safe side); a lost correction
            # upwards undercounts one flush interval of tokens
            self._on_error()


def _window_of(now: float) -> int:
    return math.floor(now / WINDOW_S)
