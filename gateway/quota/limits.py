"""Rate limits, concurrent streams and budgets for one request.

Scopes and where their limits come from:

* ``key:<id>``   — the key's own limits (``gateway keys create --rpm/--tpm``),
* ``team:<name>`` — the team's limits,
* ``rule:<rule>:<key or team>`` — limits a policy rule sets.

Each scope with limits is counted atomically by the state backend (Redis:
one Lua script, so replicas share the count without drift), through this
replica's local leases (:mod:`gateway.quota.leases`): a request covered by the
scope's lease is admitted without a round trip, and no limit is ever passed.
A refusal is 429 with ``Retry-After`` and OpenAI's ``x-ratelimit-*`` headers.
Budgets are per team: a request reserves what it may cost at most before it
leaves (its prompt plus ``max_tokens``, or the target's output limit when
unset: :attr:`Decision.reserve_usd`), from the team's budget lease, and its
actual cost is recorded after, so concurrent requests, streamed or not, never
overspend by more than one request's worst case. A request a soft-cap rule
stepped down to free targets reserves nothing and is admitted past the
budget. A refusal names what was used, the limit, the period and when it
resets. The
remaining budget a policy can route on is read at most once a second per team
and replica (``_SPENT_TTL_S``).

After the answer, token corrections are batched (:meth:`Limits.settle`,
:meth:`Limits.flush`); stream slots are given back at once.

When the backend is unavailable the configured fail mode applies: ``open``
admits (and counts the failure), ``closed`` answers 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.errors import BudgetExceeded, RateLimited, ServiceUnavailable, retry_after_header
from gateway.observability.metrics import Metrics
from gateway.policy.compiled import UNKNOWN_OUTPUT_LIMIT
from gateway.policy.model import Decision, Facts
from gateway.quota.leases import BudgetLeases, RateLeases
from gateway.settings import FailMode
from gateway.state.base import (
    Budget,
    KeyLimits,
    KeyRecord,
    LimitDecision,
    Period,
    StateUnavailable,
    TeamRecord,
)
from gateway.state.factory import StateBackends
from gateway.targets import Target
from gateway.upstream.provider import Usage
from gateway.upstream.relay import StreamCap

_TEAM_TTL_S = 5.0
#: how old the remaining-budget fact a policy routes on may be. Enforcement
#: does not use it: each request reserves its cost atomically in the ledger.
_SPENT_TTL_S = 1.0
_MAX_TEAMS = 10_000


@dataclass(slots=True)
class Admission:
    """What a request holds until it is settled or released."""

    token_scopes: list[tuple[str, int]] = field(default_factory=list)
    stream_scopes: list[str] = field(default_factory=list)
    team: str | None = None
    budget: Budget | None = None
    reserved_usd: float = 0.0
    settled: bool = False
    released: bool = False


class Limits:
    def __init__(
        self,
        state: StateBackends,
        metrics: Metrics,
        *,
        fail_mode: FailMode,
        lease_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._fail_mode = fail_mode
        self._clock = clock
        self._wall_clock = wall_clock
        self._rates = RateLeases(
            state.limiter,
            lease_s=lease_s,
            on_error=self._limits_error,
            clock=wall_clock,
            monotonic=clock,
        )
        self._budgets = BudgetLeases(
            state.ledger, lease_s=lease_s, on_error=self._ledger_error, monotonic=clock
        )
        self._teams: dict[str, tuple[float, TeamRecord | None]] = {}
        #: (team, period) -> (when read, spent USD, budget USD): the budget *fact*
        self._spent: dict[tuple[str, Period], tuple[float, float, float]] = {}

    async def team(self, name: str | None) -> TeamRecord | None:
        if name is None:
            return None
        cached = self._teams.get(name)
        now = self._clock()
        if cached is not None and now - cached[0] < _TEAM_TTL_S:
            return cached[1]
        try:
            record = await self._state.keys.get_team(name)
        except StateUnavailable:
            self._metrics.state_errors.labels("teams").inc()
            return cached[1] if cached is not None else None
        self._teams[name] = (now, record)
        return record

    async def budget_of(self, who: KeyRecord | None) -> Budget | None:
        if who is None:
            return None
        team = await self.team(who.team)
        return team.budget if team is not None and team.budget is not None else who.budget

    async def budget_status(self, who: KeyRecord | None) -> tuple[float | None, float | None]:
        """(budget, remaining) in USD for the caller's team, when it has a budget."""
        budget = await self.budget_of(who)
        if who is None or budget is None:
            return None, None
        now = self._clock()
        seen = self._spent.get((who.team, budget.period))
        if seen is not None and now - seen[0] < _SPENT_TTL_S and seen[2] == budget.usd:
            spent = seen[1]
        else:
            try:
                spent = await self._state.ledger.team_spend(who.team, budget.period)
            except StateUnavailable:
                self._metrics.state_errors.labels("ledger").inc()
                return budget.usd, None
            if len(self._spent) >= _MAX_TEAMS:
                self._spent.clear()
            self._spent[(who.team, budget.period)] = (now, spent, budget.usd)
        self._metrics.budget_limit.labels(self._metrics.team(who.team)).set(budget.usd)
        return budget.usd, self._remaining(who.team, budget.usd, spent)

    def _remaining(self, team: str, budget_usd: float, spent: float) -> float:
        """The remaining budget, published on its gauge."""
        remaining = max(0.0, budget_usd - spent)
        self._metrics.budget_remaining.labels(self._metrics.team(team)).set(remaining)
        return remaining

    def spent(self, team: str, cost_usd: float) -> None:
        """This replica just recorded ``cost_usd`` for ``team``: its remaining-budget
        fact and gauge follow at once (other replicas' spend at the next read)."""
        for period in Period:
            seen = self._spent.get((team, period))
            if seen is not None:
                at, spent, budget_usd = seen
                spent += cost_usd
                self._spent[(team, period)] = (at, spent, budget_usd)
                self._remaining(team, budget_usd, spent)

    async def admit(
        self, who: KeyRecord | None, decision: Decision, facts: Facts, *, stream: bool
    ) -> tuple[Admission, dict[str, str]]:
        """Count the request against every scope that has limits; reserve budget.
        Returns what to release later and the ``x-ratelimit-*`` headers.

        Counting and the budget reservation are independent round trips, so
        they run together (one round trip of latency). A refusal by either
        gives back whatever the other took (stream slots, the reservation)."""
        admission = Admission()
        headers: dict[str, str] = {}
        tokens = facts.prompt_tokens + (facts.max_tokens or 0)
        try:
            try:
                await self._take(who, decision, admission, headers, tokens, stream)
            except (RateLimited, BudgetExceeded):
                await self.release(admission)
                raise
        except StateUnavailable:
            self._metrics.state_errors.labels("limits").inc()
            if self._fail_mode is FailMode.CLOSED:
                await self.release(admission)
                raise ServiceUnavailable(
                    "Limits cannot be checked right now; try again shortly.",
                    code="limits_unavailable",
                ) from None
        return admission, headers

    async def _take(
        self,
        who: KeyRecord | None,
        decision: Decision,
        admission: Admission,
        headers: dict[str, str],
        tokens: int,
        stream: bool,
    ) -> None:
        scopes = await self._scopes(who, decision)
        budget = await self.budget_of(who)
        if who is None or budget is None:
            await self._count(scopes, tokens, stream, admission, headers)
        elif not scopes:
            if not (decision.soft_cap and decision.reserve_usd == 0.0):
                await self._reserve(who, budget, decision, admission)
        elif decision.soft_cap and decision.reserve_usd == 0.0:
            # free targets cannot overspend: a soft cap admits them past the budget
            await self._count(scopes, tokens, stream, admission, headers)
        elif self._budgets.covers(who.team, budget, _estimate(decision)):
            # the reservation needs no round trip: no need to run both together
            await self._count(scopes, tokens, stream, admission, headers)
            await self._reserve(who, budget, decision, admission)
        else:
            # both finish before anything is given back (see admit)
            outcomes = await asyncio.gather(
                self._count(scopes, tokens, stream, admission, headers),
                self._reserve(who, budget, decision, admission),
                return_exceptions=True,
            )
            for outcome in outcomes:  # a rate limit is reported before the budget
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _count(
        self,
        scopes: list[tuple[str, KeyLimits, str]],
        tokens: int,
        stream: bool,
        admission: Admission,
        headers: dict[str, str],
    ) -> None:
        """Admit the request in each scope in turn (a refusal stops there)."""
        for scope, limits, label in scopes:
            if limits.rpm is not None or limits.tpm is not None:
                verdict = await self._admit_one(scope, limits, tokens)
                if not verdict.allowed:
                    self._metrics.rate_limited.labels(label, verdict.limit or "rpm").inc()
                    wait = retry_after_header(verdict.retry_after_s)
                    raise RateLimited(
                        f"Rate limit reached for {label} on {_describe(verdict)}. "
                        f"Try again in {wait}s.",
                        retry_after_s=wait,
                        headers=_ratelimit_headers(verdict, refused_for_s=wait),
                    )
                if verdict.limit_tokens is not None:
                    admission.token_scopes.append((scope, tokens))
                headers.update(_ratelimit_headers(verdict))
            if stream and limits.max_streams is not None:
                if not await self._open_stream(scope, limits.max_streams):
                    self._metrics.rate_limited.labels(label, "streams").inc()
                    raise RateLimited(
                        f"Too many concurrent streams for {label} (limit {limits.max_streams}).",
                        retry_after_s=1.0,
                    )
                admission.stream_scopes.append(scope)

    def settle(self, admission: Admission, usage: Usage | None) -> None:
        """Correct token counts with the actual usage (sent at the next :meth:`flush`)."""
        if usage is None or admission.settled:
            return
        admission.settled = True
        for scope, estimated in admission.token_scopes:
            delta = usage.total_tokens - estimated
            if delta:
                self._rates.correct(scope, delta)

    async def release(self, admission: Admission) -> None:
        """Give back stream slots and any unused budget reservation (idempotent)."""
        if admission.released:
            return
        self.release_budget(admission)
        for scope in admission.stream_scopes:
            try:
                await self._state.limiter.close_stream(scope)
            except StateUnavailable:
                self._limits_error()

    def release_budget(self, admission: Admission) -> None:
        """:meth:`release` for a request that holds no stream slot (no I/O)."""
        admission.released = True
        if admission.reserved_usd and admission.team and admission.budget:
            self._budgets.release(admission.team, admission.budget, admission.reserved_usd)
            admission.reserved_usd = 0.0

    async def flush(self) -> bool:
        """Send batched corrections and give back what idle leases hold; True
        while leases are still held."""
        rates = await self._rates.flush()
        budgets = await self._budgets.flush()
        return rates or budgets

    async def aclose(self) -> None:
        """Give every lease back (shutdown)."""
        await self._rates.aclose()
        await self._budgets.aclose()

    def _limits_error(self) -> None:
        self._metrics.state_errors.labels("limits").inc()

    def _ledger_error(self) -> None:
        self._metrics.state_errors.labels("ledger").inc()

    async def _scopes(
        self, who: KeyRecord | None, decision: Decision
    ) -> list[tuple[str, KeyLimits, str]]:
        scopes: list[tuple[str, KeyLimits, str]] = []
        if who is not None:
            scopes.append((f"key:{who.key_id}", who.limits, "key"))
            team = await self.team(who.team)
            if team is not None:
                scopes.append((f"team:{team.team}", team.limits, "team"))
        if decision.limits is not None:
            owner = who.key_id if who is not None else "anonymous"
            rule = decision.limits
            scopes.append(
                (
                    f"rule:{decision.rule}:{owner}",
                    KeyLimits(rpm=rule.rpm, tpm=rule.tpm, max_streams=rule.max_streams),
                    "rule",
                )
            )
        return scopes

    async def _admit_one(self, scope: str, limits: KeyLimits, tokens: int) -> LimitDecision:
        return await self._rates.admit(scope, limits, tokens)

    async def _open_stream(self, scope: str, max_streams: int) -> bool:
        return await self._state.limiter.open_stream(scope, max_streams)

    async def _used(self, team: str, period: Period) -> float | None:
        """What the team spent this period, for a refusal's message: the ledger,
        or this replica's newer figure (its latest spend is not flushed yet)."""
        seen = self._spent.get((team, period))
        try:
            used = await self._state.ledger.team_spend(team, period)
        except StateUnavailable:
            return seen[1] if seen is not None else None
        return max(used, seen[1]) if seen is not None else used

    async def _reserve(
        self, who: KeyRecord, budget: Budget, decision: Decision, admission: Admission
    ) -> None:
        estimate = _estimate(decision)
        if not await self._budgets.reserve(who.team, budget, estimate):
            self._metrics.rate_limited.labels("team", "budget").inc()
            used = await self._used(who.team, budget.period)
            now = self._wall_clock()
            raise BudgetExceeded(
                budget_refusal(who.team, budget, used, estimate, now),
                # retrying before the reset cannot help (the OpenAI SDKs read this)
                headers={
                    "x-should-retry": "false",
                    "x-gateway-budget-resets": _iso(period_end(budget.period, now)),
                },
            )
        admission.team, admission.budget, admission.reserved_usd = who.team, budget, estimate


