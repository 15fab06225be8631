"""``gateway serve --demo``: every target becomes a simulated backend.

Names, kinds, prices and sensitivity limits stay as the policy declares them,
so routing, caching, limits and metrics behave exactly as they would; only
the upstream is replaced, and every answer says it is simulated.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.policy.compiled import CompiledPolicy
from gateway.policy.reload import LoadedPolicy, PolicyHolder
from gateway.targets import Kind, ProviderType, SimulatedKnobs, Target

#: open models answer faster than proprietary APIs in the demo, as they tend to on-prem
_DEMO_KNOBS = {
    Kind.OPEN: SimulatedKnobs(latency_ms=20, chunk_delay_ms=5, completion_tokens=24),
    Kind.PROPRIETARY: SimulatedKnobs(latency_ms=60, chunk_delay_ms=8, completion_tokens=32),
}


def simulated_target(target: Target) -> Target:
    knobs = (
        target.simulated if target.provider is ProviderType.SIMULATED else _DEMO_KNOBS[target.kind]
    )
    return replace(
        target,
        provider=ProviderType.SIMULATED,
        base_url=None,
        api_key=None,
        unavailable_reason=None,
        simulated=knobs,
    )


def simulate(policy: CompiledPolicy) -> CompiledPolicy:
    return replace(
        policy, targets={name: simulated_target(t) for name, t in policy.targets.items()}
    )


class DemoPolicyHolder(PolicyHolder):
    """A policy holder whose every load (and reload) simulates the targets."""

    def _load(self) -> LoadedPolicy:
        loaded = super()._load()
        return LoadedPolicy(simulate(loaded.policy), loaded.facts)
