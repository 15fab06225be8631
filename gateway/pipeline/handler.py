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
9. the settlement, once, however the answer ended
   (:mod:`gateway.pipeline.settlement`): pricing, spend, leases, the cache
   write; a stream's when its consumer closes it.

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
from dataclasses import dataclass
from typing import NamedTuple

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
from gateway.pipeline.settlement import Ending, SettledStream, Settlement
from gateway.pipeline.work import Work
from gateway.policy.compiled import CompiledPolicy
from gateway.policy.model import Action, Decision, Facts
from gateway.policy.reload import PolicyHolder
from gateway.quota.auth import Authenticator
from gateway.quota.batch_writer import BatchWriter
from gateway.quota.in_flight import InFlight
from gateway.quota.limits import Limits, budget_cap
from gateway.quota.spend import Accountant
from gateway.settings import Settings
from gateway.state.base import KeyRecord, StateUnavailable
from gateway.state.factory import StateBackends
from gateway.upstream import responses_relay
from gateway.upstream.provider import Usage
from gateway.upstream.relay import Restorer, StreamResult
from gateway.upstream.responses_wire import NativeResponses
from gateway.upstream.router import Router, Served, hold_capacity

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
        self._decision_log = decision_log
        self._tracer = tracer or Tracer()
        self._request_limits = RequestLimits.of(settings)
        self._in_flight = in_flight
        self._recent = recent
        self._settlement = Settlement(
            state=state,
            metrics=metrics,
            limits=limits,
            accountant=accountant,
            batch_writer=batch_writer,
        )

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
        await self._settlement.drain()

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
        work = Work(
            parsed, policy, facts, decision, targets, who, parsed.body, forwarded, native=native
        )
        work.admission, limit_headers = await self._limits.admit(
            who, decision, facts, stream=parsed.stream
        )
        ex.extra_headers.update(limit_headers)
        # admitted: from here on the request owes exactly one settlement
        ending = Ending(work)
        try:
            answer = await self._answer(ex, work, ending, builder, endpoint, len(raw), headers)
        finally:
            if ending.stream is None:  # an upstream stream is settled when it is closed
                self._settlement.settle(ex, ending)
        if isinstance(answer, bytes):
            return Reply(ex.headers(), body=answer, native=work.answered_native)
        return Reply(ex.headers(), events=answer, native=work.answered_native)

    async def _answer(
        self,
        ex: Exchange,
        work: Work,
        ending: Ending,
        builder: FactsBuilder[CompiledPolicy],
        endpoint: Endpoint,
        size: int,
        headers: Mapping[str, str],
    ) -> bytes | AsyncIterator[bytes]:
        """The answer's body for the client, or its events; ``ending`` says what
        answered (``ending.stream`` is set last, once nothing can fail)."""
        await self._prepare_body(work, builder, size)
        self._cache_keys(work, headers)
        with ex.trace.child("gateway.cache"):  # tracing
            hit = await self._cache_lookup(work, ex, ending)
        if hit is not None:
            return hit
        served = await self._router.run(
            endpoint,
            work.body,
            work.targets,
            request_id=ex.request_id,
            stream=work.parsed.stream,
            trace=ex.trace,  # tracing
            forwarded=work.forwarded,
            spill=work.decision.spill,
            native=work.native,
        )
        spilled_from = work.decision.spilled_from
        if served.release is not None or served.spilled_from or spilled_from:
            hold_capacity(ex, served, spilled_from, self._metrics)
        target = ending.target = served.target
        ex.target, ex.kind, ex.attempts = target.name, target.kind.value, served.attempts
        ending.started = served.started
        ex.upstream_s = served.first_byte_at - served.started
        work.answered_native = served.native
        if work.parsed.stream:
            return self._stream_reply(ex, work, ending, served)
        reply = served.reply
        assert reply is not None
        ending.usage, ending.answer = reply.usage, reply.to_bytes()
        return self._restored(work, ending.answer)

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
            load=self._router.board.current,
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
        self, work: Work, builder: FactsBuilder[CompiledPolicy], size: int
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

    def _cache_keys(self, work: Work, headers: Mapping[str, str]) -> None:
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

    async def _cache_lookup(
        self, work: Work, ex: Exchange, ending: Ending
    ) -> bytes | AsyncIterator[bytes] | None:
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
        # settled when served (see gateway.pipeline.settlement): nothing upstream is held
        ending.cached_from = entry.target
        ending.usage = Usage(entry.prompt_tokens, entry.completion_tokens)
        native = work.native is not None and work.native.speaks(target)
        work.answered_native = native
        if work.parsed.stream:
            return responses_relay.relay_for(work.native if native else None)(
                list(entry.chunks),
                None,
                include_usage=work.parsed.include_usage,
                restorer=self._restorer(work),
                capture=False,
                result=StreamResult(),
            )
        return self._restored(work, entry.body or b"{}")

    def _stream_reply(
        self, ex: Exchange, work: Work, ending: Ending, served: Served
    ) -> AsyncIterator[bytes]:
        assert served.events is not None

        def first_sent() -> None:
            ex.first_token_s = time.perf_counter() - ex.started

        result = StreamResult()
        events = responses_relay.relay_for(work.native if served.native else None)(
            served.first_events,
            served.events,
            include_usage=work.parsed.include_usage,
            restorer=self._restorer(work),
            capture=work.cache_write is not None,
            result=result,
            on_first=first_sent,
            cap=budget_cap(work.admission, work.facts, served.target),
        )
        self._metrics.active_streams.inc()  # the settlement takes it back
        ending.stream = result  # last: from here the stream's closing settles it
        return SettledStream(events, served.events, self._settlement, ex, ending)

    def _restored(self, work: Work, body: bytes) -> bytes:
        """A whole answer as the client reads it (redacted values put back)."""
        if work.redaction is not None and work.decision.redact and work.decision.redact.restore:
            restored: bytes = work.redaction.restore_answer(body)
            return restored
        return body

    def _restorer(self, work: Work) -> Restorer | None:
        redaction = work.redaction
        if redaction is None or not (work.decision.redact and work.decision.redact.restore):
            return None
        return Restorer(redaction.stream_restorer, redaction.restore_answer)


def _team(who: KeyRecord | None) -> str | None:
    return who.team if who is not None else None


def _key_policy(who: KeyRecord | None) -> str | None:
    return who.policy if who is not None else None