class StreamBudgetReached(BudgetExceeded):
    """A stream ended mid-way: it reached what its request reserved of the budget."""


#: events a stream may send beyond its token allowance (role, finish and usage chunks)
_STREAM_SLACK_EVENTS = 8


def budget_cap(admission: Admission, facts: Facts, target: Target) -> StreamCap | None:
    """For a stream that reserved budget: the events its reservation covers
    (``max_tokens``, or the target's output limit, at about one token per
    event), past which the relay ends it cleanly."""
    if not admission.team or admission.budget is None:
        return None
    tokens = facts.max_tokens or target.max_output_tokens or UNKNOWN_OUTPUT_LIMIT
    return StreamCap(
        tokens + _STREAM_SLACK_EVENTS,
        StreamBudgetReached(
            f"The stream was ended: it reached the {tokens} tokens its request reserved "
            f"of team '{admission.team}''s budget.",
        ),
    )


def _estimate(decision: Decision) -> float:
    """What a request reserves: the most it may cost on any of its targets."""
    return decision.reserve_usd


def period_end(period: Period, now: float) -> float:
    """When the budget period that contains ``now`` ends (UTC midnight, or the first of a month)."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return (day + timedelta(days=1)).timestamp()
    first = day.replace(day=1)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return following.timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(value: float) -> str:
    """Dollars with the digits a small budget needs ($0.00045, not $0.00)."""
    if value == 0:
        return "$0"
    return f"${value:.2f}" if abs(value) >= 1 else f"${value:.6f}".rstrip("0").rstrip(".")


def budget_refusal(
    team: str, budget: Budget, used: float | None, request_usd: float, now: float
) -> str:
    """The message of a budget refusal: used, limit, period, reset, and what the request needs."""
    resets = _iso(period_end(budget.period, now))
    per = "daily" if budget.period is Period.DAY else "monthly"
    spent = (
        f"has used {_usd(used)} ({used / budget.usd:.0%}) of its {per} budget of {_usd(budget.usd)}"
        if used is not None and budget.usd > 0
        else f"has no room left in its {per} budget of {_usd(budget.usd)}"
    )
    return (
        f"Team '{team}' {spent}; this request may cost up to {_usd(request_usd)} "
        f"(its prompt plus max_tokens, or the model's output limit when max_tokens is unset), "
        f"more than the budget has left once in-flight requests are counted. "
        f"The budget resets at {resets}."
    )


def _describe(verdict: LimitDecision) -> str:
    if verdict.limit == "tpm":
        return f"tokens per minute: limit {verdict.limit_tokens}"
    return f"requests per minute: limit {verdict.limit_requests}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "0s"
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s" if minutes else f"{rest:.3g}s"


def _ratelimit_headers(verdict: LimitDecision, refused_for_s: int | None = None) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers. ``reset`` is the time until the quota is full again;
    on a refusal (``refused_for_s``, the ``Retry-After`` seconds) the limit that refused says
    when the request would fit instead, so that both headers give a client the same wait."""
    reset_requests, reset_tokens = verdict.reset_requests_s, verdict.reset_tokens_s
    if refused_for_s is not None:
        if verdict.limit == "tpm":
            reset_tokens = refused_for_s
        else:
            reset_requests = refused_for_s
    headers: dict[str, str] = {}
    if verdict.limit_requests is not None:
        headers["x-ratelimit-limit-requests"] = str(verdict.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(max(0, verdict.remaining_requests or 0))
        headers["x-ratelimit-reset-requests"] = _duration(reset_requests)
    if verdict.limit_tokens is not None:
        headers["x-ratelimit-limit-tokens"] = str(verdict.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, verdict.remaining_tokens or 0))
        headers["x-ratelimit-reset-tokens"] = _duration(reset_tokens)
    return headers
