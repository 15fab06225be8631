"""Execute a decision: targets in order, retries, fallbacks, circuit breakers.

Contract:

* Targets are tried in the decision's order; every one of them was already
  checked by the policy against the data's sensitivity, and the router never
  adds a target of its own (invariant 1 of docs/invariants.md holds through
  fallbacks).
* A target is skipped, with its reason recorded, when it is unavailable
  (e.g. its key is unset) or its circuit is open.
* On a retryable failure (connect error, timeout, 5xx, 429, a dropped
  connection, an upstream speaking something other than OpenAI's format) the
  same target is retried up to ``retry.attempts`` times with jittered backoff
  honouring ``Retry-After``, then the next target is tried.
* A non-retryable failure (an upstream 4xx caused by the request, such as a
  context-length error) is raised at once: it is the client's.
* For a stream, "before the first byte" means before the first event: the
  router waits for the first upstream event (bounded by the target's
  first-byte timeout) before it commits to a target.
* A target with a declared capacity needs a slot first
  (:mod:`gateway.upstream.capacity`). For a ``spill`` decision a full target
  with a later usable one is passed over at once (the answer says so in
  ``x-gateway-spill``); otherwise the request waits in the target's bounded
  queue, and a wait that runs out moves on to the next target like a failure.
  The slot is held until the answer is complete (``Served.release``).
* A Responses request (``native`` given) goes to each target that speaks
  Responses as a native Responses body (:mod:`.responses_wire`), to any
  other as the translated chat body; fallbacks cross between the two freely,
  and ``Served.native`` says which one answered.
* A native follow-up sent with the provider's own previous id that the provider
  no longer knows (``previous_response_not_found``) is sent again, at once and
  to the same target, with the whole conversation instead.
* When every target failed, the error names each target and why. A single
  upstream status error is passed on as it is (so a 429's ``Retry-After``
  reaches the client and its SDK retries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.endpoints import Endpoint
from gateway.errors import (
    CapacityExhausted,
    GatewayError,
    NoTargetAvailable,
    RateLimited,
    UpstreamConnectError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    failure_reason,
    is_retryable,
)
from gateway.observability.metrics import Metrics
from gateway.observability.record import Exchange
from gateway.observability.tracing import NO_SPAN, RequestSpan
from gateway.targets import Target
from gateway.upstream.breakers import CircuitBreakers, CircuitState, backoff_delay
from gateway.upstream.capacity import LoadBoard
from gateway.upstream.dialect import for_target, is_anthropic
from gateway.upstream.provider import UpstreamCall, UpstreamReply
from gateway.upstream.registry import Providers
from gateway.upstream.relay import close_stream
from gateway.upstream.responses_wire import NativeResponses

#: weight of the newest sample in the latency moving average
_EWMA_ALPHA = 0.2


@dataclass(slots=True)
class Served:
    """What answered, and how: a whole reply or an opened stream."""

    target: Target
    attempts: int
    started: float
    first_byte_at: float
    reply: UpstreamReply | None = None
    #: the first batch of stream events (see ``Provider.stream``)
    first_events: list[bytes] | None = None
    events: AsyncIterator[list[bytes]] | None = None
    #: frees the target's capacity slot once the answer is complete (None: no capacity)
    release: Callable[[], None] | None = None
    #: the first target passed over for being at capacity (a spill), if any
    spilled_from: str | None = None
    #: the answer is in the Responses wire format (a native Responses target)
    native: bool = False


class Router:
    def __init__(
        self,
        providers: Providers,
        metrics: Metrics,
        breakers: CircuitBreakers | None = None,
        *,
        board: LoadBoard | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._providers = providers
        self._metrics = metrics
        self.breakers = breakers or CircuitBreakers()
        #: live load of the targets with a capacity or a metrics_url
        self.board = board or LoadBoard(metrics)
        self._clock = clock
        self._sleep = sleep
        self._latency_ms: dict[str, float] = {}

    def observed_latency_ms(self) -> Mapping[str, float]:
        """Moving average of time to first byte per target (for ``lowest-latency``)."""
        return self._latency_ms

    def circuit_state(self, target: Target) -> CircuitState:
        return self.breakers.state(target.name, target.circuit)

    async def run(
        self,
        endpoint: Endpoint,
        body: Mapping[str, Any],
        targets: list[Target],
        *,
        request_id: str,
        stream: bool,
        trace: RequestSpan = NO_SPAN,
        forwarded: tuple[tuple[str, str], ...] = (),
        spill: bool = False,
        native: NativeResponses | None = None,
    ) -> Served:
        """Try ``targets`` in order (retries, breakers, fallbacks) until one answers.

        ``forwarded``: judged client headers for the targets that speak their
        dialect (:mod:`gateway.upstream.dialect`). ``spill``: the decision's
        strategy is ``spill`` (a full target with a later one is passed over).
        ``native``: a Responses request's plan, for the targets that speak
        Responses (:mod:`gateway.upstream.responses_wire`)."""
        attempts = 0
        failures: list[tuple[str, BaseException | str]] = []
        passed_over: str | None = None
        for index, target in enumerate(targets):
            if target.unavailable_reason:
                failures.append((target.name, target.unavailable_reason))
                continue
            if not self.breakers.allow(target.name, target.circuit):
                failures.append((target.name, "circuit open"))
                self._metrics.fallbacks.labels(
                    self._metrics.target(target.name), "circuit_open"
                ).inc()
                continue
            release: Callable[[], None] | None = None
            if target.capacity is not None:
                later = spill and self._usable_after(targets, index)
                try:
                    release = await self.board.acquire(target, may_wait=not later)
                except CapacityExhausted as full:
                    failures.append((target.name, full))
                    passed_over = passed_over or target.name
                    self._metrics.fallbacks.labels(
                        self._metrics.target(target.name), "capacity"
                    ).inc()
                    continue
            anthropic = is_anthropic(target)
            sent_body = {**for_target(body, target), "model": target.model}
            speaks = native is not None and native.speaks(target)
            call = (
                UpstreamCall(Endpoint.RESPONSES, target, native.body(target, sent_body), request_id)
                if native is not None and speaks
                else UpstreamCall(
                    endpoint,
                    target,
                    sent_body,
                    request_id,
                    forwarded=forwarded if anthropic else (),
                )
            )
            resend = _resender(native, call, sent_body) if speaks and native is not None else None
            try:
                served, attempts = await self._try(call, stream, trace, failures, attempts, resend)
            except BaseException:
                if release is not None:
                    release()
                raise
            if served is None:
                if release is not None:
                    release()
                continue
            served.release = release
            served.spilled_from = passed_over
            served.native = speaks
            return served
        raise _exhausted(failures)

    def _usable_after(self, targets: list[Target], index: int) -> bool:
        """Is there a target after ``index`` that could be tried now (configured,
        its circuit not open)? If not, a full target is waited for, not passed over."""
        return any(
            t.unavailable_reason is None
            and self.breakers.state(t.name, t.circuit) is not CircuitState.OPEN
            for t in targets[index + 1 :]
        )

    async def _try(
        self,
        call: UpstreamCall,
        stream: bool,
        trace: RequestSpan,
        failures: list[tuple[str, BaseException | str]],
        attempts: int,
        resend: Callable[[GatewayError], UpstreamCall | None] | None = None,
    ) -> tuple[Served | None, int]:
        """``call``'s target, retried as its policy says: what it served (or None,
        its failures recorded), and ``attempts`` plus its tries. ``resend``: the
        call to make at once instead, for an error that asks for one (a native
        follow-up whose previous id the provider forgot); it does not count as a
        retry."""
        target = call.target
        tries = max(1, target.retry.attempts)
        attempt = 0
        while attempt < tries:
            attempt += 1
            attempts += 1
            started = self._clock()
            try:
                # one span per attempt; its traceparent goes upstream with it
                with trace.attempt(target, attempt) as span:
                    sent = (
                        call
                        if span.traceparent is None
                        else replace(call, traceparent=span.traceparent)
                    )
                    served = await self._attempt(sent, stream, started)
            except GatewayError as error:
                again = resend(error) if resend is not None else None
                if again is not None:
                    call, resend = again, None
                    tries += 1  # this attempt does not count
                    continue
                if not is_retryable(error):
                    self.breakers.release_probe(target.name, target.circuit)
                    raise
                failures.append((target.name, error))
                self._failed(target, error)
                if attempt == tries or not self.breakers.allow(target.name, target.circuit):
                    break
                retry_after = getattr(error, "retry_after_s", None)
                delay = backoff_delay(target.retry, attempt, retry_after)
                if delay is None:
                    break
                self._metrics.retries.labels(
                    self._metrics.target(target.name), failure_reason(error)
                ).inc()
                await self._sleep(delay)
                continue
            self.breakers.success(target.name, target.circuit)
            self._metrics.circuit_state.labels(self._metrics.target(target.name)).set(0)
            self._observe_latency(target.name, served.first_byte_at - started)
            served.attempts = attempts
            return served, attempts
        self._metrics.fallbacks.labels(
            self._metrics.target(target.name), _last_reason(failures)
        ).inc()
        return None, attempts

    async def _attempt(self, call: UpstreamCall, stream: bool, started: float) -> Served:
        provider = self._providers.for_target(call.target)
        if not stream:
            reply = await provider.complete(call)
            now = self._clock()
            return Served(call.target, 0, started, now, reply=reply)
        events = aiter(provider.stream(call))
        try:
            # asyncio.timeout, not wait_for: no extra task per stream
            async with asyncio.timeout(call.target.timeouts.first_byte):
                first = await anext(events)
        except StopAsyncIteration:
            first = None
        except TimeoutError:
            await close_stream(events)
            raise UpstreamTimeout(f"{call.target.name} sent no first event in time") from None
        except BaseException:
            await close_stream(events)
            raise
        return Served(call.target, 0, started, self._clock(), first_events=first, events=events)

    def _failed(self, target: Target, error: BaseException) -> None:
        reason = failure_reason(error)
        name = self._metrics.target(target.name)
        self._metrics.upstream_errors.labels(name, reason).inc()
        state = self.breakers.failure(target.name, target.circuit)
        self._metrics.circuit_state.labels(name).set(int(state))

    def _observe_latency(self, target: str, seconds: float) -> None:
        ms = seconds * 1000
        previous = self._latency_ms.get(target)
        self._latency_ms[target] = (
            ms if previous is None else previous + _EWMA_ALPHA * (ms - previous)
        )


def hold_capacity(ex: Exchange, served: Served, planned: str | None, metrics: Metrics) -> None:
    """Keep ``served``'s capacity slot until ``ex`` is finished (a stream's last
    byte included), and name a spill in the answer's headers and metrics: the
    router passed over a full target, or the decision (``planned``, from the
    load facts) put a saturated one back."""
    release = served.release
    if release is not None:
        before = ex.on_finish
        if before is None:
            ex.on_finish = release
        else:

            def both() -> None:
                release()
                before()

            ex.on_finish = both
    spilled = served.spilled_from or planned
    if spilled is not None and spilled != served.target.name:
        ex.extra_headers["x-gateway-spill"] = f"{spilled}->{served.target.name}"
        metrics.spills.labels(metrics.target(spilled), metrics.target(served.target.name)).inc()


def _resender(
    plan: NativeResponses, call: UpstreamCall, chat_body: dict[str, Any]
) -> Callable[[GatewayError], UpstreamCall | None]:
    """For a native follow-up sent with the provider's own previous id: the
    call to make instead when the provider no longer knows that id (the whole
    conversation; once, as ``plan`` drops the id)."""

    def resend(error: GatewayError) -> UpstreamCall | None:
        if not plan.forgotten(error):
            return None
        return replace(call, body=plan.body(call.target, chat_body))

    return resend


def _last_reason(failures: list[tuple[str, BaseException | str]]) -> str:
    if not failures:
        return "unknown"
    last = failures[-1][1]
    return "unavailable" if isinstance(last, str) else failure_reason(last)


def _exhausted(failures: list[tuple[str, BaseException | str]]) -> GatewayError:
    errors = [f for _, f in failures if isinstance(f, BaseException)]
    last = failures[-1][1] if failures else None
    if len({name for name, _ in failures}) == 1 and isinstance(last, UpstreamStatusError):
        # one target, tried (maybe retried): its own answer says it best
        return last
    if not failures:
        return NoTargetAvailable("The policy left no target to try for this request.")
    full = [f for f in errors if isinstance(f, CapacityExhausted)]
    if full and len(full) == len(errors):
        # nothing failed but for capacity (others unconfigured or open): the client may retry
        return full[-1]
    why = "; ".join(f"{name}: {f if isinstance(f, str) else _describe(f)}" for name, f in failures)
    statuses = [e for e in errors if isinstance(e, UpstreamStatusError)]
    if (
        statuses
        and len(statuses) == len(failures)
        and all(e.upstream_status == 429 for e in statuses)
    ):
        wait = min((e.retry_after_s or 1.0) for e in statuses)
        return RateLimited(
            f"Every target is rate limited ({why}).",
            retry_after_s=wait,
            code="upstream_rate_limited",
        )
    if (
        errors
        and all(isinstance(e, UpstreamTimeout) for e in errors)
        and len(errors) == len(failures)
    ):
        return UpstreamTimeout(f"Every target timed out ({why}).")
    return NoTargetAvailable(f"No target could serve this request ({why}).")


def _describe(error: BaseException) -> str:
    if isinstance(error, UpstreamStatusError):
        return f"HTTP {error.upstream_status}"
    if isinstance(error, UpstreamConnectError) and error.detail:
        return error.detail
    if isinstance(error, UpstreamError):
        return error.reason.replace("_", " ")
    return type(error).__name__
