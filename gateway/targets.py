"""Targets: the upstream models a policy can route to, fully resolved.

A target is declared once in a policy file and compiled into a frozen
:class:`Target`. ``max_sensitivity`` is the highest level of data it may
receive; the router never sends it anything above that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.levels import Level


class Kind(StrEnum):
    OPEN = "open"
    PROPRIETARY = "proprietary"


class ProviderType(StrEnum):
    #: any server speaking OpenAI's HTTP API: vLLM, Ollama, llama.cpp, TGI, SGLang, OpenAI
    OPENAI_COMPATIBLE = "openai"
    #: a provider that needs translation, through litellm (``litellm_provider`` names it)
    LITELLM = "litellm"
    #: deterministic in-process backend for ``--demo`` and tests
    SIMULATED = "simulated"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``first_byte`` bounds the wait for response headers / the first chunk."""

    connect: float = 5.0
    first_byte: float = 60.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries on the *same* target before falling back to the next one."""

    attempts: int = 1
    backoff_base_s: float = 0.1
    backoff_max_s: float = 2.0


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failures_to_open: int = 5
    open_seconds: float = 30.0


class PriceSource(StrEnum):
    """Where a target's prices came from (logged at start, shown in ``/readyz``)."""

    #: the policy's ``price:``
    DECLARED = "declared"
    #: litellm's model cost map
    LITELLM = "litellm"
    #: an open or simulated target without a declared price: it costs nothing
    FREE = "free"
    #: a proprietary target whose price nobody knows: it counts as 0 (a warning)
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per one million tokens.

    ``cache_read_per_mtok`` prices prompt tokens read from the provider's
    prompt cache, ``cache_write_per_mtok`` prompt tokens written to it and
    ``reasoning_per_mtok`` reasoning tokens; ``None`` means "as an ordinary
    input (or output) token", as litellm counts them.
    """

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    reasoning_per_mtok: float | None = None

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        """USD for a usage. ``prompt_tokens`` counts every prompt token, the
        cached and cache-written ones too (OpenAI's convention), and
        ``completion_tokens`` the reasoning ones: each part is priced at its
        own rate, the rest at the plain input and output rates."""
        if not (cached_tokens or cache_write_tokens or reasoning_tokens):
            return (
                prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
            ) / 1_000_000
        plain_prompt = max(0, prompt_tokens - cached_tokens - cache_write_tokens)
        plain_completion = max(0, completion_tokens - reasoning_tokens)
        read = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        write = (
            self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        )
        think = self.output_per_mtok if self.reasoning_per_mtok is None else self.reasoning_per_mtok
        return (
            plain_prompt * self.input_per_mtok
            + cached_tokens * read
            + cache_write_tokens * write
            + plain_completion * self.output_per_mtok
            + reasoning_tokens * think
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class SimulatedKnobs:
    """Behaviour of a simulated target (see :mod:`gateway.upstream.simulated`)."""

    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    completion_tokens: int = 16
    chunk_tokens: int = 1
    error_status: int | None = None
    error_rate: float = 0.0
    fail_after_chunks: int | None = None


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many requests a target takes at once, and what may wait for it.

    ``max_in_flight`` counts this replica's requests, ``shared_max_in_flight``
    every replica's (through the state backend: Redis when configured). A
    request that finds the target full waits in a bounded FIFO queue, at most
    ``max_queue`` deep and ``max_wait_ms`` long, unless its rule spills it to
    a later target (see :mod:`gateway.upstream.capacity`).
    """

    max_in_flight: int | None = None
    shared_max_in_flight: int | None = None
    max_queue: int = 0
    max_wait_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class TargetLoad:
    """What is known about one target's load, as the policy sees it.

    ``None`` is *unknown* (never zero): not tracked, never read, or a reading
    that failed or went stale. ``utilisation`` is the highest known fraction
    of the declared limits and the server's KV cache; ``saturated`` says a
    declared limit is reached or the server itself queues requests.
    """

    #: requests in flight at this replica (tracked for targets with a capacity)
    in_flight: int | None = None
    max_in_flight: int | None = None
    #: requests in flight across replicas, as last read from the state backend
    shared_in_flight: int | None = None
    shared_max_in_flight: int | None = None
    #: requests waiting for a slot at this replica, and a moving average of their waits
    queue_depth: int | None = None
    queue_wait_ms: float | None = None
    #: the server's own load from its ``/metrics`` (vLLM, SGLang, TGI)
    server: str | None = None
    server_running: float | None = None
    server_waiting: float | None = None
    kv_cache_usage: float | None = None
    utilisation: float | None = None
    saturated: bool = False

    @classmethod
    def of(
        cls,
        *,
        in_flight: int | None = None,
        max_in_flight: int | None = None,
        shared_in_flight: int | None = None,
        shared_max_in_flight: int | None = None,
        queue_depth: int | None = None,
        queue_wait_ms: float | None = None,
        server: str | None = None,
        server_running: float | None = None,
        server_waiting: float | None = None,
        kv_cache_usage: float | None = None,
    ) -> TargetLoad:
        """A load with ``utilisation`` and ``saturated`` worked out (once, here:
        the policy reads them as fields)."""
        fractions = []
        saturated = False
        if in_flight is not None and max_in_flight:
            fractions.append(in_flight / max_in_flight)
            saturated = in_flight >= max_in_flight
        if shared_in_flight is not None and shared_max_in_flight:
            fractions.append(shared_in_flight / shared_max_in_flight)
            saturated = saturated or shared_in_flight >= shared_max_in_flight
        if kv_cache_usage is not None:
            fractions.append(kv_cache_usage)
        if server_waiting is not None and server_waiting > 0:
            saturated = True
        return cls(
            in_flight,
            max_in_flight,
            shared_in_flight,
            shared_max_in_flight,
            queue_depth,
            queue_wait_ms,
            server,
            server_running,
            server_waiting,
            kv_cache_usage,
            max(fractions) if fractions else None,
            saturated,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "shared_in_flight": self.shared_in_flight,
            "shared_max_in_flight": self.shared_max_in_flight,
            "queue_depth": self.queue_depth,
            "queue_wait_ms": self.queue_wait_ms,
            "server": self.server,
            "server_running": self.server_running,
            "server_waiting": self.server_waiting,
            "kv_cache_usage": self.kv_cache_usage,
            "utilisation": self.utilisation,
            "saturated": self.saturated,
        }


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kind: Kind
    provider: ProviderType
    model: str
    max_sensitivity: Level
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    #: for ``ProviderType.LITELLM``: litellm's provider prefix, e.g. ``anthropic``
    litellm_provider: str | None = None
    prices: Prices = Prices()
    price_source: PriceSource = PriceSource.FREE
    context_window: int | None = None
    #: the most tokens one answer may have (litellm's ``max_output_tokens`` or
    #: the policy's); what a request without ``max_tokens`` reserves against
    max_output_tokens: int | None = None
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    circuit: CircuitPolicy = CircuitPolicy()
    simulated: SimulatedKnobs = SimulatedKnobs()
    #: extra headers sent upstream (never shown to clients)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: why this target cannot be used at all (e.g. its key is unset); None = usable
    unavailable_reason: str | None = None
    #: relative weight for the ``weighted`` strategy
    weight: float = 1.0
    #: how much it takes at once; None: no limit, and nothing is counted per request
    capacity: Capacity | None = None
    #: the server's Prometheus ``/metrics`` (vLLM, SGLang, TGI), read in the background
    metrics_url: str | None = None
    #: speaks OpenAI's Responses API (``POST {base_url}/responses``): a Responses
    #: request routed here is forwarded natively instead of translated to chat
    responses_native: bool = False

    def may_receive(self, level: Level) -> bool:
        return level <= self.max_sensitivity
