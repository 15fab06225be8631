"""SpendLedger contract, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from gateway.state import money
from gateway.state.base import Budget, Period, SpendRecord
from gateway.state.money import DEFAULT_RESERVATION_TTL_S
from tests.state.conftest import Backend


def spend(
    cost: float,
    *,
    team: str = "research",
    key_id: str = "aaaaaaaaaaaa",
    target: str = "gpt-4o",
    baseline: float = 0.0,
    tokens: tuple[int, int] = (10, 5),
) -> SpendRecord:
    return SpendRecord(
        key_id=key_id,
        team=team,
        target=target,
        cost_usd=cost,
        baseline_usd=baseline,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
    )


async def test_record_and_team_spend(backend: Backend) -> None:
    ledger = backend.state.ledger
    assert await ledger.team_spend("research", Period.DAY) == 0.0
    for _ in range(10):
        await ledger.record(spend(0.1))
    # micro-dollar integers: ten dimes are exactly one dollar
    assert await ledger.team_spend("research", Period.DAY) == 1.0
    assert await ledger.team_spend("research", Period.MONTH) == 1.0
    assert await ledger.team_spend("other", Period.MONTH) == 0.0


async def test_periods_roll_over_in_utc(backend: Backend) -> None:
    ledger = backend.state.ledger
    await ledger.record(spend(2.0))
    backend.clock.advance(86400)  # 2026-01-02
    await ledger.record(spend(0.5))
    assert await ledger.team_spend("research", Period.DAY) == 0.5
    assert await ledger.team_spend("research", Period.MONTH) == 2.5
    backend.clock.advance(31 * 86400)  # 2026-02-02
    assert await ledger.team_spend("research", Period.MONTH) == 0.0
    report = await ledger.report(Period.MONTH)
    assert report.period_start == "2026-02" and report.by_team == {}


async def test_report_sums(backend: Backend) -> None:
    ledger = backend.state.ledger
    await ledger.record(spend(1.25, key_id="k1", target="gpt-4o", baseline=2.0, tokens=(100, 50)))
    await ledger.record(spend(0.75, key_id="k2", target="llama", baseline=2.0, tokens=(10, 0)))
    await ledger.record(spend(0.5, team="ops", key_id="k3", target="llama", baseline=1.0))
    report = await ledger.report(Period.DAY)
    assert report.period == Period.DAY and report.period_start == "2026-01-01"
    assert report.by_team == {"research": 2.0, "ops": 0.5}
    assert report.by_key == {"k1": 1.25, "k2": 0.75, "k3": 0.5}
    assert report.by_target == {"gpt-4o": 1.25, "llama": 1.25}
    assert report.baseline_by_team == {"research": 4.0, "ops": 1.0}
    assert report.tokens_by_team == {"research": 160, "ops": 15}
    assert (await ledger.report(Period.MONTH)).by_team == report.by_team


async def test_reserve_within_budget_only(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=1.0, period=Period.DAY)
    await ledger.record(spend(0.5))
    assert await ledger.reserve("research", budget, 0.3)
    assert not await ledger.reserve("research", budget, 0.3)  # 0.5 + 0.3 + 0.3 > 1
    assert await ledger.reserve("research", budget, 0.2)  # exactly 1.0 fits
    assert not await ledger.reserve("research", budget, 0.000001)
    await ledger.release("research", budget, 0.3)
    assert await ledger.reserve("research", budget, 0.3)


async def test_record_releases_its_reservation(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=1.0)
    assert await ledger.reserve("research", budget, 0.6)
    assert not await ledger.reserve("research", budget, 0.6)
    await ledger.record(spend(0.1), reserved_usd=0.6)
    assert await ledger.team_spend("research", Period.MONTH) == pytest.approx(0.1)
    assert await ledger.reserve("research", budget, 0.9)
    assert not await ledger.reserve("research", budget, 0.01)


async def test_budget_period_decides_which_spend_counts(backend: Backend) -> None:
    ledger = backend.state.ledger
    await ledger.record(spend(5.0))
    backend.clock.advance(86400)
    assert await ledger.reserve("research", Budget(usd=1.0, period=Period.DAY), 1.0)
    assert not await ledger.reserve("research", Budget(usd=5.5, period=Period.MONTH), 1.0)


async def test_leaked_reservations_expire(backend: Backend) -> None:
    """A replica that crashed mid-request never releases; its reservation times out."""
    ledger, budget = backend.state.ledger, Budget(usd=1.0)
    assert await ledger.reserve("research", budget, 0.9)
    backend.clock.advance(DEFAULT_RESERVATION_TTL_S / 2)
    assert not await ledger.reserve("research", budget, 0.5)
    backend.clock.advance(DEFAULT_RESERVATION_TTL_S / 2 + 61)
    assert await ledger.reserve("research", budget, 0.5)


async def test_live_traffic_does_not_keep_a_leak_alive(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=10.0)
    assert await ledger.reserve("research", budget, 5.0)  # leaked
    for _ in range(20):  # steady traffic, reserving and recording, across the TTL
        backend.clock.advance(60)
        assert await ledger.reserve("research", budget, 1.0)
        await ledger.record(spend(0.0), reserved_usd=1.0)
    assert await ledger.reserve("research", budget, 10.0)


async def test_concurrent_reservations_never_overspend(backend: Backend) -> None:
    replicas = [backend.state] + [await backend.replica() for _ in range(3)]
    budget = Budget(usd=1.0, period=Period.DAY)

    async def request(i: int) -> bool:
        ledger = replicas[i % 4].ledger
        if not await ledger.reserve("research", budget, 0.03):
            return False
        await ledger.record(spend(0.03), reserved_usd=0.03)
        return True

    served = await asyncio.gather(*(request(i) for i in range(200)))
    assert sum(served) == 33
    spent = await backend.state.ledger.team_spend("research", Period.DAY)
    assert spent == pytest.approx(0.99)
    assert spent <= budget.usd + 0.03


async def test_corrupt_spend_data_does_not_break_recording(backend: Backend) -> None:
    await backend.put_wrong_type("gw:spend:{research}:day:2026-01-01")
    await backend.put_raw("gw:resv:{research}", b"not a hash")
    await backend.state.ledger.record(spend(0.25))
    assert await backend.state.ledger.team_spend("research", Period.DAY) == 0.25
    assert await backend.state.ledger.reserve("research", Budget(usd=1.0), 0.5)


async def test_reserve_sets_aside_extra_up_to_a_share_of_what_is_left(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=1.0)
    first = await ledger.reserve("research", budget, 0.2, want_usd=0.5)
    assert first is not None
    assert first.extra_usd == pytest.approx(0.1)  # an eighth of the 0.8 left
    second = await ledger.reserve("research", budget, 0.0, want_usd=0.01)
    assert second is not None and second.extra_usd == pytest.approx(0.01)
    # all of it is held: 1 - 0.2 - 0.1 - 0.01 is left
    assert await ledger.reserve("research", budget, 0.70) is None
    assert await ledger.reserve("research", budget, 0.69) is not None


async def test_a_refused_reservation_sets_nothing_aside(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=1.0)
    assert await ledger.reserve("research", budget, 1.5, want_usd=0.5) is None
    whole = await ledger.reserve("research", budget, 1.0)
    assert whole is not None and whole.extra_usd == 0.0


async def test_record_batch_adds_many_requests_at_once(backend: Backend) -> None:
    ledger, budget = backend.state.ledger, Budget(usd=10.0, period=Period.DAY)
    assert await ledger.reserve("research", budget, 0.5)
    batch = money.batch_of(spend(0.1, key_id="k1", target="a"), 0.25, backend.clock())
    money.add_spend(batch, spend(0.2, key_id="k2", target="a", tokens=(1, 1)), 0.25)
    await ledger.record_batch(batch)
    assert await ledger.team_spend("research", Period.DAY) == pytest.approx(0.3)
    report = (await ledger.report(Period.DAY)).to_dict()
    assert report["by_key"] == {"k1": pytest.approx(0.1), "k2": pytest.approx(0.2)}
    assert report["by_target"] == {"a": pytest.approx(0.3)}
    assert report["tokens_by_team"] == {"research": 17}
    # both reservations were released with the spend: 10 - 0.3 is left
    assert await ledger.reserve("research", budget, 9.7)
