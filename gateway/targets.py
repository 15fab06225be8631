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
    #: speaks OpenAI's Responses API (``POST {base_url}/responses``): a Responses
    #: request routed here is forwarded natively instead of translated to chat
    responses_native: bool = False

    def may_receive(self, level: Level) -> bool:
        return level <= self.max_sensitivity
