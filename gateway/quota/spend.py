"""Spend from actual usage: cost, baseline cost and savings, per key, team and target.

Cost is the answering target's price times the usage the upstream reported
(for streams too: the gateway always asks for the usage chunk). The baseline
is what the same usage would have cost on the rule's ``baseline`` target;
savings are baseline minus actual. A cache hit costs nothing and saves the
whole baseline. When an upstream reports no usage, the prompt estimate is
used and the completion counts as zero.

Spend reaches the ledger in batches: :meth:`Accountant.add` sums a finished
request into its team's batch for the day, and :meth:`Accountant.flush`
(driven by :class:`gateway.quota.batch_writer.BatchWriter`) writes each batch with one
atomic update. A batch the ledger could not take (Redis down) is kept, summed
with what follows, and written when it answers again; a process that dies
loses at most one flush interval of spend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.observability.metrics import Metrics
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Decision
from gateway.quota.limits import Admission
from gateway.state import money
from gateway.state.base import KeyRecord, SpendBatch, SpendRecord, StateUnavailable
from gateway.state.factory import StateBackends
from gateway.targets import Target
from gateway.upstream.provider import Usage

ANONYMOUS = "anonymous"


class Accountant:
    def __init__(
        self,
        state: StateBackends,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._clock = clock
        #: (team, day) -> what its requests spent since the last flush
        self._batches: dict[tuple[str, int], SpendBatch] = {}

    def charge(
        self,
        decision: Decision,
        policy: CompiledPolicy,
        target: Target | None,
        who: KeyRecord | None,
        usage: Usage,
        *,
        cached_from: str | None = None,
    ) -> SpendRecord:
        """Price a finished request (no I/O) and count its tokens and cost in the
        metrics; returns what :meth:`add` sums. ``target`` None is a cache hit
        (free), served from the entry of ``cached_from``."""
        cost = 0.0 if target is None else usage.cost(target.prices)
        baseline_target = policy.targets.get(decision.baseline or "")
        baseline = usage.cost(baseline_target.prices) if baseline_target is not None else cost
        m = self._metrics
        team = m.team(who.team if who is not None else None)
        if target is not None:
            name, kind = m.target(target.name), target.kind.value
            m.tokens.labels(team, name, kind, "prompt").inc(usage.prompt_tokens)
            m.tokens.labels(team, name, kind, "completion").inc(usage.completion_tokens)
            m.cost.labels(team, name, kind).inc(cost)
        m.baseline_cost.labels(team).inc(baseline)
        m.savings.labels(team).inc(max(0.0, baseline - cost))
        return SpendRecord(
            key_id=who.key_id if who else ANONYMOUS,
            team=who.team if who else ANONYMOUS,
            target=target.name if target is not None else (cached_from or "cache"),
            cost_usd=cost,
            baseline_usd=baseline,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )

    def add(self, spend: SpendRecord, admission: Admission) -> None:
        """Sum a finished request's spend, and the reservation it held, into
        its team's batch (written at the next :meth:`flush`)."""
        now = self._clock()
        key = (spend.team, int(now // 86_400))
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = SpendBatch(spend.team, now)
        reserved = admission.reserved_usd if admission.team else 0.0
        money.add_spend(batch, spend, reserved)
        admission.reserved_usd = 0.0

    async def flush(self) -> bool:
        """Write every batch; True when one had to be kept for later."""
        batches, self._batches = self._batches, {}
        if not batches:
            return False
        ledger = self._state.ledger
        outcomes = await asyncio.gather(
            *(ledger.record_batch(batch) for batch in batches.values()), return_exceptions=True
        )
        kept = False
        for (key, batch), outcome in zip(batches.items(), outcomes, strict=True):
            if isinstance(outcome, StateUnavailable):
                self._metrics.state_errors.labels("ledger").inc()
                self._keep(key, batch)
                kept = True
            elif isinstance(outcome, BaseException):
                raise outcome
        return kept

    def _keep(self, key: tuple[str, int], batch: SpendBatch) -> None:
        newer = self._batches.get(key)
        if newer is not None:
            for name, value in newer.increments.items():
                batch.increments[name] = batch.increments.get(name, 0) + value
            batch.release_micros += newer.release_micros
        self._batches[key] = batch
