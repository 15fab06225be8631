"""Administration of keys, teams and spend, for the CLI (talks to the shared state)."""

from __future__ import annotations

from typing import Any

from gateway.settings import Settings
from gateway.state.base import Budget, KeyLimits, KeyRecord, Period, TeamRecord
from gateway.state.factory import build_state


async def create_key(
    settings: Settings,
    *,
    team: str,
    rpm: int | None = None,
    tpm: int | None = None,
    max_streams: int | None = None,
    budget_usd: float | None = None,
    period: str = "month",
    policy: str | None = None,
) -> tuple[str, KeyRecord]:
    """Create a key (only its hash is stored). ``budget_usd`` sets the team's
    budget for the period: budgets are enforced per team."""
    state = await build_state(settings.redis_url, timeout_s=max(settings.redis_timeout_s, 2.0))
    try:
        budget = Budget(budget_usd, Period(period)) if budget_usd is not None else None
        if budget is not None:
            existing = await state.keys.get_team(team)
            limits = existing.limits if existing is not None else KeyLimits()
            await state.keys.set_team(TeamRecord(team, limits=limits, budget=budget, policy=policy))
        return await state.keys.create_key(
            team,
            limits=KeyLimits(rpm=rpm, tpm=tpm, max_streams=max_streams),
            budget=budget,
            policy=policy,
        )
    finally:
        await state.aclose()


async def spend_report(settings: Settings, period: str) -> dict[str, Any]:
    state = await build_state(settings.redis_url, timeout_s=max(settings.redis_timeout_s, 2.0))
    try:
        report = await state.ledger.report(Period(period))
    finally:
        await state.aclose()
    return report.to_dict()
