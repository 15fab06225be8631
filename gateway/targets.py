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


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per one million tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
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
    context_window: int | None = None
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

    def may_receive(self, level: Level) -> bool:
        return level <= self.max_sensitivity
