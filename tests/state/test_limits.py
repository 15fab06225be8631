"""RateLimiter contract, on every backend (a fake clock drives the windows)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.state.base import KeyLimits, LimitDecision, RateLimiter
from gateway.state.window import DEFAULT_STREAM_TTL_S, window_of
from tests.state.conftest import Backend


async def admit(limiter: RateLimiter, scope: str, limits: KeyLimits, tokens: int) -> LimitDecision:
    """One request counted by itself (no lease)."""
    return (await limiter.lease(scope, limits, tokens)).decision


async def test_no_limits_admit_without_headers(backend: Backend) -> None:
    decision = await admit(backend.state.limiter, "key:a", KeyLimits(), tokens=10**9)
    assert decision.allowed
    assert decision.limit_requests is None and decision.limit_tokens is None


async def test_rpm_allows_n_then_refuses_with_retry_after(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=3)
    remaining = []
    for _ in range(3):
        decision = await admit(limiter, "key:a", limits, tokens=1)
        assert decision.allowed
        assert decision.limit_requests == 3
        remaining.append(decision.remaining_requests)
    assert remaining == [2, 1, 0]
    refused = await admit(limiter, "key:a", limits, tokens=1)
    assert not refused.allowed
    assert refused.limit == "rpm"
    assert refused.remaining_requests == 0
    # 3 counted in this window: one fits again once a third of them has decayed,
    # 20 s into the next window
    assert refused.retry_after_s == pytest.approx(80.0)
    assert refused.reset_requests_s == pytest.approx(120.0)


async def test_refusals_do_not_count(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=3)
    for _ in range(3):
        assert (await admit(limiter, "key:a", limits, tokens=1)).allowed
    for _ in range(10):
        assert not (await admit(limiter, "key:a", limits, tokens=1)).allowed
    backend.clock.advance(79.0)
    assert not (await admit(limiter, "key:a", limits, tokens=1)).allowed
    backend.clock.advance(1.0)
    # had the ten refusals counted, 13 * 2/3 would still be far over the limit
    assert (await admit(limiter, "key:a", limits, tokens=1)).allowed
    assert not (await admit(limiter, "key:a", limits, tokens=1)).allowed


async def test_window_slides(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=10)
    for _ in range(10):
        assert (await admit(limiter, "key:a", limits, tokens=0)).allowed
    backend.clock.advance(60 + 30)  # half of the previous window still weighs: 5
    admitted = 0
    while (await admit(limiter, "key:a", limits, tokens=0)).allowed:
        admitted += 1
    assert admitted == 5
    backend.clock.advance(150)  # both buckets gone
    decision = await admit(limiter, "key:a", limits, tokens=0)
    assert decision.allowed and decision.remaining_requests == 9


async def test_tokens_per_minute(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(tpm=1000)
    first = await admit(limiter, "key:a", limits, tokens=600)
    assert first.allowed and first.remaining_tokens == 400 and first.limit_tokens == 1000
    refused = await admit(limiter, "key:a", limits, tokens=500)
    assert not refused.allowed and refused.limit == "tpm" and refused.retry_after_s > 0
    assert (await admit(limiter, "key:a", limits, tokens=400)).allowed
    assert not (await admit(limiter, "key:a", limits, tokens=1)).allowed
    # actual usage was lower than estimated: the difference is given back
    await limiter.adjust("key:a", window_of(backend.clock())[0], 0, -300)
    assert (await admit(limiter, "key:a", limits, tokens=300)).allowed
    # and never below zero
    await limiter.adjust("key:a", window_of(backend.clock())[0], 0, -(10**6))
    assert (await admit(limiter, "key:a", limits, tokens=1000)).allowed


async def test_a_request_larger_than_the_tpm_never_fits(backend: Backend) -> None:
    refused = await admit(backend.state.limiter, "key:a", KeyLimits(tpm=100), tokens=101)
    assert not refused.allowed and refused.limit == "tpm"
    assert refused.retry_after_s == pytest.approx(120.0)


async def test_both_limits_report_both_headers(backend: Backend) -> None:
    decision = await admit(backend.state.limiter, "key:a", KeyLimits(rpm=5, tpm=50), tokens=10)
    assert (decision.remaining_requests, decision.remaining_tokens) == (4, 40)
    refused = await admit(backend.state.limiter, "key:a", KeyLimits(rpm=5, tpm=50), tokens=41)
    assert not refused.allowed and refused.limit == "tpm"


async def test_scopes_are_independent(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=1)
    assert (await admit(limiter, "key:a", limits, tokens=1)).allowed
    assert (await admit(limiter, "team:a", limits, tokens=1)).allowed
    assert (await admit(limiter, "team:{a}", limits, tokens=1)).allowed
    assert not (await admit(limiter, "key:a", limits, tokens=1)).allowed


async def test_concurrent_admits_never_pass_the_limit(backend: Backend) -> None:
    replicas = [backend.state] + [await backend.replica() for _ in range(3)]
    limits = KeyLimits(rpm=50, tpm=10_000)
    decisions = await asyncio.gather(
        *(admit(replicas[i % 4].limiter, "team:busy", limits, tokens=7) for i in range(200))
    )
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.limit == "rpm" for d in decisions if not d.allowed)


async def test_stream_slots(backend: Backend) -> None:
    limiter = backend.state.limiter
    assert await limiter.open_stream("key:a", 2)
    assert await limiter.open_stream("key:a", 2)
    assert not await limiter.open_stream("key:a", 2)
    assert await limiter.open_stream("key:b", 2)
    await limiter.close_stream("key:a")
    assert await limiter.open_stream("key:a", 2)
    assert not await limiter.open_stream("key:a", 2)


async def test_closing_more_than_opened_frees_nothing_extra(backend: Backend) -> None:
    limiter = backend.state.limiter
    await limiter.close_stream("key:a")
    assert await limiter.open_stream("key:a", 1)
    await limiter.close_stream("key:a")
    await limiter.close_stream("key:a")
    assert await limiter.open_stream("key:a", 1)
    assert not await limiter.open_stream("key:a", 1)


async def test_leaked_stream_slots_expire(backend: Backend) -> None:
    """A replica that crashed never closes its streams; its slots time out."""
    limiter = backend.state.limiter
    assert await limiter.open_stream("key:a", 1)
    backend.clock.advance(DEFAULT_STREAM_TTL_S - 1)
    assert not await limiter.open_stream("key:a", 1)
    backend.clock.advance(2)
    assert await limiter.open_stream("key:a", 1)


async def test_concurrent_stream_opens_never_pass_the_maximum(backend: Backend) -> None:
    replicas = [backend.state] + [await backend.replica() for _ in range(3)]
    taken = await asyncio.gather(
        *(replicas[i % 4].limiter.open_stream("key:s", 10) for i in range(100))
    )
    assert sum(taken) == 10


async def test_wrong_type_under_a_window_is_reset(backend: Backend) -> None:
    await backend.put_wrong_type("gw:rl:{key:a}:29453760")
    await backend.put_wrong_type("gw:streams:{key:a}")
    assert (await admit(backend.state.limiter, "key:a", KeyLimits(rpm=1), tokens=1)).allowed
    assert await backend.state.limiter.open_stream("key:a", 1)


# --- leases: extra units counted with a request, for the caller to hand out --------


async def test_a_lease_counts_extra_units_up_to_a_share_of_what_is_left(
    backend: Backend,
) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=100, tpm=10_000)
    grant = await limiter.lease("key:a", limits, 10, want_requests=50, want_tokens=5_000)
    assert grant.decision.allowed
    # 99 requests and 9,990 tokens left once the request is counted: an eighth of each
    assert (grant.requests, grant.tokens) == (12, 1_248)
    assert grant.window == window_of(backend.clock())[0]
    # the headers count the request only: the extra units are the caller's to use
    assert grant.decision.remaining_requests == 99
    assert grant.decision.remaining_tokens == 9_990
    # but they are counted: anyone else now sees 13 requests and 1,258 tokens used
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert seen.decision.remaining_requests == 100 - 13
    assert seen.decision.remaining_tokens == 10_000 - 1_258


async def test_a_lease_takes_only_what_it_asked_for(backend: Backend) -> None:
    grant = await backend.state.limiter.lease(
        "key:a", KeyLimits(rpm=1_000, tpm=100_000), 10, want_requests=5, want_tokens=70
    )
    assert (grant.requests, grant.tokens) == (5, 70)


async def test_near_the_limit_a_lease_brings_nothing_extra(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=8)
    for left in range(7, -1, -1):
        grant = await limiter.lease("key:a", limits, 1, want_requests=100)
        assert grant.decision.allowed
        # fewer than 8 left: an eighth of it is less than one request
        assert grant.requests == 0
        assert grant.decision.remaining_requests == left
    assert not (await limiter.lease("key:a", limits, 1, want_requests=100)).decision.allowed


async def test_a_top_up_counts_no_request_of_its_own(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=80)
    top_up = await limiter.lease("key:a", limits, 0, requests=0, want_requests=1_000)
    assert top_up.decision.allowed and top_up.requests == 10  # 80 / 8
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert seen.decision.remaining_requests == 70


async def test_a_refused_lease_counts_nothing(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=1)
    assert (await limiter.lease("key:a", limits, 1)).decision.allowed
    refused = await limiter.lease("key:a", limits, 1, want_requests=10)
    assert not refused.decision.allowed
    assert (refused.requests, refused.tokens) == (0, 0)
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert seen.decision.remaining_requests == 0


async def test_no_extra_units_where_no_limit_applies(backend: Backend) -> None:
    grant = await backend.state.limiter.lease(
        "key:a", KeyLimits(tpm=800), 0, want_requests=10, want_tokens=10
    )
    assert (grant.requests, grant.tokens) == (0, 10)


async def test_adjust_gives_back_and_never_goes_below_zero(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=10, tpm=1_000)
    window = window_of(backend.clock())[0]
    for _ in range(3):
        assert (await limiter.lease("key:a", limits, 100)).decision.allowed
    await limiter.adjust("key:a", window, -2, -150)
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert (seen.decision.remaining_requests, seen.decision.remaining_tokens) == (9, 850)
    await limiter.adjust("key:a", window, -100, -(10**6))
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert (seen.decision.remaining_requests, seen.decision.remaining_tokens) == (10, 1_000)
    # tokens used beyond the estimate are added
    await limiter.adjust("key:a", window, 0, 400)
    assert not (await limiter.lease("key:a", limits, 601)).decision.allowed


async def test_giving_back_to_a_window_that_is_gone_does_nothing(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=10)
    window = window_of(backend.clock())[0]
    await limiter.adjust("key:a", window - 1, -5, -5)
    await limiter.adjust("key:a", window, -5, -5)
    seen = await limiter.lease("key:a", limits, 0, requests=0)
    assert seen.decision.remaining_requests == 10


async def test_concurrent_leases_on_many_replicas_never_pass_the_limit(backend: Backend) -> None:
    replicas = [backend.state] + [await backend.replica() for _ in range(3)]
    limits = KeyLimits(rpm=50)
    grants = await asyncio.gather(
        *(
            replicas[i % 4].limiter.lease("team:busy", limits, 1, want_requests=4)
            for i in range(120)
        )
    )
    counted = sum(1 + g.requests for g in grants if g.decision.allowed)
    assert counted <= 50
    seen = await backend.state.limiter.lease("team:busy", limits, 0, requests=0)
    assert seen.decision.remaining_requests == 50 - counted
