"""Local leases of rate limits and budgets (gateway/leases.py), on every backend.

What they promise (see the module docstring): no limit is ever passed, no
unit is lost (once leases are given back the shared count is exactly what was
admitted), steady traffic needs few round trips, and near a limit every
request is counted by itself.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.quota.leases import BudgetLeases, RateLeases
from gateway.state import money
from gateway.state.base import (
    Budget,
    Grant,
    KeyLimits,
    RateLimiter,
    Reservation,
    SpendLedger,
    SpendRecord,
    StateUnavailable,
)
from gateway.state.factory import memory_state
from gateway.state.memory import MemoryKV
from tests.state.conftest import EPOCH, Backend, FakeClock

SCOPE = "key:a"


class CountingLimiter:
    """The backend's real limiter, counting the round trips made through it."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        self.calls = 0

    async def lease(
        self,
        scope: str,
        limits: KeyLimits,
        tokens: int,
        *,
        requests: int = 1,
        want_requests: int = 0,
        want_tokens: int = 0,
    ) -> Grant:
        self.calls += 1
        return await self.inner.lease(
            scope,
            limits,
            tokens,
            requests=requests,
            want_requests=want_requests,
            want_tokens=want_tokens,
        )

    async def adjust(self, scope: str, window: int, requests: int, tokens: int) -> None:
        self.calls += 1
        await self.inner.adjust(scope, window, requests, tokens)

    async def open_stream(self, scope: str, max_streams: int) -> bool:
        return await self.inner.open_stream(scope, max_streams)

    async def close_stream(self, scope: str) -> None:
        await self.inner.close_stream(scope)


class CountingLedger:
    """The backend's real ledger, counting reservations and releases."""

    def __init__(self, inner: SpendLedger) -> None:
        self.inner = inner
        self.calls = 0

    async def reserve(
        self, team: str, budget: Budget, estimate_usd: float, want_usd: float = 0.0
    ) -> Reservation | None:
        self.calls += 1
        return await self.inner.reserve(team, budget, estimate_usd, want_usd)

    async def release(self, team: str, budget: Budget, reserved_usd: float) -> None:
        self.calls += 1
        await self.inner.release(team, budget, reserved_usd)


class Errors:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def rate_leases(
    limiter: RateLimiter, wall: FakeClock, mono: FakeClock, lease_s: float = 1.0
) -> RateLeases:
    return RateLeases(limiter, lease_s=lease_s, on_error=Errors(), clock=wall, monotonic=mono)


async def counted(limiter: RateLimiter, limits: KeyLimits) -> tuple[int | None, int | None]:
    """(requests, tokens) the shared count holds for SCOPE (at a window's start,
    where the previous window weighs fully)."""
    seen = (await limiter.lease(SCOPE, limits, 0, requests=0)).decision
    requests = None if limits.rpm is None else limits.rpm - (seen.remaining_requests or 0)
    tokens = None if limits.tpm is None else limits.tpm - (seen.remaining_tokens or 0)
    return requests, tokens


async def settle_top_ups() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- rate limits ---------------------------------------------------------------


async def test_steady_traffic_needs_few_round_trips_and_loses_no_unit(backend: Backend) -> None:
    limiter = CountingLimiter(backend.state.limiter)
    mono = FakeClock(0.0)
    leases = rate_leases(limiter, backend.clock, mono)
    limits = KeyLimits(rpm=100_000, tpm=10_000_000)
    for _ in range(300):
        assert (await leases.admit(SCOPE, limits, 20)).allowed
        mono.advance(0.002)  # 500 requests a second
        await settle_top_ups()
    assert limiter.calls < 30
    await leases.aclose()
    assert await counted(backend.state.limiter, limits) == (300, 300 * 20)


async def test_near_a_limit_every_request_is_counted_and_the_limit_is_exact(
    backend: Backend,
) -> None:
    limiter = CountingLimiter(backend.state.limiter)
    mono = FakeClock(0.0)
    leases = rate_leases(limiter, backend.clock, mono)
    limits = KeyLimits(rpm=20)
    verdicts = []
    for _ in range(30):
        verdicts.append(await leases.admit(SCOPE, limits, 1))
        mono.advance(0.001)
        await settle_top_ups()
    assert [v.allowed for v in verdicts] == [True] * 20 + [False] * 10
    assert [v.remaining_requests for v in verdicts[:20]] == list(range(19, -1, -1))
    await leases.aclose()
    assert await counted(backend.state.limiter, limits) == (20, None)


