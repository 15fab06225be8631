"""Which provider serves a target; providers are built once and shared."""

from __future__ import annotations

from gateway.targets import ProviderType, Target
from gateway.upstream.openai_compat import OpenAICompatProvider
from gateway.upstream.provider import Provider
from gateway.upstream.simulated import SimulatedProvider


class Providers:
    """Owns one instance per provider type. litellm is imported only when a
    litellm target is first used, so start-up stays fast."""

    def __init__(self) -> None:
        self._openai = OpenAICompatProvider()
        self._simulated = SimulatedProvider()
        self._litellm: Provider | None = None

    async def warm_up(self, targets: list[Target]) -> None:
        """Import litellm ahead of the first request when a usable target needs it.

        Run in the background after start-up: readiness never waits for it."""
        if any(
            t.provider is ProviderType.LITELLM and t.unavailable_reason is None for t in targets
        ):
            provider = self.for_target(
                next(t for t in targets if t.provider is ProviderType.LITELLM)
            )
            warm = getattr(provider, "warm_up", None)
            if warm is not None:
                await warm()

    def for_target(self, target: Target) -> Provider:
        if target.provider is ProviderType.OPENAI_COMPATIBLE:
            return self._openai
        if target.provider is ProviderType.SIMULATED:
            return self._simulated
        if self._litellm is None:
            from gateway.upstream.litellm_adapter import LiteLLMProvider

            self._litellm = LiteLLMProvider()
        return self._litellm

    async def aclose(self) -> None:
        await self._openai.aclose()
        await self._simulated.aclose()
        if self._litellm is not None:
            await self._litellm.aclose()
