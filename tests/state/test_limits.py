"""RateLimiter contract, on every backend (a fake clock drives the windows)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.state.base import KeyLimits
from gateway.state.window import DEFAULT_STREAM_TTL_S
from tests.state.conftest import Backend


async def test_no_limits_admit_without_headers(backend: Backend) -> None:
    decision = await backend.state.limiter.admit("key:a", KeyLimits(), tokens=10**9)
    assert decision.allowed
    assert decision.limit_requests is None and decision.limit_tokens is None


async def test_rpm_allows_n_then_refuses_with_retry_after(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=3)
    remaining = []
    for _ in range(3):
        decision = await limiter.admit("key:a", limits, tokens=1)
        assert decision.allowed
        assert decision.limit_requests == 3
        remaining.append(decision.remaining_requests)
    assert remaining == [2, 1, 0]
    refused = await limiter.admit("key:a", limits, tokens=1)
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
        assert (await limiter.admit("key:a", limits, tokens=1)).allowed
    for _ in range(10):
        assert not (await limiter.admit("key:a", limits, tokens=1)).allowed
    backend.clock.advance(79.0)
    assert not (await limiter.admit("key:a", limits, tokens=1)).allowed
    backend.clock.advance(1.0)
    # had the ten refusals counted, 13 * 2/3 would still be far over the limit
    assert (await limiter.admit("key:a", limits, tokens=1)).allowed
    assert not (await limiter.admit("key:a", limits, tokens=1)).allowed


async def test_window_slides(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=10)
    for _ in range(10):
        assert (await limiter.admit("key:a", limits, tokens=0)).allowed
    backend.clock.advance(60 + 30)  # half of the previous window still weighs: 5
    admitted = 0
    while (await limiter.admit("key:a", limits, tokens=0)).allowed:
        admitted += 1
    assert admitted == 5
    backend.clock.advance(150)  # both buckets gone
    decision = await limiter.admit("key:a", limits, tokens=0)
    assert decision.allowed and decision.remaining_requests == 9


async def test_tokens_per_minute(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(tpm=1000)
    first = await limiter.admit("key:a", limits, tokens=600)
    assert first.allowed and first.remaining_tokens == 400 and first.limit_tokens == 1000
    refused = await limiter.admit("key:a", limits, tokens=500)
    assert not refused.allowed and refused.limit == "tpm" and refused.retry_after_s > 0
    assert (await limiter.admit("key:a", limits, tokens=400)).allowed
    assert not (await limiter.admit("key:a", limits, tokens=1)).allowed
    # actual usage was lower than estimated: the difference is given back
    await limiter.adjust_tokens("key:a", -300)
    assert (await limiter.admit("key:a", limits, tokens=300)).allowed
    # and never below zero
    await limiter.adjust_tokens("key:a", -(10**6))
    assert (await limiter.admit("key:a", limits, tokens=1000)).allowed


async def test_a_request_larger_than_the_tpm_never_fits(backend: Backend) -> None:
    refused = await backend.state.limiter.admit("key:a", KeyLimits(tpm=100), tokens=101)
    assert not refused.allowed and refused.limit == "tpm"
    assert refused.retry_after_s == pytest.approx(120.0)


async def test_both_limits_report_both_headers(backend: Backend) -> None:
    decision = await backend.state.limiter.admit("key:a", KeyLimits(rpm=5, tpm=50), tokens=10)
    assert (decision.remaining_requests, decision.remaining_tokens) == (4, 40)
    refused = await backend.state.limiter.admit("key:a", KeyLimits(rpm=5, tpm=50), tokens=41)
    assert not refused.allowed and refused.limit == "tpm"


async def test_scopes_are_independent(backend: Backend) -> None:
    limiter, limits = backend.state.limiter, KeyLimits(rpm=1)
    assert (await limiter.admit("key:a", limits, tokens=1)).allowed
    assert (await limiter.admit("team:a", limits, tokens=1)).allowed
    assert (await limiter.admit("team:{a}", limits, tokens=1)).allowed
    assert not (await limiter.admit("key:a", limits, tokens=1)).allowed


async def test_concurrent_admits_never_pass_the_limit(backend: Backend) -> None:
    replicas = [backend.state] + [await backend.replica() for _ in range(3)]
    limits = KeyLimits(rpm=50, tpm=10_000)
    decisions = await asyncio.gather(
        *(replicas[i % 4].limiter.admit("team:busy", limits, tokens=7) for i in range(200))
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
    assert (await backend.state.limiter.admit("key:a", KeyLimits(rpm=1), tokens=1)).allowed
    assert await backend.state.limiter.open_stream("key:a", 1)