async def test_replicas_never_pass_a_limit_and_lose_no_unit(backend: Backend) -> None:
    states = [backend.state] + [await backend.replica() for _ in range(2)]
    mono = FakeClock(0.0)
    replicas = [rate_leases(s.limiter, backend.clock, mono) for s in states]
    limits = KeyLimits(rpm=60, tpm=6_000)

    async def one(i: int) -> bool:
        await asyncio.sleep(0)
        mono.advance(0.0005)
        return (await replicas[i % 3].admit(SCOPE, limits, 10)).allowed

    first = sum(await asyncio.gather(*(one(i) for i in range(150))))
    assert first <= 60
    for replica in replicas:
        await replica.aclose()
    # what any replica held unused went back: the rest of the limit is there for the taking
    later = 0
    while (await replicas[0].admit(SCOPE, limits, 10)).allowed:
        later += 1
        mono.advance(0.001)
    assert first + later == 60
    await replicas[0].aclose()
    assert await counted(backend.state.limiter, limits) == (60, 600)


async def test_an_idle_lease_gives_back_what_it_holds(backend: Backend) -> None:
    mono = FakeClock(0.0)
    leases = rate_leases(backend.state.limiter, backend.clock, mono)
    limits = KeyLimits(rpm=10_000)
    for _ in range(50):
        assert (await leases.admit(SCOPE, limits, 1)).allowed
        mono.advance(0.002)
        await settle_top_ups()
    requests, _ = await counted(backend.state.limiter, limits)
    assert requests is not None and requests > 50  # a lease is held
    assert await leases.flush()  # not idle yet: kept
    mono.advance(1.5)
    assert not await leases.flush()
    assert await counted(backend.state.limiter, limits) == (50, None)


async def test_a_new_window_starts_a_new_lease_and_the_old_one_gives_back(
    backend: Backend,
) -> None:
    backend.clock.now = EPOCH + 30
    mono = FakeClock(0.0)
    leases = rate_leases(backend.state.limiter, backend.clock, mono)
    limits = KeyLimits(rpm=10_000)
    for _ in range(40):
        assert (await leases.admit(SCOPE, limits, 1)).allowed
        mono.advance(0.002)
        await settle_top_ups()
    backend.clock.now = EPOCH + 60  # the next window; the previous one weighs fully
    await leases.flush()
    assert await counted(backend.state.limiter, limits) == (40, None)
    assert (await leases.admit(SCOPE, limits, 1)).allowed
    await leases.aclose()
    assert await counted(backend.state.limiter, limits) == (41, None)


async def test_token_corrections_reach_the_shared_count(backend: Backend) -> None:
    mono = FakeClock(0.0)
    leases = rate_leases(backend.state.limiter, backend.clock, mono)
    limits = KeyLimits(tpm=100_000)
    for _ in range(20):
        assert (await leases.admit(SCOPE, limits, 100)).allowed  # estimated
        leases.correct(SCOPE, -60)  # used 40
        mono.advance(0.002)
        await settle_top_ups()
    leases.correct(SCOPE, 5_000)  # a request that used far more than estimated
    await leases.aclose()
    assert await counted(backend.state.limiter, limits) == (None, 20 * 40 + 5_000)


async def test_with_leases_off_every_request_is_one_round_trip(backend: Backend) -> None:
    limiter = CountingLimiter(backend.state.limiter)
    mono = FakeClock(0.0)
    leases = rate_leases(limiter, backend.clock, mono, lease_s=0.0)
    limits = KeyLimits(rpm=10_000, tpm=100_000)
    for _ in range(30):
        assert (await leases.admit(SCOPE, limits, 10)).allowed
        leases.correct(SCOPE, -5)
        mono.advance(0.001)
    assert limiter.calls == 30
    await leases.aclose()
    assert await counted(backend.state.limiter, limits) == (30, 30 * 5)


