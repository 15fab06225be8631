"""Handle one OpenAI request, framework-free: bytes and headers in, a reply out.

Order of work (each step can end the request with an OpenAI-shaped error,
and nothing reaches an upstream before every check passed):

1. authenticate the key (401) — open mode when no key exists;
2. parse and validate the body (400/413);
3. resolve the alias (404);
4. compute the facts and decide (pure); a deny or a policy that leaves no
   eligible target ends here (403);
5. limits per key, team and rule (429 + ``Retry-After``), budget reservation;
6. redaction, when the rule asks for it;
7. the response cache (scoped per team; an entry is served only where its
   target could have received this request's data);
8. the router: targets in order, retries, fallbacks;
9. spend and the cache write once the answer is complete (spend and token
   corrections are summed and written in batches by one worker,
   :class:`gateway.quota.batch_writer.BatchWriter`).

The request record (:class:`~gateway.observability.record.Exchange`) is made
by the edge and filled in here by the step that owns each field: who (auth),
alias and stream (parsing), rule, action, level and task (the decision),
target, kind and attempts (the router or the cache), tokens and cost
(pricing). The edge emits it once the answer is sent
(:func:`gateway.observability.record.finish`); nothing here emits it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gateway.endpoints import Endpoint
from gateway.errors import GatewayError, ModelNotFound, NoEligibleTarget, PolicyDenied
from gateway.judging.build import FactsBuilder
from gateway.judging.forwarded import forwarded_headers
from gateway.judging.offloop import judge
from gateway.judging.redaction import Redaction
from gateway.judging.request import ParsedRequest, parse_body
from gateway.judging.shape import RequestLimits
from gateway.judging.task import task_input
from gateway.observability.audit_log import AuditLog
from gateway.observability.metrics import Metrics
from gateway.observability.recent import RecentDecisions
from gateway.observability.record import Exchange
from gateway.observability.tracing import Tracer
from gateway.pipeline import response_cache
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Action, Decision, Facts
from gateway.policy.reload import PolicyHolder
from gateway.quota.auth import Authenticator
from gateway.quota.batch_writer import BatchWriter
from gateway.quota.in_flight import InFlight
from gateway.quota.limits import Admission, Limits, StreamBudgetReached, budget_cap
from gateway.quota.spend import Accountant
from gateway.settings import Settings
from gateway.state.base import KeyRecord, SpendRecord, StateUnavailable
from gateway.state.factory import StateBackends
from gateway.targets import Target
from gateway.upstream import responses_relay
from gateway.upstream.provider import Usage
from gateway.upstream.relay import Restorer, StreamResult
from gateway.upstream.responses_wire import NativeResponses
from gateway.upstream.router import Router, Served

log = logging.getLogger("gateway.pipeline.handler")

ENDPOINT_LABELS = {
    Endpoint.CHAT: "chat",
    Endpoint.COMPLETIONS: "completions",
    Endpoint.EMBEDDINGS: "embeddings",
}


@dataclass(slots=True)
class Reply:
    headers: dict[str, str]
    body: bytes | None = None
    #: SSE bytes, ready for the wire, for a streamed answer
    events: AsyncIterator[bytes] | None = None
    status: int = 200
    #: the answer is in the Responses wire format (a native Responses target)
    native: bool = False


class _Decided(NamedTuple):
    who: KeyRecord | None
    parsed: ParsedRequest
    policy: CompiledPolicy
    builder: FactsBuilder[CompiledPolicy]
    facts: Facts
    rule_set: str
    decision: Decision


@dataclass(slots=True)
class _Work:
    """What the steps before the upstream call worked out."""

    parsed: ParsedRequest
    policy: CompiledPolicy
    facts: Facts
    decision: Decision
    targets: list[Target]
    who: KeyRecord | None
    body: dict[str, Any]
    redaction: Redaction | None = None
    #: where to look for a cached answer (None: don't read the cache)
    cache_read: str | None = None
    #: where to store the answer (None: don't store it)
    cache_write: str | None = None
    admission: Admission = field(default_factory=Admission)
    #: a Responses request's native plan (None: chat, or translated only)
    native: NativeResponses | None = None


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        policy: PolicyHolder,
        router: Router,
        state: StateBackends,
        metrics: Metrics,
        auth: Authenticator,
        limits: Limits,
        accountant: Accountant,
        batch_writer: BatchWriter,
        in_flight: InFlight,
        decision_log: AuditLog | None = None,
        tracer: Tracer | None = None,
        recent: RecentDecisions | None = None,
        judge_executor: Executor | None = None,
    ) -> None:
        self._settings = settings
        self._judge_executor = judge_executor
        self._policy = policy
        self._router = router
        self._state = state
        self._metrics = metrics
        self._auth = auth
        self._limits = limits
        self._accountant = accountant
        self._batch_writer = batch_writer
        self._decision_log = decision_log
        self._tracer = tracer or Tracer()
        self._request_limits = RequestLimits.of(settings)
        self._in_flight = in_flight
        self._recent = recent
        self._tasks: set[asyncio.Task[None]] = set()

    # -- entry points -------------------------------------------------------

    async def handle(
        self,
        ex: Exchange,
        endpoint: Endpoint,
        raw: bytes,
        headers: Mapping[str, str],
        native: NativeResponses | None = None,
    ) -> Reply:
        """Answer one request, filling in ``ex`` as the steps go. A
        :class:`GatewayError` is recorded on ``ex`` and raised for the edge to
        render (with ``ex.headers()``); so is a cancellation.

        ``native``: a Responses request translated to the chat ``raw``, judged
        as that chat body; targets that speak Responses get it rebuilt from the
        judged body (see :mod:`gateway.upstream.responses_wire`), and
        ``Reply.native`` says when the answer is a Response."""
        ex.trace = self._tracer.request_span(ex.request_id, ex.endpoint, headers)  # tracing
        try:
            return await self._handle(ex, endpoint, raw, headers, native)
        except GatewayError as error:
            ex.failed(error)
            raise
        except asyncio.CancelledError:
            ex.cancelled()
            raise

    async def decide_only(
        self, endpoint: Endpoint, raw: bytes, headers: Mapping[str, str]
    ) -> tuple[Facts, Decision]:
        """Facts and decision for a request, calling nothing upstream."""
        decided = await self._decide(endpoint, raw, headers, None)
        return decided.facts, decided.decision

    async def drain(self) -> None:
        """Finish background work (cache writes, stream-slot releases) at shutdown."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the steps ------------------------------------------------------------

    async def _handle(
        self,
        ex: Exchange,
        endpoint: Endpoint,
        raw: bytes,
        headers: Mapping[str, str],
        native: NativeResponses | None,
    ) -> Reply:
        forwarded = forwarded_headers(headers)
        with ex.trace.child("gateway.decide"):  # tracing
            decided = await self._decide(endpoint, raw, headers, ex)
        who, parsed, facts, decision = decided.who, decided.parsed, decided.facts, decided.decision
        policy, builder, rule_set = decided.policy, decided.builder, decided.rule_set
        self._observe_decision(ex, facts, decision)
        if self._settings.log_redacted_samples and facts.draw < self._settings.log_sample_rate:
            ex.sample = Redaction(builder.scanner, builder.scanner.entities).excerpt(
                task_input(parsed.body).last_user
            )
        if self._decision_log is not None:
            # written by ``finish`` once the request ended, with its outcome
            ex.audit = self._decision_log.writer(
                facts, decision, request_id=ex.request_id, ts=time.time(), rule_set=rule_set
            )
        if self._recent is not None:
            self._recent.add(
                facts, decision, request_id=ex.request_id, ts=time.time(), rule_set=rule_set
            )
        if decision.action is Action.DENY:
            if decision.targets == () and decision.excluded:
                raise NoEligibleTarget(decision.deny_message or "No target may receive this data.")
            raise PolicyDenied(decision.deny_message or f"Denied by policy rule '{decision.rule}'.")
        targets = [policy.targets[name] for name in decision.targets]
        work = _Work(parsed, policy, facts, decision, targets, who, parsed.body, native=native)
        work.admission, limit_headers = await self._limits.admit(
            who, decision, facts, stream=parsed.stream
        )
        ex.extra_headers.update(limit_headers)
        try:
            await self._prepare_body(work, builder, len(raw))
            self._cache_keys(work, headers)
            with ex.trace.child("gateway.cache"):  # tracing
                hit = await self._cache_lookup(work, ex)
            if hit is not None:
                return hit
            served = await self._router.run(
                endpoint,
                work.body,
                targets,
                request_id=ex.request_id,
                stream=parsed.stream,
                trace=ex.trace,  # tracing
                forwarded=forwarded,
                native=native,
            )
        except BaseException:
            await self._limits.release(work.admission)
            raise
        ex.target, ex.kind, ex.attempts = (
            served.target.name,
            served.target.kind.value,
            served.attempts,
        )
        if parsed.stream:
            return self._stream_reply(ex, work, served)
        return await self._whole_reply(ex, work, served)

    async def _decide(
        self,
        endpoint: Endpoint,
        raw: bytes,
        headers: Mapping[str, str],
        ex: Exchange | None,
    ) -> _Decided:
        """Authenticate, parse, compute the facts and decide (pure), recording
        what is known so far on ``ex`` so that even an early error is logged
        with it."""
        # authenticate first: an unknown caller learns nothing about its request
        who = await self._auth.authenticate(headers.get("authorization"))
        if ex is not None and who is not None:
            ex.key_id, ex.team = who.key_id, who.team
            ex.on_finish = self._in_flight.enter(who.key_id)  # 429 past the key's limit
        parsed = parse_body(
            raw, endpoint, max_bytes=self._settings.max_body_bytes, limits=self._request_limits
        )
        if ex is not None:
            ex.alias, ex.stream = parsed.model, parsed.stream
        # one snapshot per request: a reload mid-request cannot mix two policies
        snapshot = self._policy.current
        policy, builder = snapshot.policy, snapshot.facts
        self._resolve_alias(policy, parsed, endpoint)
        request_id = ex.request_id if ex is not None else "explain"
        facts = await self._facts(builder, parsed, len(raw), headers, who, request_id)
        rule_set = policy.rule_set_for(_team(who), _key_policy(who))
        return _Decided(
            who, parsed, policy, builder, facts, rule_set, policy.decide(facts, rule_set)
        )

    def _resolve_alias(
        self, policy: CompiledPolicy, parsed: ParsedRequest, endpoint: Endpoint
    ) -> None:
        alias = policy.aliases.get(parsed.model)
        if alias is None or ENDPOINT_LABELS[endpoint] not in alias.endpoints:
            raise ModelNotFound(
                f"The model `{parsed.model}` does not exist or you do not have access to it.",
                param="model",
            )

    async def _facts(
        self,
        builder: FactsBuilder[CompiledPolicy],
        parsed: ParsedRequest,
        size: int,
        headers: Mapping[str, str],
        who: KeyRecord | None,
        request_id: str,
    ) -> Facts:
        budget_usd, remaining = await self._limits.budget_status(who)
        settings = self._settings
        return await judge(
            builder,
            size=size,
            threshold=settings.judge_offloop_bytes,
            budget_s=settings.judge_budget_ms / 1000,
            executor=self._judge_executor,
            endpoint=ENDPOINT_LABELS[parsed.endpoint],
            body=parsed.body,
            headers=headers,
            key_id=who.key_id if who else None,
            team=_team(who),
            budget_usd=budget_usd,
            budget_remaining_usd=remaining,
            target_latency_ms=self._router.observed_latency_ms(),
            draw=(zlib.crc32(request_id.encode()) % 10_000) / 10_000,
        )

    def _observe_decision(self, ex: Exchange, facts: Facts, decision: Decision) -> None:
        m = self._metrics
        ex.rule, ex.action = decision.rule, decision.action.value
        ex.level, ex.task = facts.sensitivity.level.label, facts.task
        if decision.action is Action.ROUTE:
            ex.sent_level = decision.level.label
        ex.prompt_tokens = facts.prompt_tokens
        action = (
            "redact"
            if decision.redact is not None and decision.action is Action.ROUTE
            else decision.action.value
        )
        m.decisions.labels(m.rule(decision.rule), action).inc()
        m.tasks.labels(m.task(facts.task)).inc()
        for entity in facts.sensitivity.entities:
            m.entities.labels(m.entity(entity)).inc()

    async def _prepare_body(
        self, work: _Work, builder: FactsBuilder[CompiledPolicy], size: int
    ) -> None:
        """The body to send: redacted when the rule says so (a body as large as
        those judged off the event loop is redacted off it too, in the same
        threads: redaction scans every text again)."""
        body = dict(work.body)
        if work.decision.redact is not None:
            redaction = work.redaction = Redaction(builder.scanner, work.decision.redact.entities)
            executor = self._judge_executor
            if executor is not None and size >= self._settings.judge_offloop_bytes:
                loop = asyncio.get_running_loop()
                body = await loop.run_in_executor(executor, redaction.redact_body, body)
            else:
                body = redaction.redact_body(body)
            for entity, count in work.redaction.counts.items():
                self._metrics.redactions.labels(self._metrics.entity(entity)).inc(count)
        if work.parsed.stream and work.parsed.endpoint is not Endpoint.EMBEDDINGS:
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        work.body = body

    def _cache_keys(self, work: _Work, headers: Mapping[str, str]) -> None:
        work.cache_read, work.cache_write = response_cache.cache_keys(
            work.decision.cache,
            headers,
            team=_team(work.who),
            endpoint=work.parsed.endpoint.value
            if work.native is None
            else responses_relay.cache_label(work.native, work.targets),
            stream=work.parsed.stream,
            targets=work.targets,
            body=work.body,
        )

    async def _cache_lookup(self, work: _Work, ex: Exchange) -> Reply | None:
        if work.cache_write is None:
            self._metrics.cache.labels("bypass").inc()
            return None
        ex.cache = "miss"
        entry = None
        if work.cache_read is not None:
            try:
                entry = await self._state.cache.get(work.cache_read)
            except StateUnavailable:
                self._metrics.state_errors.labels("cache_get").inc()
                ex.cache = "bypass"
                work.cache_write = None
        if entry is None or not response_cache.may_serve(work.decision, work.policy.targets, entry):
            self._metrics.cache.labels(ex.cache).inc()
            return None
        ex.cache = "hit"
        self._metrics.cache.labels("hit").inc()
        target = work.policy.targets[entry.target]
        ex.target, ex.kind, ex.attempts = target.name, target.kind.value, 0
        usage = Usage(entry.prompt_tokens, entry.completion_tokens)
        self._settle(ex, work, None, usage, cached_from=entry.target)
        native = work.native is not None and work.native.speaks(target)
        if work.parsed.stream:
            events = responses_relay.relay_for(work.native if native else None)(
                list(entry.chunks),
                None,
                include_usage=work.parsed.include_usage,
                restorer=self._restorer(work),
                capture=False,
                on_done=lambda result: self._stream_done(ex, work, None, result),
            )
            return Reply(ex.headers(), events=events, native=native)
        body = entry.body or b"{}"
        if work.redaction is not None and work.decision.redact and work.decision.redact.restore:
            body = work.redaction.restore_answer(body)
        return Reply(ex.headers(), body=body, native=native)

    async def _whole_reply(self, ex: Exchange, work: _Work, served: Served) -> Reply:
        reply = served.reply
        assert reply is not None
        ex.upstream_s = served.first_byte_at - served.started
        usage = reply.usage
        raw = reply.to_bytes()
        body = raw
        if work.redaction is not None and work.decision.redact and work.decision.redact.restore:
            body = work.redaction.restore_answer(raw)
        self._settle(ex, work, served.target, usage)
        if work.cache_write is not None:
            self._spawn(self._cache_store(work, served.target, usage, body=raw))
        return Reply(ex.headers(), body=body, native=served.native)

    def _stream_reply(self, ex: Exchange, work: _Work, served: Served) -> Reply:
        assert served.events is not None
        self._metrics.active_streams.inc()
        ex.upstream_s = served.first_byte_at - served.started

        def first_sent() -> None:
            ex.first_token_s = time.perf_counter() - ex.started

        events = responses_relay.relay_for(work.native if served.native else None)(
            served.first_events,
            served.events,
            include_usage=work.parsed.include_usage,
            restorer=self._restorer(work),
            capture=work.cache_write is not None,
            on_done=lambda result: self._stream_done(ex, work, served, result),
            on_first=first_sent,
            cap=budget_cap(work.admission, work.facts, served.target),
        )
        return Reply(ex.headers(), events=events, native=served.native)

    async def _stream_done(
        self, ex: Exchange, work: _Work, served: Served | None, result: StreamResult
    ) -> None:
        if served is not None:
            self._metrics.active_streams.dec()
            ex.upstream_s = time.perf_counter() - ex.started - (served.started - ex.started)
            if result.error is not None:
                ex.outcome, ex.status = "stream_error", 200
            usage, target = result.usage, served.target
            if usage is None and isinstance(result.error, StreamBudgetReached):
                # cut before its usage chunk: about one token per event arrived
                usage = Usage(ex.prompt_tokens, result.events_seen)
            self._settle(ex, work, target, usage)
            if result.events is not None and work.cache_write is not None:
                chunks = tuple(result.events)
                self._spawn(self._cache_store(work, target, usage, chunks=chunks))

    def _settle(
        self,
        ex: Exchange,
        work: _Work,
        target: Target | None,
        usage: Usage | None,
        *,
        cached_from: str | None = None,
    ) -> None:
        """Price the answer, record tokens and cost on ``ex`` and book the spend
        (no usage from the upstream: the prompt estimate, no completion)."""
        if usage is None:
            usage = Usage(prompt_tokens=ex.prompt_tokens, completion_tokens=0)
        spend = self._accountant.charge(
            work.decision, work.policy, target, work.who, usage, cached_from=cached_from
        )
        ex.prompt_tokens, ex.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        ex.cost_usd, ex.baseline_usd = spend.cost_usd, spend.baseline_usd
        self._book(work, spend, usage)

    def _book(self, work: _Work, spend: SpendRecord, usage: Usage | None) -> None:
        """After the answer: spend and token corrections go to the next
        bookkeeping flush, an unused reservation back to its lease, stream
        slots back at once (the client's next stream may need one)."""
        admission = work.admission
        self._accountant.add(spend, admission)
        if spend.cost_usd:
            self._limits.spent(spend.team, spend.cost_usd)
        self._limits.settle(admission, usage)
        if admission.stream_scopes:
            self._spawn(self._limits.release(admission))
        else:
            self._limits.release_budget(admission)
        self._batch_writer.poke()

    async def _cache_store(
        self,
        work: _Work,
        target: Target,
        usage: Usage | None,
        *,
        body: bytes | None = None,
        chunks: tuple[bytes, ...] = (),
    ) -> None:
        assert work.cache_write is not None
        entry = response_cache.entry_for(
            work.decision, target, usage, body=body, chunks=chunks, now=time.time()
        )
        try:
            await self._state.cache.set(work.cache_write, entry, work.decision.cache.ttl_s)
        except StateUnavailable:
            self._metrics.state_errors.labels("cache_set").inc()

    def _restorer(self, work: _Work) -> Restorer | None:
        redaction = work.redaction
        if redaction is None or not (work.decision.redact and work.decision.redact.restore):
            return None
        return Restorer(redaction.stream_restorer, redaction.restore_answer)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background accounting failed", exc_info=task.exception())


def _team(who: KeyRecord | None) -> str | None:
    return who.team if who is not None else None


def _key_policy(who: KeyRecord | None) -> str | None:
    return who.policy if who is not None else None
