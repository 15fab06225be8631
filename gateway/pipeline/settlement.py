"""The end of an answer: one step that settles a request, however it ended.

An admitted request owes exactly one settlement (:meth:`Settlement.settle`),
whatever its ending: a whole answer, a stream that completed, a stream that
failed mid-way, a client that went away (before or during the stream), an
upstream error before any byte, a cache hit, or a refusal after admission.
The settlement

1. prices the answer (the target's prices, :class:`~gateway.quota.spend.Accountant`)
   and puts tokens and cost on the request's record;
2. records spend and savings (summed in batches by the one writer,
   :class:`~gateway.quota.batch_writer.BatchWriter`) and the team's spend fact;
3. corrects the token counts of the rate leases, and gives back the unused
   budget reservation and the stream slots;
4. stores the cache entry: only for a complete answer (a whole answer, or a
   stream that reached its end) of a request the rule made cacheable;
5. ends the active-stream gauge of a stream and records how it ended on the
   request's record (``stream_error``, or ``cancelled`` when its consumer
   stopped reading).

The metrics and the access line of a request come from its record
(:class:`~gateway.observability.record.Exchange`), which the edge emits once,
after the settlement (:func:`gateway.observability.record.finish`): the
settlement writes the record's numbers and outcome, the edge is the only
writer of the line and the request metrics. A request that was never admitted
(unknown key, bad body, denied, refused by a limit) holds nothing and has
nothing to settle; the edge's emit alone ends it.

When: a request with no stream is settled by the pipeline before its reply
is built (so the reply's headers carry its cost); a stream when its consumer
closes it (:class:`SettledStream`), after the relay filled in its
:class:`~gateway.upstream.relay.StreamResult`. A cached answer is settled when
it is served, streamed or not: its usage is known and it holds nothing
upstream.

Without usage from the upstream, a whole answer is priced at the prompt
estimate with no completion, an interrupted stream at the prompt estimate
plus one token per event relayed (about what was streamed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.observability.metrics import Metrics
from gateway.observability.record import Exchange
from gateway.pipeline import response_cache
from gateway.pipeline.work import Work
from gateway.quota.batch_writer import BatchWriter
from gateway.quota.limits import Limits
from gateway.quota.spend import Accountant
from gateway.state.base import CachedResponse, StateUnavailable
from gateway.state.factory import StateBackends
from gateway.targets import Target
from gateway.upstream.provider import Usage
from gateway.upstream.relay import StreamResult

log = logging.getLogger("gateway.pipeline.settlement")


@dataclass(slots=True)
class Ending:
    """How one admitted request ended, filled in by the step that knows."""

    work: Work
    #: the target that answered (None: no upstream answered)
    target: Target | None = None
    #: a cache hit: the target whose entry was served
    cached_from: str | None = None
    #: the usage of a whole answer or a cache hit
    usage: Usage | None = None
    #: a whole answer's bytes as the upstream sent them (the cache stores these)
    answer: bytes | None = None
    #: an upstream stream's result, filled by the relay when it ends
    stream: StreamResult | None = None
    #: when the answering upstream call started (``time.perf_counter``)
    started: float = 0.0
    settled: bool = False


class Settlement:
    def __init__(
        self,
        *,
        state: StateBackends,
        metrics: Metrics,
        limits: Limits,
        accountant: Accountant,
        batch_writer: BatchWriter,
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._limits = limits
        self._accountant = accountant
        self._batch_writer = batch_writer
        self._tasks: set[asyncio.Task[None]] = set()

    def settle(self, ex: Exchange, ending: Ending) -> None:
        """Settle one request (see the module's docstring); a second call is a
        no-op. No I/O here: stream slots and the cache entry are written by
        background tasks (:meth:`drain` awaits them)."""
        if ending.settled:
            return
        ending.settled = True
        work, usage, admission = ending.work, ending.usage, ending.work.admission
        if ending.stream is not None:
            usage = self._stream_ended(ex, ending, ending.stream)
        if ending.target is not None or ending.cached_from is not None:
            if usage is None:
                usage = Usage(prompt_tokens=ex.prompt_tokens, completion_tokens=0)
            spend = self._accountant.charge(
                work.decision,
                work.policy,
                ending.target,
                work.who,
                usage,
                cached_from=ending.cached_from,
            )
            ex.prompt_tokens, ex.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            ex.cost_usd, ex.baseline_usd = spend.cost_usd, spend.baseline_usd
            self._accountant.add(spend, admission)
            if spend.cost_usd:
                self._limits.spent(spend.team, spend.cost_usd)
            self._limits.settle(admission, usage)
            self._batch_writer.poke()
        if admission.stream_scopes:
            # the client's next stream may need the slot: given back at once
            self._spawn(self._limits.release(admission))
        else:
            self._limits.release_budget(admission)
        entry = self._entry(ending, usage)
        if entry is not None:
            self._spawn(self._store(work, entry))

    async def drain(self) -> None:
        """Finish background work (cache writes, stream-slot releases) at shutdown."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _stream_ended(self, ex: Exchange, ending: Ending, stream: StreamResult) -> Usage | None:
        self._metrics.active_streams.dec()
        ex.upstream_s = time.perf_counter() - ending.started
        usage = stream.usage
        if not stream.completed:
            if stream.error is not None:
                ex.outcome, ex.status = "stream_error", 200
            else:
                ex.cancelled()
            if usage is None:
                # ended before its usage chunk: about one token per event arrived
                usage = Usage(ex.prompt_tokens, stream.events_seen)
        return usage

    def _entry(self, ending: Ending, usage: Usage | None) -> CachedResponse | None:
        """The cache entry of a complete answer the rule lets the cache store."""
        work, target, stream = ending.work, ending.target, ending.stream
        if work.cache_write is None or target is None:
            return None
        if stream is None:
            if ending.answer is None:
                return None
            return response_cache.entry_for(
                work.decision, target, usage, body=ending.answer, now=time.time()
            )
        if not stream.completed or stream.events is None:
            return None
        chunks = tuple(stream.events)
        return response_cache.entry_for(
            work.decision, target, usage, chunks=chunks, now=time.time()
        )

    async def _store(self, work: Work, entry: CachedResponse) -> None:
        assert work.cache_write is not None
        try:
            await self._state.cache.set(work.cache_write, entry, work.decision.cache.ttl_s)
        except StateUnavailable:
            self._metrics.state_errors.labels("cache_set").inc()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background accounting failed", exc_info=task.exception())


class SettledStream:
    """A streamed answer: iterating it runs the relay; closing it settles the
    request, once. Its consumer closes it however the stream ended (the edge
    does, in a ``finally``); a stream closed before it was read also closes
    the upstream's stream."""

    __slots__ = ("_ending", "_ex", "_relay", "_rest", "_settlement")

    def __init__(
        self,
        relay: AsyncGenerator[bytes, None],
        rest: AsyncIterator[list[bytes]],
        settlement: Settlement,
        ex: Exchange,
        ending: Ending,
    ) -> None:
        self._relay, self._rest = relay, rest
        self._settlement, self._ex, self._ending = settlement, ex, ending

    def __aiter__(self) -> AsyncGenerator[bytes, None]:
        return self._relay

    def __anext__(self) -> Awaitable[bytes]:
        return self._relay.__anext__()

    async def aclose(self) -> None:
        try:
            await self._relay.aclose()  # the relay's ``finally`` fills the result
            stream = self._ending.stream
            if stream is not None and not stream.ended:
                # closed before the relay ran: nothing else closes the upstream
                closer = getattr(self._rest, "aclose", None)
                if closer is not None:
                    await closer()
        finally:
            self._settlement.settle(self._ex, self._ending)