async def test_a_scope_without_limits_needs_nothing(backend: Backend) -> None:
    limiter = CountingLimiter(backend.state.limiter)
    leases = rate_leases(limiter, backend.clock, FakeClock(0.0))
    for _ in range(5):
        verdict = await leases.admit(SCOPE, KeyLimits(), 10**9)
        assert verdict.allowed and verdict.limit_requests is None
    assert limiter.calls == 0


async def test_new_limits_take_effect_at_once(backend: Backend) -> None:
    mono = FakeClock(0.0)
    leases = rate_leases(backend.state.limiter, backend.clock, mono)
    for _ in range(30):
        assert (await leases.admit(SCOPE, KeyLimits(rpm=10_000), 1)).allowed
        mono.advance(0.002)
        await settle_top_ups()
    # the key's limit was lowered: the old lease does not outlive it
    assert not (await leases.admit(SCOPE, KeyLimits(rpm=20), 1)).allowed


@settings(max_examples=150, deadline=None)
@given(
    rpm=st.integers(1, 120),
    tpm=st.one_of(st.none(), st.integers(50, 3_000)),
    steps=st.lists(
        st.tuples(
            st.integers(0, 2),  # replica
            st.integers(0, 60),  # tokens
            st.integers(-40, 40),  # correction after the answer
            st.sampled_from([0.0, 0.0005, 0.01, 0.3, 1.2]),  # time passing
            st.booleans(),  # let top-ups run
        ),
        max_size=120,
    ),
)
def test_property_no_limit_passed_and_no_unit_lost(
    rpm: int, tpm: int | None, steps: list[tuple[int, int, int, float, bool]]
) -> None:
    """Any interleaving of three replicas' requests, corrections, flushes and
    time passing (within one rate window): what was admitted never passes a
    limit, and once the leases are given back the shared count is exactly
    what was admitted plus the corrections."""

    async def run() -> None:
        wall, mono = FakeClock(EPOCH + 1), FakeClock(0.0)
        state = memory_state(wall, MemoryKV(wall))
        replicas = [rate_leases(state.limiter, wall, mono) for _ in range(3)]
        limits = KeyLimits(rpm=rpm, tpm=tpm)
        admitted = tokens_used = estimated = given_back = 0
        for replica, tokens, correction, wait, settle in steps:
            if (await replicas[replica].admit(SCOPE, limits, tokens)).allowed:
                admitted += 1
                estimated += tokens
                assert admitted <= rpm
                # estimates only pass the limit by what answers gave back
                assert tpm is None or estimated <= tpm + given_back
                # an answer never uses fewer than zero tokens
                correction = max(correction, -tokens)
                given_back += max(0, -correction)
                tokens_used += tokens + correction
                replicas[replica].correct(SCOPE, correction)
            mono.advance(wait)
            if settle:
                await settle_top_ups()
                await replicas[replica].flush()
        for leases in replicas:
            await leases.aclose()
        requests, tokens_counted = await counted(state.limiter, limits)
        assert requests == admitted
        if tpm is not None:  # the count reads as the limit once past it
            assert tokens_counted == min(tpm, tokens_used)

    asyncio.run(run())


# --- budgets -------------------------------------------------------------------------

BUDGET = Budget(usd=100.0)
TEAM = "research"


def budget_leases(ledger: SpendLedger, mono: FakeClock, lease_s: float = 1.0) -> BudgetLeases:
    return BudgetLeases(ledger, lease_s=lease_s, on_error=Errors(), monotonic=mono)


async def free_budget(ledger: SpendLedger, budget: Budget) -> float:
    """How much of ``budget`` is neither spent nor reserved (to the micro-dollar)."""
    low, high = 0, money.to_micros(budget.usd)
    while low < high:  # the largest reservation that still fits
        mid = (low + high + 1) // 2
        if await ledger.reserve(TEAM, budget, money.from_micros(mid)):
            await ledger.release(TEAM, budget, money.from_micros(mid))
            low = mid
        else:
            high = mid - 1
    return money.from_micros(low)


