"""Leases of team budgets: reservations handed out locally (see :mod:`gateway.quota.leases`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.quota.leases.demand import MAX_LEASES, Background, Demand, want
from gateway.state import money
from gateway.state.base import Budget, SpendLedger, StateUnavailable


@dataclass(slots=True)
class _BudgetLease:
    #: micro-dollars set aside in the ledger and not yet handed out
    balance: int = 0
    granted: int = 0
    granted_at: float = 0.0
    used_at: float = 0.0
    demand: Demand | None = None
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
        self._background = Background()

    async def reserve(self, team: str, budget: Budget, estimate_usd: float) -> bool:
        """Set aside ``estimate_usd`` for one request; False when the budget
        cannot cover it. Raises :class:`StateUnavailable` only when a count
        was needed and the ledger did not answer."""
        lease = self._lease(team, budget)
        amount = money.to_micros(estimate_usd)
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
        return lease is not None and lease.balance > money.to_micros(estimate_usd)

    def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        """A request that took ``reserved_usd`` produced no spend: back to the lease."""
        amount = money.to_micros(reserved_usd)
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
        await self._background.wait()
        for key in list(self._leases):
            self._drop(key)
        await self.flush()

    def _lease(self, team: str, budget: Budget) -> _BudgetLease:
        lease = self._leases.get((team, budget))
        if lease is None:
            if len(self._leases) >= MAX_LEASES:
                self._drop(next(iter(self._leases)))
            now = self._monotonic()
            lease = self._leases[(team, budget)] = _BudgetLease(used_at=now, demand=Demand(now))
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
        micros = max(1, want(lease.demand, self._monotonic(), self._lease_s))
        return money.from_micros(micros)

    async def _count(self, team: str, budget: Budget, lease: _BudgetLease, amount: int) -> bool:
        want = self._want_usd(lease)
        done = lease.pending = asyncio.get_running_loop().create_future()
        try:
            reservation = await self._ledger.reserve(team, budget, money.from_micros(amount), want)
        finally:
            lease.pending = None
            done.set_result(None)
        if reservation is None:
            return False
        self._handed_out(lease, amount)
        self._add(team, budget, money.to_micros(reservation.extra_usd))
        return True

    def _top_up(self, team: str, budget: Budget, lease: _BudgetLease) -> None:
        done = lease.pending = asyncio.get_running_loop().create_future()
        self._background.start(self._topping_up(team, budget, lease, done))

    async def _topping_up(
        self, team: str, budget: Budget, lease: _BudgetLease, done: asyncio.Future[None]
    ) -> None:
        try:
            reservation = await self._ledger.reserve(team, budget, 0.0, self._want_usd(lease))
            if reservation is None:
                # the budget is exhausted (by other replicas too): hand nothing more out
                self._drop((team, budget))
            else:
                self._add(team, budget, money.to_micros(reservation.extra_usd))
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
            await self._ledger.release(team, budget, money.from_micros(micros))
        except StateUnavailable:
            # stays reserved until the reservation TTL frees it (the safe side)
            self._on_error()
