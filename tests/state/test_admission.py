"""Limits.admit: counting and the budget reservation run together; a refusal by
either gives back what the other took (stream slots, the reservation)."""

from __future__ import annotations

import pytest

from gateway.errors import BudgetExceeded, RateLimited
from gateway.levels import Level
from gateway.observability.metrics import Metrics
from gateway.policy.model import Action, Decision, Facts, Sensitivity
from gateway.quota.limits import Limits
from gateway.settings import FailMode
from gateway.state.base import Budget, KeyLimits, KeyRecord, Period, SpendRecord, TeamRecord
from tests.state.conftest import Backend

BUDGET = Budget(usd=1.0, period=Period.MONTH)


def facts() -> Facts:
    return Facts(
        endpoint="chat",
        alias="auto",
        sensitivity=Sensitivity(Level.PUBLIC),
        task="chat",
        prompt_tokens=10,
        max_tokens=10,
    )


def decision(cost_usd: float) -> Decision:
    return Decision(
        rule="r",
        action=Action.ROUTE,
        targets=("t",),
        estimated_cost_usd={"t": cost_usd},
        reserve_usd=cost_usd,
    )


async def setup(backend: Backend, limits: KeyLimits) -> tuple[Limits, KeyRecord]:
    state = backend.state
    await state.keys.set_team(TeamRecord("team-a", budget=BUDGET))
    who = KeyRecord("key-a", "team-a", limits=limits, budget=BUDGET)
    return Limits(state, Metrics(), fail_mode=FailMode.OPEN, clock=backend.clock), who


async def reserved(backend: Backend, limits: Limits) -> bool:
    """Whether any budget is held once ``limits`` gave its leases back: a
    reservation of the whole budget succeeds only when nothing is reserved or
    spent."""
    await limits.aclose()
    ledger = backend.state.ledger
    taken = await ledger.reserve("team-a", BUDGET, BUDGET.usd)
    if taken:
        await ledger.release("team-a", BUDGET, BUDGET.usd)
    return not taken


async def test_budget_refusal_gives_back_the_stream_slot(backend: Backend) -> None:
    limits, who = await setup(backend, KeyLimits(rpm=100, max_streams=1))
    with pytest.raises(BudgetExceeded):
        await limits.admit(who, decision(cost_usd=5.0), facts(), stream=True)
    # the only slot is free again: a stream within budget is admitted
    admission, headers = await limits.admit(who, decision(cost_usd=0.1), facts(), stream=True)
    assert admission.stream_scopes == ["key:key-a"]
    assert headers["x-ratelimit-limit-requests"] == "100"
    await limits.release(admission)


async def test_rate_refusal_gives_back_the_reservation(backend: Backend) -> None:
    limits, who = await setup(backend, KeyLimits(rpm=1))
    first, _ = await limits.admit(who, decision(cost_usd=0.1), facts(), stream=False)
    assert first.reserved_usd == pytest.approx(0.1)
    await limits.release(first)
    assert not await reserved(backend, limits)
    with pytest.raises(RateLimited):
        await limits.admit(who, decision(cost_usd=0.1), facts(), stream=False)
    assert not await reserved(backend, limits)


async def test_admitted_request_holds_its_reservation_until_settled(backend: Backend) -> None:
    limits, who = await setup(backend, KeyLimits(rpm=100, tpm=10_000))
    admission, _ = await limits.admit(who, decision(cost_usd=0.2), facts(), stream=False)
    assert admission.token_scopes == [("key:key-a", 20)]
    assert await reserved(backend, limits)
    await backend.state.ledger.record(
        SpendRecord("key-a", "team-a", "t", 0.2, 0.2, 10, 10), reserved_usd=admission.reserved_usd
    )
    assert await limits.budget_status(who) == (1.0, pytest.approx(0.8))


async def test_budget_fact_follows_this_replicas_spend_at_once(backend: Backend) -> None:
    limits, who = await setup(backend, KeyLimits())
    assert await limits.budget_status(who) == (1.0, pytest.approx(1.0))
    await backend.state.ledger.record(SpendRecord("key-a", "team-a", "t", 0.25, 0.25, 10, 10))
    limits.spent("team-a", 0.25)
    # within the fact's lifetime: no read of the ledger, the local spend is counted
    assert await limits.budget_status(who) == (1.0, pytest.approx(0.75))
    # another replica's spend shows once the fact is read again
    await backend.state.ledger.record(SpendRecord("key-b", "team-a", "t", 0.5, 0.5, 10, 10))
    backend.clock.advance(1.5)
    assert await limits.budget_status(who) == (1.0, pytest.approx(0.25))


def _seconds(duration: str) -> float:
    minutes, _, rest = duration.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.removesuffix("s"))


@pytest.mark.parametrize("limit", ["rpm", "tpm"])
async def test_retry_after_and_the_reset_header_agree(backend: Backend, limit: str) -> None:
    """A client that waits for either header is admitted at the same moment."""
    key_limits = KeyLimits(rpm=1) if limit == "rpm" else KeyLimits(tpm=25)
    header = "x-ratelimit-reset-requests" if limit == "rpm" else "x-ratelimit-reset-tokens"
    limits, who = await setup(backend, key_limits)
    backend.clock.advance(17.3)  # not on a whole second, and not at a window's start
    admission, _ = await limits.admit(who, decision(cost_usd=0.0), facts(), stream=False)
    await limits.release(admission)
    with pytest.raises(RateLimited) as info:
        await limits.admit(who, decision(cost_usd=0.0), facts(), stream=False)
    headers = info.value.headers
    retry_after = int(headers["retry-after"])
    assert _seconds(headers[header]) == retry_after
    assert f"Try again in {retry_after}s." in info.value.message
    backend.clock.advance(retry_after)
    admission, _ = await limits.admit(who, decision(cost_usd=0.0), facts(), stream=False)
    await limits.release(admission)