async def test_steady_spending_needs_few_round_trips(backend: Backend) -> None:
    ledger = CountingLedger(backend.state.ledger)
    mono = FakeClock(0.0)
    leases = budget_leases(ledger, mono)  # type: ignore[arg-type]
    for _ in range(200):
        assert await leases.reserve(TEAM, BUDGET, 0.001)
        mono.advance(0.002)
        await settle_top_ups()
    assert ledger.calls < 30
    await leases.aclose()
    # 200 requests hold their reservations until their spend is recorded
    assert await free_budget(backend.state.ledger, BUDGET) == pytest.approx(100.0 - 0.2)


async def test_budget_replicas_never_overspend(backend: Backend) -> None:
    states = [backend.state] + [await backend.replica() for _ in range(2)]
    mono = FakeClock(0.0)
    replicas = [budget_leases(s.ledger, mono) for s in states]
    budget = Budget(usd=1.0)

    async def one(i: int) -> bool:
        await asyncio.sleep(0)
        mono.advance(0.0005)
        return await replicas[i % 3].reserve(TEAM, budget, 0.03)

    taken = sum(await asyncio.gather(*(one(i) for i in range(120))))
    assert 0 < taken <= 33
    for replica in replicas:
        await replica.aclose()
    assert await free_budget(backend.state.ledger, budget) == pytest.approx(1.0 - taken * 0.03)


async def test_a_released_reservation_returns_to_the_lease_and_then_to_the_ledger(
    backend: Backend,
) -> None:
    mono = FakeClock(0.0)
    leases = budget_leases(backend.state.ledger, mono)
    for _ in range(50):
        assert await leases.reserve(TEAM, BUDGET, 0.01)
        leases.release(TEAM, BUDGET, 0.01)  # the request failed: no spend
        mono.advance(0.002)
        await settle_top_ups()
    mono.advance(2.0)
    await leases.flush()
    assert await free_budget(backend.state.ledger, BUDGET) == pytest.approx(100.0)


async def test_a_budget_exhausted_elsewhere_is_noticed(backend: Backend) -> None:
    mono = FakeClock(0.0)
    here = budget_leases(backend.state.ledger, mono)
    budget = Budget(usd=10.0)
    for _ in range(30):
        assert await here.reserve(TEAM, budget, 0.0)  # an open model costs nothing
        mono.advance(0.002)
        await settle_top_ups()
    # another replica spends the whole budget
    other = await backend.replica()
    await other.ledger.record(SpendRecord("k", TEAM, "t", 10.0, 10.0, 1, 1))
    mono.advance(1.5)  # the lease is now older than lease_s: the next take renews it
    for _ in range(100):
        if not await here.reserve(TEAM, budget, 0.0):
            break
        await asyncio.sleep(0.01)  # the renewal is a round trip in the background
    else:
        pytest.fail("a budget spent by another replica was never noticed")
    await here.aclose()


async def test_a_budget_too_small_for_a_request_refuses_it(backend: Backend) -> None:
    leases = budget_leases(backend.state.ledger, FakeClock(0.0))
    assert not await leases.reserve(TEAM, Budget(usd=0.5), 0.6)
    assert await leases.reserve(TEAM, Budget(usd=0.5), 0.4)


async def test_a_lease_survives_an_outage_while_it_lasts() -> None:
    """With the shared state gone, a replica hands out what it already holds,
    and counts the failed top-ups; a request its lease cannot cover fails."""

    class Gone:
        async def reserve(self, *args: object) -> Reservation | None:
            raise StateUnavailable("down")

        async def release(self, *args: object) -> None:
            raise StateUnavailable("down")

    wall = FakeClock()
    ledger = memory_state(wall, MemoryKV(wall)).ledger
    mono = FakeClock(0.0)
    errors = Errors()
    leases = BudgetLeases(ledger, lease_s=1.0, on_error=errors, monotonic=mono)
    for _ in range(30):
        assert await leases.reserve(TEAM, BUDGET, 0.001)
        mono.advance(0.002)
        await settle_top_ups()
    leases._ledger = Gone()  # type: ignore[assignment]
    taken = 0
    with pytest.raises(StateUnavailable):
        for _ in range(10_000):
            await leases.reserve(TEAM, BUDGET, 0.001)
            taken += 1
            await settle_top_ups()
    assert taken > 0
    assert errors.count > 0
