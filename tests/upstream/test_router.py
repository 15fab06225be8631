"""The router on a fake clock: target order, retries and backoff, fallbacks,
circuit breakers, and what is raised when every target failed.

The upstream is a scripted :class:`Provider` (the router's real seam): each
target answers from its own list of outcomes and every call is recorded, so
the tests assert the exact order of calls and the exact waits between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.endpoints import Endpoint
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    NoTargetAvailable,
    RateLimited,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.levels import Level
from gateway.observability.metrics import Metrics
from gateway.targets import (
    CircuitPolicy,
    Kind,
    ProviderType,
    RetryPolicy,
    Target,
    Timeouts,
)
from gateway.upstream.breakers import CircuitBreakers, CircuitState
from gateway.upstream.provider import Provider, UpstreamCall, UpstreamReply
from gateway.upstream.registry import Providers
from gateway.upstream.router import Router, Served

BODY = {"model": "alias", "messages": [{"role": "user", "content": "hi"}]}
#: a target's breaker that never opens within one test unless a test says so
NEVER_OPENS = CircuitPolicy(failures_to_open=1000, open_seconds=60.0)


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: what a scripted target does on one call: answer, fail, or hang
Outcome = UpstreamReply | GatewayError | str


class ScriptedProvider(Provider):
    """Answers each call from the calling target's script, in order.

    An outcome is a reply, an error to raise (before the first event, for a
    stream), or ``"hang"``. ``latency_s`` advances the fake clock during a call.
    """

    def __init__(self, clock: FakeClock, scripts: dict[str, list[Outcome]]) -> None:
        self._clock = clock
        self._scripts = {name: list(outcomes) for name, outcomes in scripts.items()}
        self.calls: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.latency_s = 0.0
        self.closed_streams = 0

    def _next(self, call: UpstreamCall) -> Outcome:
        self.calls.append(call.target.name)
        self.bodies.append(call.body)
        self._clock.advance(self.latency_s)
        script = self._scripts[call.target.name]
        return script.pop(0) if len(script) > 1 else script[0]

    async def complete(self, call: UpstreamCall) -> UpstreamReply:
        outcome = self._next(call)
        if isinstance(outcome, GatewayError):
            raise outcome
        if isinstance(outcome, str):
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")
        return outcome

    def stream(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        return self._events(call)

    async def _events(self, call: UpstreamCall) -> AsyncIterator[list[bytes]]:
        outcome = self._next(call)
        try:
            if isinstance(outcome, GatewayError):
                raise outcome
            if isinstance(outcome, str):
                await asyncio.sleep(3600)
            yield [b'{"n": 1}']
            yield [b'{"n": 2}']
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        return None


class ScriptedProviders(Providers):
    """The registry, with every target served by one scripted provider."""

    def __init__(self, provider: ScriptedProvider) -> None:
        super().__init__()
        self._scripted = provider

    def for_target(self, target: Target) -> Provider:
        return self._scripted


def target(
    name: str,
    *,
    attempts: int = 1,
    circuit: CircuitPolicy = NEVER_OPENS,
    first_byte: float = 5.0,
    **changes: Any,
) -> Target:
    return Target(
        name=name,
        kind=Kind.OPEN,
        provider=ProviderType.OPENAI_COMPATIBLE,
        model=f"{name}-model",
        max_sensitivity=Level.RESTRICTED,
        base_url="http://127.0.0.1:9/v1",
        timeouts=Timeouts(connect=1.0, first_byte=first_byte, total=10.0),
        retry=RetryPolicy(attempts=attempts, backoff_base_s=0.1, backoff_max_s=2.0),
        circuit=circuit,
        **changes,
    )


def ok(text: str = "fine") -> UpstreamReply:
    return UpstreamReply({"choices": [{"message": {"content": text}}]})


def status(code: int, retry_after_s: float | None = None) -> UpstreamStatusError:
    return UpstreamStatusError(code, f"upstream says {code}", retry_after_s=retry_after_s)


class Harness:
    def __init__(self, scripts: dict[str, list[Outcome]]) -> None:
        self.clock = FakeClock()
        self.provider = ScriptedProvider(self.clock, scripts)
        self.metrics = Metrics()
        self.metrics.bind_policy(
            aliases=["alias"], rules=["r"], targets=list(scripts), entities=[], tasks=[]
        )
        self.breakers = CircuitBreakers(clock=self.clock)
        self.sleeps: list[float] = []
        self.router = Router(
            ScriptedProviders(self.provider),
            self.metrics,
            self.breakers,
            clock=self.clock,
            sleep=self._sleep,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    async def run(self, *targets: Target, stream: bool = False) -> Served:
        return await self.router.run(
            Endpoint.CHAT, BODY, list(targets), request_id="req-1", stream=stream
        )

    def counter(self, name: str, target: str, reason: str) -> float:
        value: float = getattr(self.metrics, name).labels(target, reason).value
        return value


# --- order and fallbacks ---------------------------------------------------------


async def test_the_first_target_that_answers_serves_and_later_ones_are_not_called() -> None:
    h = Harness({"a": [ok("from a")], "b": [ok("from b")], "c": [ok("from c")]})
    served = await h.run(target("a"), target("b"), target("c"))
    assert h.provider.calls == ["a"]
    assert served.target.name == "a" and served.attempts == 1
    assert served.reply is not None and served.reply.data == ok("from a").data


async def test_targets_are_tried_in_the_decisions_order() -> None:
    h = Harness({"a": [status(500)], "b": [UpstreamConnectError("refused")], "c": [ok()]})
    served = await h.run(target("a"), target("b"), target("c"))
    assert h.provider.calls == ["a", "b", "c"]
    assert served.target.name == "c" and served.attempts == 3
    assert h.sleeps == [], "a fallback to the next target does not wait"
    assert h.counter("fallbacks", "a", "5xx") == 1
    assert h.counter("fallbacks", "b", "connect") == 1


async def test_each_call_carries_its_targets_model_and_the_body_is_not_changed() -> None:
    h = Harness({"a": [status(503)], "b": [ok()]})
    await h.run(target("a"), target("b"))
    assert [body["model"] for body in h.provider.bodies] == ["a-model", "b-model"]
    assert all(body["messages"] == BODY["messages"] for body in h.provider.bodies)
    assert BODY["model"] == "alias"


@pytest.mark.parametrize(
    "failure",
    [
        status(500),
        status(502),
        status(503),
        status(429),
        status(401),
        status(403),
        status(408),
        UpstreamConnectError("refused"),
        UpstreamTimeout("slow"),
        UpstreamDisconnected("dropped"),
        UpstreamProtocolError("not OpenAI's format"),
    ],
    ids=lambda e: f"{type(e).__name__}-{getattr(e, 'upstream_status', '')}",
)
async def test_every_retryable_failure_falls_back(failure: GatewayError) -> None:
    h = Harness({"a": [failure], "b": [ok()]})
    served = await h.run(target("a"), target("b"))
    assert h.provider.calls == ["a", "b"]
    assert served.target.name == "b"


async def test_an_unavailable_target_is_skipped_without_a_call() -> None:
    h = Harness({"nokey": [ok()], "b": [ok()]})
    served = await h.run(
        target("nokey", unavailable_reason="OPENAI_API_KEY is not set"), target("b")
    )
    assert h.provider.calls == ["b"]
    assert served.target.name == "b" and served.attempts == 1


# --- retries and backoff ------------------------------------------------------------


async def test_retries_the_same_target_with_jittered_backoff_then_succeeds() -> None:
    h = Harness({"a": [status(503), status(503), ok()], "b": [ok()]})
    served = await h.run(target("a", attempts=3), target("b"))
    assert h.provider.calls == ["a", "a", "a"]
    assert served.target.name == "a" and served.attempts == 3
    first, second = h.sleeps
    # full jitter: retry n waits a draw in [0, min(max, base * 2^(n-1)))
    assert 0.0 <= first < 0.1 and 0.0 <= second < 0.2
    assert h.counter("retries", "a", "5xx") == 2
    assert h.counter("fallbacks", "a", "5xx") == 0


async def test_backoff_delays_are_spread_within_their_bounds() -> None:
    firsts, seconds = [], []
    for _ in range(200):
        h = Harness({"a": [status(500), status(500), ok()]})
        await h.run(target("a", attempts=3))
        firsts.append(h.sleeps[0])
        seconds.append(h.sleeps[1])
    assert all(0.0 <= d < 0.1 for d in firsts) and all(0.0 <= d < 0.2 for d in seconds)
    # jittered, not a fixed wait: the draws cover most of each window
    assert max(firsts) - min(firsts) > 0.08 and max(seconds) - min(seconds) > 0.16


async def test_retries_exhausted_move_on_to_the_next_target() -> None:
    h = Harness({"a": [status(500)], "b": [UpstreamTimeout("slow"), ok()]})
    served = await h.run(target("a", attempts=2), target("b", attempts=2))
    assert h.provider.calls == ["a", "a", "b", "b"]
    assert served.target.name == "b" and served.attempts == 4
    assert len(h.sleeps) == 2, "one wait before each retry, none before a fallback"
    assert h.counter("retries", "a", "5xx") == 1
    assert h.counter("retries", "b", "timeout") == 1
    assert h.counter("fallbacks", "a", "5xx") == 1


async def test_retry_after_is_waited_exactly() -> None:
    h = Harness({"a": [status(429, retry_after_s=1.5), ok()]})
    served = await h.run(target("a", attempts=2))
    assert h.provider.calls == ["a", "a"]
    assert h.sleeps == [1.5]
    assert served.attempts == 2
    assert h.counter("retries", "a", "429") == 1


async def test_retry_after_longer_than_backoff_max_moves_on_without_waiting() -> None:
    h = Harness({"a": [status(429, retry_after_s=30.0)], "b": [ok()]})
    served = await h.run(target("a", attempts=5), target("b"))
    assert h.provider.calls == ["a", "b"]
    assert h.sleeps == []
    assert served.target.name == "b"
    assert h.counter("retries", "a", "429") == 0


@pytest.mark.parametrize(
    "error",
    [
        UpstreamStatusError(
            400, "This model's maximum context length is 8 tokens.", code="context_length_exceeded"
        ),
        status(404),
        status(422),
        InvalidRequest("bad parameter", param="temperature"),
    ],
    ids=["context-length", "404", "422", "invalid-request"],
)
async def test_a_non_retryable_error_is_raised_at_once(error: GatewayError) -> None:
    h = Harness({"a": [error], "b": [ok()]})
    with pytest.raises(GatewayError) as raised:
        await h.run(target("a", attempts=3), target("b"))
    assert raised.value is error
    assert h.provider.calls == ["a"], "neither retried nor passed to the next target"
    assert h.sleeps == []
    # the client's error is not the target's fault: its circuit counts nothing
    assert h.breakers.state("a", NEVER_OPENS) is CircuitState.CLOSED


# --- circuit breakers ---------------------------------------------------------------


async def test_an_open_circuit_is_skipped_then_probed_after_open_seconds() -> None:
    circuit = CircuitPolicy(failures_to_open=2, open_seconds=30.0)
    h = Harness({"a": [status(500), status(500), ok("a again")], "b": [ok()]})
    a, b = target("a", circuit=circuit), target("b")
    assert (await h.run(a, b)).target.name == "b"
    assert (await h.run(a, b)).target.name == "b"
    assert h.provider.calls == ["a", "b", "a", "b"]
    assert h.router.circuit_state(a) is CircuitState.OPEN
    assert h.metrics.circuit_state.labels("a").value == int(CircuitState.OPEN)
    # open: skipped without a call
    assert (await h.run(a, b)).target.name == "b"
    assert h.provider.calls[4:] == ["b"]
    assert h.counter("fallbacks", "a", "circuit_open") == 1
    # half-open after open_seconds: one probe, and its success closes the circuit
    h.clock.advance(30.0)
    assert h.router.circuit_state(a) is CircuitState.HALF_OPEN
    served = await h.run(a, b)
    assert served.target.name == "a"
    assert h.provider.calls[5:] == ["a"]
    assert h.router.circuit_state(a) is CircuitState.CLOSED
    assert h.metrics.circuit_state.labels("a").value == int(CircuitState.CLOSED)


async def test_a_failed_probe_reopens_the_circuit() -> None:
    circuit = CircuitPolicy(failures_to_open=1, open_seconds=10.0)
    h = Harness({"a": [status(503)], "b": [ok()]})
    a, b = target("a", circuit=circuit, attempts=3), target("b")
    await h.run(a, b)
    # the circuit opened on the first failure: no retry on an open circuit
    assert h.provider.calls == ["a", "b"]
    h.clock.advance(10.0)
    await h.run(a, b)
    assert h.provider.calls[2:] == ["a", "b"], "the probe, which failed, then the fallback"
    assert h.router.circuit_state(a) is CircuitState.OPEN
    await h.run(a, b)
    assert h.provider.calls[4:] == ["b"]


async def test_retries_stop_when_the_circuit_opens() -> None:
    circuit = CircuitPolicy(failures_to_open=2, open_seconds=30.0)
    h = Harness({"a": [status(500)], "b": [ok()]})
    served = await h.run(target("a", attempts=5, circuit=circuit), target("b"))
    assert h.provider.calls == ["a", "a", "b"]
    assert len(h.sleeps) == 1
    assert served.attempts == 3


async def test_a_client_error_on_the_probe_frees_the_probe_slot() -> None:
    circuit = CircuitPolicy(failures_to_open=1, open_seconds=10.0)
    context = UpstreamStatusError(400, "too long", code="context_length_exceeded")
    h = Harness({"a": [status(500), context, ok()], "b": [ok()]})
    a, b = target("a", circuit=circuit), target("b")
    await h.run(a, b)
    h.clock.advance(10.0)
    with pytest.raises(UpstreamStatusError):
        await h.run(a, b)
    # the probe told nothing about the target: the next request probes it
    served = await h.run(a, b)
    assert served.target.name == "a"
    assert h.provider.calls == ["a", "b", "a", "a"]
    assert h.router.circuit_state(a) is CircuitState.CLOSED


# --- when every target failed -------------------------------------------------------


async def test_one_target_failing_passes_its_own_status_error_on() -> None:
    error = status(429, retry_after_s=1.0)
    h = Harness({"a": [error]})
    with pytest.raises(UpstreamStatusError) as raised:
        await h.run(target("a"))
    assert raised.value is error
    assert raised.value.http_status == 429
    assert raised.value.headers == {"retry-after": "1"}


async def test_every_target_rate_limited_is_a_429_with_the_shortest_wait() -> None:
    h = Harness({"a": [status(429, retry_after_s=20.0)], "b": [status(429, retry_after_s=5.0)]})
    with pytest.raises(RateLimited) as raised:
        await h.run(target("a"), target("b"))
    assert raised.value.code == "upstream_rate_limited"
    assert raised.value.retry_after_s == 5.0
    assert raised.value.message == "Every target is rate limited (a: HTTP 429; b: HTTP 429)."


async def test_every_target_timing_out_is_a_504() -> None:
    h = Harness({"a": [UpstreamTimeout("slow")], "b": [UpstreamTimeout("slow")]})
    with pytest.raises(UpstreamTimeout) as raised:
        await h.run(target("a"), target("b"))
    assert raised.value.http_status == 504
    assert raised.value.message == "Every target timed out (a: timeout; b: timeout)."


async def test_mixed_failures_are_a_503_naming_each_target_and_why() -> None:
    h = Harness({"nokey": [ok()], "a": [status(500)], "b": [UpstreamConnectError("refused")]})
    with pytest.raises(NoTargetAvailable) as raised:
        await h.run(
            target("nokey", unavailable_reason="OPENAI_API_KEY is not set"),
            target("a", attempts=2),
            target("b"),
        )
    assert raised.value.http_status == 503
    assert raised.value.message == (
        "No target could serve this request (nokey: OPENAI_API_KEY is not set; "
        "a: HTTP 500; a: HTTP 500; b: connect)."
    )


async def test_no_target_at_all_is_a_503() -> None:
    h = Harness({})
    with pytest.raises(NoTargetAvailable) as raised:
        await h.run()
    assert raised.value.message == "The policy left no target to try for this request."


# --- streams ------------------------------------------------------------------------


async def test_a_stream_commits_to_a_target_only_after_its_first_event() -> None:
    h = Harness({"a": [UpstreamDisconnected("dropped before the first event")], "b": [ok()]})
    served = await h.run(target("a"), target("b"), stream=True)
    assert h.provider.calls == ["a", "b"]
    assert served.target.name == "b"
    assert served.first_events == [b'{"n": 1}']
    assert served.events is not None
    assert [batch async for batch in served.events] == [[b'{"n": 2}']]


async def test_a_stream_without_a_first_event_in_time_falls_back() -> None:
    h = Harness({"a": ["hang"], "b": [ok()]})
    served = await h.run(target("a", first_byte=0.05), target("b"), stream=True)
    assert h.provider.calls == ["a", "b"]
    assert served.target.name == "b"
    assert h.provider.closed_streams == 1, "the abandoned stream was closed"
    assert h.counter("fallbacks", "a", "timeout") == 1


# --- latency ------------------------------------------------------------------------


async def test_time_to_first_byte_is_a_moving_average_per_target() -> None:
    h = Harness({"a": [ok()]})
    h.provider.latency_s = 0.100
    await h.run(target("a"))
    assert h.router.observed_latency_ms() == {"a": pytest.approx(100.0)}
    h.provider.latency_s = 0.200
    await h.run(target("a"))
    # the newest sample weighs 0.2
    assert h.router.observed_latency_ms()["a"] == pytest.approx(120.0)


async def test_failed_attempts_do_not_count_as_latency() -> None:
    h = Harness({"a": [status(500)], "b": [ok()]})
    h.provider.latency_s = 0.050
    await h.run(target("a"), target("b"))
    assert dict(h.router.observed_latency_ms()) == {"b": pytest.approx(50.0)}
