"""Spend written in batches (gateway/quota/spend.py): summed per team and day,
one atomic update per batch, kept through a Redis outage and written once it
is back."""

from __future__ import annotations

import pytest

from gateway.observability.metrics import Metrics
from gateway.quota.limits import Admission
from gateway.quota.spend import Accountant
from gateway.state.base import Budget, Period, SpendRecord
from gateway.state.factory import build_state
from tests.servers import RedisServer
from tests.state.conftest import Backend

BUDGET = Budget(usd=10.0, period=Period.DAY)


def spend(cost: float, team: str = "research", key_id: str = "k1") -> SpendRecord:
    return SpendRecord(key_id, team, "gpt-4o", cost, 2 * cost, 10, 5)


def reserved(amount: float, team: str = "research") -> Admission:
    return Admission(team=team, budget=BUDGET, reserved_usd=amount)


async def test_many_requests_make_one_batch_per_team(backend: Backend) -> None:
    accountant = Accountant(backend.state, Metrics(), clock=backend.clock)
    ledger = backend.state.ledger
    assert await ledger.reserve("research", BUDGET, 0.5)
    for _ in range(50):
        accountant.add(spend(0.01), reserved(0.01))
    accountant.add(spend(0.5, team="ops", key_id="k2"), Admission())
    assert await ledger.team_spend("research", Period.DAY) == 0.0  # not written yet
    assert not await accountant.flush()
    assert await ledger.team_spend("research", Period.DAY) == pytest.approx(0.5)
    assert await ledger.team_spend("ops", Period.DAY) == pytest.approx(0.5)
    report = (await ledger.report(Period.DAY)).to_dict()
    assert report["by_key"] == {"k1": pytest.approx(0.5), "k2": pytest.approx(0.5)}
    assert report["baseline_by_team"] == {"research": pytest.approx(1.0), "ops": 1.0}
    assert report["tokens_by_team"] == {"research": 750, "ops": 15}
    # the 50 reservations were released with their spend: 10 - 0.5 is left
    assert await ledger.reserve("research", BUDGET, 9.5)
    assert not await ledger.reserve("research", BUDGET, 0.01)


async def test_an_admission_releases_its_reservation_once(backend: Backend) -> None:
    accountant = Accountant(backend.state, Metrics(), clock=backend.clock)
    admission = reserved(0.3)
    assert await backend.state.ledger.reserve("research", BUDGET, 0.3)
    accountant.add(spend(0.1), admission)
    assert admission.reserved_usd == 0.0
    await accountant.flush()
    await accountant.flush()
    assert await backend.state.ledger.reserve("research", BUDGET, 9.9)


async def test_spend_waits_out_a_redis_outage(redis_server: RedisServer) -> None:
    redis_server.start()
    state = await build_state(redis_server.url, timeout_s=0.05)
    metrics = Metrics()
    accountant = Accountant(state, metrics)
    try:
        accountant.add(spend(0.25), Admission())
        redis_server.stop()
        accountant.add(spend(0.5), Admission())
        assert await accountant.flush()  # kept: Redis did not take it
        accountant.add(spend(0.125), Admission())
        assert await accountant.flush()
        assert metrics.state_errors.labels("ledger").value >= 2
        redis_server.start()
        assert not await accountant.flush()
        assert not await accountant.flush()  # written once, not twice
        assert await state.ledger.team_spend("research", Period.DAY) == pytest.approx(0.875)
    finally:
        redis_server.start()
        await state.aclose()
