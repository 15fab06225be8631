"""Local leases of shared quota: admitting a request without a round trip.

A rate limit or a budget shared by many replicas is counted in one place
(Redis; or memory, for a single process). Asking that place about every
request would put a round trip on every request's path. Instead each replica
holds a *lease* per scope: units the shared count has already counted for
this replica, which it hands out locally.

Contract, for rate limits and budgets alike:

* **A limit is never passed.** Every unit a replica hands out was counted in
  the shared state first, atomically, by the same script that checks the
  limit (:meth:`RateLimiter.lease`, :meth:`SpendLedger.reserve`).
* **Leases follow demand.** A request that finds its lease short is counted by
  itself (one round trip, as without leases) and asks for about ``lease_s``
  seconds of this replica's own recent traffic in that scope on top. A scope
  with less than about one request per ``lease_s`` on this replica holds no
  lease: each of its requests is counted by itself.
* **Leases shrink near a limit.** A lease is at most
  :data:`~gateway.state.window.LEASE_SHARE` of what is left under the limit,
  so with fewer than ``1 / LEASE_SHARE`` units left every request is counted
  by itself, exactly.
* **Leases are topped up ahead of need**, in the background, once half of the
  last grant is handed out; a budget lease also when it is older than
  ``lease_s``, so that a budget another replica exhausted is noticed within
  about ``lease_s``.
* **Unused units go back**: :meth:`flush` gives back what a lease holds once
  it was not used for ``lease_s``, or once its rate window ended.

The price, in fairness: while one replica holds unused units, a request on
another may be refused before the limit is reached — by at most the lease
share of what was left when each lease was taken, for at most about
``2 * lease_s``. ``lease_s = 0`` turns leases off: every request is counted by
itself.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.state import accounting
from gateway.state.base import (
    Budget,
    Grant,
    KeyLimits,
    LimitDecision,
    RateLimiter,
    SpendLedger,
    StateUnavailable,
)
from gateway.state.window import WINDOW_S

#: a demand sample spans at least this long, so that two requests a moment
#: apart do not read as thousands per second
MIN_SAMPLE_S = 0.1
#: leases kept per process; past it the oldest gives back what it holds
MAX_LEASES = 10_000


@dataclass(slots=True)
class _Demand:
    """Units handed out per second, smoothed over the samples between grants."""

    since: float
    taken: int = 0
    rate: float = 0.0

    def sample(self, now: float) -> float:
        span = max(now - self.since, MIN_SAMPLE_S)
        self.rate = (self.rate + self.taken / span) / 2
        self.since, self.taken = now, 0
        return self.rate


def _want(demand: _Demand, now: float, lease_s: float) -> int:
    return math.floor(demand.sample(now) * lease_s) if lease_s > 0 else 0


# --- rate limits ---------------------------------------------------------------


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
    requests_demand: _Demand | None = None
    tokens_demand: _Demand | None = None
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
        self._tasks: set[asyncio.Task[None]] = set()

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
        """Give everything back, once the top-ups on their way are in (each
        is bounded by the state backend's timeout; one cancelled mid-call
        could leave units counted that no lease holds)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        lease.requests_demand = _Demand(now)
        lease.tokens_demand = _Demand(now)
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
            _want(lease.requests_demand, now, self._lease_s),
            _want(lease.tokens_demand, now, self._lease_s),
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
        loop = asyncio.get_running_loop()
        done = lease.pending = loop.create_future()
        task = loop.create_task(self._topping_up(scope, lease, wants, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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


# --- budgets -----------------------------------------------------------------------


@dataclass(slots=True)
class _BudgetLease:
    #: micro-dollars set aside in the ledger and not yet handed out
    balance: int = 0
    granted: int = 0
    granted_at: float = 0.0
    used_at: float = 0.0
    demand: _Demand | None = None
    pending: asyncio.Future[None] | None = None


class BudgetLeases:
    """This replica's leases of each team budget (reservations it hands out).

    What a request takes from a lease is its own reservation, released with
    its spend (:meth:`SpendLedger.record`) or handed back to the lease by
    :meth:`release`. A lease always holds at least one micro-dollar, which is
    the proof that the budget was not exhausted when it was last counted:
    requests estimated at nothing (an open model) are admitted from it too.
    """

    def __init__(
        self,
        ledger: SpendLedger,
        *,
        lease_s: float,
        on_error: Callable[[], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._lease_s = lease_s
        self._on_error = on_error
        self._monotonic = monotonic
        self._leases: dict[tuple[str, Budget], _BudgetLease] = {}
        #: (team, budget) -> micro-dollars to give back at the next flush
        self._returns: dict[tuple[str, Budget], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def reserve(self, team: str, budget: Budget, estimate_usd: float) -> bool:
        """Set aside ``estimate_usd`` for one request; False when the budget
        cannot cover it. Raises :class:`StateUnavailable` only when a count
        was needed and the ledger did not answer."""
        lease = self._lease(team, budget)
        amount = accounting.to_micros(estimate_usd)
        if self._take(team, budget, lease, amount):
            return True
        if lease.pending is not None:
            await asyncio.wait((lease.pending,))
            lease = self._lease(team, budget)
            if self._take(team, budget, lease, amount):
                return True
        return await self._count(team, budget, lease, amount)

    def covers(self, team: str, budget: Budget, estimate_usd: float) -> bool:
        """Would :meth:`reserve` take ``estimate_usd`` from the lease, without a round trip?"""
        lease = self._leases.get((team, budget))
        return lease is not None and lease.balance > accounting.to_micros(estimate_usd)

    def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        """A request that took ``reserved_usd`` produced no spend: back to the lease."""
        amount = accounting.to_micros(reserved_usd)
        if amount <= 0:
            return
        lease = self._leases.get((team, budget))
        if lease is not None:
            lease.balance += amount
        else:
            self._returns[(team, budget)] = self._returns.get((team, budget), 0) + amount

    async def flush(self) -> bool:
        """Give back what idle leases hold; True while leases are still held."""
        now = self._monotonic()
        for key, lease in list(self._leases.items()):
            if lease.pending is None and now - lease.used_at > self._lease_s:
                self._drop(key)
        returns, self._returns = self._returns, {}
        if returns:
            await asyncio.gather(
                *(
                    self._give_back(team, budget, micros)
                    for (team, budget), micros in returns.items()
                )
            )
        return bool(self._leases)

    async def aclose(self) -> None:
        """Give everything back, once the top-ups on their way are in."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for key in list(self._leases):
            self._drop(key)
        await self.flush()

    def _lease(self, team: str, budget: Budget) -> _BudgetLease:
        lease = self._leases.get((team, budget))
        if lease is None:
            if len(self._leases) >= MAX_LEASES:
                self._drop(next(iter(self._leases)))
            now = self._monotonic()
            lease = self._leases[(team, budget)] = _BudgetLease(used_at=now, demand=_Demand(now))
        return lease

    def _take(self, team: str, budget: Budget, lease: _BudgetLease, amount: int) -> bool:
        # strictly more than the request: the last micro-dollar stays as proof
        if lease.balance <= amount:
            return False
        lease.balance -= amount
        self._handed_out(lease, amount)
        now = lease.used_at
        if lease.pending is None and (
            lease.balance * 2 < lease.granted or now - lease.granted_at > self._lease_s
        ):
            self._top_up(team, budget, lease)
        return True

    def _handed_out(self, lease: _BudgetLease, amount: int) -> None:
        lease.used_at = self._monotonic()
        assert lease.demand is not None
        lease.demand.taken += amount

    def _want_usd(self, lease: _BudgetLease) -> float:
        if self._lease_s <= 0:
            return 0.0
        assert lease.demand is not None
        # at least the one micro-dollar that proves the budget is not exhausted
        micros = max(1, _want(lease.demand, self._monotonic(), self._lease_s))
        return accounting.from_micros(micros)

    async def _count(self, team: str, budget: Budget, lease: _BudgetLease, amount: int) -> bool:
        want = self._want_usd(lease)
        done = lease.pending = asyncio.get_running_loop().create_future()
        try:
            reservation = await self._ledger.reserve(
                team, budget, accounting.from_micros(amount), want
            )
        finally:
            lease.pending = None
            done.set_result(None)
        if reservation is None:
            return False
        self._handed_out(lease, amount)
        self._add(team, budget, accounting.to_micros(reservation.extra_usd))
        return True

    def _top_up(self, team: str, budget: Budget, lease: _BudgetLease) -> None:
        done = lease.pending = asyncio.get_running_loop().create_future()
        task = asyncio.get_running_loop().create_task(self._topping_up(team, budget, lease, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _topping_up(
        self, team: str, budget: Budget, lease: _BudgetLease, done: asyncio.Future[None]
    ) -> None:
        try:
            reservation = await self._ledger.reserve(team, budget, 0.0, self._want_usd(lease))
            if reservation is None:
                # the budget is exhausted (by other replicas too): hand nothing more out
                self._drop((team, budget))
            else:
                self._add(team, budget, accounting.to_micros(reservation.extra_usd))
        except StateUnavailable:
            self._on_error()
        finally:
            lease.pending = None
            done.set_result(None)

    def _add(self, team: str, budget: Budget, micros: int) -> None:
        lease = self._lease(team, budget)
        lease.balance += micros
        lease.granted = micros
        lease.granted_at = self._monotonic()

    def _drop(self, key: tuple[str, Budget]) -> None:
        lease = self._leases.pop(key, None)
        if lease is not None and lease.balance > 0:
            self._returns[key] = self._returns.get(key, 0) + lease.balance

    async def _give_back(self, team: str, budget: Budget, micros: int) -> None:
        try:
            await self._ledger.release(team, budget, accounting.from_micros(micros))
        except StateUnavailable:
            # stays reserved until the reservation TTL frees it (the safe side)
            self._on_error()
